use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use crate::error::{Error, ErrorKind};
use crate::hash::KeyHash;
use crate::record::{KeyRecord, StoredKey};
use crate::store::KeyStore;

/// A [`KeyStore`] in process memory: for tests, examples and single-process tools.
///
/// Cloning it is not provided; share it behind an `Arc` or let
/// [`ApiKeys`](crate::ApiKeys) own it.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: Vec<StoredKey>,
    by_hash: HashMap<KeyHash, usize>,
    by_id: HashMap<String, usize>,
    epoch: u64,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the store, so recover the data.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    fn record_mut(&mut self, key_id: &str) -> Option<&mut KeyRecord> {
        let index = *self.by_id.get(key_id)?;
        self.keys.get_mut(index).map(|key| &mut key.record)
    }
}

impl KeyStore for MemoryKeyStore {
    async fn insert(&self, key: &StoredKey) -> Result<(), Error> {
        let mut inner = self.lock();
        insert_locked(&mut inner, key)
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<StoredKey>, Error> {
        let inner = self.lock();
        Ok(inner
            .by_hash
            .get(hash)
            .and_then(|&index| inner.keys.get(index))
            .cloned())
    }

    async fn get(&self, key_id: &str) -> Result<Option<KeyRecord>, Error> {
        let inner = self.lock();
        Ok(inner
            .by_id
            .get(key_id)
            .and_then(|&index| inner.keys.get(index))
            .map(|key| key.record.clone()))
    }

    async fn list(&self, owner: Option<&str>) -> Result<Vec<KeyRecord>, Error> {
        let inner = self.lock();
        let mut records: Vec<KeyRecord> = inner
            .keys
            .iter()
            .filter(|key| owner.is_none_or(|owner| key.record.owner == owner))
            .map(|key| key.record.clone())
            .collect();
        records.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.key_id.cmp(&b.key_id))
        });
        Ok(records)
    }

    async fn revoke(&self, key_id: &str, now: SystemTime) -> Result<bool, Error> {
        let mut inner = self.lock();
        let record = inner
            .record_mut(key_id)
            .ok_or(Error::new(ErrorKind::NotFound))?;
        if record.revoked_at.is_some() {
            return Ok(false);
        }
        record.revoked_at = Some(now);
        inner.epoch = inner.epoch.wrapping_add(1);
        Ok(true)
    }

    async fn rotate(
        &self,
        old_key_id: &str,
        new: &StoredKey,
        grace_until: SystemTime,
    ) -> Result<(), Error> {
        let mut inner = self.lock();
        let old = inner
            .record_mut(old_key_id)
            .ok_or(Error::new(ErrorKind::NotFound))?;
        if old.revoked_at.is_some() {
            return Err(Error::new(ErrorKind::Revoked));
        }
        if old.rotated_to.is_some() {
            return Err(Error::new(ErrorKind::AlreadyRotated));
        }
        insert_locked(&mut inner, new)?;
        if let Some(old) = inner.record_mut(old_key_id) {
            old.rotated_to = Some(new.record.key_id.clone());
            old.grace_until = Some(grace_until);
        }
        inner.epoch = inner.epoch.wrapping_add(1);
        Ok(())
    }

    async fn record_last_used(&self, uses: &[(String, SystemTime)]) -> Result<(), Error> {
        let mut inner = self.lock();
        for (key_id, at) in uses {
            if let Some(record) = inner.record_mut(key_id)
                && record.last_used_at.is_none_or(|previous| previous < *at)
            {
                record.last_used_at = Some(*at);
            }
        }
        Ok(())
    }

    async fn revocation_epoch(&self) -> Result<u64, Error> {
        Ok(self.lock().epoch)
    }
}

fn insert_locked(inner: &mut Inner, key: &StoredKey) -> Result<(), Error> {
    if inner.by_id.contains_key(&key.record.key_id) || inner.by_hash.contains_key(&key.hash) {
        return Err(Error::storage("duplicate key id or hash"));
    }
    let index = inner.keys.len();
    inner.keys.push(key.clone());
    inner.by_id.insert(key.record.key_id.clone(), index);
    inner.by_hash.insert(key.hash, index);
    Ok(())
}
