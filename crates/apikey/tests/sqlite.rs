//! The conformance suites against a real SQLite database file, plus migration and
//! at-rest checks.
#![cfg(feature = "sqlite")]

mod common;

use palisade_apikey::{ApiKeys, KeyStore, NewKey, SqliteKeyStore};
use tempfile::TempDir;

/// A store on a fresh database file; the directory lives as long as the test.
async fn fresh(dirs: &mut Vec<TempDir>) -> SqliteKeyStore {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    dirs.push(dir);
    SqliteKeyStore::connect(&url).await.expect("SQLite store")
}

#[tokio::test]
async fn sqlite_store_conformance() {
    let mut dirs = Vec::new();
    let dirs_ref = &mut dirs;
    let mut made = Vec::new();
    for _ in 0..6 {
        made.push(fresh(dirs_ref).await);
    }
    let mut made = made.into_iter();
    common::run_store_conformance(move || {
        let store = made.next().unwrap();
        async move { store }
    })
    .await;
}

#[tokio::test]
async fn sqlite_service_suite() {
    let mut dirs = Vec::new();
    let mut made = Vec::new();
    for _ in 0..10 {
        made.push(fresh(&mut dirs).await);
    }
    let mut made = made.into_iter();
    common::run_service_suite(move || {
        let store = made.next().unwrap();
        async move { store }
    })
    .await;
}

#[tokio::test]
async fn migrations_are_idempotent_and_namespaced() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let store = SqliteKeyStore::connect(&url).await.unwrap();
    // Another crate's sqlx migrations share the database without a clash.
    sqlx::query("CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY)")
        .execute(store.pool())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let again = SqliteKeyStore::connect(&url).await.unwrap();
    again.migrate().await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM apikey_migrations")
        .fetch_all(again.pool())
        .await
        .unwrap();
    assert_eq!(versions, [1]);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'apikey_%' ORDER BY name",
    )
    .fetch_all(again.pool())
    .await
    .unwrap();
    assert_eq!(tables, ["apikey_keys", "apikey_migrations", "apikey_state"]);
    assert_eq!(again.revocation_epoch().await.unwrap(), 0);
    // An edited, applied migration is refused.
    sqlx::query("UPDATE apikey_migrations SET checksum = x'00' WHERE version = 1")
        .execute(again.pool())
        .await
        .unwrap();
    assert_eq!(again.migrate().await.unwrap_err().code(), "storage");
}

#[tokio::test]
async fn the_raw_key_appears_nowhere_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteKeyStore::connect(&url).await.unwrap();
    let keys = ApiKeys::new(store.clone());
    let created = keys
        .create(NewKey::new("acme").scopes(["orders:read"]), common::t0())
        .await
        .unwrap();
    let raw = created.key.expose_secret().to_owned();
    keys.verify(Some(&raw), None, common::t0()).await.unwrap();
    keys.flush().await.unwrap();
    let rotated = keys
        .rotate(&created.record.key_id, common::secs(60), common::t0())
        .await
        .unwrap();
    let rotated_raw = rotated.key.expose_secret().to_owned();

    // Every column of every row, as text.
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT key_id || owner || environment || hint || scopes || plan_name || \
         allowed_networks || hex(key_hash) || coalesce(rotated_from, '') || \
         coalesce(rotated_to, '') FROM apikey_keys",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(dump.len(), 2);
    // The secret part: everything after the prefix, minus the 4 hint characters.
    for secret in [&raw, &rotated_raw] {
        let body = secret.get(8..53).unwrap();
        for row in &dump {
            assert!(!row.contains(body), "a raw key is in the database");
        }
    }

    // And the file itself (database and write-ahead log), byte for byte.
    store.pool().close().await;
    drop(keys);
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("keys.db-wal")) {
        bytes.extend(wal);
    }
    assert!(bytes.len() > 1000);
    for secret in [&raw, &rotated_raw] {
        let body = secret.get(8..53).unwrap().as_bytes();
        assert!(
            !bytes.windows(body.len()).any(|w| w == body),
            "a raw key is in the database file"
        );
    }
    // The hash is there (sanity check that the scan can find stored bytes).
    let hint = created.record.hint.as_bytes();
    assert!(bytes.windows(hint.len()).any(|w| w == hint));
}
