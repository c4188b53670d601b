//! How cost grows with work: one rate-limit check and one cached API-key verification
//! among N keys that all hold state, for N = 1, 1 000, 100 000 and 1 000 000, in memory.
//!
//! - `scaling_ratelimit_check`: `RateLimiter<MemoryStore>::check` under a per-minute
//!   policy (the sliding window of `Policy::per_minute`), every key checked once before
//!   timing;
//! - `scaling_apikey_verify`: `ApiKeys<MemoryKeyStore>::verify` with the cache sized to
//!   hold all N keys, every key verified once before timing (steady state);
//! - `scaling_apikey_verify_default_cache`: the same with the default cache (10 000
//!   keys), so beyond 10 000 keys most verifications read the store.
//!
//! The key of each iteration comes from a precomputed pseudo-random order, so picking it
//! costs one sequential read. The resident memory added by populating the 1 000 000 keys
//! (VmRSS before and after) is printed and written to
//! `target/tmp/bench-scaling-memory.json` for `cargo xtask bench scaling`.
//!
//! Run: `cargo xtask bench scaling`, or
//! `cargo bench -p palisade-benches --features apikey,ratelimit --bench scaling`.

#![allow(missing_docs)] // criterion_group! generates an undocumented public function.
#![allow(clippy::unwrap_used)] // Set-up and measured calls on known-good inputs.
#![allow(clippy::print_stdout)] // The memory figures are a report, printed beside criterion's.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use palisade_apikey::{ApiKeys, CacheConfig, MemoryKeyStore, NewKey};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};

const SIZES: [usize; 4] = [1, 1_000, 100_000, 1_000_000];
/// The largest N: its memory is measured and reported.
const LARGEST: usize = 1_000_000;
/// Per-minute limit: the maximum, so that the fixed clock never exhausts a key.
const PER_MINUTE: u64 = 1_000_000_000;

/// Polls a future that is expected to complete without waiting: the memory stores never
/// await, so no runtime cost is measured (as in the `apikey` bench).
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

/// A fixed clock: the measured call, not reading the clock, is what grows with N.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_780_800)
}

/// `len` indices below `n` from xorshift64, at least 4 096 and at most 2^20 of them.
fn random_order(n: usize) -> Vec<usize> {
    let len = n.clamp(4_096, 1 << 20);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let n = n as u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n).unwrap()
        })
        .collect()
}

/// Runs `op` on the key at each position of `order` in turn.
fn cycle<'a, T: ?Sized, R>(
    keys: &'a [Box<T>],
    order: &'a [usize],
    mut op: impl FnMut(&'a T) -> R,
) -> impl FnMut() -> R {
    let mut position = 0;
    move || {
        let key = &keys[order[position]];
        position += 1;
        if position == order.len() {
            position = 0;
        }
        op(key)
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resident bytes added by the largest N, per operation, as written to the memory file.
#[derive(Default)]
struct Memory {
    entries: Vec<(&'static str, u64)>,
}

impl Memory {
    fn note(&mut self, name: &'static str, n: usize, bytes: u64) {
        if n == LARGEST {
            println!(
                "scaling memory: {name}: {n} keys add {} MiB resident ({} bytes per key)",
                bytes / (1 << 20),
                bytes / n as u64
            );
            self.entries.push((name, bytes));
        }
    }

    fn write(&self) {
        let fields: Vec<String> = self
            .entries
            .iter()
            .map(|(name, bytes)| format!("\"{name}\": {bytes}"))
            .collect();
        let json = format!(
            "{{\"keys\": {LARGEST}, \"rss_bytes\": {{{}}}}}\n",
            fields.join(", ")
        );
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(dir.join("bench-scaling-memory.json"), json));
        if let Err(error) = written {
            println!("scaling memory: could not write the memory file: {error}");
        }
    }
}

/// Returns the populated limiters and their keys, to be dropped only after the API-key
/// memory is measured: memory they freed would otherwise be reused and hide its growth.
fn ratelimit_check(c: &mut Criterion, memory: &mut Memory) -> impl Sized + use<> {
    let mut populated = Vec::new();
    for n in SIZES {
        let keys: Vec<Box<str>> = (0..n).map(|i| format!("client-{i:08}").into()).collect();
        let before = rss_bytes();
        let limiter = RateLimiter::new(MemoryStore::new(), Policy::per_minute(PER_MINUTE).unwrap());
        for key in &keys {
            assert!(ready(limiter.check(key, 1, now())).allowed());
        }
        memory.note("ratelimit_check", n, rss_bytes().saturating_sub(before));
        populated.push((n, limiter, keys));
    }

    let mut group = c.benchmark_group("scaling_ratelimit_check");
    for (n, limiter, keys) in &populated {
        let order = random_order(*n);
        group.bench_function(BenchmarkId::new("ratelimit_check", n), |b| {
            b.iter(cycle(keys, &order, |key| {
                ready(limiter.check(black_box(key), 1, now())).allowed()
            }));
        });
    }
    group.finish();
    populated
}

/// `n` keys created through `ApiKeys::create`, as their raw secrets.
fn create_keys(keys: &ApiKeys<MemoryKeyStore>, n: usize) -> Vec<Box<str>> {
    let started = Instant::now();
    let raw: Vec<Box<str>> = (0..n)
        .map(|i| {
            let created = ready(keys.create(
                NewKey::new(format!("owner-{i}")).scopes(["orders:read"]),
                now(),
            ))
            .unwrap();
            created.key.expose_secret().into()
        })
        .collect();
    if n == LARGEST {
        println!(
            "scaling: created {n} API keys in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    raw
}

fn apikey_verify(c: &mut Criterion, memory: &mut Memory) {
    // Every size is populated first, so the two groups below share the stores.
    let mut populated = Vec::new();
    for n in SIZES {
        let before = rss_bytes();
        let keys = ApiKeys::new(MemoryKeyStore::new()).with_cache(CacheConfig {
            capacity: n,
            ..CacheConfig::default()
        });
        let raw = create_keys(&keys, n);
        for key in &raw {
            ready(keys.verify(Some(key), None, now())).unwrap();
        }
        memory.note("apikey_verify", n, rss_bytes().saturating_sub(before));
        populated.push((n, keys, raw));
    }

    let mut group = c.benchmark_group("scaling_apikey_verify");
    for (n, keys, raw) in &populated {
        let order = random_order(*n);
        group.bench_function(BenchmarkId::new("apikey_verify", n), |b| {
            b.iter(cycle(raw, &order, |key| {
                ready(keys.verify(Some(black_box(key)), None, now())).unwrap()
            }));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scaling_apikey_verify_default_cache");
    for (n, keys, raw) in populated {
        let keys = keys.with_cache(CacheConfig::default());
        // Fill the cache; at larger N the steady state (the cache full of other keys,
        // most verifications missing it) sets in during criterion's warm-up.
        let capacity = CacheConfig::default().capacity;
        for key in raw.iter().take(capacity) {
            ready(keys.verify(Some(key), None, now())).unwrap();
        }
        let order = random_order(n);
        group.bench_function(BenchmarkId::new("apikey_verify_default_cache", n), |b| {
            b.iter(cycle(&raw, &order, |key| {
                ready(keys.verify(Some(black_box(key)), None, now())).unwrap()
            }));
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let mut memory = Memory::default();
    let limiters = ratelimit_check(c, &mut memory);
    apikey_verify(c, &mut memory);
    drop(limiters);
    memory.write();
}

criterion_group! {
    name = scaling;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = benches
}
criterion_main!(scaling);
