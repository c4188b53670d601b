use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    AccessRecord, ClientRecord, CodeOutcome, CodeRecord, DeviceRecord, DeviceStatus, FamilyRecord,
    OAuthStore, RefreshRecord,
};
use crate::error::Result;

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<String, ClientRecord>,
    families: HashMap<String, FamilyRecord>,
    refresh: HashMap<String, RefreshRecord>,
    access: HashMap<String, AccessRecord>,
    codes: HashMap<String, CodeRecord>,
    devices: HashMap<String, DeviceRecord>,
}

/// An in-memory [`OAuthStore`]: one process, state lost on restart. Every operation
/// holds one lock, which makes each compare-and-swap atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl OAuthStore for MemoryStore {
    async fn put_client(&self, client: ClientRecord) -> Result<()> {
        self.lock().clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        Ok(self.lock().clients.get(client_id).cloned())
    }

    async fn create_family(
        &self,
        family: FamilyRecord,
        first: RefreshRecord,
        access: AccessRecord,
    ) -> Result<()> {
        let mut inner = self.lock();
        inner.families.insert(family.family_id.clone(), family);
        inner.refresh.insert(first.token_hash.clone(), first);
        inner.access.insert(access.jti.clone(), access);
        Ok(())
    }

    async fn get_refresh(&self, token_hash: &str) -> Result<Option<(RefreshRecord, FamilyRecord)>> {
        let inner = self.lock();
        Ok(inner.refresh.get(token_hash).and_then(|token| {
            inner
                .families
                .get(&token.family_id)
                .map(|family| (token.clone(), family.clone()))
        }))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: RefreshRecord,
        retry_blob: Option<String>,
        access: AccessRecord,
        now: u64,
    ) -> Result<bool> {
        let mut inner = self.lock();
        let Some(old) = inner.refresh.get(old_hash) else {
            return Ok(false);
        };
        let live_family = inner
            .families
            .get(&old.family_id)
            .is_some_and(|f| f.revoked_at.is_none());
        if old.used_at.is_some() || !live_family {
            return Ok(false);
        }
        if let Some(old) = inner.refresh.get_mut(old_hash) {
            old.used_at = Some(now);
            old.replaced_by = Some(new.token_hash.clone());
            old.retry_blob = retry_blob;
        }
        inner.refresh.insert(new.token_hash.clone(), new);
        inner.access.insert(access.jti.clone(), access);
        Ok(true)
    }

    async fn revoke_family(&self, family_id: &str, now: u64) -> Result<Vec<AccessRecord>> {
        let mut inner = self.lock();
        if let Some(family) = inner.families.get_mut(family_id) {
            family.revoked_at.get_or_insert(now);
        }
        Ok(inner
            .access
            .values()
            .filter(|a| a.family_id == family_id && a.expires_at > now)
            .cloned()
            .collect())
    }

    async fn put_code(&self, code: CodeRecord) -> Result<()> {
        self.lock().codes.insert(code.code_hash.clone(), code);
        Ok(())
    }

    async fn consume_code(
        &self,
        code_hash: &str,
        family_id: &str,
        now: u64,
    ) -> Result<CodeOutcome> {
        let mut inner = self.lock();
        let Some(code) = inner.codes.get_mut(code_hash) else {
            return Ok(CodeOutcome::Missing);
        };
        if code.used_at.is_some() {
            return Ok(CodeOutcome::Reused(code.clone()));
        }
        code.used_at = Some(now);
        code.family_id = Some(family_id.to_owned());
        Ok(CodeOutcome::Fresh(code.clone()))
    }

    async fn put_device(&self, device: DeviceRecord) -> Result<()> {
        self.lock()
            .devices
            .insert(device.device_code_hash.clone(), device);
        Ok(())
    }

    async fn get_device(&self, device_code_hash: &str) -> Result<Option<DeviceRecord>> {
        Ok(self.lock().devices.get(device_code_hash).cloned())
    }

    async fn record_device_poll(
        &self,
        device_code_hash: &str,
        polled_at: u64,
        interval: u64,
    ) -> Result<()> {
        if let Some(device) = self.lock().devices.get_mut(device_code_hash) {
            device.last_poll = Some(polled_at);
            device.interval = interval;
        }
        Ok(())
    }

    async fn decide_device(
        &self,
        user_code: &str,
        approved: bool,
        subject: &str,
        now: u64,
    ) -> Result<bool> {
        let mut inner = self.lock();
        let Some(device) = inner
            .devices
            .values_mut()
            .find(|d| d.user_code == user_code)
        else {
            return Ok(false);
        };
        if device.status != DeviceStatus::Pending || device.expires_at <= now {
            return Ok(false);
        }
        device.status = if approved {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        device.subject = Some(subject.to_owned());
        Ok(true)
    }

    async fn consume_device(&self, device_code_hash: &str) -> Result<bool> {
        let mut inner = self.lock();
        match inner.devices.get_mut(device_code_hash) {
            Some(device) if device.status == DeviceStatus::Approved => {
                device.status = DeviceStatus::Consumed;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn purge_expired(&self, now: u64) -> Result<()> {
        let mut inner = self.lock();
        inner.codes.retain(|_, c| c.expires_at > now);
        inner.devices.retain(|_, d| d.expires_at > now);
        inner.access.retain(|_, a| a.expires_at > now);
        inner.families.retain(|_, f| f.expires_at > now);
        let Inner {
            refresh, families, ..
        } = &mut *inner;
        refresh.retain(|_, r| r.expires_at > now && families.contains_key(&r.family_id));
        Ok(())
    }
}
