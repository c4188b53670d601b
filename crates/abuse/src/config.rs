//! Rules, thresholds and their defaults.

use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// What a rule does when it fires, from mildest to harshest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Report to the alert sink and list the identity as flagged; requests still pass.
    Alert,
    /// Slow the identity down (the adapter answers 429 with `Retry-After`).
    Throttle,
    /// Refuse the identity (the adapter answers 403).
    Block,
}

impl Action {
    /// `alert`, `throttle` or `block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Throttle => "throttle",
            Self::Block => "block",
        }
    }

    pub(crate) fn from_code(s: &str) -> Option<Self> {
        Some(match s {
            "alert" => Self::Alert,
            "throttle" => Self::Throttle,
            "block" => Self::Block,
            _ => return None,
        })
    }
}

/// Error rate: more than `max_percent`% of requests answered 4xx, once at least
/// `min_requests` were seen in the window. Seed default: over 50% after 50, throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRateRule {
    /// Requests in the window before the rule applies.
    pub min_requests: u64,
    /// Percentage of errors that must be exceeded.
    pub max_percent: u8,
    /// What happens.
    pub action: Action,
}

/// Response volume: more than `max_bytes` of responses in the window (data scraping).
/// Seed default: over 100 MB (100 × 1024 × 1024 bytes), throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseBytesRule {
    /// Bytes that must be exceeded.
    pub max_bytes: u64,
    /// What happens.
    pub action: Action,
}

/// Authentication share: more than `max_percent`% of requests to authentication
/// endpoints once `min_requests` were seen (credential attacks). Seed default: over 80%
/// after 20, block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthShareRule {
    /// Requests in the window before the rule applies.
    pub min_requests: u64,
    /// Percentage of authentication requests that must be exceeded.
    pub max_percent: u8,
    /// What happens.
    pub action: Action,
}

/// Riding just under the limit: at least `min_near_limit` requests in the window were
/// made with no more than `headroom_percent`% of the rate limit left, and they are more
/// than `min_share_percent`% of the identity's requests. A client that keeps itself a
/// hair under the limit all the time is pacing itself to evade it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearLimitRule {
    /// A request is "near the limit" when `remaining * 100 <= limit * headroom_percent`.
    pub headroom_percent: u8,
    /// Near-limit requests in the window before the rule applies.
    pub min_near_limit: u64,
    /// Share of near-limit requests that must be exceeded.
    pub min_share_percent: u8,
    /// What happens.
    pub action: Action,
}

/// Round-the-clock activity: active in each of the last `hours` hours (at most 32), with
/// no idle hour. Humans sleep; a stolen key used by a bot does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTheClockRule {
    /// Consecutive active hours that trigger the rule.
    pub hours: u32,
    /// What happens.
    pub action: Action,
}

/// Too many distinct values in the window (user agents, source networks, endpoints):
/// more than `max_distinct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistinctRule {
    /// Distinct values that must be exceeded.
    pub max_distinct: u64,
    /// What happens.
    pub action: Action,
}

/// The behaviour rules. `None` disables a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Error rate (default: over 50% after 50 requests, throttle).
    pub error_rate: Option<ErrorRateRule>,
    /// Response bytes (default: over 100 MB in the window, throttle).
    pub response_bytes: Option<ResponseBytesRule>,
    /// Authentication endpoint share (default: over 80% after 20 requests, block).
    pub auth_share: Option<AuthShareRule>,
    /// Bursts riding just under the rate limit (default: 10% headroom, 100 such
    /// requests making over 50% of the traffic, throttle).
    pub near_limit: Option<NearLimitRule>,
    /// Round-the-clock activity (default: 24 active hours in a row, alert only:
    /// legitimate machine clients do this too).
    pub round_the_clock: Option<RoundTheClockRule>,
    /// User-agent rotation (default: over 10 distinct user agents, throttle).
    pub user_agent_rotation: Option<DistinctRule>,
    /// Rapid changes of source network (default: over 5 distinct /24 or /48 networks,
    /// throttle: one key used from many places is a leaked key).
    pub network_changes: Option<DistinctRule>,
    /// Endpoint spread (default: off; tracked only). Enable for scanning detection when
    /// endpoints are route templates.
    pub endpoint_spread: Option<DistinctRule>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            error_rate: Some(ErrorRateRule {
                min_requests: 50,
                max_percent: 50,
                action: Action::Throttle,
            }),
            response_bytes: Some(ResponseBytesRule {
                max_bytes: 100 * 1024 * 1024,
                action: Action::Throttle,
            }),
            auth_share: Some(AuthShareRule {
                min_requests: 20,
                max_percent: 80,
                action: Action::Block,
            }),
            near_limit: Some(NearLimitRule {
                headroom_percent: 10,
                min_near_limit: 100,
                min_share_percent: 50,
                action: Action::Throttle,
            }),
            round_the_clock: Some(RoundTheClockRule {
                hours: 24,
                action: Action::Alert,
            }),
            user_agent_rotation: Some(DistinctRule {
                max_distinct: 10,
                action: Action::Throttle,
            }),
            network_changes: Some(DistinctRule {
                max_distinct: 5,
                action: Action::Throttle,
            }),
            endpoint_spread: None,
        }
    }
}

/// Brute-force and credential-stuffing defence.
///
/// Failures are counted per address and per account over `window`. After
/// `free_attempts` failures, each further failure imposes an exponential backoff
/// (`backoff_base`, doubled each time, at most `backoff_max`) before the next attempt;
/// at `address_lockout_after` / `account_lockout_after` failures the address / account is
/// locked for `lockout_for`. Failures for more than `max_accounts_per_address` distinct
/// accounts from one address lock the address (credential stuffing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BruteForceConfig {
    /// Counting window (default 15 minutes).
    pub window: Duration,
    /// Failures allowed before backoff starts (default 5).
    pub free_attempts: u64,
    /// First backoff (default 1 s).
    pub backoff_base: Duration,
    /// Longest backoff (default 5 minutes).
    pub backoff_max: Duration,
    /// Failures from one address that lock it (default 50).
    pub address_lockout_after: u64,
    /// Failures for one account that lock it (default 10).
    pub account_lockout_after: u64,
    /// Lockout length (default 15 minutes).
    pub lockout_for: Duration,
    /// Distinct failed accounts from one address that lock it (default: more than 10).
    pub max_accounts_per_address: u64,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            free_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5 * 60),
            address_lockout_after: 50,
            account_lockout_after: 10,
            lockout_for: Duration::from_secs(15 * 60),
            max_accounts_per_address: 10,
        }
    }
}

/// Everything the monitor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseConfig {
    /// Length of the sliding window of the behaviour rules (default 10 minutes). Counters
    /// use two fixed windows weighted by overlap (a sliding-window estimate); distinct
    /// counts cover the current and the previous window.
    pub window: Duration,
    /// The behaviour rules.
    pub rules: Rules,
    /// How long a throttle lasts once a rule fires (default 5 minutes).
    pub throttle_for: Duration,
    /// How long a block lasts (default 15 minutes).
    pub block_for: Duration,
    /// How long an alert-only flag is listed (default 1 hour); the alert is not repeated
    /// while it is.
    pub alert_for: Duration,
    /// Brute-force defence.
    pub brute_force: BruteForceConfig,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10 * 60),
            rules: Rules::default(),
            throttle_for: Duration::from_secs(5 * 60),
            block_for: Duration::from_secs(15 * 60),
            alert_for: Duration::from_secs(60 * 60),
            brute_force: BruteForceConfig::default(),
        }
    }
}

impl AbuseConfig {
    /// Checks every value.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] for a window or penalty under one second, a
    /// percentage over 100, round-the-clock hours outside 1..=32, or a distinct-count
    /// threshold of [`MAX_DISTINCT`](crate::MAX_DISTINCT) or more.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what| Err(Error::new(ErrorKind::InvalidConfig, what));
        let second = Duration::from_secs(1);
        if self.window < second
            || self.throttle_for < second
            || self.block_for < second
            || self.alert_for < second
            || self.brute_force.window < second
            || self.brute_force.lockout_for < second
        {
            return bad("windows and penalties must be at least one second");
        }
        let r = &self.rules;
        let percents = [
            r.error_rate.map(|x| x.max_percent),
            r.auth_share.map(|x| x.max_percent),
            r.near_limit.map(|x| x.headroom_percent),
            r.near_limit.map(|x| x.min_share_percent),
        ];
        if percents.into_iter().flatten().any(|p| p > 100) {
            return bad("percentages must be at most 100");
        }
        if r.round_the_clock
            .is_some_and(|x| !(1..=32).contains(&x.hours))
        {
            return bad("round-the-clock hours must be 1 to 32");
        }
        let distinct = [r.user_agent_rotation, r.network_changes, r.endpoint_spread];
        if distinct
            .into_iter()
            .flatten()
            .any(|d| d.max_distinct >= crate::MAX_DISTINCT)
        {
            return bad("distinct-count thresholds must be below MAX_DISTINCT");
        }
        if self.brute_force.address_lockout_after == 0
            || self.brute_force.account_lockout_after == 0
        {
            return bad("lockout thresholds must be at least one");
        }
        Ok(())
    }

    pub(crate) fn penalty_for(&self, action: Action) -> Duration {
        match action {
            Action::Alert => self.alert_for,
            Action::Throttle => self.throttle_for,
            Action::Block => self.block_for,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_seeded() {
        let c = AbuseConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(
            c.rules.error_rate.map(|r| (r.min_requests, r.max_percent)),
            Some((50, 50))
        );
        assert_eq!(
            c.rules.response_bytes.map(|r| r.max_bytes),
            Some(104_857_600)
        );
        assert_eq!(
            c.rules
                .auth_share
                .map(|r| (r.min_requests, r.max_percent, r.action)),
            Some((20, 80, Action::Block))
        );
    }

    #[test]
    fn invalid_configs() {
        let mut c = AbuseConfig {
            window: Duration::ZERO,
            ..AbuseConfig::default()
        };
        assert!(c.validate().is_err());
        c.window = Duration::from_secs(60);
        c.rules.error_rate = Some(ErrorRateRule {
            min_requests: 1,
            max_percent: 101,
            action: Action::Block,
        });
        assert!(c.validate().is_err());
        c.rules.error_rate = None;
        c.rules.round_the_clock = Some(RoundTheClockRule {
            hours: 33,
            action: Action::Alert,
        });
        assert!(c.validate().is_err());
        c.rules.round_the_clock = None;
        c.rules.endpoint_spread = Some(DistinctRule {
            max_distinct: crate::MAX_DISTINCT,
            action: Action::Alert,
        });
        assert_eq!(c.validate().map_err(|e| e.code()), Err("invalid_config"));
    }
}
