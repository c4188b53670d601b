//! The service: create, verify (with its cache), revoke, rotate, list, flush.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::error::{Error, ErrorKind};
use crate::format::KeyFormat;
use crate::hash::{DigestPrefixHasher, KeyHash, KeyHasher, Pepper};
use crate::record::{
    CreatedKey, KeyRecord, NewKey, StoredKey, VerifiedKey, address_allowed, to_millis,
    truncate_millis,
};
use crate::scope::normalize_scopes;
use crate::store::KeyStore;

const MAX_OWNER_LEN: usize = 256;
const MAX_PLAN_NAME_LEN: usize = 64;
const MAX_NETWORKS: usize = 64;
const MAX_KEY_ID_LEN: usize = 64;
const KEY_ID_RANDOM_LEN: usize = 16;
const NEVER_POLLED: i64 = i64::MIN;
/// Last-use times are kept to this precision (ms): a cached key is buffered again only
/// when a second has passed since it was last buffered.
const LAST_USED_RESOLUTION_MS: i64 = 1_000;

/// How verified keys are cached, and how fast revocations made elsewhere arrive.
///
/// See the crate documentation, "Revocation across instances".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most keys kept (0 turns the cache off: every verification reads the store).
    /// Default 10 000.
    pub capacity: usize,
    /// An entry is re-read from the store once it is this old, whatever the epoch says.
    /// Default 60 s.
    pub max_age: Duration,
    /// How often, at most, verification reads the store's revocation epoch. A revocation
    /// made on another instance or with the CLI is honoured here within this interval
    /// plus one store round trip. Default 500 ms, to keep the promised one second.
    /// Zero reads the epoch on every verification (one indexed one-row read per request):
    /// a revocation anywhere is then honoured by the very next request everywhere, while
    /// the key record itself still comes from the cache.
    pub revocation_poll_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_age: Duration::from_secs(60),
            revocation_poll_interval: Duration::from_millis(500),
        }
    }
}

impl CacheConfig {
    /// No cache: every verification looks the key up in the store.
    pub fn disabled() -> Self {
        Self {
            capacity: 0,
            ..Self::default()
        }
    }
}

/// The API-key service: owns a [`KeyStore`], the key format, the hasher (with the pepper,
/// if any), the verification cache and the batched last-used buffer.
///
/// Share one instance per process (it is `Send + Sync`; wrap it in an `Arc`).
pub struct ApiKeys<S> {
    store: S,
    format: KeyFormat,
    hasher: KeyHasher,
    config: CacheConfig,
    cache: Cache,
    last_used: Mutex<HashMap<Arc<str>, SystemTime>>,
}

impl<S> std::fmt::Debug for ApiKeys<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("format", &self.format)
            .field("peppered", &matches!(self.hasher, KeyHasher::Hmac(_)))
            .field("cache", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: KeyStore> ApiKeys<S> {
    /// A service over `store` with the default format (`pk_live_`), no pepper (plain
    /// SHA-256) and the default cache.
    pub fn new(store: S) -> Self {
        Self {
            store,
            format: KeyFormat::default(),
            hasher: KeyHasher::new(None),
            config: CacheConfig::default(),
            cache: Cache::new(),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    /// Uses another key format (kind and environment).
    #[must_use]
    pub fn with_format(mut self, format: KeyFormat) -> Self {
        self.format = format;
        self.cache.clear();
        self
    }

    /// Hashes keys with HMAC-SHA256 under `pepper` instead of plain SHA-256. Keys created
    /// without the pepper (or with another one) become unknown.
    #[must_use]
    pub fn with_pepper(mut self, pepper: Pepper) -> Self {
        self.hasher = KeyHasher::new(Some(&pepper));
        self.cache.clear();
        self
    }

    /// Uses another cache configuration.
    #[must_use]
    pub fn with_cache(mut self, config: CacheConfig) -> Self {
        self.config = config;
        self.cache.clear();
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The key format.
    pub fn format(&self) -> &KeyFormat {
        &self.format
    }

    /// Creates a key. The raw key in the answer is the only copy: the store gets its hash.
    pub async fn create(&self, spec: NewKey, now: SystemTime) -> Result<CreatedKey, Error> {
        let now = truncate_millis(now);
        validate_text("owner", &spec.owner, MAX_OWNER_LEN)?;
        validate_text("plan name", &spec.plan.name, MAX_PLAN_NAME_LEN)?;
        let scopes = normalize_scopes(spec.scopes)?;
        let allowed_networks = normalize_networks(spec.allowed_networks)?;
        let expires_at = spec.expires_at.map(truncate_millis);
        if expires_at.is_some_and(|at| at <= now) {
            return Err(Error::invalid("expiry must be after the creation time"));
        }
        let key = self.format.generate();
        let record = KeyRecord {
            key_id: new_key_id(),
            owner: spec.owner,
            environment: self.format.environment(),
            hint: key.hint(),
            scopes,
            plan: spec.plan,
            rate_limit_per_minute: spec.rate_limit_per_minute,
            allowed_networks,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            rotated_from: None,
            rotated_to: None,
            grace_until: None,
        };
        let stored = StoredKey {
            hash: self
                .hasher
                .hash(self.format.hash_input(key.expose_secret())),
            record,
        };
        self.store.insert(&stored).await?;
        Ok(CreatedKey {
            key,
            record: stored.record,
        })
    }

    /// Verifies a presented key (the `X-API-Key` value, `None` when absent) for a client
    /// address at `now`.
    ///
    /// Returns the key's identity, scopes and limits, or an error whose
    /// [`kind`](Error::kind) is the reason: [`Missing`](ErrorKind::Missing),
    /// [`Malformed`](ErrorKind::Malformed) (decided offline),
    /// [`WrongEnvironment`](ErrorKind::WrongEnvironment), [`Unknown`](ErrorKind::Unknown),
    /// [`Revoked`](ErrorKind::Revoked), [`Expired`](ErrorKind::Expired),
    /// [`AddressNotAllowed`](ErrorKind::AddressNotAllowed), or
    /// [`Storage`](ErrorKind::Storage) when the store cannot answer (fail closed).
    pub async fn verify(
        &self,
        raw_key: Option<&str>,
        client_ip: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<VerifiedKey, Error> {
        let raw = match raw_key {
            None | Some("") => return Err(Error::new(ErrorKind::Missing)),
            Some(raw) => raw,
        };
        let parsed = self.format.parse(raw)?;
        if parsed.environment() != self.format.environment() {
            return Err(Error::new(ErrorKind::WrongEnvironment));
        }
        let hash = self.hasher.hash(self.format.hash_input(raw));
        let entry = if self.config.capacity == 0 {
            self.fetch(&hash, now, None).await?
        } else {
            self.refresh_epoch(now).await?;
            match self.cache.get(&hash, now, self.config.max_age) {
                Some(entry) => entry,
                None => {
                    let generation = self.cache.generation();
                    self.fetch(&hash, now, Some(generation)).await?
                }
            }
        };
        entry.check(client_ip, now)?;
        self.note_use(&entry, now);
        Ok(entry.verified.clone())
    }

    async fn fetch(
        &self,
        hash: &KeyHash,
        now: SystemTime,
        generation: Option<u64>,
    ) -> Result<Arc<CacheEntry>, Error> {
        let stored = self
            .store
            .find_by_hash(hash)
            .await?
            .ok_or(Error::new(ErrorKind::Unknown))?;
        // `KeyHash` equality is constant-time.
        if stored.hash != *hash {
            return Err(Error::new(ErrorKind::Unknown));
        }
        let entry = Arc::new(CacheEntry::new(&stored.record, now));
        if let Some(generation) = generation {
            self.cache
                .insert(*hash, Arc::clone(&entry), generation, self.config.capacity);
        }
        Ok(entry)
    }

    /// Reads the store's revocation epoch when the last read is older than the poll
    /// interval, and empties the cache when it moved.
    async fn refresh_epoch(&self, now: SystemTime) -> Result<(), Error> {
        let now_ms = to_millis(now);
        let interval_ms =
            i64::try_from(self.config.revocation_poll_interval.as_millis()).unwrap_or(i64::MAX);
        let last = self.cache.last_poll_ms.load(Ordering::Acquire);
        let fresh =
            last != NEVER_POLLED && now_ms >= last && now_ms.saturating_sub(last) < interval_ms;
        if fresh {
            return Ok(());
        }
        // One caller polls; the others carry on with the cache for the round trip
        // (except with a zero interval, where every verification reads the epoch).
        let lost_race = self
            .cache
            .last_poll_ms
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
            .is_err();
        if lost_race && last != NEVER_POLLED && interval_ms > 0 {
            return Ok(());
        }
        match self.store.revocation_epoch().await {
            Ok(epoch) => {
                let previous = self.cache.epoch.swap(epoch, Ordering::AcqRel);
                if previous != epoch {
                    self.cache.clear();
                }
                Ok(())
            }
            Err(error) => {
                // Let the next request poll again rather than trusting the cache.
                self.cache
                    .last_poll_ms
                    .store(NEVER_POLLED, Ordering::Release);
                self.cache.clear();
                Err(error)
            }
        }
    }

    /// Buffers the use for [`flush`](Self::flush). A key is noted at most once per
    /// [`LAST_USED_RESOLUTION_MS`] by a cached entry, so the hot path is one atomic load.
    fn note_use(&self, entry: &CacheEntry, now: SystemTime) {
        let now_ms = to_millis(now);
        let noted = entry.noted_ms.load(Ordering::Relaxed);
        if now_ms < noted.saturating_add(LAST_USED_RESOLUTION_MS) {
            return;
        }
        entry.noted_ms.fetch_max(now_ms, Ordering::Relaxed);
        let mut buffer = lock(&self.last_used);
        match buffer.get_mut(&entry.key_id) {
            Some(at) => {
                if *at < now {
                    *at = now;
                }
            }
            None => {
                buffer.insert(Arc::clone(&entry.key_id), now);
            }
        }
    }

    /// Writes the buffered last-use times to the store in one batch and returns how many
    /// keys were updated. Last-use times have a precision of one second. Call it
    /// periodically (every few seconds) and at shutdown; on error the times stay buffered
    /// for the next call.
    pub async fn flush(&self) -> Result<usize, Error> {
        let pending: Vec<(Arc<str>, SystemTime)> = {
            let mut buffer = lock(&self.last_used);
            std::mem::take(&mut *buffer).into_iter().collect()
        };
        if pending.is_empty() {
            return Ok(0);
        }
        let batch: Vec<(String, SystemTime)> = pending
            .iter()
            .map(|(id, at)| (id.to_string(), truncate_millis(*at)))
            .collect();
        match self.store.record_last_used(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(error) => {
                let mut buffer = lock(&self.last_used);
                for (id, at) in pending {
                    let slot = buffer.entry(id).or_insert(at);
                    if *slot < at {
                        *slot = at;
                    }
                }
                Err(error)
            }
        }
    }

    /// Revokes a key. Effective at once on this instance, and within the revocation poll
    /// interval on every other instance sharing the store. Returns `false` when it was
    /// already revoked; an unknown id is [`NotFound`](ErrorKind::NotFound).
    pub async fn revoke(&self, key_id: &str, now: SystemTime) -> Result<bool, Error> {
        check_key_id(key_id)?;
        let revoked = self.store.revoke(key_id, truncate_millis(now)).await?;
        self.cache.clear();
        Ok(revoked)
    }

    /// Rotates a key: creates a successor with the same owner, scopes, plan, limits,
    /// networks and expiry (`rotated_from` set), and lets the old key work until
    /// `now + grace`, or its own expiry if sooner. A zero grace ends the old key at once.
    ///
    /// The old key must be active and not already rotated.
    pub async fn rotate(
        &self,
        key_id: &str,
        grace: Duration,
        now: SystemTime,
    ) -> Result<CreatedKey, Error> {
        check_key_id(key_id)?;
        let now = truncate_millis(now);
        let old = self
            .store
            .get(key_id)
            .await?
            .ok_or(Error::new(ErrorKind::NotFound))?;
        if old.revoked_at.is_some() {
            return Err(Error::new(ErrorKind::Revoked));
        }
        if old.rotated_to.is_some() {
            return Err(Error::new(ErrorKind::AlreadyRotated));
        }
        if !old.is_active(now) {
            return Err(Error::new(ErrorKind::Expired));
        }
        let mut grace_until = truncate_millis(now.checked_add(grace).unwrap_or(now));
        if grace_until < now {
            grace_until = now;
        }
        if let Some(expiry) = old.expires_at {
            grace_until = grace_until.min(expiry);
        }
        let key = self.format.generate();
        let record = KeyRecord {
            key_id: new_key_id(),
            hint: key.hint(),
            environment: self.format.environment(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            rotated_from: Some(old.key_id.clone()),
            rotated_to: None,
            grace_until: None,
            ..old
        };
        let stored = StoredKey {
            hash: self
                .hasher
                .hash(self.format.hash_input(key.expose_secret())),
            record,
        };
        let result = self.store.rotate(key_id, &stored, grace_until).await;
        self.cache.clear();
        result?;
        Ok(CreatedKey {
            key,
            record: stored.record,
        })
    }

    /// Key records, all or one owner's, oldest first. Never a raw key or a hash.
    pub async fn list(&self, owner: Option<&str>) -> Result<Vec<KeyRecord>, Error> {
        self.store.list(owner).await
    }

    /// One key record by id ([`NotFound`](ErrorKind::NotFound) if unknown).
    pub async fn get(&self, key_id: &str) -> Result<KeyRecord, Error> {
        check_key_id(key_id)?;
        self.store
            .get(key_id)
            .await?
            .ok_or(Error::new(ErrorKind::NotFound))
    }

    /// Empties the verification cache, so that the next verification of every key reads
    /// the store. For invalidation messages from outside (a pub/sub channel, say).
    pub fn invalidate_cache(&self) {
        self.cache.clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn check_key_id(key_id: &str) -> Result<(), Error> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN {
        return Err(Error::new(ErrorKind::NotFound));
    }
    Ok(())
}

fn validate_text(what: &'static str, value: &str, max_len: usize) -> Result<(), Error> {
    if value.is_empty() || value.chars().count() > max_len || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} must be 1 to {max_len} characters without control characters"
        )));
    }
    Ok(())
}

fn normalize_networks(networks: Vec<IpNet>) -> Result<Vec<IpNet>, Error> {
    if networks.len() > MAX_NETWORKS {
        return Err(Error::invalid("at most 64 allowed networks per key"));
    }
    let mut out: Vec<IpNet> = Vec::with_capacity(networks.len());
    for network in networks {
        let network = network.trunc();
        if !out.contains(&network) {
            out.push(network);
        }
    }
    Ok(out)
}

fn new_key_id() -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(4 + KEY_ID_RANDOM_LEN);
    id.push_str("key_");
    for _ in 0..KEY_ID_RANDOM_LEN {
        id.push(char::from(rng.sample(Alphanumeric)));
    }
    id
}

/// What the cache keeps per key: everything verification checks, decided from one
/// store read.
struct CacheEntry {
    verified: VerifiedKey,
    key_id: Arc<str>,
    revoked: bool,
    valid_until: Option<SystemTime>,
    allowed_networks: Vec<IpNet>,
    fetched_at: SystemTime,
    /// When this entry last buffered a use (ms), `i64::MIN` if never.
    noted_ms: AtomicI64,
}

impl CacheEntry {
    fn new(record: &KeyRecord, now: SystemTime) -> Self {
        Self {
            verified: VerifiedKey::from_record(record),
            key_id: Arc::from(record.key_id.as_str()),
            revoked: record.revoked_at.is_some(),
            valid_until: record.valid_until(),
            allowed_networks: record.allowed_networks.clone(),
            fetched_at: now,
            noted_ms: AtomicI64::new(i64::MIN),
        }
    }

    fn check(&self, client_ip: Option<IpAddr>, now: SystemTime) -> Result<(), Error> {
        if self.revoked {
            return Err(Error::new(ErrorKind::Revoked));
        }
        if self.valid_until.is_some_and(|until| now >= until) {
            return Err(Error::new(ErrorKind::Expired));
        }
        if !address_allowed(&self.allowed_networks, client_ip) {
            return Err(Error::new(ErrorKind::AddressNotAllowed));
        }
        Ok(())
    }
}

type CacheMap = HashMap<KeyHash, Arc<CacheEntry>, DigestPrefixHasher>;

struct Cache {
    map: RwLock<CacheMap>,
    /// Incremented by every clear: an entry read from the store before a clear is not
    /// inserted after it.
    generation: AtomicU64,
    /// The last revocation epoch read from the store.
    epoch: AtomicU64,
    /// When the epoch was last read (ms since the epoch), or `NEVER_POLLED`.
    last_poll_ms: AtomicI64,
    /// Which eighth of the cache the next eviction empties.
    sweep: AtomicU64,
}

impl Cache {
    fn new() -> Self {
        Self {
            map: RwLock::new(HashMap::with_hasher(DigestPrefixHasher::default())),
            generation: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            last_poll_ms: AtomicI64::new(NEVER_POLLED),
            sweep: AtomicU64::new(0),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheMap> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheMap> {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, hash: &KeyHash, now: SystemTime, max_age: Duration) -> Option<Arc<CacheEntry>> {
        let entry = Arc::clone(self.read().get(hash)?);
        let fresh = now
            .duration_since(entry.fetched_at)
            .is_ok_and(|age| age < max_age);
        fresh.then_some(entry)
    }

    fn insert(&self, hash: KeyHash, entry: Arc<CacheEntry>, generation: u64, capacity: usize) {
        let mut map = self.write();
        // Checked under the write lock, which `clear` also takes.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= capacity && !map.contains_key(&hash) {
            // Full: drop one eighth of the entries, chosen by the (uniform) digest, in
            // one pass. Amortised over the inserts that refill it, that is a constant
            // cost per insert; evicting "the first key" one at a time instead degrades
            // into scanning an ever longer empty prefix of the table.
            let eighth = self.sweep.fetch_add(1, Ordering::Relaxed) % 8;
            map.retain(|key, _| u64::from(key.as_bytes()[0] % 8) != eighth);
            if map.len() >= capacity {
                // A degenerate capacity (below 8 entries per eighth): make room anyway.
                map.clear();
            }
        }
        map.insert(hash, entry);
    }

    fn clear(&self) {
        let mut map = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}
