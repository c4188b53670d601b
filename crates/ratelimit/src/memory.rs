//! The in-memory store: sharded, read-locked lookups, self-cleaning.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crossbeam_utils::sync::ShardedLock;
use hashbrown::HashTable;

use crate::algo::{Slot, State, decide_into, gcra_decision, gcra_step};
use crate::clock::WallClock;
use crate::decision::{Decision, micros};
use crate::error::Error;
use crate::key::{KeyHasher, bounded_key};
use crate::policy::{Algorithm, Policy, Window};
use crate::store::Store;

const SHARDS: usize = 64;
/// A shard is swept when it grows past this many entries, then whenever it doubles.
const MIN_SWEEP: usize = 64;
/// How long a fully recovered entry is kept before a sweep drops it, in microseconds.
/// A key that has just recovered often comes straight back; dropping it at once made
/// its next check take the shard's write lock to add it again (with 100 000 keys cycling,
/// most checks did: 104 ns against 35 ns for a key found in place).
const IDLE_GRACE_US: u64 = 1_000_000;
/// Keys up to this length are stored inline: most identities (addresses, client ids,
/// key ids) fit, and a lookup then compares them without chasing a pointer.
const INLINE_KEY: usize = 30;

/// An in-memory store, for one process.
///
/// Keys are spread over 64 shards. Looking a key up takes its shard's read lock only,
/// and that lock is itself sharded by thread (crossbeam's `ShardedLock`), so threads
/// checking the same key share no lock word, only the key's state. A policy that is one
/// GCRA window then decides with one compare-and-swap on the key's theoretical arrival
/// time (lock-free, like `governor`), any other policy under the key's own small mutex.
/// A shard's write lock is taken only to add a key or sweep. There is no global lock.
/// A key of a one-GCRA policy costs one 48-byte table entry (keys up to 30 bytes are
/// stored inline). Memory is bounded without a cleanup call: when a shard grows to twice
/// its size at the last sweep, the entries whose every window had fully recovered a
/// second ago or earlier are dropped. Such an entry is equal to a fresh one, so nothing
/// is lost; the second of grace spares a key that comes back soon from being added
/// again. Memory is thus bounded by the keys seen within their windows plus one second,
/// over a fixed 64 KiB of lock words (eight cache lines for each of the 64 shards).
pub struct MemoryStore {
    shards: Box<[Shard]>,
    hasher: KeyHasher,
}

// Padded to keep two shards' locks off one cache line. A reader locks only its own
// thread's lock word (a shared one left two threads on one key slower than governor);
// a writer, which only adds keys or sweeps, locks all of them.
#[repr(align(128))]
struct Shard(ShardedLock<Inner>);

struct Inner {
    table: HashTable<Entry>,
    sweep_at: usize,
}

struct Entry {
    key: StoredKey,
    cell: Cell,
}

/// A key as stored: inline when short (no allocation of its own), else boxed.
enum StoredKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Boxed(Box<[u8]>),
}

impl StoredKey {
    fn new(key: &[u8]) -> Self {
        let mut bytes = [0u8; INLINE_KEY];
        match (bytes.get_mut(..key.len()), u8::try_from(key.len())) {
            (Some(prefix), Ok(len)) => {
                prefix.copy_from_slice(key);
                StoredKey::Inline { len, bytes }
            }
            _ => StoredKey::Boxed(key.into()),
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            StoredKey::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            StoredKey::Boxed(bytes) => bytes,
        }
    }
}

enum Cell {
    /// A single GCRA window: its theoretical arrival time, updated by compare-and-swap.
    /// (A window id is a 64-bit hash, never 0 in practice; its niche keeps the cell at 16
    /// bytes. A window with id 0 would simply take the locked path.)
    Gcra { id: NonZeroU64, tat: AtomicU64 },
    /// Any other policy: the windows' states under the key's own lock (boxed: the common
    /// GCRA cell stays small).
    Locked(Box<Mutex<Locked>>),
}

struct Locked {
    /// When every window will have recovered, as of the last decision.
    recover_at: u64,
    slots: Box<[Slot]>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.len())
            .finish()
    }
}

#[inline]
fn single_gcra(policy: &Policy) -> Option<&Window> {
    match policy.windows() {
        [w] if w.algorithm() == Algorithm::Gcra => Some(w),
        _ => None,
    }
}

/// Lines the entry's states up with the policy's windows, keeping the state of every
/// window that is still there (matched by name, algorithm and period), so that changing
/// a key's quota at run time loses nothing.
fn align(slots: &mut Box<[Slot]>, policy: &Policy) {
    let windows = policy.windows();
    let aligned =
        slots.len() == windows.len() && slots.iter().zip(windows).all(|(slot, w)| slot.id == w.id);
    if aligned {
        return;
    }
    let mut old = std::mem::take(slots).into_vec();
    *slots = windows
        .iter()
        .map(|w| {
            let state = old
                .iter_mut()
                .find(|slot| slot.id == w.id)
                .map(|slot| std::mem::take(&mut slot.state))
                .unwrap_or_default();
            Slot { id: w.id, state }
        })
        .collect();
}

fn recover_at(policy: &Policy, slots: &[Slot]) -> u64 {
    policy
        .windows()
        .iter()
        .zip(slots)
        .map(|(w, slot)| slot.state.recovery_at(w))
        .max()
        .unwrap_or(0)
}

/// One GCRA decision by compare-and-swap, with the same arithmetic as every store.
#[inline]
fn decide_gcra(w: &Window, tat: &AtomicU64, now: u64, cost: u64) -> Decision {
    let mut current = tat.load(Ordering::Acquire);
    loop {
        let (allowed, next) = gcra_step(w, current, now, cost);
        // A denial or a peek (cost 0) changes nothing: bringing the time up to `now` is
        // lossless, so it need not be stored.
        if !allowed || cost == 0 {
            return gcra_decision(w, allowed, next, now, cost);
        }
        match tat.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return gcra_decision(w, true, next, now, cost),
            Err(actual) => current = actual,
        }
    }
}

/// Any policy, under the key's lock.
fn decide_locked(locked: &Mutex<Locked>, policy: &Policy, now: u64, cost: u64) -> Decision {
    let mut decision = Decision::empty(false, now);
    let mut locked = locked.lock().unwrap_or_else(PoisonError::into_inner);
    let locked = &mut *locked;
    align(&mut locked.slots, policy);
    decide_into(
        policy.windows(),
        &mut locked.slots,
        now,
        cost,
        None,
        &mut decision,
    );
    locked.recover_at = recover_at(policy, &locked.slots);
    decision
}

/// Decides with an existing cell; `None` when it is a lock-free GCRA cell but the policy
/// is no longer that one GCRA window.
#[inline]
fn decide_cell(cell: &Cell, policy: &Policy, now: u64, cost: u64) -> Option<Decision> {
    match (cell, single_gcra(policy)) {
        (Cell::Gcra { id, tat }, Some(w)) if id.get() == w.id => {
            Some(decide_gcra(w, tat, now, cost))
        }
        (Cell::Gcra { .. }, _) => None,
        (Cell::Locked(locked), _) => Some(decide_locked(locked, policy, now, cost)),
    }
}

impl Cell {
    fn new(policy: &Policy) -> Self {
        match single_gcra(policy).and_then(|w| NonZeroU64::new(w.id)) {
            Some(id) => Cell::Gcra {
                id,
                tat: AtomicU64::new(0),
            },
            None => Cell::Locked(Box::new(Mutex::new(Locked {
                recover_at: 0,
                slots: policy
                    .windows()
                    .iter()
                    .map(|w| Slot {
                        id: w.id,
                        state: State::Empty,
                    })
                    .collect(),
            }))),
        }
    }

    fn recover_at(&mut self) -> u64 {
        match self {
            Cell::Gcra { tat, .. } => *tat.get_mut(),
            Cell::Locked(locked) => {
                locked
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .recover_at
            }
        }
    }

    fn make_locked(&mut self) {
        if let Cell::Gcra { id, tat } = self {
            let tat = *tat.get_mut();
            let slot = Slot {
                id: id.get(),
                state: State::Gcra { tat },
            };
            *self = Cell::Locked(Box::new(Mutex::new(Locked {
                recover_at: tat,
                slots: Box::new([slot]),
            })));
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Shard(ShardedLock::new(Inner {
                    table: HashTable::new(),
                    sweep_at: MIN_SWEEP,
                }))
            })
            .collect();
        Self {
            shards,
            hasher: KeyHasher::new(),
        }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard {
        // Bits 40.. pick the shard; hashbrown uses the lowest bits and the top seven.
        let index = usize::try_from(hash >> 40).unwrap_or(0) % SHARDS;
        self.shards.get(index).unwrap_or_else(|| &self.shards[0])
    }

    /// Checks `cost` units for `key` against every window of `policy` at `now`, and
    /// charges them if all windows admit them. Synchronous: the in-memory hot path.
    #[inline]
    pub fn check_sync(&self, key: &str, policy: &Policy, cost: u64, now: SystemTime) -> Decision {
        self.decide(key, policy, cost, micros(now))
    }

    /// [`check_sync`](Self::check_sync) at the current time, read from a clock that
    /// costs a few nanoseconds instead of `SystemTime::now()`'s tens: the CPU's
    /// time-stamp counter (through `quanta`, as `governor` reads it), kept within
    /// microseconds of the system clock by re-reading that once a second. Decisions
    /// made through either method on one store agree.
    #[inline]
    pub fn check_now(&self, key: &str, policy: &Policy, cost: u64) -> Decision {
        self.decide(key, policy, cost, WallClock::global().now_us())
    }

    #[inline]
    fn decide(&self, key: &str, policy: &Policy, cost: u64, now: u64) -> Decision {
        let key = bounded_key(key, false);
        let key = key.as_bytes();
        let hash = self.hasher.hash(key);
        let shard = self.shard(hash);
        {
            let inner = shard.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = inner.table.find(hash, |e| e.key.as_bytes() == key) {
                match (&entry.cell, single_gcra(policy)) {
                    (Cell::Gcra { id, tat }, Some(w)) if id.get() == w.id => {
                        return decide_gcra(w, tat, now, cost);
                    }
                    (Cell::Locked(locked), _) => return decide_locked(locked, policy, now, cost),
                    (Cell::Gcra { .. }, _) => {}
                }
            }
        }
        self.decide_adding(shard, hash, key, policy, cost, now)
    }

    /// The write-locked path: a new key, or a lock-free cell that must become locked.
    #[cold]
    #[inline(never)]
    fn decide_adding(
        &self,
        shard: &Shard,
        hash: u64,
        key: &[u8],
        policy: &Policy,
        cost: u64,
        now: u64,
    ) -> Decision {
        let mut inner = shard.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = inner.table.find_mut(hash, |e| e.key.as_bytes() == key) {
            // Another thread may have added it meanwhile, for this very policy.
            if let Some(decision) = decide_cell(&entry.cell, policy, now, cost) {
                return decision;
            }
            entry.cell.make_locked();
            if let Cell::Locked(locked) = &entry.cell {
                return decide_locked(locked, policy, now, cost);
            }
        }
        let mut cell = Cell::new(policy);
        // A fresh cell always fits its policy: the fallback is unreachable.
        let decision =
            decide_cell(&cell, policy, now, cost).unwrap_or_else(|| Decision::empty(false, now));
        if cell.recover_at() > now {
            inner.sweep(now.saturating_sub(IDLE_GRACE_US), &self.hasher);
            let hasher = &self.hasher;
            inner.table.insert_unique(
                hash,
                Entry {
                    key: StoredKey::new(key),
                    cell,
                },
                |e| hasher.hash(e.key.as_bytes()),
            );
        }
        decision
    }

    /// How many keys hold state (recovered ones may linger until the next sweep).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.0.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .table
                    .len()
            })
            .sum()
    }

    /// Whether no key holds state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every recovered entry now. Never needed (the store sweeps itself as it
    /// grows); useful to measure memory.
    pub fn sweep(&self, now: SystemTime) {
        let now = micros(now);
        for shard in &*self.shards {
            shard
                .0
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .sweep_now(now, &self.hasher);
        }
    }
}

impl Inner {
    /// Sweeps when the shard has doubled, dropping entries recovered by `recovered_by`.
    fn sweep(&mut self, recovered_by: u64, hasher: &KeyHasher) {
        if self.table.len() >= self.sweep_at {
            self.sweep_now(recovered_by, hasher);
        }
    }

    fn sweep_now(&mut self, recovered_by: u64, hasher: &KeyHasher) {
        self.table.retain(|e| e.cell.recover_at() > recovered_by);
        let len = self.table.len();
        self.sweep_at = (len * 2).max(MIN_SWEEP);
        if self.table.capacity() > 4 * len + MIN_SWEEP {
            self.table
                .shrink_to(len * 2, |e| hasher.hash(e.key.as_bytes()));
        }
    }
}

impl Store for MemoryStore {
    fn check(
        &self,
        key: &str,
        policy: &Policy,
        cost: u64,
        now: SystemTime,
    ) -> impl Future<Output = Result<Decision, Error>> + Send {
        std::future::ready(Ok(self.check_sync(key, policy, cost, now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Algorithm, Limit};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn an_entry_is_small() {
        // The documented memory per key: the GCRA cell's id niche holds the enum's tag.
        assert_eq!(size_of::<Cell>(), 16);
        assert_eq!(size_of::<Entry>(), 48);
    }

    /// GCRA, 10 a second: a key recovers within 100 ms of its check.
    fn ten_per_second() -> Policy {
        Policy::builder("t")
            .limit(Limit::new("s", Algorithm::Gcra, 10, Duration::from_secs(1)))
            .build()
            .unwrap()
    }

    #[test]
    fn memory_is_bounded_without_a_cleanup_call() {
        let store = MemoryStore::new();
        let policy = ten_per_second();
        let mut now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut peak = 0;
        for round in 0..50 {
            for i in 0..1_000 {
                let key = format!("k{round}-{i}");
                assert!(store.check_sync(&key, &policy, 1, now).allowed());
            }
            peak = peak.max(store.len());
            // Each key recovers within 100 ms; a second later all of them have.
            now += Duration::from_secs(1);
        }
        // 50 000 distinct keys seen; a few thousand held at most.
        assert!(peak <= 64 * (2 * 64) + 2_000, "peak {peak}");
        assert!(store.len() < 10_000);
        store.sweep(now);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn recently_recovered_keys_survive_automatic_sweeps() {
        let store = MemoryStore::new();
        let policy = ten_per_second();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let add = |prefix: &str, now| {
            for i in 0..5_000 {
                store.check_sync(&format!("{prefix}{i}"), &policy, 1, now);
            }
        };
        add("a", t0);
        // Half a second on, every "a" key has recovered (each within 100 ms), and adding
        // as many keys again sweeps every shard: the "a" keys are inside the grace.
        add("b", t0 + Duration::from_millis(500));
        assert_eq!(store.len(), 10_000);
        // Past the grace, the next sweeps drop them.
        add("c", t0 + Duration::from_secs(3));
        add("d", t0 + Duration::from_secs(3));
        assert!(store.len() < 15_000, "{}", store.len());
    }

    #[test]
    fn check_now_uses_the_current_time() {
        let store = MemoryStore::new();
        let policy = Policy::builder("t")
            .limit(Limit::new("m", Algorithm::Gcra, 2, Duration::from_secs(60)))
            .build()
            .unwrap();
        assert!(store.check_now("a", &policy, 2).allowed());
        let denied = store.check_now("a", &policy, 1);
        assert!(!denied.allowed());
        // The same state through the system clock: still denied, about 30 s to wait.
        let again = store.check_sync("a", &policy, 1, SystemTime::now());
        assert!(!again.allowed());
        let wait = again.retry_after().unwrap();
        assert!((29..=30).contains(&wait.as_secs()), "{wait:?}");
    }

    #[test]
    fn recovered_entries_lose_nothing() {
        let store = MemoryStore::new();
        let policy = Policy::builder("t")
            .limit(Limit::new(
                "m",
                Algorithm::FixedWindow,
                2,
                Duration::from_secs(60),
            ))
            .build()
            .unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(600);
        assert!(store.check_sync("a", &policy, 2, t0).allowed());
        assert!(!store.check_sync("a", &policy, 1, t0).allowed());
        // Still limited just before the window ends, even after a sweep.
        store.sweep(t0 + Duration::from_secs(59));
        assert!(
            !store
                .check_sync("a", &policy, 1, t0 + Duration::from_secs(59))
                .allowed()
        );
        store.sweep(t0 + Duration::from_secs(60));
        assert_eq!(store.len(), 0);
        assert!(
            store
                .check_sync("a", &policy, 2, t0 + Duration::from_secs(60))
                .allowed()
        );
        // A peek (cost 0) stores nothing for an unknown key.
        assert!(store.check_sync("b", &policy, 0, t0).allowed());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn long_keys_are_stored_apart_from_short_ones() {
        let store = MemoryStore::new();
        let policy = Policy::builder("t")
            .limit(Limit::burst(2, 1, Duration::from_secs(60)))
            .build()
            .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(6_000);
        let inline = "k".repeat(INLINE_KEY);
        let boxed = "k".repeat(INLINE_KEY + 1);
        let prefix = "k".repeat(INLINE_KEY - 1);
        for key in [&inline, &boxed, &prefix] {
            assert!(store.check_sync(key, &policy, 2, now).allowed(), "{key}");
        }
        for key in [&inline, &boxed, &prefix] {
            assert!(!store.check_sync(key, &policy, 1, now).allowed(), "{key}");
        }
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_gcra_key_keeps_its_time_when_its_policy_grows() {
        let store = MemoryStore::new();
        let burst = Limit::burst(3, 60, Duration::from_secs(60));
        let alone = Policy::builder("a").limit(burst.clone()).build().unwrap();
        let both = Policy::builder("b")
            .limit(burst)
            .limit(Limit::per_day(100))
            .build()
            .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(6_000);
        assert!(store.check_sync("k", &alone, 2, now).allowed());
        let d = store.check_sync("k", &both, 1, now);
        assert!(d.allowed());
        assert_eq!(d.windows()[0].remaining(), 0);
        assert_eq!(d.windows()[1].remaining(), 99);
        // And back: the lock-free cell became a locked one, still counting.
        let d = store.check_sync("k", &alone, 1, now);
        assert!(!d.allowed());
        assert_eq!(d.retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn changing_a_quota_keeps_the_state() {
        let store = MemoryStore::new();
        let small = Policy::per_minute(5).unwrap();
        let large = Policy::per_minute(8).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(6_000);
        for _ in 0..5 {
            assert!(store.check_sync("k", &small, 1, now).allowed());
        }
        assert!(!store.check_sync("k", &small, 1, now).allowed());
        let d = store.check_sync("k", &large, 1, now);
        assert!(d.allowed());
        assert_eq!(d.windows()[0].remaining(), 2);
        // A policy with another window starts that window fresh, keeps the shared one.
        let both = Policy::builder("b")
            .limit(Limit::per_minute(8))
            .limit(Limit::per_day(100))
            .build()
            .unwrap();
        let d = store.check_sync("k", &both, 1, now);
        assert!(d.allowed());
        assert_eq!(d.windows()[0].remaining(), 1);
        assert_eq!(d.windows()[1].remaining(), 99);
    }
}
