//! The storage engines chosen by the configuration, behind one type per store trait.
//!
//! The server picks SQLite or PostgreSQL, and memory or Redis, at start-up. Each `Any*`
//! enum forwards a crate's storage trait to the engine in use, so the rest of the server
//! has one concrete type per store instead of one generic instantiation per combination.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use palisade_abuse::{
    AbuseStore, AccountKey, AuthCounts, AuthLock, AuthSubject, Behaviour, Flag, Identity,
    Observation, WindowSpec,
};
use palisade_apikey::{KeyHash, KeyRecord, KeyStore, StoredKey};
use palisade_jwt::{
    AccessRecord, Blocklist, ClientRecord, CodeOutcome, CodeRecord, DeviceRecord, FamilyRecord,
    OAuthStore, RefreshRecord,
};
use palisade_ratelimit::{Decision, Policy};
use palisade_signing::NonceStore;
use redis::aio::ConnectionManager;

/// The API-key store in use.
pub(crate) enum AnyKeyStore {
    Sqlite(palisade_apikey::SqliteKeyStore),
    Postgres(palisade_apikey::PostgresKeyStore),
}

macro_rules! forward {
    ($self:ident, $enum:ident { $($variant:ident),+ }, $store:ident => $call:expr) => {
        match $self {
            $($enum::$variant($store) => $call,)+
        }
    };
}

impl KeyStore for AnyKeyStore {
    async fn insert(&self, key: &StoredKey) -> Result<(), palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.insert(key).await)
    }

    async fn find_by_hash(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<StoredKey>, palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.find_by_hash(hash).await)
    }

    async fn get(&self, key_id: &str) -> Result<Option<KeyRecord>, palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.get(key_id).await)
    }

    async fn list(&self, owner: Option<&str>) -> Result<Vec<KeyRecord>, palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.list(owner).await)
    }

    async fn revoke(&self, key_id: &str, now: SystemTime) -> Result<bool, palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.revoke(key_id, now).await)
    }

    async fn rotate(
        &self,
        old_key_id: &str,
        new: &StoredKey,
        grace_until: SystemTime,
    ) -> Result<(), palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.rotate(old_key_id, new, grace_until).await)
    }

    async fn record_last_used(
        &self,
        uses: &[(String, SystemTime)],
    ) -> Result<(), palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.record_last_used(uses).await)
    }

    async fn revocation_epoch(&self) -> Result<u64, palisade_apikey::Error> {
        forward!(self, AnyKeyStore { Sqlite, Postgres }, s => s.revocation_epoch().await)
    }
}

/// The OAuth store in use.
pub(crate) enum AnyOAuthStore {
    Sqlite(palisade_jwt::SqliteStore),
    Postgres(palisade_jwt::PostgresStore),
}

type JwtResult<T> = palisade_jwt::Result<T>;

impl OAuthStore for AnyOAuthStore {
    async fn put_client(&self, client: ClientRecord) -> JwtResult<()> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.put_client(client).await)
    }

    async fn get_client(&self, client_id: &str) -> JwtResult<Option<ClientRecord>> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.get_client(client_id).await)
    }

    async fn create_family(
        &self,
        family: FamilyRecord,
        first: RefreshRecord,
        access: AccessRecord,
    ) -> JwtResult<()> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.create_family(family, first, access).await)
    }

    async fn get_refresh(
        &self,
        token_hash: &str,
    ) -> JwtResult<Option<(RefreshRecord, FamilyRecord)>> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.get_refresh(token_hash).await)
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: RefreshRecord,
        retry_blob: Option<String>,
        access: AccessRecord,
        now: u64,
    ) -> JwtResult<bool> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.rotate_refresh(old_hash, new, retry_blob, access, now).await)
    }

    async fn revoke_family(&self, family_id: &str, now: u64) -> JwtResult<Vec<AccessRecord>> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.revoke_family(family_id, now).await)
    }

    async fn put_code(&self, code: CodeRecord) -> JwtResult<()> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.put_code(code).await)
    }

    async fn consume_code(
        &self,
        code_hash: &str,
        family_id: &str,
        now: u64,
    ) -> JwtResult<CodeOutcome> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.consume_code(code_hash, family_id, now).await)
    }

    async fn put_device(&self, device: DeviceRecord) -> JwtResult<()> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.put_device(device).await)
    }

    async fn get_device(&self, device_code_hash: &str) -> JwtResult<Option<DeviceRecord>> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.get_device(device_code_hash).await)
    }

    async fn record_device_poll(
        &self,
        device_code_hash: &str,
        polled_at: u64,
        interval: u64,
    ) -> JwtResult<()> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.record_device_poll(device_code_hash, polled_at, interval).await)
    }

    async fn decide_device(
        &self,
        user_code: &str,
        approved: bool,
        subject: &str,
        now: u64,
    ) -> JwtResult<bool> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.decide_device(user_code, approved, subject, now).await)
    }

    async fn consume_device(&self, device_code_hash: &str) -> JwtResult<bool> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.consume_device(device_code_hash).await)
    }

    async fn purge_expired(&self, now: u64) -> JwtResult<()> {
        forward!(self, AnyOAuthStore { Sqlite, Postgres }, s => s.purge_expired(now).await)
    }
}

/// Revoked access-token ids: in memory, or in Redis for every instance.
pub(crate) enum AnyBlocklist {
    Memory(palisade_jwt::MemoryBlocklist),
    Redis(palisade_jwt::RedisBlocklist<ConnectionManager>),
}

impl Blocklist for AnyBlocklist {
    async fn revoke(&self, jti: &str, expires_at: u64, now: SystemTime) -> JwtResult<()> {
        forward!(self, AnyBlocklist { Memory, Redis }, s => s.revoke(jti, expires_at, now).await)
    }

    async fn is_revoked(&self, jti: &str, now: SystemTime) -> JwtResult<bool> {
        forward!(self, AnyBlocklist { Memory, Redis }, s => s.is_revoked(jti, now).await)
    }
}

/// Replay-protection nonces: in memory, or in Redis for every instance.
pub(crate) enum AnyNonceStore {
    Memory(palisade_signing::MemoryNonceStore),
    Redis(palisade_signing::RedisNonceStore),
}

impl NonceStore for AnyNonceStore {
    async fn check_and_insert(
        &self,
        key: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<bool, palisade_signing::Error> {
        forward!(self, AnyNonceStore { Memory, Redis }, s => s.check_and_insert(key, ttl, now).await)
    }
}

/// Rate-limit counters: in memory, or in Redis for every instance.
pub(crate) enum AnyRateStore {
    Memory(palisade_ratelimit::MemoryStore),
    Redis(palisade_ratelimit::RedisStore<ConnectionManager>),
}

impl palisade_ratelimit::Store for AnyRateStore {
    async fn check(
        &self,
        key: &str,
        policy: &Policy,
        cost: u64,
        now: SystemTime,
    ) -> Result<Decision, palisade_ratelimit::Error> {
        forward!(self, AnyRateStore { Memory, Redis }, s => s.check(key, policy, cost, now).await)
    }
}

/// Abuse state: in memory, or in Redis for every instance.
pub(crate) enum AnyAbuseStore {
    Memory(palisade_abuse::MemoryStore),
    Redis(palisade_abuse::RedisStore<ConnectionManager>),
}

impl AnyAbuseStore {
    /// Sends what a batched Redis store has summed (nothing to do otherwise).
    pub(crate) async fn flush(&self, now: SystemTime) {
        if let Self::Redis(store) = self {
            store.flush(now).await;
        }
    }
}

impl AbuseStore for AnyAbuseStore {
    async fn record(
        &self,
        identity: &Identity,
        observation: &Observation<'_>,
        now: SystemTime,
        window: WindowSpec,
    ) -> Behaviour {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.record(identity, observation, now, window).await)
    }

    async fn flag(&self, identity: &Identity, now: SystemTime) -> Option<Flag> {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.flag(identity, now).await)
    }

    async fn set_flag(&self, flag: &Flag) {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.set_flag(flag).await);
    }

    async fn flags(&self, now: SystemTime) -> Vec<Flag> {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.flags(now).await)
    }

    async fn clear(&self, identity: &Identity, now: SystemTime, window: WindowSpec) {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.clear(identity, now, window).await);
    }

    async fn confirm(
        &self,
        identity: &Identity,
        now: SystemTime,
        window: WindowSpec,
    ) -> Option<Behaviour> {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.confirm(identity, now, window).await)
    }

    async fn auth_failure(
        &self,
        address: IpAddr,
        account: Option<AccountKey>,
        now: SystemTime,
        window_secs: u64,
    ) -> AuthCounts {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.auth_failure(address, account, now, window_secs).await)
    }

    async fn auth_success(&self, account: AccountKey, now: SystemTime, window_secs: u64) {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.auth_success(account, now, window_secs).await);
    }

    async fn auth_lock(&self, subject: AuthSubject, now: SystemTime) -> Option<AuthLock> {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.auth_lock(subject, now).await)
    }

    async fn set_auth_lock(&self, lock: AuthLock, now: SystemTime) {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.set_auth_lock(lock, now).await);
    }

    async fn clear_auth(&self, subject: AuthSubject, now: SystemTime, window_secs: u64) {
        forward!(self, AnyAbuseStore { Memory, Redis }, s => s.clear_auth(subject, now, window_secs).await);
    }
}
