//! The conformance suite: one generic async fn per behaviour, run against every store
//! (`memory.rs`, `sqlite.rs`, `postgres.rs`), for the `KeyStore` trait and for the
//! `ApiKeys` service on top of it.
#![allow(dead_code)] // Each backend's test file uses the whole suite; rustc sees one at a time.
#![allow(clippy::unwrap_used)] // Test helpers: a panic is a failing test.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_apikey::{
    ApiKeys, CacheConfig, Environment, ErrorKind, KeyFormat, KeyHash, KeyRecord, KeyStore, NewKey,
    Pepper, Plan, StoredKey,
};

/// A fixed, whole-millisecond instant: 2026-11-27T12:00:00Z.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_780_800)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn stored(id: &str, owner: &str, hash_byte: u8, created: SystemTime) -> StoredKey {
    StoredKey {
        record: KeyRecord {
            key_id: id.to_owned(),
            owner: owner.to_owned(),
            environment: Environment::Live,
            hint: "pk_live_...abcd".to_owned(),
            scopes: vec!["orders:read".to_owned(), "orders:*".to_owned()],
            plan: Plan {
                name: "pro".to_owned(),
                per_minute: Some(600),
                per_day: Some(100_000),
                burst: Some(50),
            },
            rate_limit_per_minute: NonZeroU32::new(120),
            allowed_networks: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            created_at: created,
            expires_at: Some(created + secs(3600)),
            last_used_at: None,
            revoked_at: None,
            rotated_from: None,
            rotated_to: None,
            grace_until: None,
        },
        hash: KeyHash::from_bytes([hash_byte; 32]),
    }
}

// ---------------------------------------------------------------- KeyStore conformance

pub async fn store_round_trips_every_field<S: KeyStore>(store: S) {
    let mut key = stored("key_a", "alice", 1, t0());
    key.record.rotated_from = Some("key_0".to_owned());
    store.insert(&key).await.unwrap();
    assert_eq!(
        store.find_by_hash(&key.hash).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.get("key_a").await.unwrap(), Some(key.record.clone()));
    assert_eq!(
        store
            .find_by_hash(&KeyHash::from_bytes([9; 32]))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get("key_missing").await.unwrap(), None);

    let mut bare = stored("key_b", "bob", 2, t0());
    bare.record.scopes.clear();
    bare.record.allowed_networks.clear();
    bare.record.plan = Plan::new("free");
    bare.record.rate_limit_per_minute = None;
    bare.record.expires_at = None;
    store.insert(&bare).await.unwrap();
    assert_eq!(store.get("key_b").await.unwrap(), Some(bare.record));
}

pub async fn store_rejects_duplicates<S: KeyStore>(store: S) {
    store
        .insert(&stored("key_a", "alice", 1, t0()))
        .await
        .unwrap();
    let same_id = store
        .insert(&stored("key_a", "alice", 2, t0()))
        .await
        .unwrap_err();
    assert_eq!(same_id.kind(), ErrorKind::Storage);
    let same_hash = store
        .insert(&stored("key_b", "alice", 1, t0()))
        .await
        .unwrap_err();
    assert_eq!(same_hash.kind(), ErrorKind::Storage);
    assert_eq!(store.list(None).await.unwrap().len(), 1);
}

pub async fn store_lists_by_owner_oldest_first<S: KeyStore>(store: S) {
    store
        .insert(&stored("key_c", "alice", 3, t0() + secs(2)))
        .await
        .unwrap();
    store
        .insert(&stored("key_a", "alice", 1, t0()))
        .await
        .unwrap();
    store
        .insert(&stored("key_b", "bob", 2, t0() + secs(1)))
        .await
        .unwrap();
    let ids = |records: Vec<KeyRecord>| records.into_iter().map(|r| r.key_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list(None).await.unwrap()),
        ["key_a", "key_b", "key_c"]
    );
    assert_eq!(
        ids(store.list(Some("alice")).await.unwrap()),
        ["key_a", "key_c"]
    );
    assert!(store.list(Some("nobody")).await.unwrap().is_empty());
}

pub async fn store_revokes_once_and_counts_epochs<S: KeyStore>(store: S) {
    store
        .insert(&stored("key_a", "alice", 1, t0()))
        .await
        .unwrap();
    let epoch = store.revocation_epoch().await.unwrap();
    assert!(store.revoke("key_a", t0() + secs(5)).await.unwrap());
    assert_eq!(store.revocation_epoch().await.unwrap(), epoch + 1);
    assert!(!store.revoke("key_a", t0() + secs(9)).await.unwrap());
    assert_eq!(store.revocation_epoch().await.unwrap(), epoch + 1);
    assert_eq!(
        store.get("key_a").await.unwrap().unwrap().revoked_at,
        Some(t0() + secs(5))
    );
    let error = store.revoke("key_zz", t0()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

pub async fn store_rotates_atomically<S: KeyStore>(store: S) {
    store
        .insert(&stored("key_a", "alice", 1, t0()))
        .await
        .unwrap();
    let epoch = store.revocation_epoch().await.unwrap();
    let mut next = stored("key_b", "alice", 2, t0() + secs(10));
    next.record.rotated_from = Some("key_a".to_owned());
    store.rotate("key_a", &next, t0() + secs(70)).await.unwrap();
    assert_eq!(store.revocation_epoch().await.unwrap(), epoch + 1);
    let old = store.get("key_a").await.unwrap().unwrap();
    assert_eq!(old.rotated_to.as_deref(), Some("key_b"));
    assert_eq!(old.grace_until, Some(t0() + secs(70)));
    assert_eq!(store.get("key_b").await.unwrap(), Some(next.record.clone()));

    // Already rotated: nothing inserted.
    let third = stored("key_c", "alice", 3, t0());
    let error = store.rotate("key_a", &third, t0()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlreadyRotated);
    assert_eq!(store.get("key_c").await.unwrap(), None);
    // Revoked: nothing inserted.
    store.revoke("key_b", t0()).await.unwrap();
    let error = store.rotate("key_b", &third, t0()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Revoked);
    assert_eq!(store.get("key_c").await.unwrap(), None);
    // Unknown.
    let error = store.rotate("key_zz", &third, t0()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(store.get("key_c").await.unwrap(), None);
}

pub async fn store_records_last_use_in_batches<S: KeyStore>(store: S) {
    store
        .insert(&stored("key_a", "alice", 1, t0()))
        .await
        .unwrap();
    store
        .insert(&stored("key_b", "alice", 2, t0()))
        .await
        .unwrap();
    store.record_last_used(&[]).await.unwrap();
    store
        .record_last_used(&[
            ("key_a".to_owned(), t0() + secs(10)),
            ("key_b".to_owned(), t0() + secs(20)),
            ("key_unknown".to_owned(), t0()),
        ])
        .await
        .unwrap();
    // An older time never moves it back.
    store
        .record_last_used(&[("key_a".to_owned(), t0() + secs(5))])
        .await
        .unwrap();
    let last = |r: Option<KeyRecord>| r.unwrap().last_used_at;
    assert_eq!(
        last(store.get("key_a").await.unwrap()),
        Some(t0() + secs(10))
    );
    assert_eq!(
        last(store.get("key_b").await.unwrap()),
        Some(t0() + secs(20))
    );
}

pub async fn run_store_conformance<S: KeyStore>(mut make: impl AsyncMaker<S>) {
    store_round_trips_every_field(make.make().await).await;
    store_rejects_duplicates(make.make().await).await;
    store_lists_by_owner_oldest_first(make.make().await).await;
    store_revokes_once_and_counts_epochs(make.make().await).await;
    store_rotates_atomically(make.make().await).await;
    store_records_last_use_in_batches(make.make().await).await;
}

/// Makes a fresh, empty store for each behaviour.
pub trait AsyncMaker<S> {
    fn make(&mut self) -> impl Future<Output = S>;
}

impl<S, F, Fut> AsyncMaker<S> for F
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    fn make(&mut self) -> impl Future<Output = S> {
        self()
    }
}

// ---------------------------------------------------------------- ApiKeys on a store

fn full_spec() -> NewKey {
    NewKey::new("acme")
        .scopes(["orders:read", "orders:write", "reports:*"])
        .plan(Plan {
            name: "pro".to_owned(),
            per_minute: Some(600),
            per_day: None,
            burst: Some(20),
        })
        .rate_limit_per_minute(NonZeroU32::new(100))
        .expires_at(Some(t0() + secs(86_400)))
        .allowed_networks([
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8:1::/48".parse().unwrap(),
        ])
}

pub async fn service_creates_and_verifies<S: KeyStore>(store: S) {
    let keys = ApiKeys::new(store);
    let created = keys.create(full_spec(), t0()).await.unwrap();
    let raw = created.key.expose_secret();
    assert!(raw.starts_with("pk_live_"));
    let record = &created.record;
    assert!(record.key_id.starts_with("key_"));
    assert_eq!(record.key_id.len(), 20);
    assert_eq!(record.owner, "acme");
    assert_eq!(record.scopes, ["orders:read", "orders:write", "reports:*"]);
    assert_eq!(record.created_at, t0());
    assert!(record.hint.starts_with("pk_live_..."));
    assert!(!record.hint.contains(raw));

    for address in ["203.0.113.9", "2001:db8:1::7", "::ffff:203.0.113.9"] {
        let verified = keys
            .verify(Some(raw), ip(address), t0() + secs(1))
            .await
            .unwrap();
        assert_eq!(verified.key_id(), record.key_id);
        assert_eq!(verified.owner(), "acme");
        assert_eq!(verified.environment(), Environment::Live);
        assert_eq!(verified.plan().name, "pro");
        assert_eq!(verified.plan().burst, Some(20));
        assert_eq!(verified.rate_limit_per_minute(), NonZeroU32::new(100));
        assert_eq!(verified.valid_until(), Some(t0() + secs(86_400)));
        assert!(verified.has_scope("orders:read"));
        assert!(verified.has_scope("reports:monthly"));
        assert!(!verified.has_scope("admin"));
        assert!(!verified.has_scope("reports"));
    }
    // The stored record matches what create returned, and `get` finds it.
    assert_eq!(&keys.get(&record.key_id).await.unwrap(), record);
    assert_eq!(
        keys.get("key_nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

pub async fn service_rejects_with_typed_reasons<S: KeyStore>(store: S) {
    let keys = ApiKeys::new(store);
    let now = t0();
    let good = keys.create(full_spec(), now).await.unwrap();
    let raw = good.key.expose_secret();
    let client = ip("203.0.113.1");
    let code =
        |r: Result<palisade_apikey::VerifiedKey, palisade_apikey::Error>| r.unwrap_err().code();

    assert_eq!(code(keys.verify(None, client, now).await), "missing");
    assert_eq!(code(keys.verify(Some(""), client, now).await), "missing");

    let mut wrong_checksum: Vec<char> = raw.chars().collect();
    let last = wrong_checksum.len() - 1;
    wrong_checksum[last] = if wrong_checksum[last] == '0' {
        '1'
    } else {
        '0'
    };
    let wrong_checksum: String = wrong_checksum.into_iter().collect();
    let huge = "k".repeat(10 * 1024);
    let non_ascii = format!("pk_live_{}", "é".repeat(25));
    for bad in [
        wrong_checksum.as_str(),
        &huge,
        &non_ascii,
        "pk_live_",
        "Bearer x",
        "\0",
    ] {
        assert_eq!(
            code(keys.verify(Some(bad), client, now).await),
            "malformed",
            "{bad:?}"
        );
    }

    let test_key = KeyFormat::new("pk", Environment::Test).unwrap().generate();
    assert_eq!(
        code(
            keys.verify(Some(test_key.expose_secret()), client, now)
                .await
        ),
        "wrong_environment"
    );
    let stranger = KeyFormat::default().generate();
    assert_eq!(
        code(
            keys.verify(Some(stranger.expose_secret()), client, now)
                .await
        ),
        "unknown"
    );

    assert_eq!(
        code(keys.verify(Some(raw), ip("198.51.100.1"), now).await),
        "address_not_allowed"
    );
    assert_eq!(
        code(keys.verify(Some(raw), ip("2001:db8:2::1"), now).await),
        "address_not_allowed"
    );
    assert_eq!(
        code(keys.verify(Some(raw), None, now).await),
        "address_not_allowed"
    );

    // Expiry is checked against `now` even for a cached key.
    keys.verify(Some(raw), client, now + secs(86_399))
        .await
        .unwrap();
    assert_eq!(
        code(keys.verify(Some(raw), client, now + secs(86_400)).await),
        "expired"
    );

    keys.revoke(&good.record.key_id, now + secs(2))
        .await
        .unwrap();
    assert_eq!(
        code(keys.verify(Some(raw), client, now + secs(2)).await),
        "revoked"
    );
    // Revoked wins over the address check: the reason is the key, not the caller.
    assert_eq!(
        code(
            keys.verify(Some(raw), ip("198.51.100.1"), now + secs(3))
                .await
        ),
        "revoked"
    );
}

pub async fn service_validates_creation<S: KeyStore>(store: S) {
    let keys = ApiKeys::new(store);
    let now = t0();
    let many_networks: Vec<ipnet::IpNet> = (0..65)
        .map(|i| format!("10.0.{i}.0/24").parse().unwrap())
        .collect();
    let bad = [
        NewKey::new(""),
        NewKey::new("a\nb"),
        NewKey::new("x".repeat(257)),
        NewKey::new("acme").scopes(["orders read"]),
        NewKey::new("acme").scopes(["*"]),
        NewKey::new("acme").plan(Plan::new("")),
        NewKey::new("acme").expires_at(Some(now)),
        NewKey::new("acme").expires_at(Some(now - secs(1))),
        NewKey::new("acme").allowed_networks(many_networks),
    ];
    for spec in bad {
        let error = keys.create(spec.clone(), now).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{spec:?}");
    }
    assert!(keys.list(None).await.unwrap().is_empty());
    // Networks are normalised (host bits cleared, duplicates dropped).
    let created = keys
        .create(
            NewKey::new("acme")
                .allowed_networks(["10.1.2.3/8".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]),
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        created.record.allowed_networks,
        ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]
    );
}

/// Revocation made elsewhere (another instance, or the CLI writing to the store) reaches
/// a cached instance within the poll interval.
pub async fn service_revocation_reaches_other_instances<S: KeyStore + Clone>(store: S) {
    let a = ApiKeys::new(store.clone());
    let b = ApiKeys::new(store.clone());
    let created = a.create(NewKey::new("acme"), t0()).await.unwrap();
    let raw = created.key.expose_secret();
    // Instance A verifies (and caches) the key.
    a.verify(Some(raw), None, t0()).await.unwrap();
    a.verify(Some(raw), None, t0() + Duration::from_millis(100))
        .await
        .unwrap();
    // Instance B revokes it; then the CLI path: straight through the store.
    assert!(
        b.revoke(&created.record.key_id, t0() + Duration::from_millis(200))
            .await
            .unwrap()
    );
    assert_eq!(
        b.verify(Some(raw), None, t0() + Duration::from_millis(200))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Revoked
    );
    // Within one second on A.
    let error = a
        .verify(Some(raw), None, t0() + Duration::from_millis(1_200))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Revoked);

    let other = a.create(NewKey::new("acme"), t0()).await.unwrap();
    let other_raw = other.key.expose_secret();
    a.verify(Some(other_raw), None, t0() + secs(2))
        .await
        .unwrap();
    assert!(
        store
            .revoke(&other.record.key_id, t0() + secs(2))
            .await
            .unwrap()
    );
    let error = a
        .verify(Some(other_raw), None, t0() + secs(3))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Revoked);

    // Revoking twice is not an error; revoking an unknown id is.
    assert!(
        !a.revoke(&other.record.key_id, t0() + secs(4))
            .await
            .unwrap()
    );
    assert_eq!(
        a.revoke("key_nope", t0()).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        a.revoke(&"k".repeat(1000), t0()).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

pub async fn service_rotates_with_grace<S: KeyStore + Clone>(store: S) {
    let keys = ApiKeys::new(store.clone());
    let other_instance = ApiKeys::new(store);
    let now = t0();
    let old = keys.create(full_spec(), now).await.unwrap();
    let old_raw = old.key.expose_secret();
    let client = ip("203.0.113.5");
    other_instance
        .verify(Some(old_raw), client, now)
        .await
        .unwrap();

    let new = keys
        .rotate(&old.record.key_id, secs(3600), now + secs(10))
        .await
        .unwrap();
    let new_raw = new.key.expose_secret();
    assert_ne!(new_raw, old_raw);
    assert_eq!(
        new.record.rotated_from.as_deref(),
        Some(old.record.key_id.as_str())
    );
    assert_eq!(new.record.scopes, old.record.scopes);
    assert_eq!(new.record.plan, old.record.plan);
    assert_eq!(new.record.allowed_networks, old.record.allowed_networks);
    assert_eq!(new.record.expires_at, old.record.expires_at);
    let old_now = keys.get(&old.record.key_id).await.unwrap();
    assert_eq!(
        old_now.rotated_to.as_deref(),
        Some(new.record.key_id.as_str())
    );
    assert_eq!(old_now.grace_until, Some(now + secs(3610)));

    // Both work during the grace period, on both instances.
    for instance in [&keys, &other_instance] {
        instance
            .verify(Some(old_raw), client, now + secs(20))
            .await
            .unwrap();
        instance
            .verify(Some(new_raw), client, now + secs(20))
            .await
            .unwrap();
    }
    // After it, only the new one.
    for instance in [&keys, &other_instance] {
        let error = instance
            .verify(Some(old_raw), client, now + secs(3610))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Expired);
        instance
            .verify(Some(new_raw), client, now + secs(3610))
            .await
            .unwrap();
    }

    // Rotating again: the old one is already rotated, the new one can be.
    let error = keys
        .rotate(&old.record.key_id, secs(1), now + secs(30))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlreadyRotated);
    // Zero grace ends the old key at once, even on an instance that cached it.
    let newer = keys
        .rotate(&new.record.key_id, Duration::ZERO, now + secs(4000))
        .await
        .unwrap();
    let error = other_instance
        .verify(Some(new_raw), client, now + secs(4001))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Expired);
    other_instance
        .verify(Some(newer.key.expose_secret()), client, now + secs(4001))
        .await
        .unwrap();

    // Grace never outlives the old key's own expiry (86 400 s after t0).
    let newest = keys
        .rotate(&newer.record.key_id, secs(999_999), now + secs(5000))
        .await
        .unwrap();
    let rotated = keys.get(&newer.record.key_id).await.unwrap();
    assert_eq!(rotated.grace_until, Some(now + secs(86_400)));
    assert_eq!(newest.record.expires_at, Some(now + secs(86_400)));

    // Revoked, expired and unknown keys cannot be rotated.
    keys.revoke(&newest.record.key_id, now + secs(5001))
        .await
        .unwrap();
    let error = keys
        .rotate(&newest.record.key_id, secs(1), now + secs(5002))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Revoked);
    let short = keys
        .create(NewKey::new("acme").expires_at(Some(now + secs(60))), now)
        .await
        .unwrap();
    let error = keys
        .rotate(&short.record.key_id, secs(1), now + secs(61))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Expired);
    let error = keys.rotate("key_nope", secs(1), now).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

pub async fn service_lists_without_secrets<S: KeyStore>(store: S) {
    let keys = ApiKeys::new(store);
    let a = keys
        .create(NewKey::new("alice").scopes(["orders:read"]), t0())
        .await
        .unwrap();
    let b = keys
        .create(NewKey::new("bob"), t0() + secs(1))
        .await
        .unwrap();
    let all = keys.list(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].key_id, a.record.key_id);
    assert_eq!(all[1].key_id, b.record.key_id);
    let alice = keys.list(Some("alice")).await.unwrap();
    assert_eq!(alice, vec![a.record.clone()]);
    let printed = format!("{all:?}");
    for created in [&a, &b] {
        let raw = created.key.expose_secret();
        assert!(!printed.contains(raw));
        assert!(!printed.contains(raw.get(8..50).unwrap()));
    }
    // Debug of the created key (and of the service) is redacted too.
    assert!(!format!("{a:?}").contains(a.key.expose_secret()));
    assert!(!format!("{keys:?}").contains(a.key.expose_secret()));
}

pub async fn service_batches_last_use<S: KeyStore>(store: S) {
    let keys = ApiKeys::new(store);
    let a = keys.create(NewKey::new("alice"), t0()).await.unwrap();
    let b = keys.create(NewKey::new("bob"), t0()).await.unwrap();
    for second in [1, 3, 2] {
        keys.verify(Some(a.key.expose_secret()), None, t0() + secs(second))
            .await
            .unwrap();
    }
    keys.verify(Some(b.key.expose_secret()), None, t0() + secs(7))
        .await
        .unwrap();
    // Nothing written per request.
    assert_eq!(keys.get(&a.record.key_id).await.unwrap().last_used_at, None);
    assert_eq!(keys.flush().await.unwrap(), 2);
    assert_eq!(
        keys.get(&a.record.key_id).await.unwrap().last_used_at,
        Some(t0() + secs(3))
    );
    assert_eq!(
        keys.get(&b.record.key_id).await.unwrap().last_used_at,
        Some(t0() + secs(7))
    );
    assert_eq!(keys.flush().await.unwrap(), 0);
    // Failed verifications are not uses.
    keys.revoke(&b.record.key_id, t0() + secs(8)).await.unwrap();
    let _ = keys
        .verify(Some(b.key.expose_secret()), None, t0() + secs(9))
        .await;
    assert_eq!(keys.flush().await.unwrap(), 0);
}

pub async fn service_with_pepper_and_without_cache<S: KeyStore + Clone>(store: S) {
    let pepper = Pepper::new(b"a server-side pepper of 32 bytes".to_vec()).unwrap();
    let peppered = ApiKeys::new(store.clone())
        .with_pepper(pepper)
        .with_cache(CacheConfig::disabled());
    let created = peppered.create(NewKey::new("acme"), t0()).await.unwrap();
    let raw = created.key.expose_secret();
    peppered.verify(Some(raw), None, t0()).await.unwrap();
    peppered.verify(Some(raw), None, t0()).await.unwrap();
    // The same store without the pepper does not recognise the key.
    let plain = ApiKeys::new(store);
    assert_eq!(
        plain
            .verify(Some(raw), None, t0())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unknown
    );
    // Uncached revocation is immediate.
    plain.revoke(&created.record.key_id, t0()).await.unwrap();
    assert_eq!(
        peppered
            .verify(Some(raw), None, t0())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Revoked
    );
}

pub async fn service_uses_its_format<S: KeyStore>(store: S) {
    let format = KeyFormat::new("acme", Environment::Test).unwrap();
    let keys = ApiKeys::new(store).with_format(format);
    let created = keys.create(NewKey::new("dev"), t0()).await.unwrap();
    assert!(created.key.expose_secret().starts_with("acme_test_"));
    assert_eq!(created.record.environment, Environment::Test);
    let verified = keys
        .verify(Some(created.key.expose_secret()), None, t0())
        .await
        .unwrap();
    assert_eq!(verified.environment(), Environment::Test);
    let live = KeyFormat::new("acme", Environment::Live)
        .unwrap()
        .generate();
    assert_eq!(
        keys.verify(Some(live.expose_secret()), None, t0())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::WrongEnvironment
    );
}

pub async fn run_service_suite<S: KeyStore + Clone>(mut make: impl AsyncMaker<S>) {
    service_creates_and_verifies(make.make().await).await;
    service_rejects_with_typed_reasons(make.make().await).await;
    service_validates_creation(make.make().await).await;
    service_revocation_reaches_other_instances(make.make().await).await;
    service_rotates_with_grace(make.make().await).await;
    service_lists_without_secrets(make.make().await).await;
    service_batches_last_use(make.make().await).await;
    service_with_pepper_and_without_cache(make.make().await).await;
    service_uses_its_format(make.make().await).await;
    service_strict_revocation_with_zero_interval(make.make().await).await;
}

/// With a zero poll interval, a revocation made anywhere is honoured by the very next
/// request, at the same instant, on an instance that cached the key.
pub async fn service_strict_revocation_with_zero_interval<S: KeyStore + Clone>(store: S) {
    let strict = CacheConfig {
        revocation_poll_interval: Duration::ZERO,
        ..CacheConfig::default()
    };
    let a = ApiKeys::new(store.clone()).with_cache(strict);
    let created = a.create(NewKey::new("acme"), t0()).await.unwrap();
    let raw = created.key.expose_secret();
    a.verify(Some(raw), None, t0()).await.unwrap();
    a.verify(Some(raw), None, t0()).await.unwrap();
    assert!(store.revoke(&created.record.key_id, t0()).await.unwrap());
    let error = a.verify(Some(raw), None, t0()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Revoked);
}
