//! Policies: one or more limits (windows), checked together atomically.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// The most windows one policy may hold (a plan needs three: burst, per minute, per day).
pub const MAX_WINDOWS: usize = 4;
/// The largest limit or burst accepted for any window.
pub const MAX_LIMIT: u64 = 1_000_000_000;
/// The largest limit accepted for the exact sliding log, which stores one entry per
/// admitted unit (in memory and in Redis): it is meant for small limits only.
pub const MAX_LOG_LIMIT: u64 = 10_000;
/// The shortest period accepted.
pub const MIN_PERIOD: Duration = Duration::from_millis(1);
/// The longest period accepted (366 days); also the longest time a bucket may take to
/// refill its whole burst.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 3600);
const MAX_NAME_LEN: usize = 16;

/// The algorithm of one window, with its burst behaviour.
///
/// `L` is the limit, `P` the period, `B` the burst and `T = ceil(P / L)` the emission
/// interval (rounded up to a whole microsecond, so rounding never admits more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Counts per aligned window `[kP, (k+1)P)`. Cheapest; but `L` requests at the end of
    /// one window and `L` at the start of the next are all admitted: any interval of
    /// length `P` may admit up to `2L` (the edge burst; a test shows it). In general an
    /// interval of length `t` admits at most `L * (ceil(t/P) + 1)`.
    FixedWindow,
    /// The weighted two-window counter: the previous window's count weighted by the part
    /// of it still inside the sliding window, plus the current count. Two numbers of
    /// state; each aligned window admits at most `L`, so any interval of length `P` admits
    /// fewer than `2L` (about `L` for evenly spread traffic).
    SlidingWindow,
    /// The exact sliding log: one timestamp per admitted unit. Any half-open interval of
    /// length `P` admits at most `L`, exactly. Memory grows with the limit, so `L` is
    /// capped at [`MAX_LOG_LIMIT`]: for small limits only.
    SlidingLog,
    /// A bucket of `B` tokens refilled with one token every `T`. Any interval of length
    /// `t` admits at most `B + ceil(t/T)` (the burst plus the refill).
    TokenBucket,
    /// The leaky bucket as a meter: a bucket of capacity `B` that leaks one unit every
    /// `T`; a request fits if it does not overflow. The mirror image of the token bucket,
    /// with the same bound `B + ceil(t/T)`.
    LeakyBucket,
    /// The generic cell rate algorithm: one timestamp (the theoretical arrival time) of
    /// state. Same bound as the token bucket, `B + ceil(t/T)`, the least state.
    Gcra,
}

impl Algorithm {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "f",
            Algorithm::SlidingWindow => "s",
            Algorithm::SlidingLog => "l",
            Algorithm::TokenBucket => "t",
            Algorithm::LeakyBucket => "k",
            Algorithm::Gcra => "g",
        }
    }

    fn uses_burst(self) -> bool {
        matches!(
            self,
            Algorithm::TokenBucket | Algorithm::LeakyBucket | Algorithm::Gcra
        )
    }
}

/// The name of one window, as shown in the `RateLimit-Policy` field: 1 to 16 characters
/// from `A-Z a-z 0-9 _ - .`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowName {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

impl WindowName {
    pub(crate) const EMPTY: WindowName = WindowName {
        bytes: [0; MAX_NAME_LEN],
        len: 0,
    };

    fn parse(name: &str) -> Result<Self, Error> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(Error::invalid(
                "a window name must be 1 to 16 characters from A-Z a-z 0-9 _ - .",
            ));
        }
        let mut bytes = [0u8; MAX_NAME_LEN];
        for (slot, byte) in bytes.iter_mut().zip(name.bytes()) {
            *slot = byte;
        }
        Ok(Self {
            bytes,
            len: u8::try_from(name.len()).unwrap_or(0),
        })
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl fmt::Debug for WindowName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for WindowName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One limit ("window") of a policy, before validation: name, algorithm, limit per
/// period, and for the buckets and GCRA the burst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    name: String,
    algorithm: Algorithm,
    limit: u64,
    period: Duration,
    burst: Option<u64>,
}

impl Limit {
    /// `limit` units per `period` with the given algorithm.
    pub fn new(name: &str, algorithm: Algorithm, limit: u64, period: Duration) -> Self {
        Self {
            name: name.to_owned(),
            algorithm,
            limit,
            period,
            burst: None,
        }
    }

    /// `limit` per minute, named `permin`, as a weighted sliding window.
    pub fn per_minute(limit: u64) -> Self {
        Self::new(
            "permin",
            Algorithm::SlidingWindow,
            limit,
            Duration::from_secs(60),
        )
    }

    /// `limit` per day, named `perday`, as a fixed window (aligned to UTC midnight).
    pub fn per_day(limit: u64) -> Self {
        Self::new(
            "perday",
            Algorithm::FixedWindow,
            limit,
            Duration::from_secs(86_400),
        )
    }

    /// A GCRA named `burst`: at most `burst` at once, refilled at `rate` per `period`.
    pub fn burst(burst: u64, rate: u64, period: Duration) -> Self {
        Self::new("burst", Algorithm::Gcra, rate, period).with_burst(burst)
    }

    /// Sets the burst (capacity) of a token bucket, leaky bucket or GCRA window; the
    /// default is the limit. Refused for the other algorithms unless equal to the limit.
    pub fn with_burst(mut self, burst: u64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Renames the window.
    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// Changes the algorithm.
    pub fn using(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    fn validate(&self) -> Result<Window, Error> {
        let name = WindowName::parse(&self.name)?;
        let who = &self.name;
        if self.limit == 0 {
            return Err(Error::invalid(format!(
                "window {who}: the limit must be at least 1"
            )));
        }
        if self.limit > MAX_LIMIT {
            return Err(Error::invalid(format!(
                "window {who}: the limit {} exceeds the maximum {MAX_LIMIT}",
                self.limit
            )));
        }
        if self.period < MIN_PERIOD || self.period > MAX_PERIOD {
            return Err(Error::invalid(format!(
                "window {who}: the period must be between 1 ms and 366 days"
            )));
        }
        if self.algorithm == Algorithm::SlidingLog && self.limit > MAX_LOG_LIMIT {
            return Err(Error::invalid(format!(
                "window {who}: the exact sliding log keeps one entry per request and is for limits up to {MAX_LOG_LIMIT}; use the sliding window counter"
            )));
        }
        let period_us = u64::try_from(self.period.as_micros()).unwrap_or(u64::MAX);
        if !self.period.subsec_nanos().is_multiple_of(1000) {
            return Err(Error::invalid(format!(
                "window {who}: the period must be a whole number of microseconds"
            )));
        }
        let burst = match self.burst {
            None => self.limit,
            Some(burst) if self.algorithm.uses_burst() => burst,
            Some(burst) if burst == self.limit => burst,
            Some(_) => {
                return Err(Error::invalid(format!(
                    "window {who}: a burst applies only to token bucket, leaky bucket and GCRA windows"
                )));
            }
        };
        if burst == 0 || burst > MAX_LIMIT {
            return Err(Error::invalid(format!(
                "window {who}: the burst must be between 1 and {MAX_LIMIT}"
            )));
        }
        let emission_us = period_us.div_ceil(self.limit);
        if self.algorithm.uses_burst() {
            if period_us < self.limit {
                return Err(Error::invalid(format!(
                    "window {who}: a rate above one per microsecond cannot be represented"
                )));
            }
            let fill = u128::from(burst) * u128::from(emission_us);
            if fill > MAX_PERIOD.as_micros() {
                return Err(Error::invalid(format!(
                    "window {who}: refilling the whole burst would take more than 366 days"
                )));
            }
        }
        let mut id = 0xcbf2_9ce4_8422_2325_u64;
        for byte in self
            .name
            .bytes()
            .chain(self.algorithm.code().bytes())
            .chain(period_us.to_le_bytes())
        {
            id ^= u64::from(byte);
            id = id.wrapping_mul(0x0100_0000_01b3);
        }
        Ok(Window {
            name,
            algorithm: self.algorithm,
            limit: self.limit,
            period_us,
            burst,
            emission_us,
            id,
        })
    }
}

/// A validated window of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub(crate) name: WindowName,
    pub(crate) algorithm: Algorithm,
    pub(crate) limit: u64,
    pub(crate) period_us: u64,
    pub(crate) burst: u64,
    pub(crate) emission_us: u64,
    /// Identifies the window's state across policy changes (name, algorithm, period).
    pub(crate) id: u64,
}

impl Window {
    /// The window's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The limit per period.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_micros(self.period_us)
    }

    /// The burst (capacity) of a bucket or GCRA; the limit for the other algorithms.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The quota shown in `RateLimit-Policy` (`q`): the burst for buckets and GCRA, the
    /// limit otherwise.
    pub fn quota(&self) -> u64 {
        if self.algorithm.uses_burst() {
            self.burst
        } else {
            self.limit
        }
    }

    /// The time window shown in `RateLimit-Policy` (`w`): the period for window
    /// algorithms; for buckets and GCRA the time to refill the whole burst.
    pub fn quota_window(&self) -> Duration {
        Duration::from_micros(self.quota_window_us())
    }

    pub(crate) fn quota_window_us(&self) -> u64 {
        if self.algorithm.uses_burst() {
            self.burst.saturating_mul(self.emission_us)
        } else {
            self.period_us
        }
    }
}

/// What a decision becomes when the backend fails (Redis down, a timeout, a script
/// error): never an error for the caller's caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FailureMode {
    /// Allow the request (availability first); the default for ordinary endpoints.
    #[default]
    Open,
    /// Deny the request (protection first); for authentication and admin endpoints.
    Closed,
}

/// The tiered plans of the seed design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Plan {
    /// 60 per minute, 1000 per day, burst 10.
    Free,
    /// 600 per minute, 50 000 per day, burst 100.
    Pro,
    /// 6000 per minute, 500 000 per day, burst 1000.
    Enterprise,
}

impl Plan {
    /// `(per minute, per day, burst)`.
    pub fn limits(self) -> (u64, u64, u64) {
        match self {
            Plan::Free => (60, 1_000, 10),
            Plan::Pro => (600, 50_000, 100),
            Plan::Enterprise => (6_000, 500_000, 1_000),
        }
    }

    /// The plan's lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }
}

/// A validated policy: one to [`MAX_WINDOWS`] windows checked together atomically (a
/// request passes all of them or counts against none), and a failure mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    name: String,
    windows: Vec<Window>,
    failure: FailureMode,
    fingerprint: u64,
}

impl Policy {
    /// Starts a policy with this name (for logs).
    pub fn builder(name: &str) -> PolicyBuilder {
        PolicyBuilder {
            name: name.to_owned(),
            limits: Vec::new(),
            failure: FailureMode::default(),
        }
    }

    /// A plan's policy: `burst` (GCRA: the burst at once, refilled at the per-minute
    /// rate), `permin` (weighted sliding window) and `perday` (fixed window).
    pub fn plan(plan: Plan) -> Policy {
        let (per_minute, per_day, burst) = plan.limits();
        let built = Policy::builder(plan.name())
            .limit(Limit::burst(burst, per_minute, Duration::from_secs(60)))
            .limit(Limit::per_minute(per_minute))
            .limit(Limit::per_day(per_day))
            .build();
        // The plans' numbers are constants that validate; the fallback is unreachable.
        built.unwrap_or_else(|_| Policy::single(Limit::per_minute(per_minute)))
    }

    /// The per-key override of the command line (`--rate-limit N`): `n` per minute.
    pub fn per_minute(n: u64) -> Result<Policy, Error> {
        Policy::builder("custom")
            .limit(Limit::per_minute(n))
            .build()
    }

    fn single(limit: Limit) -> Policy {
        let window = limit.validate().unwrap_or(Window {
            name: WindowName {
                bytes: *b"default\0\0\0\0\0\0\0\0\0",
                len: 7,
            },
            algorithm: Algorithm::FixedWindow,
            limit: 1,
            period_us: 1_000_000,
            burst: 1,
            emission_us: 1_000_000,
            id: 0,
        });
        Policy::assemble("default".to_owned(), vec![window], FailureMode::Open)
    }

    fn assemble(name: String, windows: Vec<Window>, failure: FailureMode) -> Policy {
        let mut fingerprint = 0xcbf2_9ce4_8422_2325_u64;
        for window in &windows {
            for word in [
                window.id,
                window.limit,
                window.burst,
                window.period_us,
                u64::from(failure == FailureMode::Closed),
            ] {
                fingerprint ^= word;
                fingerprint = fingerprint.wrapping_mul(0x0100_0000_01b3).rotate_left(17);
            }
        }
        Policy {
            name,
            windows,
            failure,
            fingerprint,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The windows, in the order given.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// What a decision becomes when the backend fails.
    pub fn failure_mode(&self) -> FailureMode {
        self.failure
    }

    /// The same policy with another failure mode.
    pub fn with_failure_mode(mut self, failure: FailureMode) -> Policy {
        let name = std::mem::take(&mut self.name);
        Policy::assemble(name, self.windows, failure)
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Used by the hybrid store.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// Builds a [`Policy`]; [`PolicyBuilder::build`] validates it.
#[derive(Clone, Debug)]
pub struct PolicyBuilder {
    name: String,
    limits: Vec<Limit>,
    failure: FailureMode,
}

impl PolicyBuilder {
    /// Adds a window.
    pub fn limit(mut self, limit: Limit) -> Self {
        self.limits.push(limit);
        self
    }

    /// Sets the failure mode (default [`FailureMode::Open`]).
    pub fn failure_mode(mut self, failure: FailureMode) -> Self {
        self.failure = failure;
        self
    }

    /// Validates every window and builds the policy, or says clearly what is wrong.
    pub fn build(self) -> Result<Policy, Error> {
        if self.limits.is_empty() {
            return Err(Error::invalid(format!(
                "policy {}: a policy needs at least one limit",
                self.name
            )));
        }
        if self.limits.len() > MAX_WINDOWS {
            return Err(Error::invalid(format!(
                "policy {}: at most {MAX_WINDOWS} limits per policy",
                self.name
            )));
        }
        let mut windows: Vec<Window> = Vec::with_capacity(self.limits.len());
        for limit in &self.limits {
            let window = limit.validate()?;
            if windows.iter().any(|w| w.name == window.name) {
                return Err(Error::invalid(format!(
                    "policy {}: two limits are named {}",
                    self.name, window.name
                )));
            }
            windows.push(window);
        }
        Ok(Policy::assemble(self.name, windows, self.failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn plans_match_the_seed() {
        let free = Policy::plan(Plan::Free);
        let names: Vec<&str> = free.windows().iter().map(Window::name).collect();
        assert_eq!(names, ["burst", "permin", "perday"]);
        assert_eq!(free.windows()[0].quota(), 10);
        assert_eq!(free.windows()[0].quota_window(), Duration::from_secs(10));
        assert_eq!(free.windows()[1].limit(), 60);
        assert_eq!(free.windows()[2].limit(), 1000);
        let pro = Policy::plan(Plan::Pro);
        assert_eq!(pro.windows()[0].quota(), 100);
        assert_eq!(pro.windows()[1].limit(), 600);
        assert_eq!(pro.windows()[2].limit(), 50_000);
        let ent = Policy::plan(Plan::Enterprise);
        assert_eq!(ent.windows()[0].quota(), 1000);
        assert_eq!(ent.windows()[1].limit(), 6000);
        assert_eq!(ent.windows()[2].limit(), 500_000);
    }

    fn refused(builder: PolicyBuilder, needle: &str) {
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidPolicy);
        assert_eq!(error.code(), "invalid_policy");
        assert!(error.detail().contains(needle), "{error}");
    }

    #[test]
    fn absurd_policies_are_refused_with_a_clear_message() {
        let p = |l: Limit| Policy::builder("t").limit(l);
        refused(Policy::builder("t"), "at least one limit");
        refused(p(Limit::per_minute(0)), "at least 1");
        refused(p(Limit::per_minute(MAX_LIMIT + 1)), "exceeds the maximum");
        refused(
            p(Limit::new("x", Algorithm::Gcra, 1, Duration::ZERO)),
            "period",
        );
        refused(
            p(Limit::new(
                "x",
                Algorithm::Gcra,
                1,
                Duration::from_secs(400 * 86_400),
            )),
            "period",
        );
        refused(
            p(Limit::new(
                "x",
                Algorithm::SlidingLog,
                20_000,
                Duration::from_secs(1),
            )),
            "sliding log",
        );
        refused(p(Limit::per_minute(5).with_burst(9)), "burst applies only");
        refused(
            p(Limit::burst(0, 5, Duration::from_secs(1))),
            "burst must be",
        );
        refused(
            p(Limit::new(
                "x",
                Algorithm::Gcra,
                2_000_000,
                Duration::from_secs(1),
            )),
            "above one per microsecond",
        );
        refused(
            p(Limit::burst(MAX_LIMIT, 1, Duration::from_secs(3600))),
            "366 days",
        );
        refused(p(Limit::per_minute(5).named("")), "window name");
        refused(p(Limit::per_minute(5).named("a b")), "window name");
        refused(
            p(Limit::per_minute(5).named("abcdefghijklmnopq")),
            "window name",
        );
        refused(
            p(Limit::per_minute(5)).limit(Limit::per_minute(6)),
            "two limits",
        );
        let mut many = Policy::builder("t");
        for i in 0..5 {
            many = many.limit(Limit::per_minute(5).named(&format!("w{i}")));
        }
        refused(many, "at most");
    }

    #[test]
    fn per_minute_override() {
        let policy = Policy::per_minute(42).unwrap();
        assert_eq!(policy.windows().len(), 1);
        assert_eq!(policy.windows()[0].limit(), 42);
        assert_eq!(policy.windows()[0].period(), Duration::from_secs(60));
        assert_eq!(policy.failure_mode(), FailureMode::Open);
        let closed = policy.clone().with_failure_mode(FailureMode::Closed);
        assert_eq!(closed.failure_mode(), FailureMode::Closed);
        assert_ne!(closed.fingerprint(), policy.fingerprint());
    }
}
