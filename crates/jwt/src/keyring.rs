//! The server's own signing keys: generated, persisted, published and rotated.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{Algorithm, KeySet, SigningKey, valid_kid};
use crate::validate::unix;

const META_FILE: &str = "keyring.json";

/// When keys are introduced, used and dropped.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotationPolicy {
    /// The algorithm of newly generated keys (default ES256).
    pub algorithm: Algorithm,
    /// How long a new key is published before it signs, so that every verifier's cached
    /// JWKS knows it first (default 1 hour).
    pub publish_ahead: Duration,
    /// How long a key signs before its successor takes over (default 30 days).
    pub rotate_every: Duration,
    /// How long a key stays published after it stopped signing: at least the longest
    /// token lifetime plus clock tolerance (default 1 hour).
    pub retain_after_retirement: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::ES256,
            publish_ahead: Duration::from_secs(3600),
            rotate_every: Duration::from_secs(30 * 24 * 3600),
            retain_after_retirement: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    kid: String,
    alg: String,
    created_at: u64,
    active_from: u64,
}

struct Entry {
    key: Arc<SigningKey>,
    meta: Meta,
}

struct State {
    /// Sorted by `active_from`, oldest first.
    entries: Vec<Entry>,
    published: Arc<KeySet>,
}

/// The issuer's signing keys, optionally persisted as PKCS#8 PEM files plus a
/// `keyring.json` index in a directory (private key files are mode 0600).
///
/// Rotation is two-phase: [`KeyRing::rotate`] publishes the next key at once but lets it
/// sign only after [`RotationPolicy::publish_ahead`]; a retired key stays in the JWKS for
/// [`RotationPolicy::retain_after_retirement`] so that every token it signed still
/// validates until it expires. [`KeyRing::maintain`] does both on schedule.
pub struct KeyRing {
    dir: Option<PathBuf>,
    policy: RotationPolicy,
    state: RwLock<State>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn io_error(what: &str, error: &std::io::Error) -> Error {
    Error::with(ErrorKind::Io, format!("{what}: {error}"))
}

impl KeyRing {
    /// A key ring kept in memory only (tests, or a single process that may lose its
    /// keys on restart). A first key is generated, active at once.
    pub fn ephemeral(policy: RotationPolicy, now: SystemTime) -> Result<Self> {
        let ring = Self {
            dir: None,
            policy,
            state: RwLock::new(State {
                entries: Vec::new(),
                published: Arc::new(KeySet::default()),
            }),
        };
        ring.ensure_key(now)?;
        Ok(ring)
    }

    /// Opens (or creates) the key ring in `dir`, generating a first key if there is
    /// none, then runs [`KeyRing::maintain`].
    pub fn open(dir: impl AsRef<Path>, policy: RotationPolicy, now: SystemTime) -> Result<Self> {
        crate::keys::install_crypto_provider();
        let dir = dir.as_ref().to_path_buf();
        create_private_dir(&dir)?;
        let mut entries = Vec::new();
        let meta_path = dir.join(META_FILE);
        if meta_path.exists() {
            let text =
                fs::read_to_string(&meta_path).map_err(|e| io_error("reading keyring.json", &e))?;
            let metas: Vec<Meta> = serde_json::from_str(&text)
                .map_err(|e| Error::with(ErrorKind::InvalidKey, format!("keyring.json: {e}")))?;
            for meta in metas {
                if !valid_kid(&meta.kid) {
                    return Err(Error::new(ErrorKind::InvalidKid));
                }
                let alg = Algorithm::from_name(&meta.alg).ok_or_else(|| {
                    Error::with(ErrorKind::InvalidKey, "unknown algorithm in keyring.json")
                })?;
                let pem = zeroize::Zeroizing::new(
                    fs::read_to_string(dir.join(format!("{}.pem", meta.kid)))
                        .map_err(|e| io_error("reading a private key", &e))?,
                );
                let key = SigningKey::from_pkcs8_pem(&meta.kid, alg, &pem)?;
                entries.push(Entry {
                    key: Arc::new(key),
                    meta,
                });
            }
        }
        entries.sort_by_key(|e| e.meta.active_from);
        let ring = Self {
            dir: Some(dir),
            policy,
            state: RwLock::new(State {
                entries,
                published: Arc::new(KeySet::default()),
            }),
        };
        ring.ensure_key(now)?;
        ring.maintain(now)?;
        Ok(ring)
    }

    fn ensure_key(&self, now: SystemTime) -> Result<()> {
        let mut state = self.write();
        if state.entries.is_empty() {
            let key = SigningKey::generate(self.policy.algorithm)?;
            self.save_key(&key)?;
            state.entries.push(Entry {
                meta: Meta {
                    kid: key.kid().to_owned(),
                    alg: key.algorithm().as_str().to_owned(),
                    created_at: unix(now),
                    active_from: unix(now),
                },
                key: Arc::new(key),
            });
            self.save_meta(&state)?;
        }
        Self::republish(&mut state)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn republish(state: &mut State) -> Result<()> {
        let keys = state
            .entries
            .iter()
            .map(|e| e.key.verifying_key().clone())
            .collect();
        state.published = Arc::new(KeySet::new(keys)?);
        Ok(())
    }

    /// The key that signs at `now`: the newest one whose activation time has come.
    pub fn signing_key(&self, now: SystemTime) -> Arc<SigningKey> {
        let now = unix(now);
        let state = self.read();
        let active = state
            .entries
            .iter()
            .rev()
            .find(|e| e.meta.active_from <= now)
            .or_else(|| state.entries.first());
        match active {
            Some(entry) => Arc::clone(&entry.key),
            // `ensure_key` guarantees at least one entry; this arm is unreachable.
            None => unreachable_key(),
        }
    }

    /// Every key that may have signed a live token or is about to sign: what verifiers
    /// should trust.
    pub fn key_set(&self) -> Arc<KeySet> {
        Arc::clone(&self.read().published)
    }

    /// The JWKS document (`GET /.well-known/jwks.json`).
    pub fn jwks(&self) -> Value {
        self.key_set().to_jwks()
    }

    /// Publishes a new key that starts signing after `publish_ahead`. If a key is
    /// already waiting to take over, that one is returned instead. Returns its `kid`.
    pub fn rotate(&self, now: SystemTime) -> Result<String> {
        let now = unix(now);
        let mut state = self.write();
        if let Some(pending) = state.entries.iter().find(|e| e.meta.active_from > now) {
            return Ok(pending.meta.kid.clone());
        }
        let key = SigningKey::generate(self.policy.algorithm)?;
        self.save_key(&key)?;
        let kid = key.kid().to_owned();
        state.entries.push(Entry {
            meta: Meta {
                kid: kid.clone(),
                alg: key.algorithm().as_str().to_owned(),
                created_at: now,
                active_from: now.saturating_add(self.policy.publish_ahead.as_secs()),
            },
            key: Arc::new(key),
        });
        state.entries.sort_by_key(|e| e.meta.active_from);
        self.save_meta(&state)?;
        Self::republish(&mut state)?;
        tracing::info!(kid = %kid, "published the next signing key");
        Ok(kid)
    }

    /// Rotates when the active key has signed for `rotate_every` (minus the publishing
    /// lead), and drops keys retired longer than `retain_after_retirement` ago. Call it
    /// periodically (once a minute is plenty). Returns whether anything changed.
    pub fn maintain(&self, now: SystemTime) -> Result<bool> {
        let secs = unix(now);
        let mut changed = false;
        let due = {
            let state = self.read();
            let has_pending = state.entries.iter().any(|e| e.meta.active_from > secs);
            let newest_active = state
                .entries
                .iter()
                .rev()
                .find(|e| e.meta.active_from <= secs)
                .map_or(0, |e| e.meta.active_from);
            !has_pending
                && newest_active.saturating_add(self.policy.rotate_every.as_secs())
                    <= secs.saturating_add(self.policy.publish_ahead.as_secs())
        };
        if due {
            self.rotate(now)?;
            changed = true;
        }
        let mut state = self.write();
        let retain = self.policy.retain_after_retirement.as_secs();
        let mut removed = Vec::new();
        let mut keep = Vec::with_capacity(state.entries.len());
        let entries = std::mem::take(&mut state.entries);
        let successors: Vec<Option<u64>> = (0..entries.len())
            .map(|i| entries.get(i + 1).map(|next| next.meta.active_from))
            .collect();
        for (entry, successor) in entries.into_iter().zip(successors) {
            // Retired when its successor became active; droppable once every token it
            // signed has expired.
            let droppable = successor
                .is_some_and(|since| since <= secs && since.saturating_add(retain) <= secs);
            if droppable {
                removed.push(entry.meta.kid.clone());
            } else {
                keep.push(entry);
            }
        }
        state.entries = keep;
        if !removed.is_empty() {
            changed = true;
            self.save_meta(&state)?;
            Self::republish(&mut state)?;
            if let Some(dir) = &self.dir {
                for kid in &removed {
                    let _ignored = fs::remove_file(dir.join(format!("{kid}.pem")));
                }
            }
            tracing::info!(removed = removed.len(), "dropped retired signing keys");
        }
        Ok(changed)
    }

    fn save_key(&self, key: &SigningKey) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let pem = key.to_pkcs8_pem()?;
        let path = dir.join(format!("{}.pem", key.kid()));
        write_private(&path, pem.as_bytes())
    }

    fn save_meta(&self, state: &State) -> Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let metas: Vec<&Meta> = state.entries.iter().map(|e| &e.meta).collect();
        let text = serde_json::to_vec_pretty(&metas)
            .map_err(|e| Error::with(ErrorKind::Io, e.to_string()))?;
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        write_private(&tmp, &text)?;
        fs::rename(&tmp, dir.join(META_FILE)).map_err(|e| io_error("writing keyring.json", &e))
    }
}

#[cold]
fn unreachable_key() -> ! {
    // A KeyRing is never constructed without a key (see `ensure_key`).
    #[allow(clippy::panic)] // An invariant of the type, not reachable from input.
    {
        panic!("KeyRing invariant broken: no key")
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| io_error("creating the key directory", &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error("restricting the key directory", &e))?;
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| io_error("writing a key file", &e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("writing a key file", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn keys_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path(), RotationPolicy::default(), at(1000)).unwrap();
        let kid = ring.signing_key(at(1000)).kid().to_owned();
        drop(ring);
        let again = KeyRing::open(dir.path(), RotationPolicy::default(), at(1001)).unwrap();
        assert_eq!(again.signing_key(at(1001)).kid(), kid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.path().join(format!("{kid}.pem")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others");
        }
    }

    #[test]
    fn rotation_publishes_first_and_retains_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let policy = RotationPolicy::default();
        let ring = KeyRing::open(dir.path(), policy.clone(), at(1000)).unwrap();
        let old = ring.signing_key(at(1000)).kid().to_owned();
        let next = ring.rotate(at(2000)).unwrap();
        // Published at once, but not signing yet.
        assert!(ring.key_set().contains(&next));
        assert_eq!(ring.signing_key(at(2000)).kid(), old);
        assert_eq!(
            ring.rotate(at(2001)).unwrap(),
            next,
            "one pending key at a time"
        );
        // Signing after the publishing lead.
        assert_eq!(ring.signing_key(at(2000 + 3600)).kid(), next);
        // The old key stays published while its tokens may live.
        assert!(!ring.maintain(at(2000 + 3600 + 3599)).unwrap());
        assert!(ring.key_set().contains(&old));
        assert!(ring.maintain(at(2000 + 7200)).unwrap());
        assert!(!ring.key_set().contains(&old));
        assert!(!dir.path().join(format!("{old}.pem")).exists());
        let reopened = KeyRing::open(dir.path(), policy, at(2000 + 7201)).unwrap();
        assert_eq!(reopened.signing_key(at(2000 + 7201)).kid(), next);
        assert_eq!(reopened.key_set().keys().len(), 1);
    }

    #[test]
    fn maintain_rotates_on_schedule() {
        let ring = KeyRing::ephemeral(RotationPolicy::default(), at(0)).unwrap();
        assert!(!ring.maintain(at(10)).unwrap());
        let due = 30 * 24 * 3600 - 3600;
        assert!(ring.maintain(at(due)).unwrap());
        assert_eq!(ring.key_set().keys().len(), 2);
    }
}
