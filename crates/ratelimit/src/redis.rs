//! The Redis store: one atomic Lua script per decision.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, Script};

use crate::decision::{Decision, WindowDecision, micros};
use crate::error::{Error, ErrorKind};
use crate::key::bounded_key;
use crate::policy::Policy;
use crate::store::Store;

const SCRIPT: &str = include_str!("redis.lua");

/// Settings of a [`RedisStore`].
#[derive(Clone, Debug)]
pub struct RedisConfig {
    prefix: String,
    timeout: Duration,
    server_time: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            prefix: "palisade:rl".to_owned(),
            timeout: Duration::from_millis(250),
            server_time: true,
        }
    }
}

impl RedisConfig {
    /// The key prefix (default `palisade:rl`); keys are `<prefix>:{<key>}:<window>:<algorithm>`.
    /// It may not contain `{` or `}`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// How long one decision may take, connection included (default 250 ms); past it the
    /// policy's failure mode decides.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether the script reads the clock of Redis (`TIME`, the default) so that
    /// instances with skewed clocks agree; `false` uses the `now` passed to `check`
    /// (deterministic tests, or one trusted clock).
    pub fn server_time(mut self, server_time: bool) -> Self {
        self.server_time = server_time;
        self
    }
}

/// A store in Redis, shared by every instance of a service.
///
/// Each decision is one `EVALSHA` of one Lua script covering every window of the policy
/// (reloaded on `NOSCRIPT`), so racing requests are exact. The script reads the clock of
/// Redis, keeps each window in one small key (a sorted set for the exact log) whose TTL
/// ends when its state has recovered, and puts one key's windows in one Redis Cluster
/// slot with a hash tag. `C` is any async connection: [`ConnectionManager`] (a
/// multiplexed connection that reconnects; [`RedisStore::connect`]), a
/// `MultiplexedConnection`, or a [`ClusterConnection`] ([`RedisStore::connect_cluster`]).
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    prefix: Arc<str>,
    script: Arc<Script>,
    timeout: Duration,
    server_time: bool,
}

impl<C: Clone> Clone for RedisStore<C> {
    fn clone(&self) -> Self {
        Self {
            conn: self.conn.clone(),
            prefix: Arc::clone(&self.prefix),
            script: Arc::clone(&self.script),
            timeout: self.timeout,
            server_time: self.server_time,
        }
    }
}

impl<C> std::fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("server_time", &self.server_time)
            .finish_non_exhaustive()
    }
}

pub(crate) fn redis_error(error: &RedisError) -> Error {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_io_error() || error.is_connection_refusal() || error.is_connection_dropped()
    {
        ErrorKind::Backend
    } else {
        ErrorKind::Script
    };
    Error::new(kind, format!("redis: {:?}", error.kind()))
}

impl RedisStore<ConnectionManager> {
    /// Connects to one Redis server (`redis://host:port/db`) with a reconnecting
    /// multiplexed connection whose connect and response timeouts are the configured
    /// timeout.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| redis_error(&e))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            config.timeout.saturating_mul(4),
            client.get_connection_manager_with_config(manager),
        )
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout, "redis: connecting timed out"))?
        .map_err(|e| redis_error(&e))?;
        Self::new(conn, config)
    }
}

impl RedisStore<ClusterConnection> {
    /// Connects to a Redis Cluster through any of its nodes.
    pub async fn connect_cluster(nodes: &[&str], config: RedisConfig) -> Result<Self, Error> {
        let client = redis::cluster::ClusterClient::builder(nodes.iter().copied())
            .connection_timeout(config.timeout)
            .response_timeout(config.timeout)
            .build()
            .map_err(|e| redis_error(&e))?;
        let conn = tokio::time::timeout(
            config.timeout.saturating_mul(8),
            client.get_async_connection(),
        )
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout, "redis: connecting timed out"))?
        .map_err(|e| redis_error(&e))?;
        Self::new(conn, config)
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store over an existing connection (cloned per decision, as multiplexed and
    /// cluster connections are meant to be).
    pub fn new(conn: C, config: RedisConfig) -> Result<Self, Error> {
        let prefix_ok = !config.prefix.is_empty()
            && config.prefix.len() <= 64
            && !config.prefix.contains(['{', '}'])
            && !config.prefix.bytes().any(|b| b.is_ascii_control());
        if !prefix_ok {
            return Err(Error::invalid(
                "the Redis key prefix must be 1 to 64 characters without braces",
            ));
        }
        if config.timeout.is_zero() {
            return Err(Error::invalid("the Redis timeout must be above zero"));
        }
        Ok(Self {
            conn,
            prefix: config.prefix.into(),
            script: Arc::new(Script::new(SCRIPT)),
            timeout: config.timeout,
            server_time: config.server_time,
        })
    }

    /// The Redis keys holding `key`'s state under `policy`, one per window, all with the
    /// same hash tag.
    pub fn redis_keys(&self, key: &str, policy: &Policy) -> Vec<String> {
        let key = bounded_key(key, true);
        policy
            .windows()
            .iter()
            .map(|w| {
                format!(
                    "{}:{{{key}}}:{}:{}",
                    self.prefix,
                    w.name(),
                    w.algorithm().code()
                )
            })
            .collect()
    }

    /// Runs the script; with `lease` (max, divisor) an admitted request takes a grant.
    /// Returns the decision (times relative to `now`) and the units charged.
    pub(crate) async fn run(
        &self,
        key: &str,
        policy: &Policy,
        cost: u64,
        now: SystemTime,
        lease: Option<(u64, u64)>,
    ) -> Result<(Decision, u64), Error> {
        let local_now = micros(now);
        let mut invocation = self.script.prepare_invoke();
        for k in self.redis_keys(key, policy) {
            invocation.key(k);
        }
        if self.server_time {
            invocation.arg("");
        } else {
            invocation.arg(local_now);
        }
        let (lease_on, max, divisor) = match lease {
            Some((max, divisor)) => ("1", max, divisor),
            None => ("0", 0, 1),
        };
        invocation.arg(cost).arg(lease_on).arg(max).arg(divisor);
        for w in policy.windows() {
            invocation
                .arg(w.algorithm().code())
                .arg(w.limit())
                .arg(w.period_us)
                .arg(w.burst())
                .arg(w.emission_us);
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| Error::new(ErrorKind::Timeout, "redis: no answer within the timeout"))?
                .map_err(|e| redis_error(&e))?;
        parse_reply(policy, &reply, local_now)
    }
}

fn parse_reply(policy: &Policy, reply: &[i64], local_now: u64) -> Result<(Decision, u64), Error> {
    let malformed = || Error::new(ErrorKind::Script, "redis: malformed script reply");
    let windows = policy.windows();
    if reply.len() != 3 + 4 * windows.len() {
        return Err(malformed());
    }
    let number = |i: usize| -> Result<i64, Error> { reply.get(i).copied().ok_or_else(malformed) };
    let unsigned =
        |i: usize| -> Result<u64, Error> { u64::try_from(number(i)?).map_err(|_| malformed()) };
    let server_now = unsigned(0)?;
    let allowed = number(1)? == 1;
    let grant = unsigned(2)?;
    // Times come back on the clock of Redis; they are reported relative to the caller's.
    let shift = |at: u64| at.saturating_sub(server_now).saturating_add(local_now);
    let mut decision = Decision::empty(allowed, local_now);
    for (i, w) in windows.iter().enumerate() {
        let base = 3 + 4 * i;
        let window_allowed = number(base)? == 1;
        let remaining = unsigned(base + 1)?;
        let recovery = unsigned(base + 2)?;
        let retry = number(base + 3)?;
        let recovery = if recovery == 0 { 0 } else { shift(recovery) };
        let retry = u64::try_from(retry).ok().map(shift);
        decision.push(WindowDecision::new(
            w,
            window_allowed,
            remaining,
            recovery,
            retry,
            local_now,
        ));
    }
    Ok((decision, grant))
}

impl<C> Store for RedisStore<C>
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
        self.run(key, policy, cost, now, None)
            .await
            .map(|(decision, _)| decision)
    }
}
