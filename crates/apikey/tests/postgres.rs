//! The conformance suites against a real PostgreSQL server (a fresh database per suite),
//! plus migration and at-rest checks. Skipped with a printed reason when PostgreSQL is
//! unreachable, unless `PALISADE_REQUIRE_SERVICES=1`.
#![cfg(feature = "postgres")]

mod common;

use palisade_apikey::{ApiKeys, KeyStore, NewKey, PostgresKeyStore};

async fn fresh() -> Option<PostgresKeyStore> {
    let url = palisade_testkit::fresh_postgres_database("apikey").await?;
    Some(
        PostgresKeyStore::connect(&url)
            .await
            .expect("PostgreSQL store"),
    )
}

async fn several(n: usize) -> Option<Vec<PostgresKeyStore>> {
    let mut stores = Vec::new();
    for _ in 0..n {
        stores.push(fresh().await?);
    }
    Some(stores)
}

#[tokio::test]
async fn postgres_store_conformance() {
    let Some(stores) = several(6).await else {
        return;
    };
    let mut stores = stores.into_iter();
    common::run_store_conformance(move || {
        let store = stores.next().unwrap();
        async move { store }
    })
    .await;
}

#[tokio::test]
async fn postgres_service_suite() {
    let Some(stores) = several(10).await else {
        return;
    };
    let mut stores = stores.into_iter();
    common::run_service_suite(move || {
        let store = stores.next().unwrap();
        async move { store }
    })
    .await;
}

#[tokio::test]
async fn postgres_migrations_are_idempotent_and_concurrent() {
    let Some(url) = palisade_testkit::fresh_postgres_database("apikey").await else {
        return;
    };
    // Several servers starting at once.
    let (a, b, c) = tokio::join!(
        PostgresKeyStore::connect(&url),
        PostgresKeyStore::connect(&url),
        PostgresKeyStore::connect(&url)
    );
    let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
    a.migrate().await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM apikey_migrations")
        .fetch_all(a.pool())
        .await
        .unwrap();
    assert_eq!(versions, [1]);
    assert_eq!(a.revocation_epoch().await.unwrap(), 0);
    let sqlx_table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
            .fetch_one(a.pool())
            .await
            .unwrap();
    assert_eq!(
        sqlx_table, None,
        "this crate must not use sqlx's shared bookkeeping table"
    );
}

#[tokio::test]
async fn the_raw_key_appears_nowhere_in_the_postgres_database() {
    let Some(store) = fresh().await else { return };
    let keys = ApiKeys::new(store.clone());
    let created = keys
        .create(NewKey::new("acme").scopes(["orders:read"]), common::t0())
        .await
        .unwrap();
    let raw = created.key.expose_secret().to_owned();
    keys.verify(Some(&raw), None, common::t0()).await.unwrap();
    keys.flush().await.unwrap();
    // Every table of the database, every row, as JSON text.
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert!(tables.contains(&"apikey_keys".to_owned()));
    let mut dump = String::new();
    for table in &tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM \"{table}\" AS t"
        ))
        .fetch_all(store.pool())
        .await
        .unwrap();
        dump.extend(rows);
    }
    assert!(dump.contains(&created.record.key_id));
    let body = raw.get(8..53).unwrap();
    assert!(!dump.contains(body), "a raw key is in the database");
    assert!(!dump.contains(&raw));
}
