//! The conformance suite: one generic async function per behaviour, run against every
//! store (memory, Redis, Redis Cluster).
#![allow(clippy::unwrap_used)] // Test helpers: a panic there is a failing test.
#![allow(dead_code)] // Each test crate uses a different part of the suite.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_ratelimit::{Algorithm, Decision, Limit, Policy, Store};

pub const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::FixedWindow,
    Algorithm::SlidingWindow,
    Algorithm::SlidingLog,
    Algorithm::TokenBucket,
    Algorithm::LeakyBucket,
    Algorithm::Gcra,
];

/// `limit` per 30 days: no window edge or refill falls inside a test run, whichever
/// clock (the caller's or Redis's) decides.
pub fn long_policy(algorithm: Algorithm, limit: u64) -> Policy {
    Policy::builder("test")
        .limit(Limit::new(
            "w",
            algorithm,
            limit,
            Duration::from_secs(30 * 86_400),
        ))
        .build()
        .unwrap()
}

/// Many concurrent tasks on one key get exactly `limit` allowances, for every algorithm.
/// `stores` are independent store instances (two "servers") sharing the limit.
pub async fn exact_under_concurrency<S: Store + 'static>(stores: &[Arc<S>], key_prefix: &str) {
    for algorithm in ALGORITHMS {
        let limit = 25;
        let policy = Arc::new(long_policy(algorithm, limit));
        let key = Arc::new(format!("{key_prefix}-exact-{algorithm:?}"));
        let mut tasks = Vec::new();
        for i in 0..120 {
            let store = Arc::clone(&stores[i % stores.len()]);
            let policy = Arc::clone(&policy);
            let key = Arc::clone(&key);
            tasks.push(tokio::spawn(async move {
                let decision = store
                    .check(&key, &policy, 1, SystemTime::now())
                    .await
                    .unwrap();
                decision.allowed()
            }));
        }
        let mut allowed = 0;
        for task in tasks {
            allowed += u64::from(task.await.unwrap());
        }
        assert_eq!(allowed, limit, "{algorithm:?}");
    }
}

/// Several windows are checked together: a request passes all or counts against none.
pub async fn all_or_nothing<S: Store>(store: &S, key_prefix: &str) {
    let policy = Policy::builder("multi")
        .limit(Limit::new(
            "small",
            Algorithm::Gcra,
            3,
            Duration::from_secs(30 * 86_400),
        ))
        .limit(Limit::new(
            "big",
            Algorithm::FixedWindow,
            5,
            Duration::from_secs(30 * 86_400),
        ))
        .limit(Limit::new(
            "log",
            Algorithm::SlidingLog,
            4,
            Duration::from_secs(30 * 86_400),
        ))
        .build()
        .unwrap();
    let key = format!("{key_prefix}-multi");
    let now = SystemTime::now();
    let d = store.check(&key, &policy, 2, now).await.unwrap();
    assert!(d.allowed());
    let remaining: Vec<u64> = d
        .windows()
        .iter()
        .map(palisade_ratelimit::WindowDecision::remaining)
        .collect();
    assert_eq!(remaining, [1, 3, 2]);
    // 2 more: the big window and the log have room, the small one not: nothing charged.
    let d = store.check(&key, &policy, 2, now).await.unwrap();
    assert!(!d.allowed());
    let allowed: Vec<bool> = d
        .windows()
        .iter()
        .map(palisade_ratelimit::WindowDecision::allowed)
        .collect();
    assert_eq!(allowed, [false, true, true]);
    let remaining: Vec<u64> = d
        .windows()
        .iter()
        .map(palisade_ratelimit::WindowDecision::remaining)
        .collect();
    assert_eq!(remaining, [1, 3, 2]);
    let names: Vec<&str> = d
        .windows()
        .iter()
        .map(palisade_ratelimit::WindowDecision::name)
        .collect();
    assert_eq!(names, ["small", "big", "log"]);
    assert!(d.retry_after().is_some());
    // A cost above a window's capacity can never pass.
    let d = store.check(&key, &policy, 4, now).await.unwrap();
    assert!(!d.allowed());
    assert!(d.never());
    assert_eq!(d.retry_after(), None);
    let d = store.check(&key, &policy, 1, now).await.unwrap();
    assert!(d.allowed());
}

/// A small deterministic random generator for sequences (xorshift).
pub struct Sequence(u64);

impl Sequence {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

pub fn policies_for_sequences() -> Vec<Policy> {
    let mut out = Vec::new();
    for algorithm in ALGORITHMS {
        for (limit, period_ms, burst) in [(5, 1_000, 3), (7, 3_000, 7), (3, 700, 1)] {
            let mut l = Limit::new("w", algorithm, limit, Duration::from_millis(period_ms));
            if matches!(
                algorithm,
                Algorithm::TokenBucket | Algorithm::LeakyBucket | Algorithm::Gcra
            ) {
                l = l.with_burst(burst);
            }
            out.push(Policy::builder("seq").limit(l).build().unwrap());
        }
    }
    out.push(Policy::plan(palisade_ratelimit::Plan::Free));
    out
}

/// Runs the same random request sequence (times from the caller) through two stores
/// and demands identical decisions, field by field.
pub async fn same_decisions<A: Store, B: Store>(a: &A, b: &B, key_prefix: &str) {
    for (p, policy) in policies_for_sequences().iter().enumerate() {
        let key = format!("{key_prefix}-seq-{p}");
        let mut rng = Sequence::new(0x9e37_79b9 + p as u64);
        let mut now = UNIX_EPOCH + Duration::from_micros(1_800_000_000_123_457);
        for step in 0..150 {
            now += Duration::from_micros(rng.next(400_000));
            let cost = rng.next(4);
            let da: Decision = a.check(&key, policy, cost, now).await.unwrap();
            let db: Decision = b.check(&key, policy, cost, now).await.unwrap();
            assert_eq!(da, db, "policy {p} step {step} cost {cost}");
        }
    }
}
