//! Plain data: plans, key records, creation requests and verified keys.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use crate::format::{Environment, RawKey};
use crate::hash::KeyHash;
use crate::scope::scope_covers;

/// A plan's limits, as plain data: this crate records them with the key and hands them
/// back on verification; enforcing them is the rate limiter's job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plan {
    /// The plan's name (`free`, `pro`, ...), 1 to 64 characters.
    pub name: String,
    /// Requests per minute, if the plan limits them.
    pub per_minute: Option<u32>,
    /// Requests per day, if the plan limits them.
    pub per_day: Option<u32>,
    /// Burst size, if the plan sets one.
    pub burst: Option<u32>,
}

impl Plan {
    /// A plan with the given name and no limits.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            per_minute: None,
            per_day: None,
            burst: None,
        }
    }
}

impl Default for Plan {
    /// The plan named `default`, with no limits.
    fn default() -> Self {
        Self::new("default")
    }
}

/// Everything known about a key except its secret and its hash: what
/// [`ApiKeys::list`](crate::ApiKeys::list) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The public key id (`key_` and 16 characters): for logs, lists and URLs.
    pub key_id: String,
    /// Who the key belongs to.
    pub owner: String,
    /// The environment the key was issued for.
    pub environment: Environment,
    /// The prefix and last four characters of the key, for people to recognise it.
    pub hint: String,
    /// Granted scopes (see [`scope_covers`] for the matching rule).
    pub scopes: Vec<String>,
    /// The plan, with its limits.
    pub plan: Plan,
    /// A per-key limit in requests per minute, overriding the plan's.
    pub rate_limit_per_minute: Option<NonZeroU32>,
    /// Client networks allowed to use the key; empty means any address.
    pub allowed_networks: Vec<IpNet>,
    /// When the key was created.
    pub created_at: SystemTime,
    /// When the key stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// Last successful verification (to the second), as of the last
    /// [`ApiKeys::flush`](crate::ApiKeys::flush).
    pub last_used_at: Option<SystemTime>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<SystemTime>,
    /// The key this one replaced by rotation.
    pub rotated_from: Option<String>,
    /// The key that replaced this one by rotation.
    pub rotated_to: Option<String>,
    /// After a rotation, the end of this key's grace period (never after `expires_at`).
    pub grace_until: Option<SystemTime>,
}

impl KeyRecord {
    /// The instant the key stops working: the earlier of its expiry and its rotation
    /// grace deadline.
    pub fn valid_until(&self) -> Option<SystemTime> {
        match (self.expires_at, self.grace_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the key works at `now`: not revoked and not past [`valid_until`](Self::valid_until).
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && self.valid_until().is_none_or(|until| now < until)
    }

    /// Whether `address` may use the key (always, when the allowlist is empty).
    /// IPv4-mapped IPv6 addresses are treated as the IPv4 address they carry.
    pub fn allows_address(&self, address: Option<IpAddr>) -> bool {
        address_allowed(&self.allowed_networks, address)
    }
}

pub(crate) fn address_allowed(networks: &[IpNet], address: Option<IpAddr>) -> bool {
    if networks.is_empty() {
        return true;
    }
    let Some(address) = address else {
        return false;
    };
    let address = address.to_canonical();
    networks.iter().any(|network| network.contains(&address))
}

/// A key record with its hash, as a [`KeyStore`](crate::KeyStore) keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The record.
    pub record: KeyRecord,
    /// The hash of the raw key.
    pub hash: KeyHash,
}

/// What to create: built with [`NewKey::new`] and its setters, passed to
/// [`ApiKeys::create`](crate::ApiKeys::create).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct NewKey {
    pub(crate) owner: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) plan: Plan,
    pub(crate) rate_limit_per_minute: Option<NonZeroU32>,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) allowed_networks: Vec<IpNet>,
}

impl NewKey {
    /// A key for `owner` (1 to 256 characters, no control characters), with no scopes,
    /// the default plan, no per-key limit, no expiry and no address restriction.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            scopes: Vec::new(),
            plan: Plan::default(),
            rate_limit_per_minute: None,
            expires_at: None,
            allowed_networks: Vec::new(),
        }
    }

    /// The scopes to grant (validated and de-duplicated on creation).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The plan.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// A per-key limit in requests per minute.
    pub fn rate_limit_per_minute(mut self, limit: Option<NonZeroU32>) -> Self {
        self.rate_limit_per_minute = limit;
        self
    }

    /// When the key expires (`None`: never). It must be after the creation time.
    pub fn expires_at(mut self, expires_at: Option<SystemTime>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// Client networks allowed to use the key (IPv4 and IPv6 CIDRs; at most 64).
    pub fn allowed_networks<I: IntoIterator<Item = IpNet>>(mut self, networks: I) -> Self {
        self.allowed_networks = networks.into_iter().collect();
        self
    }
}

/// A freshly created (or rotated-in) key: the raw key, shown this once, and its record.
#[derive(Debug)]
pub struct CreatedKey {
    /// The raw key. Hand it to its owner and drop it: only its hash is stored.
    pub key: RawKey,
    /// The stored record.
    pub record: KeyRecord,
}

/// The result of a successful verification: who is calling, with which scopes and limits.
///
/// Cheap to clone (one reference count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey(Arc<VerifiedInner>);

#[derive(Debug, PartialEq, Eq)]
struct VerifiedInner {
    key_id: String,
    owner: String,
    environment: Environment,
    scopes: Vec<String>,
    plan: Plan,
    rate_limit_per_minute: Option<NonZeroU32>,
    valid_until: Option<SystemTime>,
}

impl VerifiedKey {
    pub(crate) fn from_record(record: &KeyRecord) -> Self {
        Self(Arc::new(VerifiedInner {
            key_id: record.key_id.clone(),
            owner: record.owner.clone(),
            environment: record.environment,
            scopes: record.scopes.clone(),
            plan: record.plan.clone(),
            rate_limit_per_minute: record.rate_limit_per_minute,
            valid_until: record.valid_until(),
        }))
    }

    /// The public key id.
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }

    /// The owner.
    pub fn owner(&self) -> &str {
        &self.0.owner
    }

    /// The environment.
    pub fn environment(&self) -> Environment {
        self.0.environment
    }

    /// The granted scopes, as stored (wildcards included).
    pub fn scopes(&self) -> &[String] {
        &self.0.scopes
    }

    /// Whether one of the granted scopes covers `required` (see [`scope_covers`]).
    pub fn has_scope(&self, required: &str) -> bool {
        self.0
            .scopes
            .iter()
            .any(|granted| scope_covers(granted, required))
    }

    /// The plan and its limits.
    pub fn plan(&self) -> &Plan {
        &self.0.plan
    }

    /// The per-key limit in requests per minute, if set.
    pub fn rate_limit_per_minute(&self) -> Option<NonZeroU32> {
        self.0.rate_limit_per_minute
    }

    /// When the key stops working (expiry or rotation grace deadline), if ever.
    pub fn valid_until(&self) -> Option<SystemTime> {
        self.0.valid_until
    }
}

/// Milliseconds since the Unix epoch, clamped to `0..=i64::MAX`: the stores' time unit.
pub(crate) fn to_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The inverse of [`to_millis`]; negative values read as the epoch.
pub(crate) fn from_millis(millis: i64) -> SystemTime {
    let millis = u64::try_from(millis).unwrap_or(0);
    UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .unwrap_or(UNIX_EPOCH)
}

/// Truncates to whole milliseconds, so that every store returns what it was given.
pub(crate) fn truncate_millis(time: SystemTime) -> SystemTime {
    from_millis(to_millis(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> KeyRecord {
        KeyRecord {
            key_id: "key_x".into(),
            owner: "o".into(),
            environment: Environment::Live,
            hint: String::new(),
            scopes: vec!["orders:*".into()],
            plan: Plan::default(),
            rate_limit_per_minute: None,
            allowed_networks: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            created_at: UNIX_EPOCH,
            expires_at: Some(UNIX_EPOCH + Duration::from_secs(100)),
            last_used_at: None,
            revoked_at: None,
            rotated_from: None,
            rotated_to: None,
            grace_until: None,
        }
    }

    #[test]
    fn validity_window() {
        let mut r = record();
        assert!(r.is_active(UNIX_EPOCH + Duration::from_secs(99)));
        assert!(!r.is_active(UNIX_EPOCH + Duration::from_secs(100)));
        r.grace_until = Some(UNIX_EPOCH + Duration::from_secs(50));
        assert_eq!(r.valid_until(), Some(UNIX_EPOCH + Duration::from_secs(50)));
        r.expires_at = None;
        assert_eq!(r.valid_until(), Some(UNIX_EPOCH + Duration::from_secs(50)));
        r.grace_until = None;
        assert!(r.is_active(UNIX_EPOCH + Duration::from_secs(1 << 40)));
        r.revoked_at = Some(UNIX_EPOCH);
        assert!(!r.is_active(UNIX_EPOCH));
    }

    #[test]
    fn address_allowlist_handles_v4_v6_and_mapped() {
        let r = record();
        assert!(r.allows_address(Some("10.1.2.3".parse().unwrap())));
        assert!(r.allows_address(Some("::ffff:10.1.2.3".parse().unwrap())));
        assert!(r.allows_address(Some("2001:db8::1".parse().unwrap())));
        assert!(!r.allows_address(Some("11.0.0.1".parse().unwrap())));
        assert!(!r.allows_address(Some("2001:db9::1".parse().unwrap())));
        assert!(!r.allows_address(None));
        let open = KeyRecord {
            allowed_networks: vec![],
            ..record()
        };
        assert!(open.allows_address(None));
    }

    #[test]
    fn millis_round_trip_and_clamp() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(to_millis(t), 1_700_000_000_123);
        assert_eq!(
            truncate_millis(t),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        assert_eq!(to_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(from_millis(-5), UNIX_EPOCH);
    }

    #[test]
    fn verified_key_scopes() {
        let v = VerifiedKey::from_record(&record());
        assert!(v.has_scope("orders:read"));
        assert!(!v.has_scope("admin"));
        assert_eq!(v.key_id(), "key_x");
        assert_eq!(v.valid_until(), Some(UNIX_EPOCH + Duration::from_secs(100)));
    }
}
