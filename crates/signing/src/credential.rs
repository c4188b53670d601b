use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, err};

/// A shared secret (HMAC key). Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps secret bytes (for the `palisade`/`aws4` profiles, the UTF-8 bytes of the
    /// secret access key; for RFC 9421 `hmac-sha256`, the key bytes).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The secret bytes. Keep the borrow short; never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What a credential verifies with.
#[derive(Clone, Debug)]
pub enum KeyMaterial {
    /// A shared secret: `palisade`, `aws4` and RFC 9421 `hmac-sha256`.
    Secret(Secret),
    /// A shared secret as a store keeps it, still sealed (see [`SealedKey`]): used like
    /// [`KeyMaterial::Secret`], but opened only when a signing key must be derived.
    Sealed(SealedKey),
    /// An Ed25519 public key (32 bytes): RFC 9421 `ed25519`.
    Ed25519([u8; 32]),
    /// A P-256 public key, SEC1-encoded: RFC 9421 `ecdsa-p256-sha256`.
    EcdsaP256(Vec<u8>),
}

impl KeyMaterial {
    /// A public key from PEM (`-----BEGIN PUBLIC KEY-----`, a SubjectPublicKeyInfo, as
    /// `openssl pkey -pubout` writes it): Ed25519 (RFC 9421 `ed25519`) or P-256
    /// (`ecdsa-p256-sha256`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] for anything else (another key type, a private key,
    /// malformed PEM).
    pub fn from_public_key_pem(pem: &str) -> Result<Self, Error> {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(Self::Ed25519(key.to_bytes()));
        }
        if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
            return Ok(Self::EcdsaP256(key.to_sec1_bytes().into_vec()));
        }
        Err(err(
            ErrorKind::InvalidKey,
            "expected a PEM public key (BEGIN PUBLIC KEY), Ed25519 or P-256",
        ))
    }
}

/// A credential as the store hands it to the verifier.
#[derive(Clone, Debug)]
pub struct Credential {
    /// The access key id (RFC 9421 `keyid`).
    pub access_key_id: String,
    /// Who the credential belongs to.
    pub owner: String,
    /// The scopes it grants, as strings.
    pub scopes: Vec<String>,
    /// The key it verifies with.
    pub key: KeyMaterial,
}

/// Looks credentials up by access key id.
///
/// Implementations keep shared secrets encrypted at rest (see [`MasterKey`]) and hand
/// them out still sealed ([`KeyMaterial::Sealed`]), so the verifier decrypts one only
/// when it derives a signing key; [`KeyMaterial::Secret`] works too, at the cost of a
/// hash of the secret per request.
pub trait CredentialStore: Send + Sync {
    /// The credential for `access_key_id`, or `None` when there is none (or it is revoked).
    fn credential(
        &self,
        access_key_id: &str,
    ) -> impl Future<Output = Result<Option<Credential>, Error>> + Send;
}

/// The master key under which stored secrets are encrypted (AES-256-GCM).
pub struct MasterKey(LessSafeKey);

impl MasterKey {
    /// A master key from 32 bytes of configured key material.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| err(ErrorKind::InvalidKey, "the master key must be 32 bytes"))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// A fresh random master key (tests, ephemeral stores).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        // 32 bytes is always a valid AES-256 key.
        match Self::from_bytes(bytes.as_ref()) {
            Ok(key) => key,
            Err(_) => unreachable!("32-byte key"),
        }
    }

    /// Encrypts `secret`, bound to `access_key_id` (so that a sealed secret moved to
    /// another credential's row does not open).
    pub fn seal(&self, access_key_id: &str, secret: &Secret) -> Result<SealedSecret, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut buf = Vec::with_capacity(1 + NONCE_LEN + secret.expose().len() + 16);
        buf.push(1u8);
        buf.extend_from_slice(&nonce);
        let mut body = secret.expose().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(access_key_id.as_bytes()),
                &mut body,
            )
            .map_err(|_| err(ErrorKind::Crypto, "sealing the secret failed"))?;
        buf.extend_from_slice(&body);
        body.zeroize();
        Ok(SealedSecret(buf))
    }

    /// Decrypts a sealed secret for `access_key_id`.
    pub fn open(&self, access_key_id: &str, sealed: &SealedSecret) -> Result<Secret, Error> {
        let fail = || err(ErrorKind::Crypto, "opening the sealed secret failed");
        let (version, rest) = sealed.0.split_first().ok_or_else(fail)?;
        if *version != 1 || rest.len() < NONCE_LEN + 16 {
            return Err(fail());
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain_len = self
            .0
            .open_in_place(nonce, Aad::from(access_key_id.as_bytes()), &mut buf)
            .map_err(|_| fail())?
            .len();
        // Only the (public) tag is cut off, so the buffer itself becomes the secret.
        buf.truncate(plain_len);
        Ok(Secret(buf))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A secret encrypted under a [`MasterKey`]: version byte, nonce, ciphertext and tag.
/// Safe to store in a database column.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(Vec<u8>);

impl SealedSecret {
    /// Wraps bytes read back from storage.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// A shared secret sealed under a [`MasterKey`], with what opens it: the form in which a
/// [`CredentialStore`] can hand a secret to the verifier without decrypting it.
///
/// The verifier opens it only to derive a signing key (once per credential, date and
/// scope) and recognises a cached key's secret as unchanged by the sealed bytes, so a
/// request whose key is cached costs no decryption and the secret is not in clear
/// meanwhile. Cloning shares it.
#[derive(Clone)]
pub struct SealedKey(Arc<SealedKeyInner>);

struct SealedKeyInner {
    master: Arc<MasterKey>,
    access_key_id: String,
    sealed: SealedSecret,
}

impl SealedKey {
    /// A secret that `master` sealed for `access_key_id` (see [`MasterKey::seal`]).
    pub fn new(
        master: Arc<MasterKey>,
        access_key_id: impl Into<String>,
        sealed: SealedSecret,
    ) -> Self {
        Self(Arc::new(SealedKeyInner {
            master,
            access_key_id: access_key_id.into(),
            sealed,
        }))
    }

    /// Decrypts the secret (a [`ErrorKind::Crypto`] error when the master key or the
    /// access key id does not match the sealed bytes).
    pub fn open(&self) -> Result<Secret, Error> {
        self.0.master.open(&self.0.access_key_id, &self.0.sealed)
    }

    /// The sealed bytes: equal bytes hold the same secret.
    pub fn sealed(&self) -> &SealedSecret {
        &self.0.sealed
    }
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedKey({} bytes)", self.0.sealed.as_bytes().len())
    }
}

enum StoredKey {
    Sealed(SealedKey),
    Public(KeyMaterial),
}

struct Stored {
    owner: String,
    scopes: Vec<String>,
    key: StoredKey,
}

/// An in-memory [`CredentialStore`]; shared secrets are kept sealed under a master key
/// and handed out sealed ([`KeyMaterial::Sealed`]).
pub struct MemoryCredentialStore {
    master: Arc<MasterKey>,
    map: RwLock<HashMap<String, Stored>>,
}

impl MemoryCredentialStore {
    /// An empty store whose secrets are sealed under `master`.
    pub fn new(master: MasterKey) -> Self {
        Self {
            master: Arc::new(master),
            map: RwLock::new(HashMap::new()),
        }
    }

    /// Adds or replaces a credential. A sealed secret is opened and sealed again under
    /// this store's master key, bound to the credential's id.
    pub fn insert(&self, credential: Credential) -> Result<(), Error> {
        let key = match credential.key {
            KeyMaterial::Secret(secret) => StoredKey::Sealed(SealedKey::new(
                Arc::clone(&self.master),
                credential.access_key_id.as_str(),
                self.master.seal(&credential.access_key_id, &secret)?,
            )),
            KeyMaterial::Sealed(sealed) => {
                // Re-sealed under this store's key, bound to this id.
                let secret = sealed.open()?;
                StoredKey::Sealed(SealedKey::new(
                    Arc::clone(&self.master),
                    credential.access_key_id.as_str(),
                    self.master.seal(&credential.access_key_id, &secret)?,
                ))
            }
            public => StoredKey::Public(public),
        };
        let stored = Stored {
            owner: credential.owner,
            scopes: credential.scopes,
            key,
        };
        self.map
            .write()
            .map_err(|_| err(ErrorKind::Store, "credential store lock poisoned"))?
            .insert(credential.access_key_id, stored);
        Ok(())
    }

    /// Removes (revokes) a credential; returns whether it existed.
    pub fn remove(&self, access_key_id: &str) -> Result<bool, Error> {
        Ok(self
            .map
            .write()
            .map_err(|_| err(ErrorKind::Store, "credential store lock poisoned"))?
            .remove(access_key_id)
            .is_some())
    }

    fn get(&self, access_key_id: &str) -> Result<Option<Credential>, Error> {
        let map = self
            .map
            .read()
            .map_err(|_| err(ErrorKind::Store, "credential store lock poisoned"))?;
        let Some(stored) = map.get(access_key_id) else {
            return Ok(None);
        };
        let key = match &stored.key {
            StoredKey::Sealed(sealed) => KeyMaterial::Sealed(sealed.clone()),
            StoredKey::Public(public) => public.clone(),
        };
        Ok(Some(Credential {
            access_key_id: access_key_id.to_owned(),
            owner: stored.owner.clone(),
            scopes: stored.scopes.clone(),
            key,
        }))
    }
}

impl fmt::Debug for MemoryCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCredentialStore")
            .finish_non_exhaustive()
    }
}

impl CredentialStore for MemoryCredentialStore {
    fn credential(
        &self,
        access_key_id: &str,
    ) -> impl Future<Output = Result<Option<Credential>, Error>> + Send {
        let result = self.get(access_key_id);
        async move { result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let master = MasterKey::generate();
        let sealed = master.seal("AKID1", &Secret::from("s3cret")).unwrap();
        assert!(!sealed.as_bytes().windows(6).any(|w| w == b"s3cret"));
        assert_eq!(master.open("AKID1", &sealed).unwrap().expose(), b"s3cret");
        assert_eq!(
            master.open("AKID2", &sealed).unwrap_err().kind(),
            ErrorKind::Crypto
        );
        let other = MasterKey::generate();
        assert!(other.open("AKID1", &sealed).is_err());
        assert!(
            master
                .open("AKID1", &SealedSecret::from_bytes(vec![1, 2]))
                .is_err()
        );
        let key = SealedKey::new(Arc::new(master), "AKID1", sealed.clone());
        assert_eq!(key.open().unwrap().expose(), b"s3cret");
        assert_eq!(key.sealed(), &sealed);
        assert_eq!(
            format!("{key:?}"),
            format!("SealedKey({} bytes)", sealed.as_bytes().len())
        );

        assert_eq!(format!("{:?}", Secret::from("x")), "Secret(<redacted>)");
        assert!(MasterKey::from_bytes(&[0; 16]).is_err());
    }

    #[test]
    fn a_sealed_credential_is_sealed_again_under_the_store_key() {
        let elsewhere = Arc::new(MasterKey::generate());
        let sealed = elsewhere.seal("AKID1", &Secret::from("s3cret")).unwrap();
        let store = MemoryCredentialStore::new(MasterKey::generate());
        store
            .insert(Credential {
                access_key_id: "AKID1".into(),
                owner: "o".into(),
                scopes: vec![],
                key: KeyMaterial::Sealed(SealedKey::new(elsewhere, "AKID1", sealed.clone())),
            })
            .unwrap();
        let Some(Credential {
            key: KeyMaterial::Sealed(stored),
            ..
        }) = store.get("AKID1").unwrap()
        else {
            panic!("a sealed secret");
        };
        assert_ne!(stored.sealed(), &sealed);
        assert_eq!(stored.open().unwrap().expose(), b"s3cret");
    }
}
