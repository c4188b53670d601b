//! What the monitor concludes: reasons, flags, decisions and locks.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::config::Action;
use crate::identity::Identity;

/// Why an identity was flagged. Each has a stable code.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Too many 4xx answers (`error_rate`).
    ErrorRate,
    /// Too many response bytes (`response_volume`).
    ResponseVolume,
    /// Mostly authentication endpoints (`auth_endpoint_share`).
    AuthEndpointShare,
    /// Persistently just under the rate limit (`near_limit_bursts`).
    NearLimitBursts,
    /// Active every hour with no idle period (`round_the_clock`).
    RoundTheClock,
    /// Many user agents (`user_agent_rotation`).
    UserAgentRotation,
    /// Many source networks (`network_changes`).
    NetworkChanges,
    /// Many distinct endpoints (`endpoint_spread`).
    EndpointSpread,
    /// Failed authentication: backoff before the next attempt (`auth_backoff`).
    AuthBackoff,
    /// Failed authentication: locked out (`auth_lockout`).
    AuthLockout,
    /// Failures for many distinct accounts from one address (`credential_stuffing`).
    CredentialStuffing,
}

impl Reason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::ResponseVolume => "response_volume",
            Self::AuthEndpointShare => "auth_endpoint_share",
            Self::NearLimitBursts => "near_limit_bursts",
            Self::RoundTheClock => "round_the_clock",
            Self::UserAgentRotation => "user_agent_rotation",
            Self::NetworkChanges => "network_changes",
            Self::EndpointSpread => "endpoint_spread",
            Self::AuthBackoff => "auth_backoff",
            Self::AuthLockout => "auth_lockout",
            Self::CredentialStuffing => "credential_stuffing",
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Self> {
        [
            Self::ErrorRate,
            Self::ResponseVolume,
            Self::AuthEndpointShare,
            Self::NearLimitBursts,
            Self::RoundTheClock,
            Self::UserAgentRotation,
            Self::NetworkChanges,
            Self::EndpointSpread,
            Self::AuthBackoff,
            Self::AuthLockout,
            Self::CredentialStuffing,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A flagged identity: what was decided, why, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Who.
    pub identity: Identity,
    /// What happens to it.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// The measurement that fired the rule (`"error rate 62% over 53 requests"`); never
    /// holds a credential.
    pub detail: String,
    /// When it was flagged.
    pub since: SystemTime,
    /// When the flag expires.
    pub until: SystemTime,
}

impl Flag {
    /// Whether the flag still applies at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.until > now
    }

    /// Compact form for shared storage: `action|reason|since_ms|until_ms|detail`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Used by the Redis store only.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.action.as_str(),
            self.reason.code(),
            unix_ms(self.since),
            unix_ms(self.until),
            self.detail
        )
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // Used by the Redis store only.
    pub(crate) fn decode(identity: Identity, s: &str) -> Option<Self> {
        let mut parts = s.splitn(5, '|');
        let action = Action::from_code(parts.next()?)?;
        let reason = Reason::from_code(parts.next()?)?;
        let since = from_unix_ms(parts.next()?.parse().ok()?);
        let until = from_unix_ms(parts.next()?.parse().ok()?);
        let detail = parts.next().unwrap_or_default().to_owned();
        Some(Self {
            identity,
            action,
            reason,
            detail,
            since,
            until,
        })
    }
}

/// The answer for one identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the request through.
    Allow,
    /// Slow down: answer 429 with `Retry-After` until `until`.
    Throttle {
        /// Why.
        reason: Reason,
        /// When it ends.
        until: SystemTime,
    },
    /// Refuse: answer 403 until `until`.
    Block {
        /// Why.
        reason: Reason,
        /// When it ends.
        until: SystemTime,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }

    /// Time left until the decision expires (for `Retry-After`), zero for `Allow`.
    pub fn retry_after(&self, now: SystemTime) -> Duration {
        match self {
            Self::Allow => Duration::ZERO,
            Self::Throttle { until, .. } | Self::Block { until, .. } => {
                until.duration_since(now).unwrap_or_default()
            }
        }
    }

    pub(crate) fn from_flag(flag: &Flag, now: SystemTime) -> Self {
        if !flag.is_active(now) {
            return Self::Allow;
        }
        match flag.action {
            Action::Alert => Self::Allow,
            Action::Throttle => Self::Throttle {
                reason: flag.reason,
                until: flag.until,
            },
            Action::Block => Self::Block {
                reason: flag.reason,
                until: flag.until,
            },
        }
    }
}

/// An account name, kept only as a 128-bit SHA-256 prefix: the monitor never stores or
/// logs account names, and any length is bounded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey([u8; 16]);

impl AccountKey {
    /// The key of an account name.
    pub fn of(account: &str) -> Self {
        let digest = Sha256::digest(account.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
        Self(key)
    }

    /// Hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountKey({})", self.to_hex())
    }
}

/// What an authentication lock applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthSubject {
    /// Every attempt from this address.
    Address(IpAddr),
    /// Every attempt for this account, from anywhere.
    Account(AccountKey),
}

/// A backoff or lockout on authentication attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLock {
    /// Address or account.
    pub subject: AuthSubject,
    /// [`Reason::AuthBackoff`], [`Reason::AuthLockout`] or [`Reason::CredentialStuffing`].
    pub reason: Reason,
    /// When attempts are allowed again.
    pub until: SystemTime,
}

impl AuthLock {
    /// Time left (for `Retry-After`).
    pub fn retry_after(&self, now: SystemTime) -> Duration {
        self.until.duration_since(now).unwrap_or_default()
    }
}

/// The result of recording one failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailureOutcome {
    /// Failures from the address in the window.
    pub address_failures: u64,
    /// Failures for the account in the window (0 when no account was given).
    pub account_failures: u64,
    /// Distinct accounts that failed from the address in the window.
    pub distinct_accounts: u64,
    /// The lock now in force, if any (the one that lasts longest).
    pub lock: Option<AuthLock>,
}

/// Failure counts a store returns after recording a failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthCounts {
    /// Failures from the address.
    pub address: u64,
    /// Failures for the account.
    pub account: u64,
    /// Distinct failed accounts from the address.
    pub distinct_accounts: u64,
}

/// The behaviour of one identity over the window, as a store measures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Behaviour {
    /// Requests.
    pub requests: u64,
    /// 4xx answers.
    pub errors: u64,
    /// Response bytes.
    pub response_bytes: u64,
    /// Requests to authentication endpoints.
    pub auth_requests: u64,
    /// Requests made with little rate-limit headroom left.
    pub near_limit: u64,
    /// Distinct endpoints.
    pub distinct_endpoints: u64,
    /// Distinct user agents.
    pub distinct_user_agents: u64,
    /// Distinct source networks.
    pub distinct_networks: u64,
    /// Active hours among the last [`WindowSpec::hours`] hours, the current one included.
    pub active_hours: u32,
}

/// One request reduced to what a store records (built by the monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation<'a> {
    /// 4xx answer.
    pub is_error: bool,
    /// Authentication endpoint.
    pub is_auth: bool,
    /// Made with little rate-limit headroom.
    pub near_limit: bool,
    /// Response bytes.
    pub response_bytes: u64,
    /// Endpoint, at most 256 bytes.
    pub endpoint: &'a str,
    /// User agent (empty when absent), at most 256 bytes.
    pub user_agent: &'a str,
    /// Source network (/24 or /48).
    pub network: IpAddr,
}

/// Window parameters a store needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length in seconds (at least 1).
    pub window_secs: u64,
    /// Hours of history for the activity pattern (1 to 32).
    pub hours: u32,
}

pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// How much of the previous window (in thousandths) a sliding window of `window_secs`
/// ending at `now_secs` still covers. `window_secs` is at least 1.
pub(crate) fn weight_permille(now_secs: u64, window_secs: u64) -> u64 {
    (window_secs - now_secs % window_secs) * 1000 / window_secs
}

/// Weighted sliding-window estimate: all of the current window plus the share of the
/// previous one that still overlaps the sliding window.
pub(crate) fn estimate(cur: u64, prev: u64, weight_permille: u64) -> u64 {
    // The weight is at most 1000, so u64 holds the product for any real count; a 128-bit
    // division (a library call) is kept for the rest.
    let carried = match prev.checked_mul(weight_permille) {
        Some(product) => product / 1000,
        None => {
            u64::try_from(u128::from(prev) * u128::from(weight_permille) / 1000).unwrap_or(u64::MAX)
        }
    };
    cur.saturating_add(carried)
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_codec_round_trips() {
        let flag = Flag {
            identity: Identity::api_key("k"),
            action: Action::Block,
            reason: Reason::AuthEndpointShare,
            detail: "a|b".to_owned(),
            since: from_unix_ms(1_000),
            until: from_unix_ms(2_000),
        };
        let back = Flag::decode(Identity::api_key("k"), &flag.encode()).expect("decode");
        assert_eq!(back, flag);
        assert!(Flag::decode(Identity::api_key("k"), "nonsense").is_none());
        for r in [
            Reason::ErrorRate,
            Reason::CredentialStuffing,
            Reason::AuthBackoff,
        ] {
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
    }

    #[test]
    fn decisions_from_flags() {
        let now = from_unix_ms(1_500);
        let mut flag = Flag {
            identity: Identity::api_key("k"),
            action: Action::Throttle,
            reason: Reason::ErrorRate,
            detail: String::new(),
            since: from_unix_ms(1_000),
            until: from_unix_ms(2_000),
        };
        let d = Decision::from_flag(&flag, now);
        assert!(!d.is_allowed());
        assert_eq!(d.retry_after(now), Duration::from_millis(500));
        flag.action = Action::Alert;
        assert!(Decision::from_flag(&flag, now).is_allowed());
        flag.action = Action::Block;
        assert!(Decision::from_flag(&flag, from_unix_ms(2_000)).is_allowed());
        assert_eq!(Decision::Allow.retry_after(now), Duration::ZERO);
    }

    #[test]
    fn account_keys_hide_names() {
        let k = AccountKey::of("alice@example.com");
        assert_eq!(k.to_hex().len(), 32);
        assert!(!format!("{k:?}").contains("alice"));
        assert_ne!(k, AccountKey::of("bob@example.com"));
    }
}
