//! The monitor: records behaviour, applies the rules, answers decisions.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::alert::{AlertSink, TracingSink};
use crate::config::{AbuseConfig, Action, DistinctRule, Rules};
use crate::decision::{
    AccountKey, AuthFailureOutcome, AuthLock, AuthSubject, Behaviour, Decision, Flag, Observation,
    Reason, WindowSpec,
};
use crate::error::Error;
use crate::identity::{Identity, RequestEvent, bounded, network_of};
use crate::memory::MemoryStore;
use crate::store::AbuseStore;

/// Watches behaviour per identity and decides whether it is allowed, throttled or
/// blocked; also defends authentication against brute force and credential stuffing.
///
/// Every method takes the current time; nothing reads the clock. See the crate docs for
/// an example.
pub struct AbuseMonitor<S = MemoryStore> {
    store: S,
    config: AbuseConfig,
    window: WindowSpec,
    sink: Arc<dyn AlertSink>,
}

impl<S> std::fmt::Debug for AbuseMonitor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbuseMonitor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AbuseMonitor<MemoryStore> {
    /// A monitor with the default rules and an in-memory store.
    pub fn in_memory() -> Self {
        Self {
            store: MemoryStore::new(),
            window: window_spec(&AbuseConfig::default()),
            config: AbuseConfig::default(),
            sink: Arc::new(TracingSink),
        }
    }

    /// The decision for `identity` from local state, without going through the async
    /// store interface (the in-memory hot path).
    pub fn decision_now(&self, identity: &Identity, now: SystemTime) -> Decision {
        self.store.decision_sync(identity, now)
    }
}

fn window_spec(config: &AbuseConfig) -> WindowSpec {
    WindowSpec {
        window_secs: config.window.as_secs().max(1),
        hours: config.rules.round_the_clock.map_or(24, |r| r.hours),
    }
}

impl<S: AbuseStore> AbuseMonitor<S> {
    /// A monitor over `store` with `config`, alerting through [`TracingSink`].
    ///
    /// # Errors
    /// The configuration's [`AbuseConfig::validate`] error.
    pub fn new(store: S, config: AbuseConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            store,
            window: window_spec(&config),
            config,
            sink: Arc::new(TracingSink),
        })
    }

    /// Replaces the alert sink.
    #[must_use]
    pub fn with_alert_sink(mut self, sink: impl AlertSink + 'static) -> Self {
        self.sink = Arc::new(sink);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &AbuseConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Records one request of `identity` (after the response is known) and flags the
    /// identity when a rule fires. Returns the behaviour measured over the window.
    pub async fn record(
        &self,
        identity: &Identity,
        event: &RequestEvent<'_>,
        now: SystemTime,
    ) -> Behaviour {
        let near_limit = match (self.config.rules.near_limit, event.rate_limit) {
            (Some(rule), Some(usage)) => {
                u128::from(usage.remaining) * 100
                    <= u128::from(usage.limit) * u128::from(rule.headroom_percent)
            }
            _ => false,
        };
        let observation = Observation {
            is_error: (400..500).contains(&event.status),
            is_auth: event.is_auth_endpoint,
            near_limit,
            response_bytes: event.response_bytes,
            endpoint: bounded(event.endpoint),
            user_agent: bounded(event.user_agent.unwrap_or_default()),
            network: network_of(event.source_ip),
        };
        let behaviour = self
            .store
            .record(identity, &observation, now, self.window)
            .await;
        if let Some((action, reason)) = evaluate(&self.config.rules, &behaviour) {
            // Boxed: flagging is the rare path, and its state inline would make every
            // `record` future several times larger (and slower to move).
            Box::pin(self.flag_for(identity, action, reason, behaviour, now)).await;
        }
        behaviour
    }

    /// Flags `identity` for breaking a rule, once the store has confirmed the numbers.
    async fn flag_for(
        &self,
        identity: &Identity,
        action: Action,
        reason: Reason,
        behaviour: Behaviour,
        now: SystemTime,
    ) {
        let existing = self.store.flag(identity, now).await.map(|f| f.action);
        if existing >= Some(action) {
            return;
        }
        let (action, reason, behaviour) = match self.store.confirm(identity, now, self.window).await
        {
            None => (action, reason, behaviour),
            Some(fresh) => match evaluate(&self.config.rules, &fresh) {
                Some((action, reason)) if existing < Some(action) => (action, reason, fresh),
                _ => return,
            },
        };
        self.set(identity, action, reason, describe(reason, &behaviour), now)
            .await;
    }

    /// Flags `identity` unless an equal or harsher flag is already active.
    async fn raise(
        &self,
        identity: &Identity,
        action: Action,
        reason: Reason,
        detail: &(dyn Fn() -> String + Sync),
        now: SystemTime,
    ) {
        if let Some(existing) = self.store.flag(identity, now).await
            && existing.action >= action
        {
            return;
        }
        self.set(identity, action, reason, detail(), now).await;
    }

    async fn set(
        &self,
        identity: &Identity,
        action: Action,
        reason: Reason,
        detail: String,
        now: SystemTime,
    ) {
        let flag = Flag {
            identity: identity.clone(),
            action,
            reason,
            detail,
            since: now,
            until: now + self.config.penalty_for(action),
        };
        self.store.set_flag(&flag).await;
        self.sink.alert(&flag);
    }

    /// The decision for `identity` at `now`: allowed unless an active flag throttles or
    /// blocks it.
    pub async fn decision(&self, identity: &Identity, now: SystemTime) -> Decision {
        self.store
            .flag(identity, now)
            .await
            .map_or(Decision::Allow, |f| Decision::from_flag(&f, now))
    }

    /// Every identity flagged at `now` (throttled, blocked, or alert-only), with the
    /// reason: what `GET /admin/abuse` lists.
    pub async fn list_flagged(&self, now: SystemTime) -> Vec<Flag> {
        self.store.flags(now).await
    }

    /// Forgets `identity`'s flag and behaviour (`DELETE /admin/abuse/{identity}`); for an
    /// address, also its authentication lock and failure counts.
    pub async fn clear(&self, identity: &Identity, now: SystemTime) {
        self.store.clear(identity, now, self.window).await;
        if let Some(ip) = identity.ip() {
            let window = self.config.brute_force.window.as_secs().max(1);
            self.store
                .clear_auth(AuthSubject::Address(ip), now, window)
                .await;
        }
    }

    /// Records a failed authentication from `address`, for `account` when the request
    /// named one (a username, a client id, an API key id; never a secret).
    ///
    /// Returns the counts and the lock now in force: a backoff after the free attempts,
    /// a lockout at the thresholds, and a lockout of the address when it failed for too
    /// many distinct accounts. An address lockout also throttles the address identity
    /// (visible in [`list_flagged`](Self::list_flagged)).
    pub async fn record_auth_failure(
        &self,
        address: IpAddr,
        account: Option<&str>,
        now: SystemTime,
    ) -> AuthFailureOutcome {
        let bf = &self.config.brute_force;
        let account_key = account.map(AccountKey::of);
        let counts = self
            .store
            .auth_failure(address, account_key, now, bf.window.as_secs().max(1))
            .await;

        let mut locks: Vec<(AuthLock, String)> = Vec::new();
        let addr = AuthSubject::Address(address);
        if counts.distinct_accounts > bf.max_accounts_per_address {
            locks.push((
                lock(addr, Reason::CredentialStuffing, now, bf.lockout_for),
                format!(
                    "failed authentication for {} distinct accounts",
                    counts.distinct_accounts
                ),
            ));
        } else if counts.address >= bf.address_lockout_after {
            locks.push((
                lock(addr, Reason::AuthLockout, now, bf.lockout_for),
                format!("{} failed authentications", counts.address),
            ));
        } else if counts.address > bf.free_attempts {
            let delay = backoff(
                bf.backoff_base,
                bf.backoff_max,
                counts.address - bf.free_attempts,
            );
            locks.push((lock(addr, Reason::AuthBackoff, now, delay), String::new()));
        }
        if let Some(key) = account_key {
            let acct = AuthSubject::Account(key);
            if counts.account >= bf.account_lockout_after {
                locks.push((
                    lock(acct, Reason::AuthLockout, now, bf.lockout_for),
                    String::new(),
                ));
            } else if counts.account > bf.free_attempts {
                let delay = backoff(
                    bf.backoff_base,
                    bf.backoff_max,
                    counts.account - bf.free_attempts,
                );
                locks.push((lock(acct, Reason::AuthBackoff, now, delay), String::new()));
            }
        }
        for (l, detail) in &locks {
            self.store.set_auth_lock(*l, now).await;
            if matches!(l.subject, AuthSubject::Address(_)) && l.reason != Reason::AuthBackoff {
                self.raise(
                    &Identity::address(address),
                    Action::Throttle,
                    l.reason,
                    &|| detail.clone(),
                    now,
                )
                .await;
            }
        }
        AuthFailureOutcome {
            address_failures: counts.address,
            account_failures: counts.account,
            distinct_accounts: counts.distinct_accounts,
            lock: self.is_locked(address, account, now).await,
        }
    }

    /// Records a successful authentication: the account's failure count starts again
    /// (the address's does not, so that one good account cannot launder an attack).
    pub async fn record_auth_success(&self, account: &str, now: SystemTime) {
        let window = self.config.brute_force.window.as_secs().max(1);
        self.store
            .auth_success(AccountKey::of(account), now, window)
            .await;
    }

    /// The lock that stops an authentication attempt from `address` (for `account`) at
    /// `now`, if any: the one that lasts longest.
    pub async fn is_locked(
        &self,
        address: IpAddr,
        account: Option<&str>,
        now: SystemTime,
    ) -> Option<AuthLock> {
        let by_address = self
            .store
            .auth_lock(AuthSubject::Address(address), now)
            .await;
        let by_account = match account {
            Some(a) => {
                self.store
                    .auth_lock(AuthSubject::Account(AccountKey::of(a)), now)
                    .await
            }
            None => None,
        };
        match (by_address, by_account) {
            (Some(a), Some(b)) => Some(if b.until > a.until { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

fn lock(subject: AuthSubject, reason: Reason, now: SystemTime, d: Duration) -> AuthLock {
    AuthLock {
        subject,
        reason,
        until: now + d,
    }
}

/// `base * 2^(n-1)`, at most `max`.
fn backoff(base: Duration, max: Duration, n: u64) -> Duration {
    let exp = u32::try_from(n.saturating_sub(1).min(30)).unwrap_or(30);
    base.checked_mul(1u32 << exp).unwrap_or(max).min(max)
}

fn pct_over(part: u64, whole: u64, percent: u8) -> bool {
    u128::from(part) * 100 > u128::from(whole) * u128::from(percent)
}

/// The harshest rule that fires (the first one listed among equals).
fn evaluate(rules: &Rules, b: &Behaviour) -> Option<(Action, Reason)> {
    let distinct =
        |rule: Option<DistinctRule>, n: u64| rule.filter(|r| n > r.max_distinct).map(|r| r.action);
    let candidates = [
        (
            rules
                .error_rate
                .filter(|r| {
                    b.requests >= r.min_requests && pct_over(b.errors, b.requests, r.max_percent)
                })
                .map(|r| r.action),
            Reason::ErrorRate,
        ),
        (
            rules
                .response_bytes
                .filter(|r| b.response_bytes > r.max_bytes)
                .map(|r| r.action),
            Reason::ResponseVolume,
        ),
        (
            rules
                .auth_share
                .filter(|r| {
                    b.requests >= r.min_requests
                        && pct_over(b.auth_requests, b.requests, r.max_percent)
                })
                .map(|r| r.action),
            Reason::AuthEndpointShare,
        ),
        (
            rules
                .near_limit
                .filter(|r| {
                    b.near_limit >= r.min_near_limit
                        && pct_over(b.near_limit, b.requests, r.min_share_percent)
                })
                .map(|r| r.action),
            Reason::NearLimitBursts,
        ),
        (
            rules
                .round_the_clock
                .filter(|r| b.active_hours >= r.hours)
                .map(|r| r.action),
            Reason::RoundTheClock,
        ),
        (
            distinct(rules.user_agent_rotation, b.distinct_user_agents),
            Reason::UserAgentRotation,
        ),
        (
            distinct(rules.network_changes, b.distinct_networks),
            Reason::NetworkChanges,
        ),
        (
            distinct(rules.endpoint_spread, b.distinct_endpoints),
            Reason::EndpointSpread,
        ),
    ];
    let mut best: Option<(Action, Reason)> = None;
    for (action, reason) in candidates {
        if let Some(action) = action
            && best.is_none_or(|(a, _)| action > a)
        {
            best = Some((action, reason));
        }
    }
    best
}

/// The measurement behind a reason, for people (only built when a flag is raised).
fn describe(reason: Reason, b: &Behaviour) -> String {
    match reason {
        Reason::ErrorRate => format!("{} errors in {} requests", b.errors, b.requests),
        Reason::ResponseVolume => format!("{} response bytes", b.response_bytes),
        Reason::AuthEndpointShare => format!(
            "{} of {} requests to authentication endpoints",
            b.auth_requests, b.requests
        ),
        Reason::NearLimitBursts => format!(
            "{} of {} requests just under the rate limit",
            b.near_limit, b.requests
        ),
        Reason::RoundTheClock => format!("active in each of the last {} hours", b.active_hours),
        Reason::UserAgentRotation => format!("{} distinct user agents", b.distinct_user_agents),
        Reason::NetworkChanges => format!("{} distinct source networks", b.distinct_networks),
        Reason::EndpointSpread => format!("{} distinct endpoints", b.distinct_endpoints),
        other => other.code().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(300);
        assert_eq!(backoff(base, max, 1), Duration::from_secs(1));
        assert_eq!(backoff(base, max, 2), Duration::from_secs(2));
        assert_eq!(backoff(base, max, 5), Duration::from_secs(16));
        assert_eq!(backoff(base, max, 100), max);
        assert_eq!(backoff(Duration::MAX, max, 3), max);
    }

    #[test]
    fn harshest_rule_wins() {
        let b = Behaviour {
            requests: 100,
            errors: 60,
            auth_requests: 90,
            ..Behaviour::default()
        };
        let (action, reason) = evaluate(&Rules::default(), &b).expect("fires");
        assert_eq!((action, reason), (Action::Block, Reason::AuthEndpointShare));
        assert!(describe(reason, &b).contains("90 of 100"));
        assert!(evaluate(&Rules::default(), &Behaviour::default()).is_none());
    }
}
