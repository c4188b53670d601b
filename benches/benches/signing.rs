//! palisade-signing, side by side in one run:
//! - signing one request (1 KiB body): ours (palisade and aws4 profiles) vs the
//!   `aws-sigv4` crate, key derivation included on both sides;
//! - verifying it (aws4 and palisade, derived key cached, replay check off so the same
//!   request can be measured repeatedly) vs the bare HMAC and SHA-256 operations the
//!   verification must do, per profile: SHA-256 of the body, SHA-256 of that profile's
//!   canonical request, one HMAC-SHA256 of its string to sign with a ready key (aws-lc-rs,
//!   the primitives the crate uses; the verifier caches its derived key the same way).

// Benchmark setup unwraps: a failure is a broken benchmark, not client input.
#![allow(clippy::unwrap_used)]
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use aws_lc_rs::{digest, hmac};
use criterion::{Criterion, criterion_group, criterion_main};
use palisade_signing::{
    Credential, KeyMaterial, MasterKey, MemoryCredentialStore, MemoryNonceStore, Request, Secret,
    SigV4Profile, SigningCredential, Verifier, sign, sign_detailed,
};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TARGET: &str = "/api/orders?limit=20&cursor=abc";

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_780_800)
}

fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("in-memory stores are always ready"),
    }
}

fn request(body: &[u8]) -> Request<'_> {
    Request::new("POST", TARGET)
        .header("host", "api.example.com")
        .header("content-type", "application/json")
        .header("x-request-id", "0f3c2b1a")
        .body(body)
}

fn aws_sigv4_crate_sign(body: &[u8]) -> usize {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = Credentials::new(AKID, SECRET, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [
        ("host", "api.example.com"),
        ("content-type", "application/json"),
        ("x-request-id", "0f3c2b1a"),
    ];
    let signable = SignableRequest::new(
        "POST",
        "https://api.example.com/api/orders?limit=20&cursor=abc",
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.headers().count()
}

fn bench(c: &mut Criterion) {
    let body = vec![b'x'; 1024];
    let credential = SigningCredential::new(AKID, Secret::from(SECRET));
    let aws = SigV4Profile::aws4("us-east-1", "execute-api");
    let palisade = SigV4Profile::palisade();

    let mut g = c.benchmark_group("signing/sign_1KiB");
    g.bench_function("palisade-signing aws4", |b| {
        b.iter(|| sign(&aws, &credential, black_box(&request(&body)), now()).unwrap());
    });
    g.bench_function("palisade-signing palisade", |b| {
        b.iter(|| sign(&palisade, &credential, black_box(&request(&body)), now()).unwrap());
    });
    g.bench_function("aws-sigv4 crate", |b| {
        b.iter(|| aws_sigv4_crate_sign(black_box(&body)));
    });
    g.finish();

    let store = MemoryCredentialStore::new(MasterKey::generate());
    store
        .insert(Credential {
            access_key_id: AKID.into(),
            owner: "bench".into(),
            scopes: vec![],
            key: KeyMaterial::Secret(Secret::from(SECRET)),
        })
        .unwrap();
    let verifier = Verifier::new(store, MemoryNonceStore::new()).replay_protection(false);

    let mut g = c.benchmark_group("signing/verify_1KiB");
    for (name, profile) in [("aws4", &aws), ("palisade", &palisade)] {
        let signed = sign_detailed(profile, &credential, &request(&body), now()).unwrap();
        let mut req = request(&body);
        for (n, v) in &signed.headers {
            req.push_header(n, v);
        }
        ready(verifier.verify(profile, &req, now())).unwrap();
        g.bench_function(format!("palisade-signing verify {name}"), |b| {
            b.iter(|| ready(verifier.verify(profile, black_box(&req), now())).unwrap());
        });
    }
    // The bare operations verification must do, on the same sizes: each profile's own
    // canonical request and string to sign (their lengths differ, and SHA-256 works in
    // 64-byte blocks).
    for (name, profile) in [("aws4", &aws), ("palisade", &palisade)] {
        let signed = sign_detailed(profile, &credential, &request(&body), now()).unwrap();
        let canonical = signed.canonical_request.clone();
        let sts = signed.string_to_sign.clone();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
        g.bench_function(
            format!("bare {name} sha256(body)+sha256(canonical)+hmac(sts)"),
            |b| {
                b.iter(|| {
                    let d1 = digest::digest(&digest::SHA256, black_box(&body));
                    let d2 = digest::digest(&digest::SHA256, black_box(canonical.as_bytes()));
                    let t = hmac::sign(&key, black_box(sts.as_bytes()));
                    (d1, d2, t)
                });
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
