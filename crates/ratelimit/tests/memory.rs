//! The conformance suite and the limiter against the in-memory store.
#![allow(clippy::unwrap_used)] // Test helpers: a panic there is a failing test.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_ratelimit::{MemoryStore, Plan, Policy, RateLimiter};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_is_exact_under_concurrency() {
    let store = Arc::new(MemoryStore::new());
    common::exact_under_concurrency(&[store], "mem").await;
}

#[tokio::test]
async fn memory_checks_all_windows_or_none() {
    common::all_or_nothing(&MemoryStore::new(), "mem").await;
}

#[test]
fn memory_is_exact_with_threads() {
    // Real threads racing on one key, for every algorithm.
    for algorithm in common::ALGORITHMS {
        let store = Arc::new(MemoryStore::new());
        let policy = Arc::new(common::long_policy(algorithm, 1_000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                let policy = Arc::clone(&policy);
                std::thread::spawn(move || {
                    (0..600)
                        .filter(|_| {
                            store
                                .check_sync("k", &policy, 1, SystemTime::now())
                                .allowed()
                        })
                        .count()
                })
            })
            .collect();
        let allowed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(allowed, 1_000, "{algorithm:?}");
    }
}

#[tokio::test]
async fn overrides_change_quotas_at_run_time_without_losing_state() {
    let limiter = RateLimiter::new(MemoryStore::new(), Policy::plan(Plan::Free));
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    assert_eq!(limiter.policy_for("k").name(), "free");
    limiter.set_override("k", Policy::per_minute(3).unwrap());
    for _ in 0..3 {
        assert!(limiter.check("k", 1, now).await.allowed());
    }
    assert!(!limiter.check("k", 1, now).await.allowed());
    // Raised at run time: the 3 already used still count.
    limiter.set_override("k", Policy::per_minute(5).unwrap());
    let d = limiter.check("k", 1, now).await;
    assert!(d.allowed());
    assert_eq!(d.windows()[0].remaining(), 1);
    limiter.remove_override("k");
    assert_eq!(limiter.policy_for("k").name(), "free");
    // Back on the plan, its per-minute window continues from the same count (4 of 60, then 5).
    let d = limiter.check("k", 1, now).await;
    assert!(d.allowed());
    let permin = d.windows().iter().find(|w| w.name() == "permin").unwrap();
    assert_eq!(permin.remaining(), 55);
}

#[tokio::test]
async fn plans_render_every_window_for_the_headers() {
    let limiter = RateLimiter::new(MemoryStore::new(), Policy::plan(Plan::Pro));
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let d = limiter.check("client", 1, now).await;
    assert!(d.allowed());
    assert!(d.degraded().is_none());
    let rendered: Vec<(String, u64, u64, u64)> = d
        .windows()
        .iter()
        .map(|w| {
            (
                w.name().to_owned(),
                w.limit(),
                w.window().as_secs(),
                w.remaining(),
            )
        })
        .collect();
    assert_eq!(
        rendered,
        [
            ("burst".to_owned(), 100, 10, 99),
            ("permin".to_owned(), 600, 60, 599),
            ("perday".to_owned(), 50_000, 86_400, 49_999),
        ]
    );
    let most = d.most_restrictive().unwrap();
    assert_eq!(most.name(), "burst");
    assert_eq!(most.reset(), Duration::from_millis(100));
    assert_eq!(most.reset_at(), now + Duration::from_millis(100));
    // Burst exhausted: denied, with the exact retry time.
    for _ in 0..99 {
        assert!(limiter.check("client", 1, now).await.allowed());
    }
    let d = limiter.check("client", 1, now).await;
    assert!(!d.allowed());
    assert_eq!(d.retry_after(), Some(Duration::from_millis(100)));
    assert!(
        limiter
            .check("client", 1, now + Duration::from_millis(100))
            .await
            .allowed()
    );
}

#[tokio::test]
async fn keys_of_any_size_are_bounded() {
    let store = MemoryStore::new();
    let limiter = RateLimiter::new(store, Policy::per_minute(1).unwrap());
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let huge = "k".repeat(1 << 20);
    assert!(limiter.check(&huge, 1, now).await.allowed());
    assert!(!limiter.check(&huge, 1, now).await.allowed());
    let other = format!("{huge}x");
    assert!(limiter.check(&other, 1, now).await.allowed());
    assert_eq!(limiter.store().len(), 2);
}
