//! Everything a request handler or a CLI command needs, opened from the configuration.

use std::sync::Arc;
use std::time::Duration;

use palisade_abuse::{AbuseConfig, AbuseMonitor};
use palisade_apikey::{ApiKeys, CacheConfig, PostgresKeyStore, SqliteKeyStore};
use palisade_jwt::{AuthorizationServer, AuthorizationServerConfig, KeyRing, RotationPolicy};
use palisade_ratelimit::{FailureMode, Policy, RateLimiter, RedisConfig};
use palisade_signing::{MasterKey, Rfc9421Policy, SigV4Profile};
use redis::aio::ConnectionManager;

use crate::backends::{
    AnyAbuseStore, AnyBlocklist, AnyKeyStore, AnyNonceStore, AnyOAuthStore, AnyRateStore,
};
use crate::clock;
use crate::config::{Config, RedisFailure, parse_plan};
use crate::credentials::DbCredentialStore;
use crate::db::Db;
use crate::metrics::Metrics;

/// The OAuth authorization server as the server runs it.
pub(crate) type OAuth = AuthorizationServer<AnyOAuthStore, AnyBlocklist>;
/// The request-signature verifier as the server runs it.
pub(crate) type SignatureCheck = palisade_signing::Verifier<DbCredentialStore, AnyNonceStore>;
/// A rate limiter as the server runs it.
pub(crate) type Limiter = RateLimiter<AnyRateStore>;

/// What the server and the CLI share.
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) db: Db,
    pub(crate) keys: Arc<ApiKeys<AnyKeyStore>>,
    pub(crate) oauth: Arc<OAuth>,
    pub(crate) keyring: Arc<KeyRing>,
    pub(crate) credentials: DbCredentialStore,
    pub(crate) redis: Option<ConnectionManager>,
}

/// The parts only a running server needs.
pub(crate) struct Runtime {
    pub(crate) signatures: Arc<SignatureCheck>,
    pub(crate) palisade_profile: SigV4Profile,
    pub(crate) rfc9421_policy: Rfc9421Policy,
    /// Limits for `/api/*` (fail open by default while Redis is down).
    pub(crate) api_limiter: Arc<Limiter>,
    /// Limits for `/oauth/*` and `/admin/*` (fail closed by default).
    pub(crate) auth_limiter: Arc<Limiter>,
    pub(crate) abuse: Arc<AbuseMonitor<AnyAbuseStore>>,
    pub(crate) metrics: Metrics,
    pub(crate) cursor_key: Vec<u8>,
}

impl State {
    /// Opens the database (running migrations), the key ring and Redis.
    pub(crate) async fn open(config: Config) -> Result<Self, String> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| {
            format!(
                "data_dir: cannot create {}: {error}",
                config.data_dir.display()
            )
        })?;
        let now = clock::now();
        let (db, key_store, oauth_store) = match &config.database_url {
            None => {
                let path = config.data_dir.join("palisade.db");
                let db = Db::sqlite(&path).await.map_err(|error| {
                    format!("data_dir: cannot open {}: {error}", path.display())
                })?;
                let Db::Sqlite(pool) = &db else {
                    return Err("internal: expected SQLite".into());
                };
                let keys = SqliteKeyStore::new(pool.clone());
                keys.migrate()
                    .await
                    .map_err(|error| format!("database: migrating API keys: {error}"))?;
                let oauth = palisade_jwt::SqliteStore::new(pool.clone())
                    .await
                    .map_err(|error| format!("database: migrating OAuth tables: {error}"))?;
                (db, AnyKeyStore::Sqlite(keys), AnyOAuthStore::Sqlite(oauth))
            }
            Some(url) => {
                let db = Db::postgres(url)
                    .await
                    .map_err(|_| "database_url: cannot connect to PostgreSQL".to_owned())?;
                let Db::Postgres(pool) = &db else {
                    return Err("internal: expected PostgreSQL".into());
                };
                let keys = PostgresKeyStore::new(pool.clone());
                keys.migrate()
                    .await
                    .map_err(|error| format!("database: migrating API keys: {error}"))?;
                let oauth = palisade_jwt::PostgresStore::new(pool.clone())
                    .await
                    .map_err(|error| format!("database: migrating OAuth tables: {error}"))?;
                (
                    db,
                    AnyKeyStore::Postgres(keys),
                    AnyOAuthStore::Postgres(oauth),
                )
            }
        };
        db.migrate()
            .await
            .map_err(|error| format!("database: migrating server tables: {error}"))?;

        let redis = match &config.redis_url {
            None => None,
            Some(url) => Some(connect_redis(url).await?),
        };

        let keyring = Arc::new(
            KeyRing::open(config.data_dir.join("keys"), RotationPolicy::default(), now)
                .map_err(|error| format!("data_dir: cannot open the JWT key ring: {error}"))?,
        );
        let blocklist = match &redis {
            Some(conn) => AnyBlocklist::Redis(palisade_jwt::RedisBlocklist::new(conn.clone())),
            None => AnyBlocklist::Memory(palisade_jwt::MemoryBlocklist::new()),
        };
        let oauth_config = AuthorizationServerConfig::new(config.issuer(), config.audience.clone());
        let oauth =
            AuthorizationServer::new(oauth_config, Arc::clone(&keyring), oauth_store, blocklist)
                .map_err(|error| format!("issuer: {error}"))?;

        let master = load_master_key(&config)?;
        let credentials = DbCredentialStore::new(db.clone(), master);

        // The contract: a revocation is effective on the next request, on every
        // instance. On PostgreSQL (the multi-instance engine) every verification reads
        // the store's revocation epoch (one indexed one-row read); key records stay
        // cached. On SQLite there is one instance, whose own revocations take effect at
        // once; the CLI's reach it within the 500 ms poll.
        let revocation_poll_interval = match &config.database_url {
            Some(_) => Duration::ZERO,
            None => CacheConfig::default().revocation_poll_interval,
        };
        Ok(Self {
            keys: Arc::new(ApiKeys::new(key_store).with_cache(CacheConfig {
                revocation_poll_interval,
                ..CacheConfig::default()
            })),
            oauth: Arc::new(oauth),
            keyring,
            credentials,
            redis,
            db,
            config,
        })
    }

    /// Builds the request-time parts.
    pub(crate) async fn runtime(&self) -> Result<Runtime, String> {
        let nonces = match &self.redis {
            Some(conn) => {
                AnyNonceStore::Redis(palisade_signing::RedisNonceStore::new(conn.clone()))
            }
            None => AnyNonceStore::Memory(palisade_signing::MemoryNonceStore::new()),
        };
        let signatures = Arc::new(palisade_signing::Verifier::new(
            self.credentials.clone(),
            nonces,
        ));

        let (api_mode, auth_mode) = match self.config.redis_failure {
            Some(RedisFailure::Open) => (FailureMode::Open, FailureMode::Open),
            Some(RedisFailure::Closed) => (FailureMode::Closed, FailureMode::Closed),
            None => (FailureMode::Open, FailureMode::Closed),
        };
        // The default policy is what unauthenticated clients get, per address;
        // authenticated identities get their plan as an override (see app.rs).
        let anonymous = Policy::per_minute(self.config.ratelimit.anonymous_per_minute)
            .map_err(|error| format!("ratelimit.anonymous_per_minute: {error}"))?;
        let api_limiter = Arc::new(RateLimiter::new(
            self.rate_store("palisade:rl:api")?,
            anonymous.clone().with_failure_mode(api_mode),
        ));
        let auth_limiter = Arc::new(RateLimiter::new(
            self.rate_store("palisade:rl:auth")?,
            anonymous.with_failure_mode(auth_mode),
        ));
        let abuse_store = match &self.redis {
            Some(conn) => AnyAbuseStore::Redis(
                palisade_abuse::RedisStore::new(conn.clone())
                    .batched(Duration::from_millis(self.config.abuse.redis_flush_ms)),
            ),
            None => AnyAbuseStore::Memory(palisade_abuse::MemoryStore::new()),
        };
        let mut abuse_config = AbuseConfig::default();
        if self.config.abuse.rules {
            if let Some(rule) = abuse_config.rules.response_bytes.as_mut() {
                rule.max_bytes = self.config.abuse.max_response_bytes;
            }
        } else {
            abuse_config.rules = palisade_abuse::Rules {
                error_rate: None,
                response_bytes: None,
                auth_share: None,
                near_limit: None,
                round_the_clock: None,
                user_agent_rotation: None,
                network_changes: None,
                endpoint_spread: None,
            };
        }
        let abuse = Arc::new(
            AbuseMonitor::new(abuse_store, abuse_config)
                .map_err(|error| format!("abuse: {error}"))?,
        );
        let cursor_key = self
            .db
            .secret("cursor-hmac")
            .await
            .map_err(|error| format!("database: {error}"))?;
        Ok(Runtime {
            signatures,
            palisade_profile: SigV4Profile::palisade(),
            rfc9421_policy: Rfc9421Policy::palisade(),
            api_limiter,
            auth_limiter,
            abuse,
            metrics: Metrics::new(),
            cursor_key,
        })
    }

    fn rate_store(&self, prefix: &str) -> Result<AnyRateStore, String> {
        Ok(match &self.redis {
            Some(conn) => AnyRateStore::Redis(
                palisade_ratelimit::RedisStore::new(
                    conn.clone(),
                    RedisConfig::default().prefix(prefix),
                )
                .map_err(|error| format!("redis_url: {error}"))?,
            ),
            None => AnyRateStore::Memory(palisade_ratelimit::MemoryStore::new()),
        })
    }

    /// The per-minute/per-day/burst policy of a plan name or `rpm:N`.
    pub(crate) fn policy_for_plan(name: &str) -> Option<Policy> {
        if let Some(plan) = parse_plan(name) {
            return Some(Policy::plan(plan));
        }
        let per_minute: u64 = name.strip_prefix("rpm:")?.parse().ok()?;
        Policy::per_minute(per_minute).ok()
    }
}

/// One multiplexed Redis connection, shared by every store (clones are cheap).
async fn connect_redis(url: &str) -> Result<ConnectionManager, String> {
    let client =
        redis::Client::open(url).map_err(|_| "redis_url: not a valid Redis URL".to_owned())?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(2);
    tokio::time::timeout(
        Duration::from_secs(5),
        ConnectionManager::new_with_config(client, config),
    )
    .await
    .map_err(|_| "redis_url: Redis did not answer within 5 s".to_owned())?
    .map_err(|_| "redis_url: cannot connect to Redis".to_owned())
}

/// The key that seals request-signing secrets at rest: `signing-master.key` in the data
/// directory, created on first start. Instances sharing a database must share this file
/// (like the JWT key ring in `keys/`).
pub(crate) fn load_master_key(config: &Config) -> Result<MasterKey, String> {
    let path = config.data_dir.join("signing-master.key");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let fresh: [u8; 32] = rand::random();
            write_private(&path, &fresh)
                .map_err(|error| format!("data_dir: cannot write {}: {error}", path.display()))?;
            // Another process may have won the race: use whatever the file holds.
            std::fs::read(&path)
                .map_err(|error| format!("data_dir: cannot read {}: {error}", path.display()))?
        }
        Err(error) => return Err(format!("data_dir: cannot read {}: {error}", path.display())),
    };
    MasterKey::from_bytes(&bytes)
        .map_err(|_| format!("data_dir: {} is not a 32-byte key", path.display()))
}

/// Writes a file readable only by its owner, refusing to replace an existing one (two
/// processes starting at once keep the first key).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(bytes)?;
            file.sync_all()
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}
