//! The storage trait and its backends.

use std::future::Future;
use std::time::SystemTime;

use crate::error::Error;
use crate::hash::KeyHash;
use crate::record::{KeyRecord, StoredKey};

pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// Where key records live. Implementations keep hashes only, never raw keys.
///
/// Every backend passes the same conformance suite (`tests/common/mod.rs`). Time comes
/// in as an argument; a store never reads the clock.
///
/// The *revocation epoch* is a counter that every [`revoke`](KeyStore::revoke) and
/// [`rotate`](KeyStore::rotate) increments in the same transaction. Verification caches
/// poll it (at most once per poll interval) to learn that something changed on another
/// instance or through the command line.
pub trait KeyStore: Send + Sync {
    /// Inserts a new key. Key ids and hashes are unique.
    fn insert(&self, key: &StoredKey) -> impl Future<Output = Result<(), Error>> + Send;

    /// Finds the key with this hash (through an index), revoked and expired ones included.
    fn find_by_hash(
        &self,
        hash: &KeyHash,
    ) -> impl Future<Output = Result<Option<StoredKey>, Error>> + Send;

    /// The record with this key id.
    fn get(&self, key_id: &str) -> impl Future<Output = Result<Option<KeyRecord>, Error>> + Send;

    /// All records, or those of one owner, oldest first (ties by key id).
    fn list(
        &self,
        owner: Option<&str>,
    ) -> impl Future<Output = Result<Vec<KeyRecord>, Error>> + Send;

    /// Marks the key revoked at `now` and increments the revocation epoch.
    ///
    /// Returns `Ok(true)` if it was active, `Ok(false)` if already revoked, and an error
    /// of kind [`NotFound`](crate::ErrorKind::NotFound) for an unknown id.
    fn revoke(
        &self,
        key_id: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Atomically inserts `new` (whose `rotated_from` names `old_key_id`), sets the old
    /// key's `rotated_to` and `grace_until`, and increments the revocation epoch.
    ///
    /// Fails with [`NotFound`](crate::ErrorKind::NotFound),
    /// [`Revoked`](crate::ErrorKind::Revoked) or
    /// [`AlreadyRotated`](crate::ErrorKind::AlreadyRotated) and changes nothing when the
    /// old key is missing, revoked or already rotated.
    fn rotate(
        &self,
        old_key_id: &str,
        new: &StoredKey,
        grace_until: SystemTime,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Records last-use times in one batch; a time earlier than the stored one is ignored.
    /// Unknown key ids are skipped.
    fn record_last_used(
        &self,
        uses: &[(String, SystemTime)],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The current revocation epoch.
    fn revocation_epoch(&self) -> impl Future<Output = Result<u64, Error>> + Send;
}

impl<T: KeyStore + ?Sized> KeyStore for std::sync::Arc<T> {
    fn insert(&self, key: &StoredKey) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).insert(key)
    }

    fn find_by_hash(
        &self,
        hash: &KeyHash,
    ) -> impl Future<Output = Result<Option<StoredKey>, Error>> + Send {
        (**self).find_by_hash(hash)
    }

    fn get(&self, key_id: &str) -> impl Future<Output = Result<Option<KeyRecord>, Error>> + Send {
        (**self).get(key_id)
    }

    fn list(
        &self,
        owner: Option<&str>,
    ) -> impl Future<Output = Result<Vec<KeyRecord>, Error>> + Send {
        (**self).list(owner)
    }

    fn revoke(
        &self,
        key_id: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        (**self).revoke(key_id, now)
    }

    fn rotate(
        &self,
        old_key_id: &str,
        new: &StoredKey,
        grace_until: SystemTime,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).rotate(old_key_id, new, grace_until)
    }

    fn record_last_used(
        &self,
        uses: &[(String, SystemTime)],
    ) -> impl Future<Output = Result<(), Error>> + Send {
        (**self).record_last_used(uses)
    }

    fn revocation_epoch(&self) -> impl Future<Output = Result<u64, Error>> + Send {
        (**self).revocation_epoch()
    }
}
