//! Token validation per algorithm: Palisade's hardened `validate` side by side with a
//! bare `jsonwebtoken::decode` of the same token (same key, same claims struct shape),
//! in the same run. Palisade's extra checks (strict duplicate-key JSON pass, `typ`,
//! `crit`/`jku`/`x5u`/`jwk` refusal, kid checks, claim types) should cost at most 10%.
//!
//! Run: `cargo bench -p palisade-benches --features jwt --bench jwt`

#![allow(missing_docs)] // `criterion_group!` with a config generates an undocumented pub fn.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_jwt::{
    AccessTokenValidator, Algorithm, KeySet, RotationPolicy, SigningKey, VerifyingKey,
};
use serde::Deserialize;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Fields are read by the deserializer; the benchmark only keeps them alive.
struct BareClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: String,
    scope: String,
    client_id: String,
}

fn claims(now: SystemTime) -> serde_json::Value {
    let iat = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    serde_json::json!({
        "iss": ISS, "sub": "user-42", "aud": AUD, "exp": iat + 900, "iat": iat, "nbf": iat,
        "jti": "Jr3bN0tQx1m2Yh8vW5kP7A", "scope": "orders:read orders:write", "client_id": "cl_abcdef123456"
    })
}

fn bench(c: &mut Criterion) {
    palisade_jwt::install_crypto_provider();
    let now = SystemTime::now();
    let _unused = RotationPolicy::default();
    let cases: Vec<(Algorithm, SigningKey, jsonwebtoken::DecodingKey)> = vec![
        key(Algorithm::ES256),
        key(Algorithm::EdDSA),
        key(Algorithm::RS256),
        {
            let secret = [7u8; 32];
            (
                Algorithm::HS256,
                SigningKey::hmac("hs", &secret).expect("hmac key"),
                jsonwebtoken::DecodingKey::from_secret(&secret),
            )
        },
    ];
    for (alg, signing, bare_key) in cases {
        let token = signing.encode("at+jwt", &claims(now)).expect("token");
        let verifying: VerifyingKey = if alg == Algorithm::HS256 {
            VerifyingKey::hmac("hs", &[7u8; 32]).expect("hmac key")
        } else {
            signing.verifying_key().clone()
        };
        let keys = Arc::new(KeySet::single(verifying));
        let validator = AccessTokenValidator::new(ISS, AUD, &[alg]).expect("validator");
        let jwt_alg = match alg {
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            _ => jsonwebtoken::Algorithm::HS256,
        };
        let mut bare = jsonwebtoken::Validation::new(jwt_alg);
        bare.set_audience(&[AUD]);
        bare.set_issuer(&[ISS]);
        bare.leeway = 30;
        // Both must accept the token, or the comparison means nothing.
        validator
            .validate(&token, &keys, now)
            .expect("palisade accepts");
        jsonwebtoken::decode::<BareClaims>(&token, &bare_key, &bare).expect("jsonwebtoken accepts");

        let mut group = c.benchmark_group(format!("jwt_validate/{alg}"));
        group.bench_function("palisade", |b| {
            b.iter(|| {
                validator
                    .validate(black_box(&token), &keys, now)
                    .expect("valid")
            });
        });
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<BareClaims>(black_box(&token), &bare_key, &bare)
                    .expect("valid")
            });
        });
        group.finish();
    }
}

fn key(alg: Algorithm) -> (Algorithm, SigningKey, jsonwebtoken::DecodingKey) {
    let signing = SigningKey::generate(alg).expect("key");
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(signing.verifying_key().to_jwk().expect("jwk")).expect("jwk parses");
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
    (alg, signing, decoding)
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
