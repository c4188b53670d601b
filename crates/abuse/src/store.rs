//! The storage trait behind the monitor.

use std::future::Future;
use std::net::IpAddr;
use std::time::SystemTime;

use crate::decision::{
    AccountKey, AuthCounts, AuthLock, AuthSubject, Behaviour, Flag, Observation, WindowSpec,
};
use crate::identity::Identity;

/// Where behaviour, flags and authentication failures live.
///
/// Operations are infallible on purpose: a store that talks to a remote service (Redis)
/// degrades to local state with a logged warning when it fails, because an abuse check
/// must never turn a request into a 500. [`MemoryStore`](crate::MemoryStore) is always
/// available; `RedisStore` comes with the `redis` feature. The rules live in
/// [`AbuseMonitor`](crate::AbuseMonitor), so every store applies the same ones.
pub trait AbuseStore: Send + Sync {
    /// Records one request of `identity` and returns its behaviour over the window.
    fn record(
        &self,
        identity: &Identity,
        observation: &Observation<'_>,
        now: SystemTime,
        window: WindowSpec,
    ) -> impl Future<Output = Behaviour> + Send;

    /// The flag of `identity`, if one is active at `now`.
    fn flag(
        &self,
        identity: &Identity,
        now: SystemTime,
    ) -> impl Future<Output = Option<Flag>> + Send;

    /// Stores a flag, replacing any other flag of the same identity.
    fn set_flag(&self, flag: &Flag) -> impl Future<Output = ()> + Send;

    /// Every flag active at `now`.
    fn flags(&self, now: SystemTime) -> impl Future<Output = Vec<Flag>> + Send;

    /// Forgets everything about `identity`: its flag and its behaviour.
    fn clear(
        &self,
        identity: &Identity,
        now: SystemTime,
        window: WindowSpec,
    ) -> impl Future<Output = ()> + Send;

    /// Records a failed authentication and returns the counts over `window_secs`.
    fn auth_failure(
        &self,
        address: IpAddr,
        account: Option<AccountKey>,
        now: SystemTime,
        window_secs: u64,
    ) -> impl Future<Output = AuthCounts> + Send;

    /// Resets the failure count of an account after a successful authentication.
    fn auth_success(
        &self,
        account: AccountKey,
        now: SystemTime,
        window_secs: u64,
    ) -> impl Future<Output = ()> + Send;

    /// The lock on `subject`, if one is active at `now`.
    fn auth_lock(
        &self,
        subject: AuthSubject,
        now: SystemTime,
    ) -> impl Future<Output = Option<AuthLock>> + Send;

    /// Stores a lock, keeping an existing one that lasts longer.
    fn set_auth_lock(&self, lock: AuthLock, now: SystemTime) -> impl Future<Output = ()> + Send;

    /// Removes the lock and the failure counts of `subject`.
    fn clear_auth(
        &self,
        subject: AuthSubject,
        now: SystemTime,
        window_secs: u64,
    ) -> impl Future<Output = ()> + Send;

    /// The behaviour of `identity` read afresh, for a store whose [`record`](Self::record)
    /// may answer from numbers summed up between writes (a batched Redis store, whose view
    /// of other instances' changes, such as a clear, can be one interval old). The monitor
    /// asks before it sets a flag and flags only if the fresh numbers still break the
    /// rule. `None` (the default) means `record`'s answer is already current.
    fn confirm(
        &self,
        identity: &Identity,
        now: SystemTime,
        window: WindowSpec,
    ) -> impl Future<Output = Option<Behaviour>> + Send {
        let _ = (identity, now, window);
        std::future::ready(None)
    }
}
