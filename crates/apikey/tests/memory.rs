//! The conformance suites against the in-memory store.

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
