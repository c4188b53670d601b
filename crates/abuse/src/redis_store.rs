//! Shared state in Redis, degrading to local state when Redis fails.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{RedisError, RedisResult};

use crate::decision::{
    AccountKey, AuthCounts, AuthLock, AuthSubject, Behaviour, Flag, Observation, Reason,
    WindowSpec, estimate, from_unix_ms, unix_ms, unix_secs, weight_permille,
};
use crate::identity::Identity;
use crate::memory::{MAX_DISTINCT, MemoryStore};
use crate::redis_batch::{Batch, Delta, KINDS, Work};
use crate::store::AbuseStore;

/// The Redis [`AbuseStore`]: every instance sees the same behaviour, flags and locks.
///
/// Keys (prefix `palisade:abuse` unless changed):
/// - `<p>:b:{<identity>}:<epoch>`: hash of per-window counters (`r` requests, `e` errors,
///   `b` bytes, `a` authentication requests, `n` near-limit requests), expiring after two
///   windows;
/// - `<p>:b:{<identity>}:ua|net|ep:<epoch>`: HyperLogLogs of user agents, networks and
///   endpoints (distinct counts over two windows are one `PFCOUNT` of both);
/// - `<p>:b:{<identity>}:hours`: sorted set of active hours;
/// - `<p>:{flags}:data` / `<p>:{flags}:exp`: flags by identity and their expiry;
/// - `<p>:auth:{a:<ip>}:...` and `<p>:auth:{u:<account hash>}:...`: failure counters,
///   distinct-account HyperLogLog and locks.
///
/// Hash tags keep each identity's keys in one cluster slot; one pipeline per operation.
/// On any Redis error the operation is served from a local [`MemoryStore`] and a warning
/// is logged (the first failure and every 1000th after it), never an error.
///
/// By default every recorded request is one pipeline and every flag or lock check one
/// read. [`RedisStore::batched`] trades a bounded delay in what *other* instances see
/// for far less Redis traffic; see there.
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    prefix: String,
    local: MemoryStore,
    failures: AtomicU64,
    batch: Option<Box<Batch>>,
}

impl<C> std::fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<C: ConnectionLike + Clone + Send + Sync> RedisStore<C> {
    /// A store on `conn` (a `ConnectionManager`, a multiplexed connection, ...) with the
    /// key prefix `palisade:abuse`.
    pub fn new(conn: C) -> Self {
        Self::with_prefix(conn, "palisade:abuse")
    }

    /// A store whose keys start with `prefix` (tests use a unique one).
    pub fn with_prefix(conn: C, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
            local: MemoryStore::new(),
            failures: AtomicU64::new(0),
            batch: None,
        }
    }

    /// Write-behind mode: what this instance's requests add is summed per identity in
    /// memory and written, for every identity at once, in one pipeline at most once per
    /// `interval` (the first `record` after the interval sends it, as does
    /// [`RedisStore::flush`], which a server calls on a timer so that quiet periods are
    /// flushed too); the same pipeline reads back the shared counts. Flags and
    /// authentication locks read from Redis are reused for one `interval`.
    ///
    /// What this instance records, flags and locks counts at once on this instance;
    /// other instances see it within one `interval`, and this one sees theirs as late.
    /// Rules are judged on the shared counts of the last flush plus this instance's
    /// requests since. A zero `interval` keeps the default, unbatched mode. Every
    /// request is also kept in the local store, which answers while Redis fails.
    #[must_use]
    pub fn batched(mut self, interval: Duration) -> Self {
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self.batch = (ms > 0).then(|| Box::new(Batch::new(ms)));
        self
    }

    /// Sends what batched mode has summed so far (nothing to do when unbatched).
    pub async fn flush(&self, now: SystemTime) {
        let Some(batch) = &self.batch else { return };
        let Some(work) = batch.take(unix_ms(now)) else {
            return;
        };
        // If this future is dropped mid-flight (a cancelled request), the next flush
        // must still be able to start; the sums are lost to Redis, not to the local store.
        let mut in_flight = InFlight { batch, done: false };
        let replies = match self.send(&work, now).await {
            Ok(replies) => Some(replies),
            Err(e) => {
                self.degraded("flush", &e);
                None
            }
        };
        in_flight.done = true;
        batch.finish(&work, replies, now);
    }

    /// Writes each identity's delta and reads back its behaviour, in pipelines of at
    /// most 256 identities.
    async fn send(&self, work: &Work, now: SystemTime) -> RedisResult<Vec<Behaviour>> {
        let mut behaviours = Vec::with_capacity(work.len());
        let mut conn = self.conn.clone();
        for chunk in work.chunks(256) {
            let mut pipe = redis::pipe();
            for (identity, delta) in chunk {
                self.push_delta(&mut pipe, identity, delta, now);
            }
            let values: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
            let mut values = values.into_iter();
            for (_, delta) in chunk {
                let reply = (
                    next_reply(&mut values)?,
                    next_reply(&mut values)?,
                    next_reply(&mut values)?,
                    next_reply(&mut values)?,
                    next_reply(&mut values)?,
                    next_reply(&mut values)?,
                );
                behaviours.push(behaviour_of(reply, now, delta.window));
            }
        }
        Ok(behaviours)
    }

    /// The local store that answers while Redis fails.
    pub fn local(&self) -> &MemoryStore {
        &self.local
    }

    fn degraded(&self, op: &'static str, error: &RedisError) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(1000) {
            tracing::warn!(
                target: "palisade_abuse",
                operation = op,
                failures = n + 1,
                error = %error,
                "Redis unavailable; abuse state degraded to this instance's memory"
            );
        }
    }

    fn behaviour_base(&self, identity: &Identity) -> String {
        format!("{}:b:{{{}}}", self.prefix, identity.as_str())
    }

    fn flags_keys(&self) -> (String, String) {
        (
            format!("{}:{{flags}}:data", self.prefix),
            format!("{}:{{flags}}:exp", self.prefix),
        )
    }

    fn auth_base(&self, subject: AuthSubject) -> String {
        match subject {
            AuthSubject::Address(ip) => format!("{}:auth:{{a:{ip}}}", self.prefix),
            AuthSubject::Account(key) => format!("{}:auth:{{u:{}}}", self.prefix, key.to_hex()),
        }
    }

    async fn try_record(
        &self,
        identity: &Identity,
        o: &Observation<'_>,
        now: SystemTime,
        window: WindowSpec,
    ) -> RedisResult<Behaviour> {
        let now_secs = unix_secs(now);
        let mut text = [0u8; 48];
        let delta = Delta::single(
            o,
            network_text(o.network, &mut text),
            now_secs / window.window_secs.max(1),
            now_secs / 3600,
            window,
        );
        let mut pipe = redis::pipe();
        self.push_delta(&mut pipe, identity, &delta, now);
        let mut conn = self.conn.clone();
        let reply: Reply = pipe.query_async(&mut conn).await?;
        Ok(behaviour_of(reply, now, window))
    }

    /// Adds `delta`'s writes (into its epoch's keys) and the reads of the behaviour at
    /// `now` (six replies, see [`Reply`]) to `pipe`.
    fn push_delta(
        &self,
        pipe: &mut redis::Pipeline,
        identity: &Identity,
        delta: &Delta,
        now: SystemTime,
    ) {
        let window = delta.window;
        let now_secs = unix_secs(now);
        let w = window.window_secs.max(1);
        let ttl = w.saturating_mul(2).saturating_add(60);
        let base = self.behaviour_base(identity);
        let key = format!("{base}:{}", delta.epoch);
        let hours_key = format!("{base}:hours");
        for (field, amount) in ["r", "e", "b", "a", "n"].into_iter().zip(delta.counters) {
            if amount > 0 || field == "r" {
                let amount = i64::try_from(amount).unwrap_or(i64::MAX);
                pipe.cmd("HINCRBY")
                    .arg(&key)
                    .arg(field)
                    .arg(amount)
                    .ignore();
            }
        }
        pipe.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
        for (name, values) in KINDS.into_iter().zip(&delta.values) {
            if values.is_empty() {
                continue;
            }
            let key = format!("{base}:{name}:{}", delta.epoch);
            pipe.cmd("PFADD").arg(&key).arg(values).ignore();
            pipe.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
        }
        let hour = now_secs / 3600;
        if !delta.hours.is_empty() {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&hours_key);
            for h in &delta.hours {
                zadd.arg(h).arg(h);
            }
            pipe.add_command(zadd).ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&hours_key)
            .arg("-inf")
            .arg(format!(
                "({}",
                hour.saturating_sub(u64::from(window.hours)) + 1
            ))
            .ignore();
        pipe.cmd("EXPIRE")
            .arg(&hours_key)
            .arg((u64::from(window.hours) + 1) * 3600)
            .ignore();
        self.push_reads(pipe, identity, now, window);
    }

    /// Adds the reads of `identity`'s behaviour at `now` (six replies, see [`Reply`]).
    fn push_reads(
        &self,
        pipe: &mut redis::Pipeline,
        identity: &Identity,
        now: SystemTime,
        window: WindowSpec,
    ) {
        let epoch = unix_secs(now) / window.window_secs.max(1);
        let prev = epoch.saturating_sub(1);
        let base = self.behaviour_base(identity);
        pipe.cmd("HMGET")
            .arg(format!("{base}:{epoch}"))
            .arg(&["r", "e", "b", "a", "n"]);
        pipe.cmd("HMGET")
            .arg(format!("{base}:{prev}"))
            .arg(&["r", "e", "b", "a", "n"]);
        for name in KINDS {
            pipe.cmd("PFCOUNT")
                .arg(format!("{base}:{name}:{epoch}"))
                .arg(format!("{base}:{name}:{prev}"));
        }
        pipe.cmd("ZCARD").arg(format!("{base}:hours"));
    }

    async fn try_flag(&self, identity: &Identity, now: SystemTime) -> RedisResult<Option<Flag>> {
        let (data, _) = self.flags_keys();
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("HGET")
            .arg(&data)
            .arg(identity.as_str())
            .query_async(&mut conn)
            .await?;
        Ok(raw
            .and_then(|s| Flag::decode(identity.clone(), &s))
            .filter(|f| f.is_active(now)))
    }

    async fn try_set_flag(&self, flag: &Flag) -> RedisResult<()> {
        let (data, exp) = self.flags_keys();
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("HSET")
            .arg(&data)
            .arg(flag.identity.as_str())
            .arg(flag.encode())
            .ignore()
            .cmd("ZADD")
            .arg(&exp)
            .arg(unix_ms(flag.until))
            .arg(flag.identity.as_str())
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    }

    async fn try_flags(&self, now: SystemTime) -> RedisResult<Vec<Flag>> {
        let (data, exp) = self.flags_keys();
        let now_ms = unix_ms(now);
        let mut conn = self.conn.clone();
        let expired: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&exp)
            .arg("-inf")
            .arg(now_ms)
            .query_async(&mut conn)
            .await?;
        if !expired.is_empty() {
            redis::pipe()
                .cmd("HDEL")
                .arg(&data)
                .arg(&expired)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&exp)
                .arg("-inf")
                .arg(now_ms)
                .ignore()
                .query_async::<()>(&mut conn)
                .await?;
        }
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&data)
            .query_async(&mut conn)
            .await?;
        let mut flags: Vec<Flag> = all
            .into_iter()
            .filter_map(|(id, raw)| Flag::decode(id.parse().ok()?, &raw))
            .filter(|f| f.is_active(now))
            .collect();
        flags.sort_by(|a, b| a.identity.cmp(&b.identity));
        Ok(flags)
    }

    async fn try_clear(
        &self,
        identity: &Identity,
        now: SystemTime,
        window: WindowSpec,
    ) -> RedisResult<()> {
        let (data, exp) = self.flags_keys();
        let w = window.window_secs.max(1);
        let epoch = unix_secs(now) / w;
        let base = self.behaviour_base(identity);
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("HDEL")
            .arg(&data)
            .arg(identity.as_str())
            .ignore()
            .cmd("ZREM")
            .arg(&exp)
            .arg(identity.as_str())
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        let mut keys = vec![format!("{base}:hours")];
        for e in [epoch, epoch.saturating_sub(1)] {
            keys.push(format!("{base}:{e}"));
            for name in ["ua", "net", "ep"] {
                keys.push(format!("{base}:{name}:{e}"));
            }
        }
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await
    }

    async fn try_auth_failure(
        &self,
        address: IpAddr,
        account: Option<AccountKey>,
        now: SystemTime,
        window_secs: u64,
    ) -> RedisResult<AuthCounts> {
        let now_secs = unix_secs(now);
        let w = window_secs.max(1);
        let epoch = now_secs / w;
        let prev = epoch.saturating_sub(1);
        let weight = weight_permille(now_secs, w);
        let ttl = w.saturating_mul(2).saturating_add(60);
        let est = |cur: u64, old: Option<u64>| estimate(cur, old.unwrap_or(0), weight);
        let mut conn = self.conn.clone();

        let a = self.auth_base(AuthSubject::Address(address));
        let mut pipe = redis::pipe();
        pipe.cmd("INCR").arg(format!("{a}:{epoch}"));
        pipe.cmd("EXPIRE")
            .arg(format!("{a}:{epoch}"))
            .arg(ttl)
            .ignore();
        pipe.cmd("GET").arg(format!("{a}:{prev}"));
        if let Some(key) = account {
            pipe.cmd("PFADD")
                .arg(format!("{a}:accts:{epoch}"))
                .arg(key.to_hex())
                .ignore();
            pipe.cmd("EXPIRE")
                .arg(format!("{a}:accts:{epoch}"))
                .arg(ttl)
                .ignore();
        }
        pipe.cmd("PFCOUNT")
            .arg(format!("{a}:accts:{epoch}"))
            .arg(format!("{a}:accts:{prev}"));
        let (cur, old, distinct): (u64, Option<u64>, u64) = pipe.query_async(&mut conn).await?;
        let mut counts = AuthCounts {
            address: est(cur, old),
            account: 0,
            distinct_accounts: distinct.min(MAX_DISTINCT),
        };
        if let Some(key) = account {
            let u = self.auth_base(AuthSubject::Account(key));
            let (cur, old): (u64, Option<u64>) = redis::pipe()
                .cmd("INCR")
                .arg(format!("{u}:{epoch}"))
                .cmd("EXPIRE")
                .arg(format!("{u}:{epoch}"))
                .arg(ttl)
                .ignore()
                .cmd("GET")
                .arg(format!("{u}:{prev}"))
                .query_async(&mut conn)
                .await?;
            counts.account = est(cur, old);
        }
        Ok(counts)
    }

    async fn try_clear_counts(
        &self,
        subject: AuthSubject,
        now: SystemTime,
        window_secs: u64,
        with_lock: bool,
    ) -> RedisResult<()> {
        let epoch = unix_secs(now) / window_secs.max(1);
        let base = self.auth_base(subject);
        let mut keys = Vec::new();
        for e in [epoch, epoch.saturating_sub(1)] {
            keys.push(format!("{base}:{e}"));
            keys.push(format!("{base}:accts:{e}"));
        }
        if with_lock {
            keys.push(format!("{base}:lock"));
        }
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await
    }

    async fn try_auth_lock(
        &self,
        subject: AuthSubject,
        now: SystemTime,
    ) -> RedisResult<Option<AuthLock>> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(format!("{}:lock", self.auth_base(subject)))
            .query_async(&mut conn)
            .await?;
        Ok(raw
            .and_then(|s| {
                let (reason, until) = s.split_once('|')?;
                Some(AuthLock {
                    subject,
                    reason: Reason::from_code(reason)?,
                    until: from_unix_ms(until.parse().ok()?),
                })
            })
            .filter(|l| l.until > now))
    }

    async fn try_set_auth_lock(&self, lock: AuthLock, now: SystemTime) -> RedisResult<()> {
        if let Some(old) = self.try_auth_lock(lock.subject, now).await?
            && old.until >= lock.until
        {
            return Ok(());
        }
        let ttl_ms = unix_ms(lock.until).saturating_sub(unix_ms(now)).max(1);
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(format!("{}:lock", self.auth_base(lock.subject)))
            .arg(format!("{}|{}", lock.reason.code(), unix_ms(lock.until)))
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<()>(&mut conn)
            .await
    }
}

/// Ends a flush that was abandoned before its replies arrived.
struct InFlight<'a> {
    batch: &'a Batch,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.batch.abandon();
        }
    }
}

/// The reads [`RedisStore::push_delta`] adds: the current and previous epochs' counters,
/// the three distinct counts and the active hours.
type Reply = (Vec<Option<u64>>, Vec<Option<u64>>, u64, u64, u64, u64);

fn next_reply<T: redis::FromRedisValue>(
    values: &mut impl Iterator<Item = redis::Value>,
) -> RedisResult<T> {
    let value = values
        .next()
        .ok_or_else(|| RedisError::from((redis::ErrorKind::Client, "pipeline reply too short")))?;
    Ok(redis::from_redis_value(value)?)
}

/// `ip` as text in a stack buffer (an IPv6 address takes at most 45 bytes): recording a
/// request formats its network without an allocation, which a new value alone then costs.
fn network_text(ip: IpAddr, buf: &mut [u8; 48]) -> &str {
    use std::io::Write as _;
    let mut cursor = std::io::Cursor::new(buf.as_mut_slice());
    let written = write!(cursor, "{ip}").is_ok();
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    let text = buf.get(..len).filter(|_| written).unwrap_or_default();
    std::str::from_utf8(text).unwrap_or_default()
}

/// The behaviour at `now` from a [`Reply`]: the previous epoch counts in proportion to
/// how much of it the sliding window still covers.
fn behaviour_of(reply: Reply, now: SystemTime, window: WindowSpec) -> Behaviour {
    let (cur, old, ua, net, ep, hours) = reply;
    let now_secs = unix_secs(now);
    let w = window.window_secs.max(1);
    let weight = weight_permille(now_secs, w);
    let at = |v: &[Option<u64>], i: usize| v.get(i).copied().flatten().unwrap_or(0);
    let est = |i: usize| estimate(at(&cur, i), at(&old, i), weight);
    Behaviour {
        requests: est(0),
        errors: est(1),
        response_bytes: est(2),
        auth_requests: est(3),
        near_limit: est(4),
        distinct_endpoints: ep.min(MAX_DISTINCT),
        distinct_user_agents: ua.min(MAX_DISTINCT),
        distinct_networks: net.min(MAX_DISTINCT),
        active_hours: u32::try_from(hours).unwrap_or(u32::MAX),
    }
}

impl<C: ConnectionLike + Clone + Send + Sync> AbuseStore for RedisStore<C> {
    async fn record(
        &self,
        identity: &Identity,
        o: &Observation<'_>,
        now: SystemTime,
        window: WindowSpec,
    ) -> Behaviour {
        let Some(batch) = &self.batch else {
            return match self.try_record(identity, o, now, window).await {
                Ok(b) => b,
                Err(e) => {
                    self.degraded("record", &e);
                    self.local.record(identity, o, now, window).await
                }
            };
        };
        // Exact local state as well: what answers while Redis fails.
        let local = self.local.record(identity, o, now, window).await;
        let now_ms = unix_ms(now);
        let mut text = [0u8; 48];
        if batch.add(
            identity,
            o,
            network_text(o.network, &mut text),
            now_ms,
            window,
        ) {
            self.flush(now).await;
        }
        batch.behaviour(identity, now_ms).unwrap_or(local)
    }

    async fn flag(&self, identity: &Identity, now: SystemTime) -> Option<Flag> {
        let now_ms = unix_ms(now);
        if let Some(cached) = self
            .batch
            .as_ref()
            .and_then(|batch| batch.cached_flag(identity, now_ms))
        {
            return cached.filter(|f| f.is_active(now));
        }
        match self.try_flag(identity, now).await {
            Ok(f) => {
                if let Some(batch) = &self.batch {
                    batch.cache_flag(identity, f.clone(), now_ms);
                }
                f
            }
            Err(e) => {
                self.degraded("flag", &e);
                self.local.flag(identity, now).await
            }
        }
    }

    async fn set_flag(&self, flag: &Flag) {
        if let Err(e) = self.try_set_flag(flag).await {
            self.degraded("set_flag", &e);
            self.local.set_flag(flag).await;
        }
        if let Some(batch) = &self.batch {
            batch.cache_flag(&flag.identity, Some(flag.clone()), unix_ms(flag.since));
        }
    }

    async fn flags(&self, now: SystemTime) -> Vec<Flag> {
        match self.try_flags(now).await {
            Ok(f) => f,
            Err(e) => {
                self.degraded("flags", &e);
                self.local.flags(now).await
            }
        }
    }

    async fn confirm(
        &self,
        identity: &Identity,
        now: SystemTime,
        window: WindowSpec,
    ) -> Option<Behaviour> {
        let batch = self.batch.as_ref()?;
        let mut pipe = redis::pipe();
        self.push_reads(&mut pipe, identity, now, window);
        let mut conn = self.conn.clone();
        match pipe.query_async::<Reply>(&mut conn).await {
            Ok(reply) => {
                Some(batch.plus_pending(identity, behaviour_of(reply, now, window), unix_ms(now)))
            }
            Err(e) => {
                // The local store, which the record answered from, has the numbers.
                self.degraded("confirm", &e);
                None
            }
        }
    }

    async fn clear(&self, identity: &Identity, now: SystemTime, window: WindowSpec) {
        // Local state may hold what was recorded while Redis was down.
        self.local.clear(identity, now, window).await;
        if let Some(batch) = &self.batch {
            batch.forget(identity);
        }
        if let Err(e) = self.try_clear(identity, now, window).await {
            self.degraded("clear", &e);
        }
    }

    async fn auth_failure(
        &self,
        address: IpAddr,
        account: Option<AccountKey>,
        now: SystemTime,
        window_secs: u64,
    ) -> AuthCounts {
        match self
            .try_auth_failure(address, account, now, window_secs)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                self.degraded("auth_failure", &e);
                self.local
                    .auth_failure(address, account, now, window_secs)
                    .await
            }
        }
    }

    async fn auth_success(&self, account: AccountKey, now: SystemTime, window_secs: u64) {
        self.local.auth_success(account, now, window_secs).await;
        if let Err(e) = self
            .try_clear_counts(AuthSubject::Account(account), now, window_secs, false)
            .await
        {
            self.degraded("auth_success", &e);
        }
    }

    async fn auth_lock(&self, subject: AuthSubject, now: SystemTime) -> Option<AuthLock> {
        let now_ms = unix_ms(now);
        if let Some(cached) = self
            .batch
            .as_ref()
            .and_then(|batch| batch.cached_lock(subject, now_ms))
        {
            return cached.filter(|l| l.until > now);
        }
        match self.try_auth_lock(subject, now).await {
            Ok(l) => {
                if let Some(batch) = &self.batch {
                    batch.cache_lock(subject, l, now_ms);
                }
                l
            }
            Err(e) => {
                self.degraded("auth_lock", &e);
                self.local.auth_lock(subject, now).await
            }
        }
    }

    async fn set_auth_lock(&self, lock: AuthLock, now: SystemTime) {
        if let Err(e) = self.try_set_auth_lock(lock, now).await {
            self.degraded("set_auth_lock", &e);
            self.local.set_auth_lock(lock, now).await;
        }
        if let Some(batch) = &self.batch {
            // A longer lock already in Redis is found on the next read.
            batch.forget_lock(lock.subject);
        }
    }

    async fn clear_auth(&self, subject: AuthSubject, now: SystemTime, window_secs: u64) {
        self.local.clear_auth(subject, now, window_secs).await;
        if let Some(batch) = &self.batch {
            batch.forget_lock(subject);
        }
        if let Err(e) = self.try_clear_counts(subject, now, window_secs, true).await {
            self.degraded("clear_auth", &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AbuseConfig;
    use crate::decision::Decision;
    use crate::identity::RequestEvent;
    use crate::monitor::AbuseMonitor;
    use redis::{Cmd, Pipeline, RedisFuture, Value};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    /// A connection to a Redis that is down: every command fails.
    #[derive(Clone)]
    struct Down;

    fn refused() -> RedisError {
        RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    }

    impl ConnectionLike for Down {
        fn req_packed_command<'a>(&'a mut self, _cmd: &'a Cmd) -> RedisFuture<'a, Value> {
            Box::pin(async { Err(refused()) })
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            _pipeline: &'a Pipeline,
            _offset: usize,
            _count: usize,
        ) -> RedisFuture<'a, Vec<Value>> {
            Box::pin(async { Err(refused()) })
        }

        fn get_db(&self) -> i64 {
            0
        }
    }

    #[test]
    fn network_text_formats_without_allocating_both_families() {
        let mut buf = [0u8; 48];
        let v4: IpAddr = "192.0.2.0".parse().unwrap();
        assert_eq!(network_text(v4, &mut buf), "192.0.2.0");
        let v6: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .unwrap();
        assert_eq!(network_text(v6, &mut buf), v6.to_string());
        let v6: IpAddr = "2001:db8:1234:5678::".parse().unwrap();
        assert_eq!(network_text(v6, &mut buf), "2001:db8:1234:5678::");
    }

    /// A connection whose pipelines never answer, counting how many were sent.
    #[derive(Clone, Default)]
    struct Hang(Arc<AtomicU64>);

    impl ConnectionLike for Hang {
        fn req_packed_command<'a>(&'a mut self, _cmd: &'a Cmd) -> RedisFuture<'a, Value> {
            Box::pin(std::future::pending())
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            _pipeline: &'a Pipeline,
            _offset: usize,
            _count: usize,
        ) -> RedisFuture<'a, Vec<Value>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::pending())
        }

        fn get_db(&self) -> i64 {
            0
        }
    }

    #[tokio::test]
    async fn a_cancelled_flush_does_not_stop_later_ones() {
        let conn = Hang::default();
        let sent = Arc::clone(&conn.0);
        let store = RedisStore::new(conn).batched(Duration::from_millis(250));
        let id = Identity::api_key("k");
        let now = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let o = Observation {
            is_error: false,
            is_auth: false,
            near_limit: false,
            response_bytes: 1,
            endpoint: "/x",
            user_agent: "ua",
            network: "192.0.2.0".parse().expect("ip"),
        };
        let window = WindowSpec {
            window_secs: 600,
            hours: 24,
        };
        let batch = store.batch.as_ref().expect("batched");
        for attempt in 1..=2 {
            let at = now + Duration::from_secs(attempt);
            assert!(batch.add(&id, &o, "192.0.2.0", unix_ms(at), window));
            // Dropped while waiting for Redis, as a cancelled request's future is.
            let flush = store.flush(at);
            assert!(
                tokio::time::timeout(Duration::from_millis(10), flush)
                    .await
                    .is_err()
            );
            assert_eq!(
                sent.load(Ordering::SeqCst),
                attempt,
                "flush {attempt} was sent"
            );
        }
    }

    #[tokio::test]
    async fn redis_down_degrades_to_local_state() {
        // Every operation tried Redis.
        degrades_to_local_state(RedisStore::new(Down), 50).await;
    }

    #[tokio::test]
    async fn redis_down_degrades_to_local_state_when_batched() {
        // Records tried one flush; flag and lock reads tried Redis.
        degrades_to_local_state(RedisStore::new(Down).batched(Duration::from_millis(250)), 5).await;
    }

    async fn degrades_to_local_state(store: RedisStore<Down>, min_failures: u64) {
        let m = AbuseMonitor::new(store, AbuseConfig::default()).expect("config");
        let id = Identity::api_key("k");
        let now = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let e = RequestEvent {
            endpoint: "/x",
            is_auth_endpoint: false,
            status: 404,
            response_bytes: 1,
            user_agent: None,
            source_ip: "192.0.2.1".parse().expect("ip"),
            rate_limit: None,
        };
        for _ in 0..50 {
            m.record(&id, &e, now).await;
        }
        assert!(matches!(
            m.decision(&id, now).await,
            Decision::Throttle { .. }
        ));
        assert_eq!(m.list_flagged(now).await.len(), 1);
        m.clear(&id, now).await;
        assert_eq!(m.decision(&id, now).await, Decision::Allow);
        let addr = "192.0.2.9".parse().expect("ip");
        for _ in 0..6 {
            m.record_auth_failure(addr, Some("a"), now).await;
        }
        assert!(m.is_locked(addr, Some("a"), now).await.is_some());
        m.record_auth_success("a", now).await;
        assert!(m.store().failures.load(Ordering::Relaxed) > min_failures);
        assert!(m.store().local().is_empty());
    }
}
