//! The Redis store on a real three-master Redis Cluster: exact, and no CROSSSLOT.
#![allow(clippy::unwrap_used)] // Test helpers: a panic there is a failing test.
#![cfg(feature = "redis")]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use palisade_ratelimit::{Plan, Policy, RedisConfig, RedisStore, Store};

/// The cluster's node URLs: `PALISADE_TEST_REDIS_CLUSTER`, or a cluster started with
/// `tests/redis-cluster.sh` when `redis-server` is installed. `None` (skip) or a panic
/// (when services are required) otherwise.
#[allow(clippy::print_stderr)] // A skipped test must say why; the harness shows stderr.
fn cluster_nodes() -> Option<(Vec<String>, bool)> {
    if let Ok(value) = std::env::var("PALISADE_TEST_REDIS_CLUSTER") {
        let nodes = value.split(',').map(str::to_owned).collect();
        return Some((nodes, false));
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/redis-cluster.sh");
    let started = Command::new("bash").arg(script).arg("start").output();
    match started {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout);
            let nodes = text.trim().split(',').map(str::to_owned).collect();
            Some((nodes, true))
        }
        other => {
            let reason = format!("could not start a Redis Cluster: {other:?}");
            assert!(!palisade_testkit::services_required(), "{reason}");
            eprintln!("skipping: {reason}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_is_exact_with_no_crossslot() {
    let Some((nodes, started_here)) = cluster_nodes() else {
        return;
    };
    let refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let config = RedisConfig::default()
        .prefix(&palisade_testkit::unique_name("palisade:rltest"))
        .timeout(Duration::from_secs(2));
    let a = Arc::new(
        RedisStore::connect_cluster(&refs, config.clone())
            .await
            .unwrap(),
    );
    let b = Arc::new(RedisStore::connect_cluster(&refs, config).await.unwrap());

    // Every algorithm, two store instances, one limit.
    common::exact_under_concurrency(&[Arc::clone(&a), Arc::clone(&b)], "cluster").await;
    common::all_or_nothing(&*a, "cluster").await;

    // Many identities spread over the slots of all three masters, each with a
    // three-window plan (three keys in one script): exact for each, no CROSSSLOT.
    let policy = Arc::new(Policy::plan(Plan::Free));
    let mut tasks = Vec::new();
    for identity in 0..60 {
        for attempt in 0..14 {
            let store = if attempt % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let policy = Arc::clone(&policy);
            tasks.push(tokio::spawn(async move {
                let key = format!("identity-{identity}");
                let d = store
                    .check(&key, &policy, 1, SystemTime::now())
                    .await
                    .unwrap();
                (identity, d.allowed())
            }));
        }
    }
    let mut allowed = [0u32; 60];
    for task in tasks {
        let (identity, ok) = task.await.unwrap();
        allowed[identity] += u32::from(ok);
    }
    // The free plan's burst is 10; the refill (1 per second) may add one if the test
    // straddles a second for that identity, never more.
    for (identity, count) in allowed.iter().enumerate() {
        assert!((10..=11).contains(count), "identity {identity}: {count}");
    }
    let slots: std::collections::HashSet<u16> = (0..60)
        .map(|i| {
            let keys = a.redis_keys(&format!("identity-{i}"), &policy);
            slot_of(&keys[0])
        })
        .collect();
    // Spread over many slots, hence over all three masters.
    assert!(slots.iter().any(|s| *s < 5461));
    assert!(slots.iter().any(|s| (5461..10923).contains(s)));
    assert!(slots.iter().any(|s| *s >= 10923));

    if started_here {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/redis-cluster.sh");
        let _ = Command::new("bash").arg(script).arg("stop").status();
    }
}

fn slot_of(key: &str) -> u16 {
    let tag = key
        .split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map_or(key, |(tag, _)| tag);
    let mut crc: u16 = 0;
    for byte in tag.bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}
