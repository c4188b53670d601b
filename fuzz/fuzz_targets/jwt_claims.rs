//! Claims handling behind a valid signature. `jwt_parse` never gets past the signature
//! check (a fuzzer cannot forge one), so this target signs whatever header and claims
//! bytes it is given with the fixture's HS256 secret and validates the token as both an
//! access token and an ID token.
//!
//! Input: the first byte picks the header (three fixed, valid ones; or, for the fourth,
//! the bytes up to the first NUL are the header and the rest are the claims); the other
//! bytes are the claims, base64url-encoded as they are (JSON or not, UTF-8 or not).
//!
//! Properties: no panic; an accepted token has the configured issuer and audience and
//! has not expired; the accepted claims, serialized and signed again, validate to the
//! same claims (a round trip through the parser).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use palisade_jwt::{
    AccessTokenValidator, Algorithm, DEFAULT_LEEWAY, IdTokenValidator, KeySet, SigningKey,
    VerifyingKey,
};

const SECRET: [u8; 32] = [7u8; 32];
const NOW: u64 = 1_800_000_000;

struct Fixture {
    signer: SigningKey,
    keys: KeySet,
    access: AccessTokenValidator,
    id: IdTokenValidator,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let es = SigningKey::generate(Algorithm::ES256).expect("key");
        let algs = [Algorithm::ES256, Algorithm::HS256];
        Fixture {
            signer: SigningKey::hmac("hs", &SECRET).expect("key"),
            keys: KeySet::new(vec![
                es.verifying_key().clone(),
                VerifyingKey::hmac("hs", &SECRET).expect("key"),
            ])
            .expect("set"),
            access: AccessTokenValidator::new("https://i", "https://a", &algs).expect("validator"),
            id: IdTokenValidator::new("https://i", "https://a", &algs).expect("validator"),
        }
    })
}

fn token(f: &Fixture, header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let signature = f
        .signer
        .sign(input.as_bytes())
        .expect("HMAC signing cannot fail");
    format!("{input}.{}", B64.encode(signature))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (header, claims): (&[u8], &[u8]) = match selector % 4 {
        0 => (br#"{"alg":"HS256","typ":"at+jwt","kid":"hs"}"#, rest),
        1 => (br#"{"alg":"HS256","kid":"hs"}"#, rest),
        2 => (br#"{"typ":"JWT","alg":"HS256","kid":"hs"}"#, rest),
        _ => match rest.iter().position(|&b| b == 0) {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, b"{}"),
        },
    };
    let f = fixture();
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let jwt = token(f, header, claims);

    if let Ok(accepted) = f.access.validate(&jwt, &f.keys, now) {
        assert_eq!(accepted.iss, "https://i");
        assert!(accepted.aud.iter().any(|aud| aud == "https://a"));
        assert!(accepted.exp.saturating_add(DEFAULT_LEEWAY.as_secs()) > NOW);
        let again = serde_json::to_vec(&accepted).expect("claims serialize");
        let reparsed = f
            .access
            .validate(&token(f, header, &again), &f.keys, now)
            .expect("re-serialized access token claims validate");
        assert_eq!(reparsed, accepted);
    }
    if let Ok(accepted) = f.id.validate(&jwt, &f.keys, now) {
        assert_eq!(accepted.iss, "https://i");
        assert!(accepted.aud.iter().any(|aud| aud == "https://a"));
        assert!(accepted.exp.saturating_add(DEFAULT_LEEWAY.as_secs()) > NOW);
        let again = serde_json::to_vec(&accepted).expect("claims serialize");
        let reparsed =
            f.id.validate(&token(f, header, &again), &f.keys, now)
                .expect("re-serialized ID token claims validate");
        assert_eq!(reparsed, accepted);
    }
});
