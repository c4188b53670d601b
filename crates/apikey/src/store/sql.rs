//! What the SQL stores share: the row shape and its conversions.

use std::num::NonZeroU32;
use std::time::SystemTime;

use ipnet::IpNet;

use crate::error::Error;
use crate::format::Environment;
use crate::hash::KeyHash;
use crate::record::{KeyRecord, Plan, StoredKey, from_millis, to_millis};

/// The columns of `apikey_keys`, in [`KeyRow`] order.
pub(crate) const COLUMNS: &str = "key_id, key_hash, owner, environment, hint, scopes, \
     plan_name, plan_per_minute, plan_per_day, plan_burst, rate_limit_per_minute, \
     allowed_networks, created_at_ms, expires_at_ms, last_used_at_ms, revoked_at_ms, \
     rotated_from, rotated_to, grace_until_ms";

/// One row of `apikey_keys`, as both SQL engines hold it.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    pub(crate) key_id: String,
    pub(crate) key_hash: Vec<u8>,
    pub(crate) owner: String,
    pub(crate) environment: String,
    pub(crate) hint: String,
    /// Space-separated (scopes never contain spaces).
    pub(crate) scopes: String,
    pub(crate) plan_name: String,
    pub(crate) plan_per_minute: Option<i64>,
    pub(crate) plan_per_day: Option<i64>,
    pub(crate) plan_burst: Option<i64>,
    pub(crate) rate_limit_per_minute: Option<i64>,
    /// Space-separated CIDRs.
    pub(crate) allowed_networks: String,
    pub(crate) created_at_ms: i64,
    pub(crate) expires_at_ms: Option<i64>,
    pub(crate) last_used_at_ms: Option<i64>,
    pub(crate) revoked_at_ms: Option<i64>,
    pub(crate) rotated_from: Option<String>,
    pub(crate) rotated_to: Option<String>,
    pub(crate) grace_until_ms: Option<i64>,
}

fn corrupt(what: &str) -> Error {
    Error::storage(format!("unreadable apikey_keys.{what}"))
}

fn opt_u32(value: Option<i64>, what: &str) -> Result<Option<u32>, Error> {
    value
        .map(|v| u32::try_from(v).map_err(|_| corrupt(what)))
        .transpose()
}

fn opt_time(value: Option<i64>) -> Option<SystemTime> {
    value.map(from_millis)
}

impl KeyRow {
    pub(crate) fn from_stored(key: &StoredKey) -> Self {
        let r = &key.record;
        Self {
            key_id: r.key_id.clone(),
            key_hash: key.hash.as_bytes().to_vec(),
            owner: r.owner.clone(),
            environment: r.environment.as_str().to_owned(),
            hint: r.hint.clone(),
            scopes: r.scopes.join(" "),
            plan_name: r.plan.name.clone(),
            plan_per_minute: r.plan.per_minute.map(i64::from),
            plan_per_day: r.plan.per_day.map(i64::from),
            plan_burst: r.plan.burst.map(i64::from),
            rate_limit_per_minute: r.rate_limit_per_minute.map(|n| i64::from(n.get())),
            allowed_networks: r
                .allowed_networks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            created_at_ms: to_millis(r.created_at),
            expires_at_ms: r.expires_at.map(to_millis),
            last_used_at_ms: r.last_used_at.map(to_millis),
            revoked_at_ms: r.revoked_at.map(to_millis),
            rotated_from: r.rotated_from.clone(),
            rotated_to: r.rotated_to.clone(),
            grace_until_ms: r.grace_until.map(to_millis),
        }
    }

    pub(crate) fn into_stored(self) -> Result<StoredKey, Error> {
        let hash = KeyHash::from_slice(&self.key_hash).ok_or_else(|| corrupt("key_hash"))?;
        let environment =
            Environment::from_name(&self.environment).ok_or_else(|| corrupt("environment"))?;
        let rate_limit_per_minute =
            opt_u32(self.rate_limit_per_minute, "rate_limit_per_minute")?.and_then(NonZeroU32::new);
        let allowed_networks = self
            .allowed_networks
            .split_whitespace()
            .map(|cidr| {
                cidr.parse::<IpNet>()
                    .map_err(|_| corrupt("allowed_networks"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let record = KeyRecord {
            key_id: self.key_id,
            owner: self.owner,
            environment,
            hint: self.hint,
            scopes: self.scopes.split_whitespace().map(str::to_owned).collect(),
            plan: Plan {
                name: self.plan_name,
                per_minute: opt_u32(self.plan_per_minute, "plan_per_minute")?,
                per_day: opt_u32(self.plan_per_day, "plan_per_day")?,
                burst: opt_u32(self.plan_burst, "plan_burst")?,
            },
            rate_limit_per_minute,
            allowed_networks,
            created_at: from_millis(self.created_at_ms),
            expires_at: opt_time(self.expires_at_ms),
            last_used_at: opt_time(self.last_used_at_ms),
            revoked_at: opt_time(self.revoked_at_ms),
            rotated_from: self.rotated_from,
            rotated_to: self.rotated_to,
            grace_until: opt_time(self.grace_until_ms),
        };
        Ok(StoredKey { record, hash })
    }
}

/// One embedded migration: a version, a name and its SQL (several statements).
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

impl Migration {
    /// A checksum of the SQL, so that an edited, already-applied migration is noticed.
    pub(crate) fn checksum(&self) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

pub(crate) fn checksum_mismatch(version: i64) -> Error {
    Error::storage(format!(
        "apikey migration {version} was applied with different SQL (apikey_migrations)"
    ))
}
