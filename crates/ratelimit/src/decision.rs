//! The answer to one check: allowed or not, and what the rate-limit headers need.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ErrorKind;
use crate::policy::{FailureMode, MAX_WINDOWS, Policy, Window, WindowName};

const NEVER: u64 = u64::MAX;

/// The state of one window of the policy after a check: what `X-RateLimit-*` and the
/// draft-10 `RateLimit-Policy` / `RateLimit` fields need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowDecision {
    name: WindowName,
    allowed: bool,
    quota: u64,
    window_us: u64,
    remaining: u64,
    reset_us: u64,
    retry_us: u64,
    now_us: u64,
}

impl WindowDecision {
    #[inline]
    pub(crate) fn new(
        w: &Window,
        allowed: bool,
        remaining: u64,
        recovery_at: u64,
        retry_at: Option<u64>,
        now: u64,
    ) -> Self {
        let window_us = w.quota_window_us();
        Self {
            name: w.name,
            allowed,
            quota: w.quota(),
            window_us,
            remaining: remaining.min(w.quota()),
            reset_us: recovery_at.saturating_sub(now),
            retry_us: if allowed {
                0
            } else {
                retry_at.map_or(NEVER, |at| at.saturating_sub(now))
            },
            now_us: now,
        }
    }

    /// The window's name (`permin`, `perday`, `burst`, ...), the policy name of draft-10.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Whether this window alone would admit the request.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The quota (`X-RateLimit-Limit`, draft-10 `q`): the limit, or a bucket's burst.
    pub fn limit(&self) -> u64 {
        self.quota
    }

    /// The time window of the quota (draft-10 `w`): the period, or the time a bucket
    /// takes to refill its whole burst.
    pub fn window(&self) -> Duration {
        Duration::from_micros(self.window_us)
    }

    /// Units left now (`X-RateLimit-Remaining`, draft-10 `r`).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Time until the window has fully recovered (draft-10 `t`); zero when it has.
    pub fn reset(&self) -> Duration {
        Duration::from_micros(self.reset_us)
    }

    /// The moment the window will have fully recovered (`X-RateLimit-Reset` is its Unix
    /// time in seconds, rounded up).
    pub fn reset_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.now_us.saturating_add(self.reset_us))
    }

    /// For a window that denied the request: how long until the same request would fit.
    /// `None` when the window admitted it, or when it never can (the cost exceeds the
    /// capacity).
    pub fn retry_after(&self) -> Option<Duration> {
        if self.allowed || self.retry_us == NEVER {
            None
        } else {
            Some(Duration::from_micros(self.retry_us))
        }
    }

    /// Whether the request can never fit this window (cost above its capacity).
    pub fn never(&self) -> bool {
        !self.allowed && self.retry_us == NEVER
    }

    // All zeros, so that filling the unused places of a decision is a plain memset.
    const EMPTY: WindowDecision = WindowDecision {
        name: WindowName::EMPTY,
        allowed: false,
        quota: 0,
        window_us: 0,
        remaining: 0,
        reset_us: 0,
        retry_us: 0,
        now_us: 0,
    };
}

/// The answer to one check.
///
/// A denial is a value, not an error. `windows()` lists every window of the policy in
/// order, so an adapter can render `RateLimit-Policy` with all of them and
/// `X-RateLimit-*` from [`Decision::most_restrictive`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    len: u8,
    windows: [WindowDecision; MAX_WINDOWS],
    now_us: u64,
    degraded: Option<ErrorKind>,
}

impl Decision {
    #[inline]
    pub(crate) fn empty(allowed: bool, now: u64) -> Self {
        Self {
            allowed,
            len: 0,
            windows: [WindowDecision::EMPTY; MAX_WINDOWS],
            now_us: now,
            degraded: None,
        }
    }

    /// The decision of a policy of one window. Spelled out as a literal (it stops
    /// compiling if `MAX_WINDOWS` changes): the compiler then writes it straight into the
    /// caller's place, where filling an array and copying it costs a tenth of a check.
    #[inline]
    pub(crate) fn single(allowed: bool, now: u64, window: WindowDecision) -> Self {
        const EMPTY: WindowDecision = WindowDecision::EMPTY;
        Self {
            allowed,
            len: 1,
            windows: [window, EMPTY, EMPTY, EMPTY],
            now_us: now,
            degraded: None,
        }
    }

    #[inline]
    pub(crate) fn reset(&mut self, allowed: bool, now: u64) {
        self.allowed = allowed;
        self.len = 0;
        self.now_us = now;
        self.degraded = None;
    }

    #[inline]
    pub(crate) fn push(&mut self, window: WindowDecision) {
        if let Some(slot) = self.windows.get_mut(usize::from(self.len)) {
            *slot = window;
            self.len += 1;
        }
    }

    /// The decision taken when the backend failed: allowed under
    /// [`FailureMode::Open`], denied under [`FailureMode::Closed`] (with a retry after
    /// one second), and marked degraded with the error's kind.
    pub fn failed(policy: &Policy, kind: ErrorKind, now: SystemTime) -> Self {
        let now = micros(now);
        let allowed = policy.failure_mode() == FailureMode::Open;
        let mut decision = Decision::empty(allowed, now);
        decision.degraded = Some(kind);
        for w in policy.windows() {
            let mut window = WindowDecision::new(w, allowed, 0, now, None, now);
            if allowed {
                window.remaining = w.quota();
            } else {
                window.retry_us = 1_000_000;
                window.reset_us = 1_000_000;
            }
            decision.push(window);
        }
        decision
    }

    #[cfg(feature = "redis")]
    pub(crate) fn windows_mut(&mut self) -> &mut [WindowDecision] {
        let len = usize::from(self.len);
        self.windows.get_mut(..len).unwrap_or_default()
    }

    #[cfg(feature = "redis")]
    pub(crate) fn add_remaining(&mut self, units: u64) {
        for window in self.windows_mut() {
            window.remaining = window.remaining.saturating_add(units).min(window.quota);
        }
    }

    #[cfg(feature = "redis")]
    pub(crate) fn rebase(&mut self, now: u64, allowed: bool) {
        let shift = now.saturating_sub(self.now_us);
        self.now_us = now;
        self.allowed = allowed;
        for window in self.windows_mut() {
            window.now_us = now;
            window.reset_us = window.reset_us.saturating_sub(shift);
            if window.retry_us != NEVER {
                window.retry_us = window.retry_us.saturating_sub(shift);
            }
        }
    }

    /// Whether the request is admitted (and was charged to every window).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Every window of the policy, in order.
    pub fn windows(&self) -> &[WindowDecision] {
        self.windows
            .get(..usize::from(self.len))
            .unwrap_or_default()
    }

    /// The window with the fewest units remaining (ties: the one that recovers last):
    /// the one `X-RateLimit-Limit/Remaining/Reset` should show.
    pub fn most_restrictive(&self) -> Option<&WindowDecision> {
        self.windows().iter().min_by(|a, b| {
            a.remaining
                .cmp(&b.remaining)
                .then(b.reset_us.cmp(&a.reset_us))
        })
    }

    /// For a denied request, how long until it could pass (`Retry-After`): the longest
    /// wait among the windows that denied it. `None` when it was allowed, or when it can
    /// never pass (see [`Decision::never`]).
    pub fn retry_after(&self) -> Option<Duration> {
        if self.allowed || self.never() {
            return None;
        }
        let longest = self
            .windows()
            .iter()
            .filter_map(WindowDecision::retry_after)
            .max();
        // A degraded decision without windows still tells the client when to come back.
        longest.or(Some(Duration::from_secs(1)))
    }

    /// Whether the request can never pass (its cost exceeds a window's capacity).
    pub fn never(&self) -> bool {
        self.windows().iter().any(WindowDecision::never)
    }

    /// When the backend failed and the policy's failure mode decided instead: the kind
    /// of failure (already logged with `tracing`).
    pub fn degraded(&self) -> Option<ErrorKind> {
        self.degraded
    }

    /// The time the decision was taken for.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.now_us)
    }
}

/// Microseconds since the Unix epoch (0 before it).
#[inline]
pub(crate) fn micros(now: SystemTime) -> u64 {
    // Seconds and microseconds apart: `as_micros` would divide a u128 on the hot path.
    now.duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()))
    })
}
