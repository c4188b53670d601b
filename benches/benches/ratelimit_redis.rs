//! Redis store decisions per second at 50 concurrent clients (as `redis-benchmark -c 50`
//! running the same script with `EVALSHA`), and the hybrid leasing store.
//!
//! `cargo bench -p palisade-benches --features ratelimit-redis --bench ratelimit_redis`
//! (needs Redis at `PALISADE_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_ratelimit::{
    Algorithm, HybridConfig, HybridStore, Limit, Policy, RedisConfig, RedisStore, Store,
};

const CLIENTS: u64 = 50;
const KEYS: u64 = 10_000;

fn policy() -> Policy {
    Policy::builder("bench")
        .limit(Limit::new(
            "w",
            Algorithm::Gcra,
            1_000_000,
            Duration::from_secs(1),
        ))
        .build()
        .expect("valid policy")
}

/// `iters` decisions spread over `CLIENTS` concurrent tasks and `KEYS` keys.
async fn run<S: Store + 'static>(store: Arc<S>, iters: u64) -> Duration {
    let policy = Arc::new(policy());
    let per_task = iters.div_ceil(CLIENTS);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let store = Arc::clone(&store);
            let policy = Arc::clone(&policy);
            tokio::spawn(async move {
                let mut allowed = 0u64;
                for i in 0..per_task {
                    let key = format!("bench-{}", (t * 7_919 + i * 13) % KEYS);
                    let decision = store.check(&key, &policy, 1, SystemTime::now()).await;
                    allowed += u64::from(decision.is_ok_and(|d| d.allowed()));
                }
                allowed
            })
        })
        .collect();
    for task in tasks {
        std::hint::black_box(task.await.expect("bench task"));
    }
    start.elapsed()
}

#[allow(clippy::print_stderr)] // A skipped benchmark must say why.
fn report_skip(url: &str) {
    eprintln!("Redis unreachable at {url}: the Redis benchmark is skipped");
}

fn redis_decisions(c: &mut Criterion) {
    let url = std::env::var("PALISADE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = RedisConfig::default()
        .prefix("palisade:rlbench")
        .timeout(Duration::from_secs(2));
    let Ok(redis) = runtime.block_on(RedisStore::connect(&url, config)) else {
        report_skip(&url);
        return;
    };
    let redis = Arc::new(redis);
    let hybrid = Arc::new(HybridStore::new((*redis).clone(), HybridConfig::default()));

    let mut group = c.benchmark_group("ratelimit_redis_c50");
    group.throughput(Throughput::Elements(1));
    group.bench_function("redis_store", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| run(Arc::clone(&redis), iters));
    });
    group.bench_function("hybrid_store", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| run(Arc::clone(&hybrid), iters));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = redis_decisions
}
criterion_main!(benches);
