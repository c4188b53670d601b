//! The conformance suites against the in-memory store.

#![allow(clippy::unwrap_used)] // A panic is a failing test.

mod common;

use std::sync::Arc;

use palisade_apikey::MemoryKeyStore;

#[tokio::test]
async fn memory_store_conformance() {
    common::run_store_conformance(|| async { MemoryKeyStore::new() }).await;
}

#[tokio::test]
async fn memory_service_suite() {
    common::run_service_suite(|| async { Arc::new(MemoryKeyStore::new()) }).await;
}

/// A server holds `ApiKeys` in an `Arc` and awaits it from any worker thread.
#[test]
fn the_service_and_its_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<palisade_apikey::ApiKeys<MemoryKeyStore>>();
    let keys = palisade_apikey::ApiKeys::new(MemoryKeyStore::new());
    let now = std::time::SystemTime::UNIX_EPOCH;
    assert_send(&keys.verify(None, None, now));
    assert_send(&keys.create(palisade_apikey::NewKey::new("o"), now));
    assert_send(&keys.revoke("key_x", now));
    assert_send(&keys.rotate("key_x", std::time::Duration::ZERO, now));
    assert_send(&keys.list(None));
    assert_send(&keys.flush());
}

/// A cache far smaller than the set of keys in use keeps evicting; every key still
/// verifies (from the store after an eviction), and a revoked one is refused whether
/// it was cached or not.
#[tokio::test]
async fn a_small_cache_evicts_and_stays_correct() {
    use palisade_apikey::{ApiKeys, CacheConfig, NewKey};
    let keys = ApiKeys::new(MemoryKeyStore::new()).with_cache(CacheConfig {
        capacity: 8,
        ..CacheConfig::default()
    });
    let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let mut created = Vec::new();
    for i in 0..200 {
        let key = keys
            .create(
                NewKey::new(format!("owner{i}")).scopes(["orders:read"]),
                now,
            )
            .await
            .unwrap();
        created.push(key);
    }
    for round in 0..3 {
        for (i, key) in created.iter().enumerate() {
            let verified = keys
                .verify(Some(key.key.expose_secret()), None, now)
                .await
                .unwrap_or_else(|error| panic!("round {round}, key {i}: {error}"));
            assert_eq!(verified.owner(), format!("owner{i}"));
        }
    }
    let victim = &created[17];
    assert!(keys.revoke(&victim.record.key_id, now).await.unwrap());
    assert!(
        keys.verify(Some(victim.key.expose_secret()), None, now)
            .await
            .is_err()
    );
}
