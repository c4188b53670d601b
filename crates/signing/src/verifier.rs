use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;

use crate::credential::{Credential, CredentialStore, KeyMaterial, Secret};
use crate::encode::hex_lower;
use crate::error::{Error, ErrorKind, MismatchDetails, err};
use crate::nonce::NonceStore;
use crate::request::Request;
use crate::sigv4::{Prepared, SigV4Profile, TimeRules, redact_canonical};

const KEY_CACHE_CAPACITY: usize = 4096;

/// A verified request: who signed it, as plain data from the credential store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id (or RFC 9421 `keyid`) that signed.
    pub access_key_id: String,
    /// The credential's owner.
    pub owner: String,
    /// The credential's scopes.
    pub scopes: Vec<String>,
    /// Which profile verified it: `palisade`, `aws4` or `rfc9421`.
    pub profile: &'static str,
    /// When the client signed (the date header, or RFC 9421 `created`).
    pub signed_at: SystemTime,
}

struct CachedKey {
    secret_tag: [u8; 32],
    // The HMAC key schedule itself (aws-lc zeroizes it on drop), so a hit costs no
    // key setup; shared so the HMAC runs outside the lock.
    key: Arc<hmac::Key>,
}

/// Derived keys by "profile\naccess key id\ndate\nscope tail"; `scratch` builds the
/// lookup key under the lock, so a hit allocates nothing.
#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, CachedKey>,
    scratch: String,
}

impl KeyCache {
    fn key_for(&mut self, profile: &SigV4Profile, access_key_id: &str, date: &str, tail: &str) {
        self.scratch.clear();
        for part in [profile.name(), "\n", access_key_id, "\n", date, "\n", tail] {
            self.scratch.push_str(part);
        }
    }
}

/// Verifies signed requests against a [`CredentialStore`], refusing replays through a
/// [`NonceStore`].
///
/// Checks run in this order: the signature's syntax and bounds, the required signed
/// headers, the credential scope and the clock (5 minutes of skew by default), the body
/// hash, then the credential lookup and a constant-time signature comparison, and only
/// then the nonce store, so that unauthenticated traffic cannot fill it. Derived signing
/// keys are cached per (credential, date, scope).
pub struct Verifier<C, N> {
    credentials: C,
    nonces: N,
    max_skew: Duration,
    replay_protection: bool,
    presigned_reuse: bool,
    cache: Mutex<KeyCache>,
}

impl<C, N> std::fmt::Debug for Verifier<C, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("max_skew", &self.max_skew)
            .field("replay_protection", &self.replay_protection)
            .field("presigned_reuse", &self.presigned_reuse)
            .finish_non_exhaustive()
    }
}

impl<C: CredentialStore, N: NonceStore> Verifier<C, N> {
    /// A verifier with 5 minutes of allowed clock skew and replay protection on.
    pub fn new(credentials: C, nonces: N) -> Self {
        Self {
            credentials,
            nonces,
            max_skew: Duration::from_secs(300),
            replay_protection: true,
            presigned_reuse: false,
            cache: Mutex::new(KeyCache::default()),
        }
    }

    /// The allowed difference between the signing time and `now`.
    #[must_use]
    pub fn max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// Whether a signature is accepted only once (default: yes).
    #[must_use]
    pub fn replay_protection(mut self, on: bool) -> Self {
        self.replay_protection = on;
        self
    }

    /// Whether a presigned URL may be used more than once until it expires, as AWS
    /// allows (default: no, single use).
    #[must_use]
    pub fn presigned_reuse(mut self, allow: bool) -> Self {
        self.presigned_reuse = allow;
        self
    }

    /// The credential store.
    pub fn credentials(&self) -> &C {
        &self.credentials
    }

    pub(crate) fn skew(&self) -> Duration {
        self.max_skew
    }

    pub(crate) async fn lookup(&self, access_key_id: &str) -> Result<Credential, Error> {
        self.credentials
            .credential(access_key_id)
            .await?
            .ok_or_else(|| err(ErrorKind::UnknownCredential, "the access key id is unknown"))
    }

    pub(crate) async fn check_replay(
        &self,
        profile: &str,
        signature: &[u8],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(), Error> {
        if !self.replay_protection {
            return Ok(());
        }
        let tag = digest::digest(&digest::SHA256, signature);
        let key = format!(
            "{profile}:{}",
            hex_lower(tag.as_ref().get(..16).unwrap_or_default())
        );
        if self.nonces.check_and_insert(&key, ttl, now).await? {
            Ok(())
        } else {
            Err(err(
                ErrorKind::Replay,
                "this signature was already used inside the replay window",
            ))
        }
    }

    /// The signing key for (credential, date, scope), from the cache when the secret is
    /// unchanged. `prepared` has passed the scope check, so its tail is the profile's.
    fn signing_key(
        &self,
        profile: &SigV4Profile,
        access_key_id: &str,
        prepared: &Prepared<'_>,
        secret: &Secret,
    ) -> Arc<hmac::Key> {
        let mut tag = [0u8; 32];
        tag.copy_from_slice(digest::digest(&digest::SHA256, secret.expose()).as_ref());
        let (date, tail) = (&*prepared.date, &*prepared.scope_tail);
        if let Ok(mut cache) = self.cache.lock() {
            cache.key_for(profile, access_key_id, date, tail);
            if let Some(hit) = cache.keys.get(cache.scratch.as_str())
                && bool::from(hit.secret_tag.ct_eq(&tag))
            {
                return Arc::clone(&hit.key);
            }
        }
        let derived = profile.derive_key(secret, date);
        let key = Arc::new(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()));
        if let Ok(mut cache) = self.cache.lock() {
            if cache.keys.len() >= KEY_CACHE_CAPACITY {
                cache.keys.clear();
            }
            cache.key_for(profile, access_key_id, date, tail);
            let cache_key = cache.scratch.clone();
            cache.keys.insert(
                cache_key,
                CachedKey {
                    secret_tag: tag,
                    key: Arc::clone(&key),
                },
            );
        }
        key
    }

    /// Verifies a request signed under `profile`, with the signature either in the
    /// `Authorization` header or in the query string (presigned URL).
    pub async fn verify(
        &self,
        profile: &SigV4Profile,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Verified, Error> {
        let rules = TimeRules {
            max_skew: self.max_skew,
        };
        let prepared = profile.prepare(request, now, &rules)?;
        let credential = self.lookup(&prepared.access_key_id).await?;
        let KeyMaterial::Secret(secret) = &credential.key else {
            return Err(err(
                ErrorKind::InvalidKey,
                "this credential has no shared secret",
            ));
        };
        let key = self.signing_key(profile, &credential.access_key_id, &prepared, secret);
        let expected = profile.signature_of(&key, &prepared);
        if !bool::from(expected.as_ref().ct_eq(prepared.signature.as_slice())) {
            let (canonical, string_to_sign) = profile.mismatch_strings(request, &prepared);
            return Err(Error::mismatch(MismatchDetails {
                access_key_id: credential.access_key_id,
                owner: credential.owner,
                canonical_request: redact_canonical(&canonical),
                string_to_sign,
            }));
        }
        if !(prepared.presigned && self.presigned_reuse) {
            self.check_replay(
                profile.name(),
                &prepared.signature,
                prepared.replay_ttl,
                now,
            )
            .await?;
        }
        Ok(Verified {
            access_key_id: credential.access_key_id,
            owner: credential.owner,
            scopes: credential.scopes,
            profile: profile.name(),
            signed_at: prepared.signed_at,
        })
    }
}
