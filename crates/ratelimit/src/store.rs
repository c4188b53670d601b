//! The storage trait and the limiter that applies policies, overrides and the failure
//! mode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use crate::decision::Decision;
use crate::error::Error;
use crate::key::{KeyHasher, bounded_key};
use crate::policy::Policy;

/// Where rate-limit state lives: [`crate::MemoryStore`], or with the `redis` feature
/// `RedisStore` and `HybridStore`.
///
/// `check` decides `cost` units for `key` against every window of `policy` atomically:
/// all windows admit and are charged, or none is. A denial is `Ok` with a denied
/// [`Decision`]; `Err` means the backend failed ([`RateLimiter`] then applies the
/// policy's failure mode).
pub trait Store: Send + Sync {
    /// Decides and charges one request of `cost` units (0 only looks).
    fn check(
        &self,
        key: &str,
        policy: &Policy,
        cost: u64,
        now: SystemTime,
    ) -> impl Future<Output = Result<Decision, Error>> + Send;
}

const OVERRIDE_SHARDS: usize = 16;

type Overrides = RwLock<HashMap<Box<str>, Arc<Policy>, KeyHasher>>;

/// A store with a default policy and per-key overrides, which never fails: a backend
/// failure becomes the policy's failure mode (reported in [`Decision::degraded`] and
/// logged).
pub struct RateLimiter<S> {
    store: S,
    default: Arc<Policy>,
    overrides: Box<[Overrides]>,
    override_count: AtomicUsize,
    hasher: KeyHasher,
}

impl<S> std::fmt::Debug for RateLimiter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("default", &self.default.name())
            .field("overrides", &self.override_count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<S: Store> RateLimiter<S> {
    /// A limiter over `store` applying `default` to every key without an override.
    pub fn new(store: S, default: Policy) -> Self {
        Self {
            store,
            default: Arc::new(default),
            overrides: (0..OVERRIDE_SHARDS)
                .map(|_| RwLock::new(HashMap::with_hasher(KeyHasher::new())))
                .collect(),
            override_count: AtomicUsize::new(0),
            hasher: KeyHasher::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The default policy.
    pub fn default_policy(&self) -> &Policy {
        &self.default
    }

    fn shard(&self, key: &str) -> &Overrides {
        let index =
            usize::try_from(self.hasher.hash(key.as_bytes()) >> 40).unwrap_or(0) % OVERRIDE_SHARDS;
        self.overrides
            .get(index)
            .unwrap_or_else(|| &self.overrides[0])
    }

    /// Gives `key` its own policy (a plan or `N` per minute), at run time. The key's
    /// state is kept: windows that keep their name, algorithm and period keep counting.
    pub fn set_override(&self, key: &str, policy: Policy) {
        let key = bounded_key(key, false);
        let previous = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.into(), Arc::new(policy));
        if previous.is_none() {
            self.override_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Returns `key` to the default policy.
    pub fn remove_override(&self, key: &str) {
        let key = bounded_key(key, false);
        let removed = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&*key);
        if removed.is_some() {
            self.override_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The policy that applies to `key`.
    pub fn policy_for(&self, key: &str) -> Arc<Policy> {
        self.lookup(key)
            .unwrap_or_else(|| Arc::clone(&self.default))
    }

    fn lookup(&self, key: &str) -> Option<Arc<Policy>> {
        if self.override_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let key = bounded_key(key, false);
        self.shard(&key)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&*key)
            .cloned()
    }

    /// Decides one request of `cost` units for `key` with its policy. Never an error: a
    /// backend failure becomes the policy's failure mode.
    pub async fn check(&self, key: &str, cost: u64, now: SystemTime) -> Decision {
        match self.lookup(key) {
            Some(policy) => self.check_with(key, &policy, cost, now).await,
            None => self.check_with(key, &self.default, cost, now).await,
        }
    }

    /// Like [`RateLimiter::check`] with an explicit policy.
    pub async fn check_with(
        &self,
        key: &str,
        policy: &Policy,
        cost: u64,
        now: SystemTime,
    ) -> Decision {
        match self.store.check(key, policy, cost, now).await {
            Ok(decision) => decision,
            Err(error) => {
                tracing::warn!(
                    code = error.code(),
                    detail = error.detail(),
                    policy = policy.name(),
                    failure_mode = ?policy.failure_mode(),
                    "rate-limit backend failed; applying the failure mode"
                );
                Decision::failed(policy, error.kind(), now)
            }
        }
    }
}
