//! In-memory GCRA, keyed: palisade-ratelimit against governor on the same quota, with
//! 1, 1 000 and 100 000 keys, on 1 and 2 threads; a new key on every check; and memory
//! per idle key.
//!
//! `cargo bench -p palisade-benches --features ratelimit --bench ratelimit`
#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governor::{Quota, RateLimiter as Governor};
use palisade_ratelimit::{Algorithm, Limit, MemoryStore, Policy};

const RATE: u32 = 1_000_000;

fn policy() -> Policy {
    Policy::builder("bench")
        .limit(
            Limit::new(
                "g",
                Algorithm::Gcra,
                u64::from(RATE),
                Duration::from_secs(1),
            )
            .with_burst(u64::from(RATE)),
        )
        .build()
        .expect("valid policy")
}

fn quota() -> Quota {
    let rate = NonZeroU32::new(RATE).expect("non-zero");
    Quota::per_second(rate).allow_burst(rate)
}

fn keys(n: usize) -> Arc<Vec<String>> {
    Arc::new((0..n).map(|i| format!("client-{i:08}")).collect())
}

/// Runs `op` `iters` times on each of `threads` threads (keys spread per thread) and
/// returns the wall time: the time per check under that much parallelism.
fn run_threads<F>(threads: usize, iters: u64, keys: &Arc<Vec<String>>, op: Arc<F>) -> Duration
where
    F: Fn(&str) -> bool + Send + Sync + 'static,
{
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let keys = Arc::clone(keys);
            let op = Arc::clone(&op);
            std::thread::spawn(move || {
                let n = keys.len();
                let mut index = t * 7_919 % n;
                let mut allowed = 0u64;
                for _ in 0..iters {
                    allowed += u64::from(op(&keys[index]));
                    index += 1;
                    if index == n {
                        index = 0;
                    }
                }
                allowed
            })
        })
        .collect();
    for handle in handles {
        std::hint::black_box(handle.join().expect("bench thread"));
    }
    start.elapsed()
}

fn keyed_gcra(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_gcra_keyed");
    for n in [1usize, 1_000, 100_000] {
        let keys = keys(n);
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            let label = format!("{n}keys/{threads}thr");

            let store = Arc::new(MemoryStore::new());
            let p = Arc::new(policy());
            let op = {
                let (store, p) = (Arc::clone(&store), Arc::clone(&p));
                Arc::new(move |key: &str| store.check_now(key, &p, 1).allowed())
            };
            // Warm the keys in, as a long-running server would have them.
            for key in keys.iter() {
                op(key);
            }
            group.bench_function(BenchmarkId::new("palisade", &label), |b| {
                b.iter_custom(|iters| run_threads(threads, iters, &keys, Arc::clone(&op)));
            });

            let fixed = SystemTime::now();
            let op_fixed = {
                let (store, p) = (Arc::clone(&store), Arc::clone(&p));
                Arc::new(move |key: &str| store.check_sync(key, &p, 1, fixed).allowed())
            };
            group.bench_function(BenchmarkId::new("palisade_time_given", &label), |b| {
                b.iter_custom(|iters| run_threads(threads, iters, &keys, Arc::clone(&op_fixed)));
            });

            let governor = Arc::new(Governor::keyed(quota()));
            for key in keys.iter() {
                governor.check_key(key).ok();
            }
            group.bench_function(BenchmarkId::new("governor", &label), |b| {
                b.iter_custom(|iters| run_governor(threads, iters, &keys, Arc::clone(&governor)));
            });
        }
    }
    group.finish();
}

/// governor takes `&K` where `K = String`: the threads index the same `String`s.
fn run_governor(
    threads: usize,
    iters: u64,
    keys: &Arc<Vec<String>>,
    governor: Arc<governor::DefaultKeyedRateLimiter<String>>,
) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let keys = Arc::clone(keys);
            let governor = Arc::clone(&governor);
            std::thread::spawn(move || {
                let n = keys.len();
                let mut index = t * 7_919 % n;
                let mut allowed = 0u64;
                for _ in 0..iters {
                    allowed += u64::from(governor.check_key(&keys[index]).is_ok());
                    index += 1;
                    if index == n {
                        index = 0;
                    }
                }
                allowed
            })
        })
        .collect();
    for handle in handles {
        std::hint::black_box(handle.join().expect("bench thread"));
    }
    start.elapsed()
}

/// Keys never seen before, formatted into one reused buffer (the same cost for both
/// limiters).
#[derive(Default)]
struct Spray {
    key: String,
    next: u64,
}

impl Spray {
    /// A `String`, as governor's keyed limiter here takes `&String`.
    fn next_key(&mut self) -> &String {
        use std::fmt::Write as _;
        self.key.clear();
        self.next += 1;
        let _ = write!(self.key, "spray-{:016x}", self.next);
        &self.key
    }
}

/// Every check a key never seen before (a client spraying identities): the cost of adding
/// a key, with the store's own clean-up running as it grows. One thread.
fn new_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit_gcra_new_keys");
    let p = policy();
    let store = MemoryStore::new();
    let mut spray = Spray::default();
    group.bench_function("palisade", |b| {
        b.iter(|| store.check_now(spray.next_key(), &p, 1).allowed());
    });
    let governor = Governor::keyed(quota());
    let mut spray = Spray::default();
    group.bench_function("governor", |b| {
        b.iter(|| governor.check_key(spray.next_key()).is_ok());
    });
    group.finish();
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

#[allow(clippy::print_stdout)] // The memory figure is a report, printed beside criterion's.
fn memory_per_idle_key(_: &mut Criterion) {
    const N: usize = 200_000;
    let keys = keys(N);
    let p = policy();
    let now = SystemTime::now();
    let before = rss_bytes();
    let store = MemoryStore::new();
    for key in keys.iter() {
        store.check_sync(key, &p, 1, now);
    }
    let palisade = rss_bytes().saturating_sub(before);
    let before = rss_bytes();
    let governor: governor::DefaultKeyedRateLimiter<String> = Governor::keyed(quota());
    for key in keys.iter() {
        governor.check_key(key).ok();
    }
    let governor_bytes = rss_bytes().saturating_sub(before);
    println!(
        "memory per idle key ({N} keys, GCRA, key 'client-NNNNNNNN'): palisade {} bytes, governor {} bytes (RSS delta)",
        palisade / N as u64,
        governor_bytes / N as u64
    );
    // Once every key has recovered, a sweep (automatic as the store grows) frees them.
    store.sweep(now + Duration::from_secs(2));
    println!("palisade keys after recovery and sweep: {}", store.len());
    std::hint::black_box((&store, &governor));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = memory_per_idle_key, keyed_gcra, new_keys
}
criterion_main!(benches);
