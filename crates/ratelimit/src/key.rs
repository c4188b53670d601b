//! Bounding keys: any caller-supplied key becomes a short, safe store key.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// Keys longer than this are replaced by their SHA-256.
pub(crate) const MAX_KEY_LEN: usize = 128;

/// The key as stored: itself when short and plain, else `#` and its SHA-256 in hex.
///
/// Hashed keys start with `#`, and a plain key that starts with `#` is hashed too, so a
/// caller cannot pick a key that collides with another key's hashed form. With
/// `for_redis`, keys holding `{` or `}` are hashed as well, so that a key can never
/// change the Redis Cluster hash tag that keeps one policy's keys in one slot.
pub(crate) fn bounded_key(key: &str, for_redis: bool) -> Cow<'_, str> {
    let hashed = key.len() > MAX_KEY_LEN
        || key.starts_with('#')
        || (for_redis
            && key
                .bytes()
                .any(|b| b == b'{' || b == b'}' || b.is_ascii_control()));
    if hashed {
        let digest = Sha256::digest(key.as_bytes());
        Cow::Owned(format!("#{}", hex::encode(digest)))
    } else {
        Cow::Borrowed(key)
    }
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
