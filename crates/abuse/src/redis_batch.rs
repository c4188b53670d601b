//! Write-behind state of a batched [`RedisStore`](crate::RedisStore).
//!
//! Recording every request as its own Redis pipeline costs a round trip and some twenty
//! commands per request, and reading the flag and the lock costs two more on the request
//! path. In batched mode an instance sums what its requests add, per identity, and writes
//! the sums for every identity in one pipeline at most once per interval; it reads back
//! the shared picture in the same pipeline. Flags and locks read from Redis are kept for
//! one interval. What this instance records, flags or locks is visible to it at once;
//! what other instances do, within one interval.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::decision::{AuthLock, AuthSubject, Behaviour, Flag, Observation, WindowSpec, unix_secs};
use crate::identity::{Identity, value_hash};
use crate::memory::MAX_DISTINCT;

/// Distinct values of one kind an identity may collect between flushes before it forces
/// one (each must reach Redis's HyperLogLog, so none can be dropped).
const MAX_PENDING_VALUES: usize = 16;
/// Entries kept in each cache before it is emptied (identities are client-chosen).
const MAX_CACHED: usize = 100_000;

/// User agent, network, endpoint: the distinct-count kinds, in `Behaviour`'s order.
pub(crate) const KINDS: [&str; 3] = ["ua", "net", "ep"];

/// What one identity's requests add within one window epoch, not yet in Redis.
#[derive(Debug, Clone)]
pub(crate) struct Delta {
    pub(crate) epoch: u64,
    pub(crate) window: WindowSpec,
    /// Requests, errors, response bytes, authentication requests, near-limit requests.
    pub(crate) counters: [u64; 5],
    /// Distinct user agents, networks and endpoints seen (see [`KINDS`]).
    pub(crate) values: [Vec<String>; 3],
    /// Distinct hours (Unix seconds / 3600) with activity.
    pub(crate) hours: Vec<u64>,
}

impl Delta {
    pub(crate) fn new(epoch: u64, window: WindowSpec) -> Self {
        Self {
            epoch,
            window,
            counters: [0; 5],
            values: Default::default(),
            hours: Vec::new(),
        }
    }

    /// A delta of one observation (the unbatched path).
    pub(crate) fn single(
        o: &Observation<'_>,
        network: &str,
        epoch: u64,
        hour: u64,
        window: WindowSpec,
    ) -> Self {
        let mut delta = Self::new(epoch, window);
        delta.add(o, network, hour);
        delta
    }

    /// Adds one observation; true when a value list is full and must be flushed.
    fn add(&mut self, o: &Observation<'_>, network: &str, hour: u64) -> bool {
        let [requests, errors, bytes, auth, near] = &mut self.counters;
        *requests += 1;
        *errors += u64::from(o.is_error);
        *bytes = bytes.saturating_add(o.response_bytes);
        *auth += u64::from(o.is_auth);
        *near += u64::from(o.near_limit);
        let mut full = false;
        for (list, value) in self
            .values
            .iter_mut()
            .zip([o.user_agent, network, o.endpoint])
        {
            if !list.iter().any(|known| known == value) {
                list.push(value.to_owned());
            }
            full |= list.len() >= MAX_PENDING_VALUES;
        }
        if !self.hours.contains(&hour) {
            self.hours.push(hour);
        }
        full
    }
}

/// The shared picture of one identity as Redis returned it at the last flush.
#[derive(Debug, Clone)]
struct Seen {
    behaviour: Behaviour,
    epoch: u64,
    hour: u64,
    flushed_at: u64,
    /// Hashes of the values known to be in this epoch's HyperLogLogs.
    values: [Vec<u64>; 3],
}

#[derive(Debug, Clone, Copy)]
struct Cached<T> {
    value: T,
    fetched_at: u64,
}

#[derive(Debug, Default)]
struct State {
    last_flush: u64,
    flushing: bool,
    /// The last flush failed: answer from the local store until one succeeds.
    degraded: bool,
    pending: HashMap<Identity, Delta>,
    /// Deltas of a finished epoch, waiting for the next flush.
    ready: Vec<(Identity, Delta)>,
    seen: HashMap<Identity, Seen>,
    flags: HashMap<Identity, Cached<Option<Flag>>>,
    locks: HashMap<AuthSubject, Cached<Option<AuthLock>>>,
}

/// The batching state; times are Unix milliseconds of the `now` the store is given.
#[derive(Debug)]
pub(crate) struct Batch {
    interval_ms: u64,
    state: Mutex<State>,
}

/// What a flush sends: each identity's delta.
pub(crate) type Work = Vec<(Identity, Delta)>;

impl Batch {
    pub(crate) fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms: interval_ms.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an observation; returns whether a flush is due now.
    pub(crate) fn add(
        &self,
        identity: &Identity,
        o: &Observation<'_>,
        network: &str,
        now_ms: u64,
        window: WindowSpec,
    ) -> bool {
        let now_secs = now_ms / 1000;
        let epoch = now_secs / window.window_secs.max(1);
        let hour = now_secs / 3600;
        let mut state = self.lock();
        let state = &mut *state;
        let delta = match state.pending.get_mut(identity) {
            Some(delta) => delta,
            None => state
                .pending
                .entry(identity.clone())
                .or_insert_with(|| Delta::new(epoch, window)),
        };
        let mut due = false;
        if delta.epoch != epoch || delta.window != window {
            // The window moved on: what was summed belongs to the old epoch's keys.
            let old = std::mem::replace(delta, Delta::new(epoch, window));
            state.ready.push((identity.clone(), old));
            due = true;
        }
        due |= delta.add(o, network, hour);
        due |= now_ms.saturating_sub(state.last_flush) >= self.interval_ms;
        due && !state.flushing
    }

    /// Takes everything pending for a flush, or nothing when one is already running.
    pub(crate) fn take(&self, now_ms: u64) -> Option<Work> {
        let mut state = self.lock();
        if state.flushing {
            return None;
        }
        state.last_flush = now_ms;
        let mut work = std::mem::take(&mut state.ready);
        work.extend(state.pending.drain());
        if work.is_empty() {
            return None;
        }
        state.flushing = true;
        Some(work)
    }

    /// Lets the next flush start after one was abandoned (its sums are dropped).
    pub(crate) fn abandon(&self) {
        self.lock().flushing = false;
    }

    /// Stores what Redis returned for each identity of a flush (`None`: the flush failed).
    pub(crate) fn finish(
        &self,
        work: &Work,
        replies: Option<Vec<Behaviour>>,
        now: std::time::SystemTime,
    ) {
        let now_secs = unix_secs(now);
        let now_ms = now_secs.saturating_mul(1000);
        let mut state = self.lock();
        state.flushing = false;
        let Some(replies) = replies else {
            state.degraded = true;
            return;
        };
        state.degraded = false;
        if state.seen.len() > MAX_CACHED {
            let horizon = self.interval_ms.saturating_mul(20).max(10_000);
            state
                .seen
                .retain(|_, seen| now_ms.saturating_sub(seen.flushed_at) < horizon);
            if state.seen.len() > MAX_CACHED {
                state.seen.clear();
            }
        }
        for ((identity, delta), behaviour) in work.iter().zip(replies) {
            let epoch = now_secs / delta.window.window_secs.max(1);
            let seen = state.seen.entry(identity.clone()).or_insert_with(|| Seen {
                behaviour,
                epoch,
                hour: now_secs / 3600,
                flushed_at: now_ms,
                values: Default::default(),
            });
            if seen.epoch != epoch {
                seen.values = Default::default();
            }
            seen.behaviour = behaviour;
            seen.epoch = epoch;
            seen.hour = now_secs / 3600;
            seen.flushed_at = now_ms;
            if delta.epoch == epoch {
                for (known, values) in seen.values.iter_mut().zip(&delta.values) {
                    for value in values {
                        let hash = value_hash(value);
                        if !known.contains(&hash) && known.len() < MAX_DISTINCT as usize {
                            known.push(hash);
                        }
                    }
                }
            }
        }
    }

    /// The behaviour of `identity` as far as this instance knows it: the shared picture
    /// of the last flush plus what was recorded here since. `None` while degraded.
    pub(crate) fn behaviour(&self, identity: &Identity, now_ms: u64) -> Option<Behaviour> {
        let state = self.lock();
        if state.degraded {
            return None;
        }
        let base = state.seen.get(identity).map(|seen| seen.behaviour);
        Some(self.with_pending(&state, identity, base.unwrap_or_default(), now_ms))
    }

    /// `base` (what Redis holds) plus what this instance recorded for `identity` and has
    /// not written yet.
    pub(crate) fn plus_pending(
        &self,
        identity: &Identity,
        base: Behaviour,
        now_ms: u64,
    ) -> Behaviour {
        let state = self.lock();
        self.with_pending(&state, identity, base, now_ms)
    }

    fn with_pending(
        &self,
        state: &State,
        identity: &Identity,
        base: Behaviour,
        now_ms: u64,
    ) -> Behaviour {
        let seen = state.seen.get(identity);
        let mut b = base;
        let Some(delta) = state.pending.get(identity) else {
            return b;
        };
        let [requests, errors, bytes, auth, near] = delta.counters;
        b.requests = b.requests.saturating_add(requests);
        b.errors = b.errors.saturating_add(errors);
        b.response_bytes = b.response_bytes.saturating_add(bytes);
        b.auth_requests = b.auth_requests.saturating_add(auth);
        b.near_limit = b.near_limit.saturating_add(near);
        let same_epoch = seen.is_some_and(|seen| seen.epoch == delta.epoch);
        let distinct = [
            &mut b.distinct_user_agents,
            &mut b.distinct_networks,
            &mut b.distinct_endpoints,
        ];
        for (i, count) in distinct.into_iter().enumerate() {
            let new = delta.values[i]
                .iter()
                .filter(|value| {
                    !(same_epoch
                        && seen.is_some_and(|seen| seen.values[i].contains(&value_hash(value))))
                })
                .count() as u64;
            *count = count.saturating_add(new).min(MAX_DISTINCT);
        }
        let hour = now_ms / 1000 / 3600;
        if seen.is_none_or(|seen| seen.hour != hour) {
            b.active_hours = b
                .active_hours
                .saturating_add(1)
                .min(delta.window.hours.max(1));
        }
        b
    }

    /// Forgets what this instance holds about `identity` (its state was cleared).
    pub(crate) fn forget(&self, identity: &Identity) {
        let mut state = self.lock();
        state.pending.remove(identity);
        state.ready.retain(|(id, _)| id != identity);
        state.seen.remove(identity);
        state.flags.remove(identity);
    }

    /// The flag read from Redis less than one interval ago, if any.
    pub(crate) fn cached_flag(&self, identity: &Identity, now_ms: u64) -> Option<Option<Flag>> {
        let state = self.lock();
        let cached = state.flags.get(identity)?;
        (now_ms.saturating_sub(cached.fetched_at) < self.interval_ms && now_ms >= cached.fetched_at)
            .then(|| cached.value.clone())
    }

    pub(crate) fn cache_flag(&self, identity: &Identity, flag: Option<Flag>, now_ms: u64) {
        let mut state = self.lock();
        if state.flags.len() >= MAX_CACHED {
            state.flags.clear();
        }
        state.flags.insert(
            identity.clone(),
            Cached {
                value: flag,
                fetched_at: now_ms,
            },
        );
    }

    /// The lock read from Redis less than one interval ago, if any.
    pub(crate) fn cached_lock(
        &self,
        subject: AuthSubject,
        now_ms: u64,
    ) -> Option<Option<AuthLock>> {
        let state = self.lock();
        let cached = state.locks.get(&subject)?;
        (now_ms.saturating_sub(cached.fetched_at) < self.interval_ms && now_ms >= cached.fetched_at)
            .then_some(cached.value)
    }

    pub(crate) fn cache_lock(&self, subject: AuthSubject, lock: Option<AuthLock>, now_ms: u64) {
        let mut state = self.lock();
        if state.locks.len() >= MAX_CACHED {
            state.locks.clear();
        }
        state.locks.insert(
            subject,
            Cached {
                value: lock,
                fetched_at: now_ms,
            },
        );
    }

    pub(crate) fn forget_lock(&self, subject: AuthSubject) {
        self.lock().locks.remove(&subject);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const WINDOW: WindowSpec = WindowSpec {
        window_secs: 60,
        hours: 24,
    };
    const T0: u64 = 1_800_000_000_000; // Unix ms, on a minute boundary.

    fn seen(user_agent: &str) -> Observation<'_> {
        Observation {
            is_error: false,
            is_auth: false,
            near_limit: false,
            response_bytes: 10,
            endpoint: "/api/orders",
            user_agent,
            network: "192.0.2.0".parse().unwrap(),
        }
    }

    fn id() -> Identity {
        Identity::api_key("k1")
    }

    fn at(ms: u64) -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn pending_sums_count_until_flushed_then_come_back_from_redis() {
        let batch = Batch::new(250);
        for _ in 0..3 {
            batch.add(&id(), &seen("ua"), "192.0.2.0", T0, WINDOW);
        }
        let b = batch.behaviour(&id(), T0).unwrap();
        assert_eq!((b.requests, b.response_bytes), (3, 30));
        assert_eq!(b.distinct_user_agents, 1);

        // A flush takes the sums; Redis answers with the shared picture (here, 5 requests
        // from all instances, whose user agent this instance has now written).
        let work = batch.take(T0 + 300).unwrap();
        assert_eq!(work.len(), 1);
        assert!(batch.take(T0 + 300).is_none(), "one flush at a time");
        let shared = Behaviour {
            requests: 5,
            distinct_user_agents: 1,
            ..Behaviour::default()
        };
        batch.finish(&work, Some(vec![shared]), at(T0 + 300));
        let b = batch.behaviour(&id(), T0 + 300).unwrap();
        assert_eq!(b.requests, 5);
        // The same user agent again adds a request but no new distinct value.
        batch.add(&id(), &seen("ua"), "192.0.2.0", T0 + 400, WINDOW);
        let b = batch.behaviour(&id(), T0 + 400).unwrap();
        assert_eq!((b.requests, b.distinct_user_agents), (6, 1));
        batch.add(&id(), &seen("other"), "192.0.2.0", T0 + 450, WINDOW);
        assert_eq!(
            batch
                .behaviour(&id(), T0 + 450)
                .unwrap()
                .distinct_user_agents,
            2
        );
    }

    /// A batch with a long interval that has just flushed (a first record is always due).
    fn flushed_at_t0() -> Batch {
        let batch = Batch::new(60_000);
        assert!(batch.add(&id(), &seen("ua"), "192.0.2.0", T0, WINDOW));
        let work = batch.take(T0).unwrap();
        batch.finish(&work, Some(vec![Behaviour::default()]), at(T0));
        batch
    }

    #[test]
    fn a_full_value_list_or_a_new_epoch_makes_a_flush_due() {
        let batch = flushed_at_t0();
        let due: Vec<bool> = (0..MAX_PENDING_VALUES)
            .map(|i| {
                batch.add(
                    &id(),
                    &seen(&format!("ua-{i}")),
                    "192.0.2.0",
                    T0 + 1,
                    WINDOW,
                )
            })
            .collect();
        assert!(!due[..MAX_PENDING_VALUES - 1].contains(&true));
        assert_eq!(
            due.last(),
            Some(&true),
            "sixteen distinct values force a flush"
        );

        let batch = flushed_at_t0();
        assert!(!batch.add(&id(), &seen("ua"), "192.0.2.0", T0 + 1, WINDOW));
        // The next minute: the old epoch's sums move aside, to be written under its keys.
        assert!(batch.add(&id(), &seen("ua"), "192.0.2.0", T0 + 60_000, WINDOW));
        let work = batch.take(T0 + 60_000).unwrap();
        let epochs: Vec<u64> = work.iter().map(|(_, d)| d.epoch).collect();
        assert_eq!(epochs, [T0 / 60_000, T0 / 60_000 + 1]);
    }

    #[test]
    fn a_failed_flush_degrades_and_an_abandoned_one_frees_the_next() {
        let batch = Batch::new(250);
        batch.add(&id(), &seen("ua"), "192.0.2.0", T0, WINDOW);
        let work = batch.take(T0).unwrap();
        batch.finish(&work, None, at(T0));
        assert!(
            batch.behaviour(&id(), T0).is_none(),
            "local answers while degraded"
        );

        batch.add(&id(), &seen("ua"), "192.0.2.0", T0 + 1, WINDOW);
        assert!(batch.take(T0 + 1).is_some());
        assert!(batch.take(T0 + 2).is_none());
        batch.abandon();
        batch.add(&id(), &seen("ua"), "192.0.2.0", T0 + 3, WINDOW);
        assert!(batch.take(T0 + 3).is_some());
    }

    #[test]
    fn cached_flags_and_locks_last_one_interval() {
        let batch = Batch::new(250);
        batch.cache_flag(&id(), None, T0);
        assert_eq!(batch.cached_flag(&id(), T0 + 249), Some(None));
        assert_eq!(batch.cached_flag(&id(), T0 + 250), None);
        let subject = AuthSubject::Address("192.0.2.1".parse().unwrap());
        batch.cache_lock(subject, None, T0);
        assert_eq!(batch.cached_lock(subject, T0 + 100), Some(None));
        batch.forget_lock(subject);
        assert_eq!(batch.cached_lock(subject, T0 + 100), None);
        batch.forget(&id());
        assert_eq!(batch.cached_flag(&id(), T0), None);
    }
}
