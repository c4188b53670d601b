//! Hashing keys for storage: SHA-256, or HMAC-SHA256 under a server-side pepper.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::Error;

/// The stored form of a key: its SHA-256 (or HMAC-SHA256 under the pepper).
///
/// Equality is constant-time. `Debug` shows only that it is a hash.
#[derive(Clone, Copy)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Wraps 32 bytes read from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a hash from a store column; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The 32 bytes, for a store to write.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        // Four 64-bit constant-time comparisons instead of 32 byte-wise ones.
        let word = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let mut equal = subtle::Choice::from(1);
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            equal &= word(a).ct_eq(&word(b));
        }
        equal.into()
    }
}

impl Eq for KeyHash {}

impl std::hash::Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(<redacted>)")
    }
}

/// A server-side secret mixed into every key hash (HMAC-SHA256), so that a stolen
/// database alone does not let anyone test guesses offline.
///
/// At least 16 bytes; zeroized on drop; `Debug` redacted. Changing the pepper makes
/// every existing key unknown.
#[derive(Clone)]
pub struct Pepper(Zeroizing<Vec<u8>>);

impl Pepper {
    /// A pepper of at least 16 bytes (32 random bytes recommended).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.len() < 16 {
            return Err(Error::invalid("pepper must be at least 16 bytes"));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

/// Computes [`KeyHash`]es. The keyed HMAC state is prepared once, so a peppered hash
/// costs two more SHA-256 blocks than a plain one.
#[derive(Clone)]
pub(crate) enum KeyHasher {
    Sha256,
    Hmac(Box<Hmac<Sha256>>),
}

impl KeyHasher {
    pub(crate) fn new(pepper: Option<&Pepper>) -> Self {
        match pepper {
            None => Self::Sha256,
            Some(pepper) => match Hmac::<Sha256>::new_from_slice(&pepper.0) {
                Ok(mac) => Self::Hmac(Box::new(mac)),
                // HMAC accepts keys of any length; this arm is unreachable in practice.
                Err(_) => Self::Sha256,
            },
        }
    }

    /// Hashes the part of a key after its kind (`live_...`, 54 bytes: one SHA-256 block).
    pub(crate) fn hash(&self, input: &[u8]) -> KeyHash {
        match self {
            // aws-lc-rs's assembly SHA-256 is about twice as fast as sha2's portable
            // code on CPUs without SHA extensions, and this is the hot path.
            Self::Sha256 => {
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, input);
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(digest.as_ref());
                KeyHash(bytes)
            }
            Self::Hmac(mac) => {
                let mut mac = (**mac).clone();
                mac.update(input);
                KeyHash(mac.finalize().into_bytes().into())
            }
        }
    }
}

/// Hashes a [`KeyHash`] for the verification cache by taking its first eight bytes: the
/// keys are already uniform digests, and only valid keys are ever inserted, so an
/// attacker cannot flood one bucket.
#[derive(Clone, Copy, Default)]
pub(crate) struct DigestPrefixHasher(u64);

impl Hasher for DigestPrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut first = [0u8; 8];
        for (slot, byte) in first.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        self.0 ^= u64::from_le_bytes(first);
    }
}

impl BuildHasher for DigestPrefixHasher {
    type Hasher = Self;

    fn build_hasher(&self) -> Self {
        Self(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_matches_the_fips_vector() {
        // FIPS 180-2 example "abc".
        assert_eq!(
            hex(KeyHasher::new(None).hash(b"abc").as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hmac_matches_rfc4231_case_1() {
        // RFC 4231 test case 1: key = 0x0b * 20, data = "Hi There".
        let pepper = Pepper::new(vec![0x0b; 20]).unwrap();
        assert_eq!(
            hex(KeyHasher::new(Some(&pepper)).hash(b"Hi There").as_bytes()),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // The keyed state is reused, not consumed.
        let hasher = KeyHasher::new(Some(&pepper));
        assert_eq!(hasher.hash(b"x"), hasher.hash(b"x"));
        assert_ne!(hasher.hash(b"x"), KeyHasher::new(None).hash(b"x"));
    }

    #[test]
    fn short_peppers_are_refused_and_redacted() {
        assert!(Pepper::new(b"short".to_vec()).is_err());
        let pepper = Pepper::new(b"0123456789abcdef-secret".to_vec()).unwrap();
        assert!(!format!("{pepper:?}").contains("secret"));
        assert_eq!(format!("{:?}", KeyHash([7; 32])), "KeyHash(<redacted>)");
    }

    #[test]
    fn hash_equality_and_slices() {
        let a = KeyHash::from_bytes([1; 32]);
        assert_eq!(KeyHash::from_slice(&[1; 32]), Some(a));
        assert_eq!(KeyHash::from_slice(&[1; 31]), None);
        assert_ne!(a, KeyHash::from_bytes([2; 32]));
        for i in 0..32 {
            let mut bytes = [1; 32];
            bytes[i] = 0;
            assert_ne!(a, KeyHash::from_bytes(bytes), "byte {i}");
        }
    }
}
