//! The `jti` blocklist: entries expire with their tokens; a revocation made through one
//! instance is seen by every other at the next request.

#![allow(clippy::unwrap_used)] // Tests: an unexpected error fails the test with its message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_jwt::{Blocklist, MemoryBlocklist};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

async fn conformance<B: Blocklist>(a: &B, b: &B) {
    a.revoke("jti-1", 1_000, at(900)).await.unwrap();
    assert!(a.is_revoked("jti-1", at(901)).await.unwrap());
    assert!(
        b.is_revoked("jti-1", at(901)).await.unwrap(),
        "seen by the other instance"
    );
    assert!(!b.is_revoked("jti-2", at(901)).await.unwrap());
    // An already expired token needs no entry.
    a.revoke("jti-3", 800, at(900)).await.unwrap();
    assert!(!b.is_revoked("jti-3", at(900)).await.unwrap());
}

#[tokio::test]
async fn memory_blocklist() {
    let list = MemoryBlocklist::new();
    conformance(&list, &list).await;
    assert!(
        !list.is_revoked("jti-1", at(1_000)).await.unwrap(),
        "expires with the token"
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_blocklist_is_shared_and_expires() {
    use palisade_jwt::RedisBlocklist;
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let client = redis::Client::open(url).unwrap();
    let prefix = format!("{}:", palisade_testkit::unique_name("palisade:jti:test"));
    let one = RedisBlocklist::with_prefix(
        client.get_multiplexed_async_connection().await.unwrap(),
        prefix.clone(),
    );
    let two = RedisBlocklist::with_prefix(
        client.get_multiplexed_async_connection().await.unwrap(),
        prefix.clone(),
    );
    conformance(&one, &two).await;
    // The entry carries a TTL equal to the token's remaining lifetime.
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{prefix}jti-1"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
}
