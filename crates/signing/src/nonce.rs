use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{Error, ErrorKind, err};

/// Remembers signatures already accepted, to refuse a replay inside the window.
///
/// The verifier consults it only after a signature has been verified, so unauthenticated
/// traffic cannot fill it.
pub trait NonceStore: Send + Sync {
    /// Records `key` for `ttl`. Returns `true` when it was not already present (first
    /// use), `false` when it was (a replay).
    fn check_and_insert(
        &self,
        key: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// An in-memory [`NonceStore`] for one process. Expired entries are swept as it grows.
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashMap<String, SystemTime>,
    next_sweep: usize,
}

impl MemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries currently held (expired ones may linger until the next sweep).
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.seen.len())
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&self, key: &str, ttl: Duration, now: SystemTime) -> Result<bool, Error> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| err(ErrorKind::Store, "nonce store lock poisoned"))?;
        if inner.seen.len() >= inner.next_sweep {
            inner.seen.retain(|_, exp| *exp > now);
            inner.next_sweep = (inner.seen.len() * 2).max(1024);
        }
        let expires = now.checked_add(ttl).unwrap_or(now);
        match inner.seen.get_mut(key) {
            Some(exp) if *exp > now => Ok(false),
            Some(exp) => {
                *exp = expires;
                Ok(true)
            }
            None => {
                inner.seen.insert(key.to_owned(), expires);
                Ok(true)
            }
        }
    }
}

impl NonceStore for MemoryNonceStore {
    fn check_and_insert(
        &self,
        key: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let result = self.insert(key, ttl, now);
        async move { result }
    }
}

impl<T: NonceStore> NonceStore for std::sync::Arc<T> {
    fn check_and_insert(
        &self,
        key: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        (**self).check_and_insert(key, ttl, now)
    }
}

/// A [`NonceStore`] in Redis (`SET key 1 NX PX ttl`), shared by every instance.
///
/// Keys are `<prefix>:<key>`; the default prefix is `palisade:signing:nonce`.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisNonceStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

#[cfg(feature = "redis")]
impl RedisNonceStore {
    /// A store over an existing connection manager, with the default key prefix.
    pub fn new(conn: redis::aio::ConnectionManager) -> Self {
        Self {
            conn,
            prefix: "palisade:signing:nonce".to_owned(),
        }
    }

    /// Sets the key prefix (tests isolate themselves with a unique one).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisNonceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNonceStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl NonceStore for RedisNonceStore {
    fn check_and_insert(
        &self,
        key: &str,
        ttl: Duration,
        _now: SystemTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let full = format!("{}:{key}", self.prefix);
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut conn = self.conn.clone();
        async move {
            let reply: Option<String> = redis::cmd("SET")
                .arg(&full)
                .arg(1u8)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async(&mut conn)
                .await
                .map_err(|_| err(ErrorKind::Store, "the Redis nonce store failed"))?;
            Ok(reply.is_some())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_refuses_second_use_until_expiry() {
        let store = MemoryNonceStore::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ttl = Duration::from_secs(60);
        assert!(store.check_and_insert("a", ttl, t0).await.unwrap());
        assert!(!store.check_and_insert("a", ttl, t0).await.unwrap());
        assert!(store.check_and_insert("b", ttl, t0).await.unwrap());
        let later = t0 + Duration::from_secs(61);
        assert!(store.check_and_insert("a", ttl, later).await.unwrap());
    }
}
