//! The hybrid store: quota leased in small batches from Redis and spent locally.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionLike;

use crate::decision::{Decision, micros};
use crate::error::Error;
use crate::key::{KeyHasher, bounded_key};
use crate::policy::Policy;
use crate::redis::RedisStore;
use crate::store::Store;

const SHARDS: usize = 32;
const MIN_SWEEP: usize = 64;

/// Settings of a [`HybridStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HybridConfig {
    max_lease: u64,
    divisor: u64,
    lease_ttl: Duration,
}

impl Default for HybridConfig {
    fn default() -> Self {
        Self {
            max_lease: 16,
            divisor: 8,
            lease_ttl: Duration::from_secs(1),
        }
    }
}

impl HybridConfig {
    /// The most units one lease may hold (default 16). The overshoot bound is
    /// `instances x max_lease`.
    pub fn max_lease(mut self, max_lease: u64) -> Self {
        self.max_lease = max_lease.max(1);
        self
    }

    /// A lease takes at most `1/divisor` of what is left in the tightest window (default
    /// 8), so leases shrink to one unit near the limit. Set it near the number of
    /// instances.
    pub fn divisor(mut self, divisor: u64) -> Self {
        self.divisor = divisor.max(1);
        self
    }

    /// How long a lease may be spent (default 1 s); what is left after that is dropped.
    pub fn lease_ttl(mut self, lease_ttl: Duration) -> Self {
        self.lease_ttl = lease_ttl;
        self
    }
}

#[derive(Default)]
struct Local {
    fingerprint: u64,
    units: u64,
    expires: u64,
    denied_until: u64,
    denied_cost: u64,
    snapshot: Option<Decision>,
}

type Cell = Arc<tokio::sync::Mutex<Local>>;

struct Shard {
    cells: HashMap<Box<str>, Cell, KeyHasher>,
    sweep_at: usize,
}

/// An opt-in store for high traffic: each instance leases small batches of quota from
/// Redis (one atomic script, as [`RedisStore`]) and spends them locally, and caches a
/// denial locally until its exact retry time, so most decisions cost no round trip.
///
/// # The bound
///
/// Every unit spent locally was charged in Redis when its lease was taken, and each
/// instance holds at most `max_lease` unspent units per key at any time (one lease
/// request per key and instance at a time; what is left of a lease is dropped, never
/// added to the next). So in any interval an instance admits at most what the algorithm
/// admits plus the units it held when the interval began: the overshoot is at most
/// `instances x max_lease`, and leases shrink to one unit near the limit. Within one
/// window nothing is ever admitted beyond the limit; units leased but not spent are
/// lost (at most `instances x max_lease` per window).
pub struct HybridStore<C = redis::aio::ConnectionManager> {
    redis: RedisStore<C>,
    config: HybridConfig,
    shards: Box<[Mutex<Shard>]>,
    hasher: KeyHasher,
    round_trips: AtomicU64,
}

impl<C> std::fmt::Debug for HybridStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridStore")
            .field("config", &self.config)
            .field("round_trips", &self.round_trips.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<C> HybridStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A hybrid store over a Redis store.
    pub fn new(redis: RedisStore<C>, config: HybridConfig) -> Self {
        let hasher = KeyHasher::new();
        Self {
            redis,
            config,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        cells: HashMap::with_hasher(hasher.clone()),
                        sweep_at: MIN_SWEEP,
                    })
                })
                .collect(),
            hasher,
            round_trips: AtomicU64::new(0),
        }
    }

    /// How many decisions went to Redis so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    fn cell(&self, key: &str, now: u64) -> Cell {
        let index = usize::try_from(self.hasher.hash(key.as_bytes()) >> 40).unwrap_or(0) % SHARDS;
        let shard = self.shards.get(index).unwrap_or_else(|| &self.shards[0]);
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = shard.cells.get(key) {
            return Arc::clone(cell);
        }
        if shard.cells.len() >= shard.sweep_at {
            // Drop cells nobody is using whose lease and denial have both run out.
            shard.cells.retain(|_, cell| {
                Arc::strong_count(cell) > 1
                    || cell.try_lock().map_or(true, |local| {
                        local.expires > now || local.denied_until > now
                    })
            });
            shard.sweep_at = (shard.cells.len() * 2).max(MIN_SWEEP);
        }
        let cell = Cell::default();
        shard.cells.insert(key.into(), Arc::clone(&cell));
        cell
    }

    async fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u64,
        now: SystemTime,
    ) -> Result<Decision, Error> {
        let now_us = micros(now);
        let bounded = bounded_key(key, true);
        let cell = self.cell(&bounded, now_us);
        let mut local = cell.lock().await;
        if local.fingerprint != policy.fingerprint() {
            *local = Local {
                fingerprint: policy.fingerprint(),
                ..Local::default()
            };
        }
        if let Some(snapshot) = local.snapshot {
            if local.denied_until > now_us && cost >= local.denied_cost && cost > 0 {
                let mut decision = snapshot;
                decision.rebase(now_us, false);
                return Ok(decision);
            }
            if local.expires > now_us && local.units >= cost {
                local.units -= cost;
                let mut decision = snapshot;
                decision.rebase(now_us, true);
                decision.add_remaining(local.units);
                return Ok(decision);
            }
        }
        // Anything left of the old lease is dropped: at most one lease per key is held.
        local.units = 0;
        local.snapshot = None;
        local.denied_until = 0;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let lease = (cost > 0).then_some((self.config.max_lease, self.config.divisor));
        let (mut decision, grant) = self.redis.run(key, policy, cost, now, lease).await?;
        if decision.allowed() {
            local.units = grant.saturating_sub(cost);
            let ttl = u64::try_from(self.config.lease_ttl.as_micros()).unwrap_or(u64::MAX);
            local.expires = now_us.saturating_add(ttl);
            local.snapshot = Some(decision);
            decision.add_remaining(local.units);
        } else if let Some(retry) = decision.retry_after() {
            let retry = u64::try_from(retry.as_micros()).unwrap_or(u64::MAX);
            local.denied_until = now_us.saturating_add(retry);
            local.denied_cost = cost;
            local.snapshot = Some(decision);
        }
        Ok(decision)
    }
}

impl<C> Store for HybridStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn check(
        &self,
        key: &str,
        policy: &Policy,
        cost: u64,
        now: SystemTime,
    ) -> Result<Decision, Error> {
        self.decide(key, policy, cost, now).await
    }
}
