//! The `jti` blocklist: revoked access tokens, each entry living as long as its token.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::error::Result;
use crate::validate::unix;

/// A revocation list of access-token ids. Entries expire with the tokens they name.
pub trait Blocklist: Send + Sync {
    /// Revokes `jti` until `expires_at` (the token's `exp`, Unix seconds).
    fn revoke(
        &self,
        jti: &str,
        expires_at: u64,
        now: SystemTime,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Whether `jti` is revoked at `now`.
    fn is_revoked(&self, jti: &str, now: SystemTime) -> impl Future<Output = Result<bool>> + Send;
}

/// An in-process blocklist (one instance only; use Redis for several).
#[derive(Debug, Default)]
pub struct MemoryBlocklist {
    entries: Mutex<HashMap<String, u64>>,
}

impl MemoryBlocklist {
    /// An empty blocklist.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many entries are held (expired ones are purged on writes).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Blocklist for MemoryBlocklist {
    async fn revoke(&self, jti: &str, expires_at: u64, now: SystemTime) -> Result<()> {
        let now = unix(now);
        let mut entries = self.lock();
        // Purging on writes keeps the map bounded by the number of live revoked tokens.
        if entries.len() >= 1024 && entries.len().is_power_of_two() {
            entries.retain(|_, exp| *exp > now);
        }
        if expires_at > now {
            let slot = entries.entry(jti.to_owned()).or_insert(expires_at);
            *slot = (*slot).max(expires_at);
        }
        Ok(())
    }

    async fn is_revoked(&self, jti: &str, now: SystemTime) -> Result<bool> {
        let now = unix(now);
        Ok(self.lock().get(jti).is_some_and(|exp| *exp > now))
    }
}

impl<T: Blocklist> Blocklist for std::sync::Arc<T> {
    fn revoke(
        &self,
        jti: &str,
        expires_at: u64,
        now: SystemTime,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).revoke(jti, expires_at, now)
    }
    fn is_revoked(&self, jti: &str, now: SystemTime) -> impl Future<Output = Result<bool>> + Send {
        (**self).is_revoked(jti, now)
    }
}

#[cfg(feature = "redis")]
pub use redis_impl::RedisBlocklist;

#[cfg(feature = "redis")]
mod redis_impl {
    use super::{Blocklist, Result, SystemTime, unix};
    use crate::error::Error;

    /// A blocklist in Redis, shared by every instance: `SET <prefix><jti> 1 EX <ttl>`,
    /// so entries vanish with the tokens. Keys are `palisade:jti:<jti>` by default.
    #[derive(Clone)]
    pub struct RedisBlocklist<C> {
        connection: C,
        prefix: String,
    }

    impl<C> std::fmt::Debug for RedisBlocklist<C> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisBlocklist")
                .field("prefix", &self.prefix)
                .finish_non_exhaustive()
        }
    }

    impl<C> RedisBlocklist<C>
    where
        C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
    {
        /// A blocklist on `connection` (a multiplexed connection, connection manager or
        /// cluster connection) with the default prefix `palisade:jti:`.
        pub fn new(connection: C) -> Self {
            Self::with_prefix(connection, "palisade:jti:")
        }

        /// The same with another key prefix (tests isolate themselves this way).
        pub fn with_prefix(connection: C, prefix: impl Into<String>) -> Self {
            Self {
                connection,
                prefix: prefix.into(),
            }
        }
    }

    impl<C> Blocklist for RedisBlocklist<C>
    where
        C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
    {
        async fn revoke(&self, jti: &str, expires_at: u64, now: SystemTime) -> Result<()> {
            let ttl = expires_at.saturating_sub(unix(now));
            if ttl == 0 {
                return Ok(());
            }
            let mut connection = self.connection.clone();
            redis::cmd("SET")
                .arg(format!("{}{jti}", self.prefix))
                .arg(1)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut connection)
                .await
                .map_err(Error::storage)
        }

        async fn is_revoked(&self, jti: &str, _now: SystemTime) -> Result<bool> {
            let mut connection = self.connection.clone();
            redis::cmd("EXISTS")
                .arg(format!("{}{jti}", self.prefix))
                .query_async::<bool>(&mut connection)
                .await
                .map_err(Error::storage)
        }
    }
}
