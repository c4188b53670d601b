//! palisade-apikey hot path, measured side by side with its floor:
//! - a cached `ApiKeys::verify` of a valid key vs. SHA-256 of the same key alone
//!   (target: under 1 µs and within 3x of the SHA-256), and vs. SHA-256 of the part of
//!   the key that verification hashes;
//! - rejecting a key with a wrong checksum (target: under 200 ns), through `verify` and
//!   through `KeyFormat::parse`.
//!
//! Run: `cargo bench -p palisade-benches --features apikey --bench apikey`

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.
#![allow(clippy::unwrap_used)] // Set-up and measured calls on known-good inputs.

use std::future::Future;
use std::hint::black_box;
use std::net::IpAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_apikey::{ApiKeys, KeyFormat, MemoryKeyStore, NewKey, Pepper};
use sha2::{Digest, Sha256};

/// Polls a future that is expected to complete without waiting (a cached verification
/// or an offline rejection never awaits the store), so no runtime cost is measured.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the measured path awaited"),
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_780_800)
}

fn setup(keys: &ApiKeys<MemoryKeyStore>) -> String {
    let created = ready(
        keys.create(
            NewKey::new("bench")
                .scopes(["orders:read"])
                .allowed_networks(["10.0.0.0/8".parse().unwrap()]),
            now(),
        ),
    )
    .unwrap();
    created.key.expose_secret().to_owned()
}

fn cached_verify(c: &mut Criterion) {
    let client: Option<IpAddr> = Some("10.1.2.3".parse().unwrap());
    let plain = ApiKeys::new(MemoryKeyStore::new());
    let plain_key = setup(&plain);
    let peppered =
        ApiKeys::new(MemoryKeyStore::new()).with_pepper(Pepper::new(vec![7u8; 32]).unwrap());
    let peppered_key = setup(&peppered);
    // Warm the caches (and the revocation-epoch poll) once.
    ready(plain.verify(Some(&plain_key), client, now())).unwrap();
    ready(peppered.verify(Some(&peppered_key), client, now())).unwrap();

    let mut group = c.benchmark_group("apikey_cached_verify");
    // The reference: SHA-256 of the whole key (57 bytes, two blocks).
    group.bench_function("sha2_sha256_of_key", |b| {
        b.iter(|| Sha256::digest(black_box(plain_key.as_bytes())));
    });
    // What verify actually hashes: the key after `pk_` (54 bytes, one block).
    let hashed_part = plain_key.strip_prefix("pk_").unwrap().to_owned();
    group.bench_function("sha2_sha256_of_hashed_part", |b| {
        b.iter(|| Sha256::digest(black_box(hashed_part.as_bytes())));
    });
    // The SHA-256 implementation verify uses (aws-lc-rs), on the same bytes.
    group.bench_function("aws_lc_sha256_of_hashed_part", |b| {
        b.iter(|| {
            aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                black_box(hashed_part.as_bytes()),
            )
        });
    });
    group.bench_function("palisade_verify_cached_sha256", |b| {
        b.iter(|| ready(plain.verify(Some(black_box(&plain_key)), client, now())).unwrap());
    });
    group.bench_function("palisade_verify_cached_hmac_pepper", |b| {
        b.iter(|| ready(peppered.verify(Some(black_box(&peppered_key)), client, now())).unwrap());
    });
    group.finish();
}

fn invalid_checksum(c: &mut Criterion) {
    let keys = ApiKeys::new(MemoryKeyStore::new());
    let valid = setup(&keys);
    let mut chars: Vec<char> = valid.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == '0' { '1' } else { '0' };
    let invalid: String = chars.into_iter().collect();
    let format = KeyFormat::default();
    assert!(format.parse(&invalid).is_err());

    let mut group = c.benchmark_group("apikey_invalid_checksum");
    group.bench_function("palisade_verify_rejects", |b| {
        b.iter(|| ready(keys.verify(Some(black_box(&invalid)), None, now())).unwrap_err());
    });
    group.bench_function("palisade_parse_rejects", |b| {
        b.iter(|| format.parse(black_box(&invalid)).unwrap_err());
    });
    group.finish();
}

criterion_group!(benches, cached_verify, invalid_checksum);
criterion_main!(benches);
