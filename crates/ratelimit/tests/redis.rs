//! The conformance suite and Redis specifics against the real Redis.
#![allow(clippy::unwrap_used)] // Test helpers: a panic there is a failing test.
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_ratelimit::{
    Algorithm, ErrorKind, FailureMode, HybridConfig, HybridStore, Limit, MemoryStore, Plan, Policy,
    RateLimiter, RedisConfig, RedisStore, Store,
};
use redis::AsyncCommands;

fn prefix() -> String {
    palisade_testkit::unique_name("palisade:rltest")
}

async fn store(url: &str, server_time: bool) -> RedisStore {
    RedisStore::connect(
        url,
        RedisConfig::default()
            .prefix(&prefix())
            .server_time(server_time)
            .timeout(Duration::from_secs(2)),
    )
    .await
    .unwrap()
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_is_exact_under_concurrency_with_the_clock_of_redis() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let one = Arc::new(store(&url, true).await);
    common::exact_under_concurrency(&[one], "one").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_independent_stores_share_one_limit_exactly() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let prefix = prefix();
    let config = RedisConfig::default()
        .prefix(&prefix)
        .timeout(Duration::from_secs(2));
    // Two "servers": separate connections, separate script handles, one Redis.
    let a = Arc::new(RedisStore::connect(&url, config.clone()).await.unwrap());
    let b = Arc::new(RedisStore::connect(&url, config).await.unwrap());
    common::exact_under_concurrency(&[a, b], "shared").await;
}

#[tokio::test]
async fn redis_checks_all_windows_or_none() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    common::all_or_nothing(&store(&url, true).await, "multi").await;
}

#[tokio::test]
async fn the_script_decides_exactly_as_the_memory_store() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let redis = store(&url, false).await;
    common::same_decisions(&MemoryStore::new(), &redis, "same").await;
}

#[tokio::test]
async fn keys_share_a_hash_tag_and_expire_when_recovered() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let redis = store(&url, true).await;
    let mut conn = raw(&url).await;
    let policy = Policy::plan(Plan::Free);
    assert!(
        redis
            .check("user-1", &policy, 1, SystemTime::now())
            .await
            .unwrap()
            .allowed()
    );
    let keys = redis.redis_keys("user-1", &policy);
    assert_eq!(keys.len(), 3);
    for key in &keys {
        assert!(key.contains(":{user-1}:"), "{key}");
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(ttl > 0, "{key} has no TTL");
    }
    let ttl: i64 = conn.pttl(&keys[0]).await.unwrap();
    // The burst window recovers one emission interval (1 s) after one request.
    assert!(ttl <= 1_000, "{ttl}");
    let slots: Vec<u16> = keys.iter().map(|k| key_slot(k)).collect();
    assert!(slots.iter().all(|s| *s == slots[0]));
    // A long or brace-carrying key is hashed, so it cannot escape the tag.
    let long = "x".repeat(5_000);
    assert!(
        redis
            .check(&long, &policy, 1, SystemTime::now())
            .await
            .unwrap()
            .allowed()
    );
    let long_keys = redis.redis_keys(&long, &policy);
    assert!(long_keys.iter().all(|k| k.len() < 150));
    let braces = redis.redis_keys("a}b{c", &policy);
    assert!(braces[0].contains(":{#"));
}

/// CRC16 (XMODEM) of the hash tag, as Redis Cluster computes it.
fn key_slot(key: &str) -> u16 {
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

#[tokio::test]
async fn memory_per_key_stays_near_the_floor() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let redis = store(&url, true).await;
    let mut conn = raw(&url).await;
    let mut report = Vec::new();
    for algorithm in common::ALGORITHMS {
        let policy = Policy::builder("m")
            .limit(Limit::new(
                "permin",
                algorithm,
                200,
                Duration::from_secs(60),
            ))
            .build()
            .unwrap();
        let key = format!("identity-{algorithm:?}");
        for _ in 0..150 {
            redis
                .check(&key, &policy, 1, SystemTime::now())
                .await
                .unwrap();
        }
        let redis_key = &redis.redis_keys(&key, &policy)[0];
        let bytes: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(redis_key)
            .query_async(&mut conn)
            .await
            .unwrap();
        report.push((algorithm, bytes));
        if algorithm == Algorithm::SlidingLog {
            // One entry per request: past 128 entries the sorted set leaves listpack.
            assert!(bytes > 4_000, "{bytes}");
        } else {
            assert!(bytes < 160, "{algorithm:?}: {bytes} bytes");
        }
    }
    println!("redis MEMORY USAGE per key after 150 requests: {report:?}");
}

#[tokio::test]
async fn noscript_reloads_the_script() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let redis = store(&url, true).await;
    let policy = Policy::per_minute(5).unwrap();
    assert!(
        redis
            .check("k", &policy, 1, SystemTime::now())
            .await
            .unwrap()
            .allowed()
    );
    let mut conn = raw(&url).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let d = redis
        .check("k", &policy, 1, SystemTime::now())
        .await
        .unwrap();
    assert!(d.allowed());
    assert_eq!(d.windows()[0].remaining(), 3);
}

/// A connection to a Redis that is down: refused, or never answering.
#[derive(Clone)]
struct Down {
    hang: bool,
}

impl redis::aio::ConnectionLike for Down {
    fn req_packed_command<'a>(
        &'a mut self,
        _: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        let hang = self.hang;
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "down").into())
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _: &'a redis::Pipeline,
        _: usize,
        _: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async {
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "down").into())
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[tokio::test]
async fn an_outage_follows_the_failure_mode_and_never_errors() {
    let now = SystemTime::now();
    for (hang, kind) in [(false, ErrorKind::Backend), (true, ErrorKind::Timeout)] {
        let config = RedisConfig::default().timeout(Duration::from_millis(50));
        let store = RedisStore::new(Down { hang }, config).unwrap();
        let error = store
            .check("k", &Policy::per_minute(5).unwrap(), 1, now)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind);
        let open = Policy::plan(Plan::Free).with_failure_mode(FailureMode::Open);
        let closed = Policy::plan(Plan::Free).with_failure_mode(FailureMode::Closed);
        let limiter = RateLimiter::new(store, open);
        let d = limiter.check("k", 1, now).await;
        assert!(d.allowed());
        assert_eq!(d.degraded(), Some(kind));
        assert_eq!(d.windows().len(), 3);
        limiter.set_override("admin", closed);
        let d = limiter.check("admin", 1, now).await;
        assert!(!d.allowed());
        assert_eq!(d.degraded(), Some(kind));
        assert_eq!(d.retry_after(), Some(Duration::from_secs(1)));
        // The hybrid store reports the same failures, and caches nothing from them.
        let hybrid = HybridStore::new(
            RedisStore::new(
                Down { hang },
                RedisConfig::default().timeout(Duration::from_millis(50)),
            )
            .unwrap(),
            HybridConfig::default(),
        );
        assert_eq!(
            hybrid
                .check("k", &Policy::per_minute(5).unwrap(), 1, now)
                .await
                .unwrap_err()
                .kind(),
            kind
        );
    }
}

#[tokio::test]
async fn a_script_failure_follows_the_failure_mode() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let redis = store(&url, true).await;
    let policy = Policy::per_minute(5)
        .unwrap()
        .with_failure_mode(FailureMode::Closed);
    // Somebody else wrote a hash where the state lives.
    let key = &redis.redis_keys("victim", &policy)[0];
    let mut conn = raw(&url).await;
    let _: () = conn.hset(key, "f", "v").await.unwrap();
    let error = redis
        .check("victim", &policy, 1, SystemTime::now())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Script);
    assert_eq!(error.code(), "script_failed");
    let limiter = RateLimiter::new(redis, policy);
    let d = limiter.check("victim", 1, SystemTime::now()).await;
    assert!(!d.allowed());
    assert_eq!(d.degraded(), Some(ErrorKind::Script));
    let _: () = conn.del(key).await.unwrap();
}

#[tokio::test]
async fn a_bad_prefix_or_unreachable_server_is_an_error_not_a_panic() {
    let down = RedisStore::connect(
        "redis://127.0.0.1:1",
        RedisConfig::default().timeout(Duration::from_millis(200)),
    )
    .await;
    assert!(down.is_err());
    let bad = RedisStore::new(Down { hang: false }, RedisConfig::default().prefix("a{b}"));
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidPolicy);
}

fn hybrid_config() -> HybridConfig {
    HybridConfig::default()
        .max_lease(10)
        .divisor(4)
        .lease_ttl(Duration::from_secs(3_600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hybrid_never_exceeds_the_limit_within_a_window_and_saves_round_trips() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let prefix = prefix();
    let instances = 3u64;
    let mut stores = Vec::new();
    for _ in 0..instances {
        let config = RedisConfig::default()
            .prefix(&prefix)
            .timeout(Duration::from_secs(2));
        stores.push(Arc::new(HybridStore::new(
            RedisStore::connect(&url, config).await.unwrap(),
            hybrid_config(),
        )));
    }
    for algorithm in common::ALGORITHMS {
        let limit = 200;
        let policy = Arc::new(common::long_policy(algorithm, limit));
        let key = Arc::new(format!("hybrid-{algorithm:?}"));
        let trips_before: u64 = stores.iter().map(|s| s.round_trips()).sum();
        let mut tasks = Vec::new();
        for i in 0..600 {
            let store = Arc::clone(&stores[i % stores.len()]);
            let policy = Arc::clone(&policy);
            let key = Arc::clone(&key);
            tasks.push(tokio::spawn(async move {
                store
                    .check(&key, &policy, 1, SystemTime::now())
                    .await
                    .unwrap()
                    .allowed()
            }));
        }
        let mut allowed = 0;
        for task in tasks {
            allowed += u64::from(task.await.unwrap());
        }
        let trips: u64 = stores.iter().map(|s| s.round_trips()).sum::<u64>() - trips_before;
        // Leased units are charged in Redis first: never more than the limit within
        // the window, and at most instances x lease units stranded in leases.
        assert!(allowed <= limit, "{algorithm:?}: {allowed}");
        assert!(
            allowed >= limit - instances * 10,
            "{algorithm:?}: {allowed}"
        );
        // Most decisions cost no round trip (leases, then cached denials).
        assert!(
            trips < 300,
            "{algorithm:?}: {trips} round trips for 600 decisions"
        );
    }
}

#[tokio::test]
async fn hybrid_overshoot_across_a_window_edge_stays_within_the_bound() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let prefix = prefix();
    let instances = 3u64;
    let max_lease = 10;
    let mut stores = Vec::new();
    for _ in 0..instances {
        let config = RedisConfig::default()
            .prefix(&prefix)
            .server_time(false)
            .timeout(Duration::from_secs(2));
        stores.push(HybridStore::new(
            RedisStore::connect(&url, config).await.unwrap(),
            HybridConfig::default()
                .max_lease(max_lease)
                .divisor(1)
                .lease_ttl(Duration::from_secs(3_600)),
        ));
    }
    let limit = 100;
    let policy = Policy::builder("edge")
        .limit(Limit::new(
            "m",
            Algorithm::FixedWindow,
            limit,
            Duration::from_secs(60),
        ))
        .build()
        .unwrap();
    let window = 1_900_000_020u64 / 60 * 60;
    let before = UNIX_EPOCH + Duration::from_secs(window + 59);
    let after = UNIX_EPOCH + Duration::from_secs(window + 60);
    // One request per instance at the end of a window takes a full lease each.
    for store in &stores {
        assert!(
            store
                .check("edge", &policy, 1, before)
                .await
                .unwrap()
                .allowed()
        );
    }
    // In the next window the leftovers are spent on top of a fresh limit.
    let mut allowed_after = 0;
    for round in 0..200 {
        let store = &stores[round % stores.len()];
        allowed_after += u64::from(
            store
                .check("edge", &policy, 1, after)
                .await
                .unwrap()
                .allowed(),
        );
    }
    assert!(
        allowed_after > limit,
        "the overshoot exists: {allowed_after}"
    );
    assert!(
        allowed_after <= limit + instances * max_lease,
        "{allowed_after}"
    );
}

#[tokio::test]
async fn hybrid_caches_denials_until_the_exact_retry_time() {
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let config = RedisConfig::default()
        .prefix(&prefix())
        .server_time(false)
        .timeout(Duration::from_secs(2));
    let hybrid = HybridStore::new(
        RedisStore::connect(&url, config).await.unwrap(),
        hybrid_config(),
    );
    let policy = Policy::builder("deny")
        .limit(Limit::new("g", Algorithm::Gcra, 2, Duration::from_secs(10)))
        .build()
        .unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    assert!(hybrid.check("d", &policy, 1, t0).await.unwrap().allowed());
    assert!(hybrid.check("d", &policy, 1, t0).await.unwrap().allowed());
    let denied = hybrid.check("d", &policy, 1, t0).await.unwrap();
    assert!(!denied.allowed());
    assert_eq!(denied.retry_after(), Some(Duration::from_secs(5)));
    let trips = hybrid.round_trips();
    for ms in [0, 1_000, 4_999] {
        let d = hybrid
            .check("d", &policy, 1, t0 + Duration::from_millis(ms))
            .await
            .unwrap();
        assert!(!d.allowed());
        assert_eq!(d.retry_after(), Some(Duration::from_millis(5_000 - ms)));
    }
    assert_eq!(hybrid.round_trips(), trips, "denials answered locally");
    assert!(
        hybrid
            .check("d", &policy, 1, t0 + Duration::from_secs(5))
            .await
            .unwrap()
            .allowed()
    );
    assert_eq!(hybrid.round_trips(), trips + 1);
}
