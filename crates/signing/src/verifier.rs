use std::borrow::Cow;
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
    secret: SecretId,
    // The HMAC key schedule itself (aws-lc zeroizes it on drop), so a hit costs no
    // key setup; shared so the HMAC runs outside the lock.
    key: Arc<hmac::Key>,
}

/// What shows that a cached key's secret is unchanged: a sealed secret's bytes (equal
/// sealed bytes hold the same secret, and comparing them needs no decryption), or the
/// SHA-256 of a secret handed over in clear. (No `PartialEq`: tags are compared in
/// constant time only, through [`SecretId::matches`].)
enum SecretId {
    Sealed(Box<[u8]>),
    Tag([u8; 32]),
}

impl SecretId {
    fn matches(&self, key: &KeyMaterial, tag: &mut Option<[u8; 32]>) -> bool {
        match (self, key) {
            (Self::Sealed(bytes), KeyMaterial::Sealed(sealed)) => {
                **bytes == *sealed.sealed().as_bytes()
            }
            (Self::Tag(cached), KeyMaterial::Secret(secret)) => {
                ct_eq_32(cached, tag.get_or_insert_with(|| secret_tag(secret)))
            }
            _ => false,
        }
    }
}

fn secret_tag(secret: &Secret) -> [u8; 32] {
    let mut tag = [0u8; 32];
    tag.copy_from_slice(digest::digest(&digest::SHA256, secret.expose()).as_ref());
    tag
}

/// Constant-time equality of two 32-byte values, a 64-bit word at a time (`subtle`
/// compares a slice byte by byte, each through an optimisation barrier).
fn ct_eq_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let words = |x: &[u8; 32]| -> [u64; 4] {
        let mut out = [0u64; 4];
        for (word, chunk) in out.iter_mut().zip(x.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *word = u64::from_ne_bytes(bytes);
        }
        out
    };
    bool::from(words(a).ct_eq(&words(b)))
}

/// Derived keys by "profile\naccess key id\ndate\nscope tail"; `scratch` builds the
/// lookup key under the lock, so a hit allocates nothing. A lookup key is only ever a
/// known credential's, dated within the clock skew (the verifier checks both first), so
/// clients cannot choose colliding keys and foldhash (fast, not a keyed PRF) is enough.
#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, CachedKey, foldhash::fast::RandomState>,
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
    /// A sealed secret is opened only on a miss.
    fn signing_key(
        &self,
        profile: &SigV4Profile,
        access_key_id: &str,
        prepared: &Prepared<'_>,
        key: &KeyMaterial,
    ) -> Result<Arc<hmac::Key>, Error> {
        let mut tag = None;
        let (date, tail) = (&*prepared.date, &*prepared.scope_tail);
        if let Ok(mut cache) = self.cache.lock() {
            cache.key_for(profile, access_key_id, date, tail);
            if let Some(hit) = cache.keys.get(cache.scratch.as_str())
                && hit.secret.matches(key, &mut tag)
            {
                return Ok(Arc::clone(&hit.key));
            }
        }
        let (secret, id) = match key {
            KeyMaterial::Secret(secret) => {
                let tag = tag.unwrap_or_else(|| secret_tag(secret));
                (Cow::Borrowed(secret), SecretId::Tag(tag))
            }
            KeyMaterial::Sealed(sealed) => (
                Cow::Owned(sealed.open()?),
                SecretId::Sealed(sealed.sealed().as_bytes().into()),
            ),
            KeyMaterial::Ed25519(_) | KeyMaterial::EcdsaP256(_) => {
                return Err(err(
                    ErrorKind::InvalidKey,
                    "this credential has no shared secret",
                ));
            }
        };
        let derived = profile.derive_key(&secret, date);
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
                    secret: id,
                    key: Arc::clone(&key),
                },
            );
        }
        Ok(key)
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
        let key = self.signing_key(
            profile,
            &credential.access_key_id,
            &prepared,
            &credential.key,
        )?;
        let expected = profile.signature_of(&key, &prepared);
        if !ct_eq_32(&expected, &prepared.signature) {
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
