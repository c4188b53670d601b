//! The in-memory store: sharded, bounded, idle identities evicted.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::decision::{
    AccountKey, AuthCounts, AuthLock, AuthSubject, Behaviour, Flag, Observation, WindowSpec,
    estimate, unix_secs, weight_permille,
};
use crate::identity::{Identity, keyed_hash, value_hash};
use crate::store::AbuseStore;

/// How many distinct values (user agents, networks, endpoints, accounts) are tracked per
/// identity and window; counts saturate there, so thresholds must stay below it.
pub const MAX_DISTINCT: u64 = 64;

const MAX_DISTINCT_LEN: usize = MAX_DISTINCT as usize;

const SHARDS: usize = 16;

/// Hasher for keys that already are keyed 64-bit hashes ([`Identity`] carries one).
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Prehashed = BuildHasherDefault<PassThrough>;

/// Shard of a keyed hash, from bits the maps themselves do not use for buckets.
fn shard_index(h: u64) -> usize {
    usize::try_from((h >> 32) % SHARDS as u64).unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the counters unsafe to read.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Distinct values over the current and the previous window, as keyed hashes.
///
/// Each value is kept once, as its hash shifted left by two, a set bit (no value is zero,
/// the mark of a free inline slot) and, as the low bit, the parity of the last window it
/// was seen in. Two values live inline, which covers the usual single user agent and
/// network without a heap access; more move to a vector of at most `MAX_DISTINCT`.
#[derive(Debug)]
enum Distinct {
    Inline([u64; 2]),
    Heap(Vec<u64>),
}

impl Default for Distinct {
    fn default() -> Self {
        Self::Inline([0; 2])
    }
}

impl Distinct {
    /// Moves on to window `epoch`, `steps` windows after the last one.
    fn roll(&mut self, epoch: u64, steps: u64) {
        // After one step, values last seen two windows ago carry the new window's parity.
        let stale = |v: u64| steps > 1 || v & 1 == epoch & 1;
        match self {
            Self::Inline(slots) => {
                for v in slots.iter_mut().filter(|v| stale(**v)) {
                    *v = 0;
                }
            }
            // The vector keeps its capacity for the next window.
            Self::Heap(values) => values.retain(|v| !stale(*v)),
        }
    }

    /// Records `h` in window `epoch` (the window of the last roll).
    fn insert(&mut self, h: u64, epoch: u64) {
        let parity = epoch & 1;
        let tagged = (h << 2) | 2 | parity;
        let same = |v: &&mut u64| **v >> 1 == tagged >> 1;
        match self {
            Self::Inline(slots) => {
                if let Some(v) = slots.iter_mut().find(same) {
                    *v = tagged;
                } else if let Some(v) = slots.iter_mut().find(|v| **v == 0) {
                    *v = tagged;
                } else {
                    let mut values = Vec::with_capacity(4);
                    values.extend_from_slice(slots);
                    values.push(tagged);
                    *self = Self::Heap(values);
                }
            }
            Self::Heap(values) => {
                if let Some(v) = values.iter_mut().find(same) {
                    *v = tagged;
                } else if values.len() < MAX_DISTINCT_LEN {
                    values.push(tagged);
                } else if let Some(v) = values.iter_mut().find(|v| **v & 1 != parity) {
                    // Full: the count stays saturated either way, but a value of the
                    // previous window makes way, so that the next window starts with the
                    // values of this one.
                    *v = tagged;
                }
            }
        }
    }

    fn count(&self) -> u64 {
        match self {
            Self::Inline(slots) => slots.iter().filter(|v| **v != 0).count() as u64,
            Self::Heap(values) => values.len() as u64,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    requests: u64,
    errors: u64,
    bytes: u64,
    auth: u64,
    near: u64,
}

#[derive(Debug, Default)]
struct Entry {
    epoch: u64,
    cur: Counters,
    prev: Counters,
    user_agents: Distinct,
    networks: Distinct,
    endpoints: Distinct,
    hours_mask: u64,
    last_hour: u64,
    last_seen: u64,
}

impl Entry {
    fn roll(&mut self, epoch: u64) {
        if epoch <= self.epoch {
            return;
        }
        let steps = epoch - self.epoch;
        self.prev = if steps == 1 {
            self.cur
        } else {
            Counters::default()
        };
        self.cur = Counters::default();
        self.user_agents.roll(epoch, steps);
        self.networks.roll(epoch, steps);
        self.endpoints.roll(epoch, steps);
        self.epoch = epoch;
    }

    fn mark_hour(&mut self, hour: u64) {
        if hour > self.last_hour {
            let shift = hour - self.last_hour;
            self.hours_mask = if shift >= 64 {
                0
            } else {
                self.hours_mask << shift
            };
            self.last_hour = hour;
        }
        if hour == self.last_hour {
            self.hours_mask |= 1;
        }
    }
}

/// Maps keyed by the identity's keyed hash. Behaviour keeps the identity's independent
/// check hash, not the identity, to rule out the (2^-64) collision without a string per
/// entry or a string comparison per request: a colliding newcomer replaces the old entry.
#[derive(Debug, Default)]
struct Shard {
    behaviour: HashMap<u64, (u64, Entry), Prehashed>,
    flags: HashMap<u64, Flag, Prehashed>,
}

#[derive(Debug, Default)]
struct AuthEntry {
    epoch: u64,
    cur: u64,
    prev: u64,
    accounts: Distinct,
    lock: Option<AuthLock>,
    last_seen: u64,
}

/// The in-memory [`AbuseStore`]: state of one process.
///
/// Sixteen shards, each behind its own mutex, hold at most `max_identities` identities in
/// total (and as many authentication subjects). When a shard is full, identities idle for
/// longer than `idle` are dropped first, then the least recently seen eighth. Flags and
/// locks are kept apart from behaviour, so that a flood of new identities cannot evict an
/// active block.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    auth: Box<[Mutex<HashMap<AuthSubject, AuthEntry>>]>,
    max_per_shard: usize,
    idle_secs: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store for up to 100 000 identities, dropping those idle for two hours.
    pub fn new() -> Self {
        Self::with_capacity(100_000, Duration::from_secs(2 * 3600))
    }

    /// A store for up to `max_identities` identities (at least 16), dropping those idle
    /// for longer than `idle`. Keep `idle` above one hour so that round-the-clock activity
    /// stays visible.
    pub fn with_capacity(max_identities: usize, idle: Duration) -> Self {
        let max_per_shard = max_identities.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            auth: (0..SHARDS).map(|_| Mutex::default()).collect(),
            max_per_shard,
            idle_secs: idle.as_secs().max(1),
        }
    }

    fn shard(&self, identity: &Identity) -> MutexGuard<'_, Shard> {
        lock(&self.shards[shard_index(identity.hash64())])
    }

    fn auth_shard(&self, subject: &AuthSubject) -> MutexGuard<'_, HashMap<AuthSubject, AuthEntry>> {
        lock(&self.auth[shard_index(keyed_hash(subject))])
    }

    /// Number of identities whose behaviour is tracked.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).behaviour.len()).sum()
    }

    /// Whether no identity is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops idle identities and expired flags and locks (call it now and then; inserts
    /// also evict when a shard is full).
    pub fn sweep(&self, now: SystemTime) {
        let now_secs = unix_secs(now);
        for shard in &*self.shards {
            let mut shard = lock(shard);
            shard
                .behaviour
                .retain(|_, (_, e)| e.last_seen.saturating_add(self.idle_secs) > now_secs);
            shard.flags.retain(|_, f| f.is_active(now));
        }
        for shard in &*self.auth {
            lock(shard).retain(|_, e| {
                e.lock.is_some_and(|l| l.until > now)
                    || e.last_seen.saturating_add(self.idle_secs) > now_secs
            });
        }
    }

    fn make_room_behaviour(&self, map: &mut HashMap<u64, (u64, Entry), Prehashed>, now_secs: u64) {
        if map.len() < self.max_per_shard {
            return;
        }
        map.retain(|_, (_, e)| e.last_seen.saturating_add(self.idle_secs) > now_secs);
        if map.len() >= self.max_per_shard {
            let cutoff = oldest_eighth(map.values().map(|(_, e)| e.last_seen));
            map.retain(|_, (_, e)| e.last_seen > cutoff);
        }
    }

    fn make_room_auth(&self, map: &mut HashMap<AuthSubject, AuthEntry>, now: SystemTime) {
        if map.len() < self.max_per_shard {
            return;
        }
        let now_secs = unix_secs(now);
        let idle = self.idle_secs;
        map.retain(|_, e| {
            e.lock.is_some_and(|l| l.until > now) || e.last_seen.saturating_add(idle) > now_secs
        });
        if map.len() >= self.max_per_shard {
            // Unlocked subjects go first; locks survive a flood of new addresses.
            let cutoff = oldest_eighth(
                map.values()
                    .filter(|e| e.lock.is_none_or(|l| l.until <= now))
                    .map(|e| e.last_seen),
            );
            map.retain(|_, e| e.lock.is_some_and(|l| l.until > now) || e.last_seen > cutoff);
        }
        if map.len() >= self.max_per_shard {
            let cutoff = oldest_eighth(map.values().map(|e| e.last_seen));
            map.retain(|_, e| e.last_seen > cutoff);
        }
    }
}

/// The last-seen time at or below which the oldest eighth of entries lie.
fn oldest_eighth(seen: impl Iterator<Item = u64>) -> u64 {
    let mut seen: Vec<u64> = seen.collect();
    if seen.is_empty() {
        return 0;
    }
    let k = seen.len() / 8;
    let (_, nth, _) = seen.select_nth_unstable(k);
    *nth
}

impl AbuseStore for MemoryStore {
    async fn record(
        &self,
        identity: &Identity,
        o: &Observation<'_>,
        now: SystemTime,
        window: WindowSpec,
    ) -> Behaviour {
        self.record_sync(identity, o, now, window)
    }

    async fn flag(&self, identity: &Identity, now: SystemTime) -> Option<Flag> {
        self.flag_sync(identity, now)
    }

    async fn set_flag(&self, flag: &Flag) {
        let h = flag.identity.hash64();
        let mut shard = self.shard(&flag.identity);
        if shard.flags.len() >= self.max_per_shard && !shard.flags.contains_key(&h) {
            let now = flag.since;
            shard.flags.retain(|_, f| f.is_active(now));
            if shard.flags.len() >= self.max_per_shard {
                let first = shard
                    .flags
                    .iter()
                    .min_by_key(|(_, f)| f.until)
                    .map(|(k, _)| *k);
                if let Some(k) = first {
                    shard.flags.remove(&k);
                }
            }
        }
        shard.flags.insert(h, flag.clone());
    }

    async fn flags(&self, now: SystemTime) -> Vec<Flag> {
        let mut out = Vec::new();
        for shard in &*self.shards {
            out.extend(
                lock(shard)
                    .flags
                    .values()
                    .filter(|f| f.is_active(now))
                    .cloned(),
            );
        }
        out.sort_by(|a, b| a.identity.cmp(&b.identity));
        out
    }

    async fn clear(&self, identity: &Identity, _now: SystemTime, _window: WindowSpec) {
        let h = identity.hash64();
        let mut shard = self.shard(identity);
        if shard.flags.get(&h).is_some_and(|f| f.identity == *identity) {
            shard.flags.remove(&h);
        }
        if shard
            .behaviour
            .get(&h)
            .is_some_and(|(check, _)| *check == identity.check64())
        {
            shard.behaviour.remove(&h);
        }
    }

    async fn auth_failure(
        &self,
        address: IpAddr,
        account: Option<AccountKey>,
        now: SystemTime,
        window_secs: u64,
    ) -> AuthCounts {
        let now_secs = unix_secs(now);
        let window_secs = window_secs.max(1);
        let epoch = now_secs / window_secs;
        let weight = weight_permille(now_secs, window_secs);
        let account_hash = account.map(|a| keyed_hash(&a));
        let bump = |subject: AuthSubject| -> (u64, u64) {
            let mut map = self.auth_shard(&subject);
            if !map.contains_key(&subject) {
                self.make_room_auth(&mut map, now);
            }
            let e = map.entry(subject).or_default();
            if epoch > e.epoch {
                let steps = epoch - e.epoch;
                e.prev = if steps == 1 { e.cur } else { 0 };
                e.cur = 0;
                e.accounts.roll(epoch, steps);
                e.epoch = epoch;
            }
            e.cur = e.cur.saturating_add(1);
            e.last_seen = now_secs;
            if let (AuthSubject::Address(_), Some(h)) = (subject, account_hash) {
                e.accounts.insert(h, e.epoch);
            }
            (estimate(e.cur, e.prev, weight), e.accounts.count())
        };
        let (address_failures, distinct_accounts) = bump(AuthSubject::Address(address));
        let account_failures = account.map_or(0, |a| bump(AuthSubject::Account(a)).0);
        AuthCounts {
            address: address_failures,
            account: account_failures,
            distinct_accounts,
        }
    }

    async fn auth_success(&self, account: AccountKey, _now: SystemTime, _window_secs: u64) {
        let subject = AuthSubject::Account(account);
        if let Some(e) = self.auth_shard(&subject).get_mut(&subject) {
            e.cur = 0;
            e.prev = 0;
        }
    }

    async fn auth_lock(&self, subject: AuthSubject, now: SystemTime) -> Option<AuthLock> {
        self.auth_shard(&subject)
            .get(&subject)
            .and_then(|e| e.lock)
            .filter(|l| l.until > now)
    }

    async fn set_auth_lock(&self, new: AuthLock, now: SystemTime) {
        let mut map = self.auth_shard(&new.subject);
        if !map.contains_key(&new.subject) {
            self.make_room_auth(&mut map, now);
        }
        let e = map.entry(new.subject).or_default();
        e.last_seen = e.last_seen.max(unix_secs(now));
        match e.lock {
            Some(old) if old.until > now && old.until >= new.until => {}
            _ => e.lock = Some(new),
        }
    }

    async fn clear_auth(&self, subject: AuthSubject, _now: SystemTime, _window_secs: u64) {
        self.auth_shard(&subject).remove(&subject);
    }
}

impl MemoryStore {
    fn record_sync(
        &self,
        identity: &Identity,
        o: &Observation<'_>,
        now: SystemTime,
        window: WindowSpec,
    ) -> Behaviour {
        let now_secs = unix_secs(now);
        let w = window.window_secs.max(1);
        let epoch = now_secs / w;
        let weight = weight_permille(now_secs, w);
        // Hashed before taking the lock, to keep the critical section short.
        let ua = value_hash(o.user_agent);
        let net = value_hash(&o.network);
        let ep = value_hash(o.endpoint);

        let h = identity.hash64();
        let mut shard = self.shard(identity);
        let map = &mut shard.behaviour;
        // Only a full shard needs the extra lookup; otherwise one probe finds or inserts.
        if map.len() >= self.max_per_shard && !map.contains_key(&h) {
            self.make_room_behaviour(map, now_secs);
        }
        let check = identity.check64();
        let slot = map.entry(h).or_insert_with(|| (check, Entry::default()));
        if slot.0 != check {
            *slot = (check, Entry::default());
        }
        let e = &mut slot.1;
        if e.last_seen == 0 {
            e.epoch = epoch;
        }
        e.roll(epoch);
        e.last_seen = now_secs;
        let c = &mut e.cur;
        c.requests = c.requests.saturating_add(1);
        c.errors = c.errors.saturating_add(u64::from(o.is_error));
        c.bytes = c.bytes.saturating_add(o.response_bytes);
        c.auth = c.auth.saturating_add(u64::from(o.is_auth));
        c.near = c.near.saturating_add(u64::from(o.near_limit));
        // The entry's window, not `epoch`: a clock that went back must not tag values with
        // a window the sets have left.
        let window_epoch = e.epoch;
        e.user_agents.insert(ua, window_epoch);
        e.networks.insert(net, window_epoch);
        e.endpoints.insert(ep, window_epoch);
        e.mark_hour(now_secs / 3600);

        let hours_mask = if window.hours >= 64 {
            u64::MAX
        } else {
            (1u64 << window.hours) - 1
        };
        let (cur, prev) = (e.cur, e.prev);
        Behaviour {
            requests: estimate(cur.requests, prev.requests, weight),
            errors: estimate(cur.errors, prev.errors, weight),
            response_bytes: estimate(cur.bytes, prev.bytes, weight),
            auth_requests: estimate(cur.auth, prev.auth, weight),
            near_limit: estimate(cur.near, prev.near, weight),
            distinct_endpoints: e.endpoints.count(),
            distinct_user_agents: e.user_agents.count(),
            distinct_networks: e.networks.count(),
            active_hours: (e.hours_mask & hours_mask).count_ones(),
        }
    }

    fn flag_sync(&self, identity: &Identity, now: SystemTime) -> Option<Flag> {
        self.shard(identity)
            .flags
            .get(&identity.hash64())
            .filter(|f| f.identity == *identity && f.is_active(now))
            .cloned()
    }

    /// The active flag's decision without cloning the flag (the hot path).
    pub(crate) fn decision_sync(
        &self,
        identity: &Identity,
        now: SystemTime,
    ) -> crate::decision::Decision {
        self.shard(identity)
            .flags
            .get(&identity.hash64())
            .filter(|f| f.identity == *identity)
            .map_or(crate::decision::Decision::Allow, |f| {
                crate::decision::Decision::from_flag(f, now)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_union_over_two_windows() {
        let mut d = Distinct::default();
        d.insert(1, 10);
        d.insert(2, 10);
        d.insert(2, 10);
        assert_eq!(d.count(), 2);
        d.roll(11, 1);
        d.insert(2, 11);
        d.insert(3, 11);
        assert_eq!(d.count(), 3);
        d.roll(12, 1);
        assert_eq!(d.count(), 2);
        d.roll(14, 2);
        assert_eq!(d.count(), 0);
        for i in 0..1000 {
            d.insert(i, 14);
        }
        assert_eq!(d.count(), MAX_DISTINCT);
        // Hashes differing only in the top two bits are one value (62 bits are kept).
        d.roll(20, 6);
        d.insert(5, 20);
        d.insert(5 | 1 << 63, 20);
        assert_eq!(d.count(), 1);
    }

    #[test]
    fn distinct_inline_then_heap() {
        let mut d = Distinct::default();
        // Zero is a value like any other, not a free slot.
        d.insert(0, 1);
        d.insert(0, 1);
        assert_eq!(d.count(), 1);
        d.insert(9, 1);
        d.insert(0, 1);
        assert!(matches!(d, Distinct::Inline(_)));
        assert_eq!(d.count(), 2);
        d.roll(2, 1);
        d.insert(9, 2);
        d.roll(3, 1);
        assert_eq!(d.count(), 1);
        d.insert(4, 3);
        d.insert(5, 3);
        assert!(matches!(d, Distinct::Heap(_)));
        assert_eq!(d.count(), 3);
        d.roll(4, 1);
        d.insert(5, 4);
        d.roll(5, 1);
        assert_eq!(d.count(), 1);
    }

    #[test]
    fn saturated_set_keeps_the_current_window() {
        let mut d = Distinct::default();
        for i in 0..MAX_DISTINCT {
            d.insert(i, 1);
        }
        d.roll(2, 1);
        for i in 1000..1010 {
            d.insert(i, 2);
        }
        // Still saturated: 64 old values and 10 new ones.
        assert_eq!(d.count(), MAX_DISTINCT);
        d.roll(3, 1);
        // Only the values of window 2 remain.
        assert_eq!(d.count(), 10);
        // A full set of current values ignores newcomers.
        for i in 0..200 {
            d.insert(i, 3);
        }
        assert_eq!(d.count(), MAX_DISTINCT);
        d.roll(4, 1);
        assert_eq!(d.count(), MAX_DISTINCT);
        d.roll(5, 1);
        assert_eq!(d.count(), 0);
    }

    #[test]
    fn hours_mask_shifts() {
        let mut e = Entry::default();
        for h in 100..124 {
            e.mark_hour(h);
        }
        assert_eq!((e.hours_mask & 0xff_ffff).count_ones(), 24);
        e.mark_hour(126);
        assert_eq!((e.hours_mask & 0xff_ffff).count_ones(), 22);
        e.mark_hour(1000);
        assert_eq!(e.hours_mask, 1);
        e.mark_hour(10); // clock went back: ignored
        assert_eq!(e.hours_mask, 1);
    }

    #[test]
    fn estimate_weights_previous_window() {
        assert_eq!(estimate(10, 100, 500), 60);
        assert_eq!(estimate(u64::MAX, u64::MAX, 1000), u64::MAX);
    }

    #[test]
    fn bounded_identities() {
        let store = MemoryStore::with_capacity(32, Duration::from_secs(3600));
        let o = Observation {
            is_error: false,
            is_auth: false,
            near_limit: false,
            response_bytes: 1,
            endpoint: "/",
            user_agent: "ua",
            network: IpAddr::from([10, 0, 0, 0]),
        };
        let w = WindowSpec {
            window_secs: 60,
            hours: 24,
        };
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..10_000u64 {
            let id = Identity::api_key(&format!("k{i}"));
            store.record_sync(&id, &o, t0 + Duration::from_secs(i / 100), w);
        }
        assert!(store.len() <= 32, "len {}", store.len());
        store.sweep(t0 + Duration::from_secs(10 * 3600));
        assert!(store.is_empty());
    }
}
