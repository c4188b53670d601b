//! Rate-limit header fields: the de-facto `X-RateLimit-*` trio, `Retry-After`, and the
//! IETF `RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10.

use std::fmt::Write as _;
use std::num::NonZeroU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::error::{Error, ErrorKind};

/// Largest integer a structured field can carry (RFC 9651 §3.3.1: at most 15 digits).
const SF_INTEGER_MAX: u64 = 999_999_999_999_999;
/// Longest policy name accepted; names are sent on every response, keep them short.
const MAX_POLICY_NAME: usize = 64;

/// The unit a quota is counted in (draft-10 §3.1.2). Sent as `qu` unless it is the
/// default, `requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuotaUnit {
    /// Requests (the default, not sent).
    #[default]
    Requests,
    /// Content bytes (`qu="content-bytes"`).
    ContentBytes,
    /// Concurrent requests (`qu="concurrent-requests"`).
    ConcurrentRequests,
}

/// A named quota policy: `quota` units per `window` seconds.
///
/// Configuration: build once at start-up and reuse; rendering borrows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPolicy {
    name: String,
    quota: u64,
    window: NonZeroU64,
    unit: QuotaUnit,
}

impl QuotaPolicy {
    /// A policy named `name` allowing `quota` requests per `window_secs` seconds.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidPolicyName`] when the name is empty, longer than 64 bytes or
    /// holds a character outside printable ASCII (a structured-field string cannot carry
    /// it); [`ErrorKind::InvalidWindow`] when `window_secs` is zero (draft-10 §3.1.3).
    pub fn new(name: &str, quota: u64, window_secs: u64) -> Result<Self, Error> {
        if name.is_empty()
            || name.len() > MAX_POLICY_NAME
            || !name.bytes().all(|b| (0x20..=0x7e).contains(&b))
        {
            return Err(Error::new(
                ErrorKind::InvalidPolicyName,
                "policy name must be 1 to 64 printable ASCII characters",
            ));
        }
        let window = NonZeroU64::new(window_secs).ok_or(Error::new(
            ErrorKind::InvalidWindow,
            "policy window must be at least one second",
        ))?;
        Ok(Self {
            name: name.to_owned(),
            quota,
            window,
            unit: QuotaUnit::Requests,
        })
    }

    /// Sets the quota unit.
    #[must_use]
    pub fn with_unit(mut self, unit: QuotaUnit) -> Self {
        self.unit = unit;
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quota per window.
    pub fn quota(&self) -> u64 {
        self.quota
    }

    /// The window in seconds.
    pub fn window_secs(&self) -> u64 {
        self.window.get()
    }
}

/// The current state of one policy for the caller (a rate limiter's decision).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceLimit {
    /// Quota units left in the current window.
    pub remaining: u64,
    /// Time until more quota becomes available (`t`); `None` when the policy has no
    /// reset (draft-10 §4.2), in which case `t` and `x-ratelimit-reset` are left out.
    pub reset_after: Option<Duration>,
    /// Optional partition key (draft-10 §3.1.4), sent as a byte sequence `pk=:..:` on
    /// both fields. Never put a credential here: it is echoed to the client.
    pub partition_key: Option<Vec<u8>>,
}

/// Which policies the `RateLimit` field reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceLimitItems {
    /// One item per policy (default).
    #[default]
    All,
    /// Only the policy closest to exhaustion (draft-10 Appendix B.1.2 allows this).
    MostRestrictive,
}

/// Renders the rate-limit header fields of one response.
///
/// Fields, all with lower-case names:
/// - `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset` (Unix seconds):
///   from the policy closest to exhaustion (least remaining; on a tie, the later reset);
/// - `ratelimit-policy`: one RFC 9651 list item per policy, `"name";q=..;qu=..;w=..;pk=..`;
/// - `ratelimit`: one item per policy (or only the most restrictive), `"name";r=..;t=..;pk=..`;
/// - `retry-after` (delay seconds), only when set.
///
/// This follows draft-ietf-httpapi-ratelimit-headers-10 (September 2025). Lists are
/// serialised as RFC 9651 does, items joined by `", "`. Integers are capped at the
/// structured-field maximum, durations are rounded up to whole seconds so that a client
/// never comes back early.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use palisade_headers::{QuotaPolicy, RateLimitHeaders, ServiceLimit};
///
/// let permin = QuotaPolicy::new("permin", 60, 60)?;
/// let limit = ServiceLimit {
///     remaining: 41,
///     reset_after: Some(Duration::from_secs(17)),
///     partition_key: None,
/// };
/// let fields = RateLimitHeaders::new()
///     .policy(&permin, limit)
///     .render(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// assert!(fields.contains(&("ratelimit", "\"permin\";r=41;t=17".to_owned())));
/// assert!(fields.contains(&("x-ratelimit-reset", "1700000017".to_owned())));
/// # Ok::<(), palisade_headers::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RateLimitHeaders<'a> {
    entries: Vec<(&'a QuotaPolicy, ServiceLimit)>,
    retry_after: Option<Duration>,
    items: ServiceLimitItems,
}

impl<'a> RateLimitHeaders<'a> {
    /// No policies yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy and its current state.
    #[must_use]
    pub fn policy(mut self, policy: &'a QuotaPolicy, limit: ServiceLimit) -> Self {
        self.entries.push((policy, limit));
        self
    }

    /// Adds `Retry-After` (on a 429).
    #[must_use]
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Chooses which policies the `RateLimit` field reports.
    #[must_use]
    pub fn service_limit_items(mut self, items: ServiceLimitItems) -> Self {
        self.items = items;
        self
    }

    fn most_restrictive(&self) -> Option<&(&'a QuotaPolicy, ServiceLimit)> {
        self.entries.iter().min_by(|a, b| {
            a.1.remaining
                .cmp(&b.1.remaining)
                .then(b.1.reset_after.cmp(&a.1.reset_after))
        })
    }

    /// The `RateLimit-Policy` field value, if any policy was added.
    pub fn policy_field(&self) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        let mut out = String::new();
        for (i, (policy, limit)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_sf_string(&mut out, &policy.name);
            let _ = write!(out, ";q={}", sf_integer(policy.quota));
            match policy.unit {
                QuotaUnit::Requests => {}
                QuotaUnit::ContentBytes => out.push_str(";qu=\"content-bytes\""),
                QuotaUnit::ConcurrentRequests => out.push_str(";qu=\"concurrent-requests\""),
            }
            let _ = write!(out, ";w={}", sf_integer(policy.window.get()));
            write_pk(&mut out, limit.partition_key.as_deref());
        }
        Some(out)
    }

    /// The `RateLimit` field value, if any policy was added.
    pub fn ratelimit_field(&self) -> Option<String> {
        let chosen: Vec<&(&QuotaPolicy, ServiceLimit)> = match self.items {
            ServiceLimitItems::All => self.entries.iter().collect(),
            ServiceLimitItems::MostRestrictive => self.most_restrictive().into_iter().collect(),
        };
        if chosen.is_empty() {
            return None;
        }
        let mut out = String::new();
        for (i, (policy, limit)) in chosen.into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_sf_string(&mut out, &policy.name);
            let _ = write!(out, ";r={}", sf_integer(limit.remaining));
            if let Some(reset) = limit.reset_after {
                let _ = write!(out, ";t={}", sf_integer(ceil_secs(reset)));
            }
            write_pk(&mut out, limit.partition_key.as_deref());
        }
        Some(out)
    }

    /// Every field for the response, `now` being the time the response is produced.
    pub fn render(&self, now: SystemTime) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(6);
        if let Some((policy, limit)) = self.most_restrictive() {
            out.push(("x-ratelimit-limit", policy.quota.to_string()));
            out.push(("x-ratelimit-remaining", limit.remaining.to_string()));
            if let Some(reset) = limit.reset_after {
                let now_unix = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                let reset_at = ceil_secs(now_unix.saturating_add(reset));
                out.push(("x-ratelimit-reset", reset_at.to_string()));
            }
        }
        if let Some(value) = self.policy_field() {
            out.push(("ratelimit-policy", value));
        }
        if let Some(value) = self.ratelimit_field() {
            out.push(("ratelimit", value));
        }
        if let Some(after) = self.retry_after {
            out.push(("retry-after", ceil_secs(after).to_string()));
        }
        out
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

fn sf_integer(v: u64) -> u64 {
    v.min(SF_INTEGER_MAX)
}

/// RFC 9651 §4.1.6: a string in double quotes with `"` and `\` escaped. Names were
/// checked to be printable ASCII when the policy was built.
fn write_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// RFC 9651 §4.1.8: a byte sequence, standard base64 with padding, between colons.
fn write_pk(out: &mut String, pk: Option<&[u8]>) {
    if let Some(pk) = pk {
        out.push_str(";pk=:");
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(pk));
        out.push(':');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(remaining: u64, secs: u64) -> ServiceLimit {
        ServiceLimit {
            remaining,
            reset_after: Some(Duration::from_secs(secs)),
            partition_key: None,
        }
    }

    #[test]
    fn issue_example() {
        let permin = QuotaPolicy::new("permin", 60, 60).expect("valid");
        let perday = QuotaPolicy::new("perday", 1000, 86_400).expect("valid");
        let fields = RateLimitHeaders::new()
            .policy(&permin, limit(41, 17))
            .policy(&perday, limit(900, 50_000))
            .service_limit_items(ServiceLimitItems::MostRestrictive)
            .retry_after(Duration::from_millis(16_200))
            .render(UNIX_EPOCH + Duration::from_millis(1_000_000_000_500));
        assert_eq!(
            fields,
            vec![
                ("x-ratelimit-limit", "60".to_owned()),
                ("x-ratelimit-remaining", "41".to_owned()),
                ("x-ratelimit-reset", "1000000018".to_owned()),
                (
                    "ratelimit-policy",
                    "\"permin\";q=60;w=60, \"perday\";q=1000;w=86400".to_owned()
                ),
                ("ratelimit", "\"permin\";r=41;t=17".to_owned()),
                ("retry-after", "17".to_owned()),
            ]
        );
    }

    #[test]
    fn escaping_and_caps() {
        let p = QuotaPolicy::new("a\"b\\c", u64::MAX, u64::MAX).expect("valid");
        let h = RateLimitHeaders::new().policy(&p, limit(u64::MAX, 0));
        assert_eq!(
            h.policy_field().as_deref(),
            Some("\"a\\\"b\\\\c\";q=999999999999999;w=999999999999999")
        );
        assert_eq!(
            h.ratelimit_field().as_deref(),
            Some("\"a\\\"b\\\\c\";r=999999999999999;t=0")
        );
    }

    #[test]
    fn invalid_policies() {
        for name in ["", "é", "a\nb", &"x".repeat(65)] {
            assert_eq!(
                QuotaPolicy::new(name, 1, 1).map_err(|e| e.kind()),
                Err(ErrorKind::InvalidPolicyName)
            );
        }
        assert_eq!(
            QuotaPolicy::new("ok", 1, 0).map_err(|e| e.kind()),
            Err(ErrorKind::InvalidWindow)
        );
    }

    #[test]
    fn empty_renders_nothing() {
        assert!(RateLimitHeaders::new().render(UNIX_EPOCH).is_empty());
    }

    #[test]
    fn most_restrictive_tie_takes_later_reset() {
        let a = QuotaPolicy::new("a", 10, 60).expect("valid");
        let b = QuotaPolicy::new("b", 100, 3600).expect("valid");
        let h = RateLimitHeaders::new()
            .policy(&a, limit(0, 10))
            .policy(&b, limit(0, 600))
            .service_limit_items(ServiceLimitItems::MostRestrictive);
        assert_eq!(h.ratelimit_field().as_deref(), Some("\"b\";r=0;t=600"));
    }
}
