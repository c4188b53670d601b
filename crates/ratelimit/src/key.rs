//! Bounding keys: any caller-supplied key becomes a short, safe store key.

use std::borrow::Cow;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use foldhash::SharedSeed;
use foldhash::fast::{FoldHasher, SeedableRandomState};
use sha2::{Digest, Sha256};

/// Keys longer than this are replaced by their SHA-256.
pub(crate) const MAX_KEY_LEN: usize = 128;

/// The key as stored: itself when short and plain, else `#` and its SHA-256 in hex.
///
/// Hashed keys start with `#`, and a plain key that starts with `#` is hashed too, so a
/// caller cannot pick a key that collides with another key's hashed form. With
/// `for_redis`, keys holding `{` or `}` are hashed as well, so that a key can never
/// change the Redis Cluster hash tag that keeps one policy's keys in one slot.
#[inline]
pub(crate) fn bounded_key(key: &str, for_redis: bool) -> Cow<'_, str> {
    let hashed = key.len() > MAX_KEY_LEN
        || key.starts_with('#')
        || (for_redis
            && key
                .bytes()
                .any(|b| b == b'{' || b == b'}' || b.is_ascii_control()));
    if hashed {
        Cow::Owned(hashed_key(key))
    } else {
        Cow::Borrowed(key)
    }
}

#[cold]
fn hashed_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("#{}", hex::encode(digest))
}

/// Hashes keys for the in-memory tables: foldhash (a few nanoseconds for a short key,
/// where SipHash takes tens) under seeds drawn from the operating system's randomness,
/// fresh for every hasher. foldhash's own default seeds come from addresses and the
/// time, too guessable for keys that clients choose.
#[derive(Clone, Debug)]
pub(crate) struct KeyHasher(SeedableRandomState);

impl KeyHasher {
    pub(crate) fn new() -> Self {
        static SHARED: OnceLock<SharedSeed> = OnceLock::new();
        let shared = SHARED.get_or_init(|| SharedSeed::from_u64(os_random()));
        Self(SeedableRandomState::with_seed(os_random(), shared))
    }

    /// The hash of a stored key (one `write`: foldhash mixes the length in itself).
    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        let mut hasher = self.0.build_hasher();
        hasher.write(key);
        hasher.finish()
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// 64 random bits: std's `RandomState` keys SipHash (a PRF) with bits from the
/// operating system, so its hash of a constant is unpredictable.
fn os_random() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x9e37_79b9_7f4a_7c15_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_special_keys_are_hashed() {
        assert_eq!(bounded_key("user-1", true), "user-1");
        let long = "x".repeat(10_000);
        let bounded = bounded_key(&long, false);
        assert_eq!(bounded.len(), 65);
        assert!(bounded.starts_with('#'));
        assert_ne!(bounded_key("#abc", false), "#abc");
        assert_eq!(bounded_key("a{b}", false), "a{b}");
        assert!(bounded_key("a{b}", true).starts_with('#'));
        assert_ne!(
            bounded_key(&long, false),
            bounded_key(&"x".repeat(10_001), false)
        );
    }
}
