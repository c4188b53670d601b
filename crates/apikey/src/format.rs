//! The key format: `<kind>_<environment>_<43 random base62 characters><6 checksum characters>`.

use std::fmt;

use rand::distr::Alphanumeric;
use rand::{CryptoRng, Rng};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// Base62 characters of randomness in a key: 62^43 > 2^256, so at least 256 bits.
pub(crate) const RANDOM_LEN: usize = 43;
/// Base62 characters of the CRC32 checksum: 62^6 > 2^32.
pub(crate) const CHECKSUM_LEN: usize = 6;
/// Longest accepted kind (the part before the first `_`).
const MAX_KIND_LEN: usize = 12;
/// Anything longer is rejected before any other work.
pub(crate) const MAX_KEY_LEN: usize = MAX_KIND_LEN + 6 + RANDOM_LEN + CHECKSUM_LEN;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The environment a key belongs to, written in its prefix (`pk_live_`, `pk_test_`).
///
/// A deployment accepts keys of its own environment only, so a test key leaked from a
/// staging system never opens production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Environment {
    /// Production keys (`live`).
    #[default]
    Live,
    /// Test and staging keys (`test`).
    Test,
}

impl Environment {
    /// The word in the key prefix: `live` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }

    /// Reads `live` or `test`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "live" => Some(Self::Live),
            "test" => Some(Self::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How keys look: a kind (default `pk`) and the environment this deployment issues and
/// accepts (default [`Environment::Live`]).
///
/// A key is `<kind>_<env>_` followed by 43 characters of `[0-9A-Za-z]` drawn uniformly
/// from a CSPRNG (256 bits) and 6 characters encoding the CRC32 of everything before
/// them, in the style of GitHub's tokens. [`KeyFormat::parse`] checks all of it offline,
/// in well under a microsecond, so a mistyped or truncated key never reaches the store,
/// and a secret scanner can match [`KeyFormat::scanner_pattern`] and confirm the
/// checksum without false positives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFormat {
    kind: String,
    environment: Environment,
    /// `<kind>_<env>_`, computed once.
    prefix: String,
}

impl Default for KeyFormat {
    fn default() -> Self {
        Self::build("pk", Environment::Live)
    }
}

impl KeyFormat {
    /// A format with the given kind (1 to 12 characters of `[a-z0-9]`, starting with a
    /// letter) issuing and accepting keys of `environment`.
    pub fn new(kind: &str, environment: Environment) -> Result<Self, Error> {
        let valid = !kind.is_empty()
            && kind.len() <= MAX_KIND_LEN
            && kind.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(Error::invalid(
                "key kind must be 1 to 12 characters of [a-z0-9], starting with a letter",
            ));
        }
        Ok(Self::build(kind, environment))
    }

    fn build(kind: &str, environment: Environment) -> Self {
        Self {
            kind: kind.to_owned(),
            environment,
            prefix: format!("{kind}_{environment}_"),
        }
    }

    /// The kind, e.g. `pk`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The environment this format issues and accepts.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The prefix of issued keys, e.g. `pk_live_`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A regular expression (in the common syntax of secret scanners) matching keys of
    /// this kind in any environment. Confirm a match with [`KeyFormat::parse`].
    pub fn scanner_pattern(&self) -> String {
        format!(
            r"\b{}_(?:live|test)_[0-9A-Za-z]{{{}}}\b",
            self.kind,
            RANDOM_LEN + CHECKSUM_LEN
        )
    }

    /// What is hashed for storage: the key after `<kind>_` (the environment, the random
    /// part and the checksum: 54 bytes, one SHA-256 block). `raw` is a key of this kind.
    pub(crate) fn hash_input<'a>(&self, raw: &'a str) -> &'a [u8] {
        let bytes = raw.as_bytes();
        bytes
            .strip_prefix(self.kind.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"_"))
            .unwrap_or(bytes)
    }

    /// A new key from the thread-local CSPRNG (`rand::rng()`, reseeded from the OS).
    pub fn generate(&self) -> RawKey {
        self.generate_with(&mut rand::rng())
    }

    /// A new key from the given cryptographically secure generator.
    pub fn generate_with<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> RawKey {
        let mut key = Zeroizing::new(String::with_capacity(
            self.prefix.len() + RANDOM_LEN + CHECKSUM_LEN,
        ));
        key.push_str(&self.prefix);
        for _ in 0..RANDOM_LEN {
            key.push(char::from(rng.sample(Alphanumeric)));
        }
        let checksum = encode_checksum(crc32fast::hash(key.as_bytes()));
        for b in checksum {
            key.push(char::from(b));
        }
        RawKey(key)
    }

    /// Checks a presented key offline: length, prefix, alphabet and checksum.
    ///
    /// Keys of either environment are recognised (so that the caller can tell a test key
    /// from garbage); [`ApiKeys::verify`](crate::ApiKeys::verify) then refuses keys of
    /// the other environment. Any input, of any length and bytes, gives `Ok` or a typed
    /// error; this never panics.
    pub fn parse<'a>(&self, raw: &'a str) -> Result<ParsedKey<'a>, Error> {
        let bytes = raw.as_bytes();
        if bytes.is_empty() {
            return Err(Error::new(ErrorKind::Missing));
        }
        if bytes.len() > MAX_KEY_LEN {
            return Err(malformed("too long"));
        }
        let rest = bytes
            .strip_prefix(self.kind.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"_"))
            .ok_or_else(|| malformed("wrong prefix"))?;
        let (environment, rest) = if let Some(rest) = rest.strip_prefix(b"live_") {
            (Environment::Live, rest)
        } else if let Some(rest) = rest.strip_prefix(b"test_") {
            (Environment::Test, rest)
        } else {
            return Err(malformed("wrong prefix"));
        };
        if rest.len() != RANDOM_LEN + CHECKSUM_LEN {
            return Err(malformed("wrong length"));
        }
        if !rest.iter().all(u8::is_ascii_alphanumeric) {
            return Err(malformed("character outside [0-9A-Za-z]"));
        }
        let (body, checksum) = bytes
            .split_at_checked(bytes.len() - CHECKSUM_LEN)
            .ok_or_else(|| malformed("wrong length"))?;
        if decode_checksum(checksum) != Some(crc32fast::hash(body)) {
            return Err(malformed("checksum mismatch"));
        }
        Ok(ParsedKey { raw, environment })
    }
}

fn malformed(detail: &'static str) -> Error {
    Error::with_detail(ErrorKind::Malformed, detail)
}

fn encode_checksum(mut value: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        // `value % 62` is below 62, so the lookup cannot fail.
        *slot = BASE62.get((value % 62) as usize).copied().unwrap_or(b'0');
        value /= 62;
    }
    out
}

fn decode_checksum(digits: &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for &b in digits {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        value = value * 62 + u64::from(digit);
    }
    u32::try_from(value).ok()
}

/// A key that passed [`KeyFormat::parse`]: right shape and checksum, not yet looked up.
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    raw: &'a str,
    environment: Environment,
}

impl<'a> ParsedKey<'a> {
    /// The environment named in the prefix.
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The key itself (a secret: do not log it).
    pub fn expose_secret(&self) -> &'a str {
        self.raw
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("environment", &self.environment)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A raw key, as handed to its owner exactly once. Zeroized on drop; `Debug` redacted.
pub struct RawKey(Zeroizing<String>);

impl RawKey {
    /// The key to show to its owner. Never log or store it: the store keeps a hash.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The display hint kept in the record: the prefix and the last four characters.
    pub(crate) fn hint(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let prefix_len = chars.len().saturating_sub(RANDOM_LEN + CHECKSUM_LEN);
        let prefix: String = chars.iter().take(prefix_len).collect();
        let last: String = chars.iter().skip(chars.len().saturating_sub(4)).collect();
        format!("{prefix}...{last}")
    }
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_carry_the_prefix() {
        let format = KeyFormat::default();
        let key = format.generate();
        let raw = key.expose_secret();
        assert!(raw.starts_with("pk_live_"));
        assert_eq!(raw.len(), 8 + 49);
        let parsed = format.parse(raw).unwrap();
        assert_eq!(parsed.environment(), Environment::Live);
        assert_eq!(parsed.expose_secret(), raw);
        assert_ne!(format.generate().expose_secret(), raw);
    }

    #[test]
    fn test_environment_and_custom_kind() {
        let format = KeyFormat::new("acme", Environment::Test).unwrap();
        let key = format.generate();
        assert!(key.expose_secret().starts_with("acme_test_"));
        assert_eq!(
            format.parse(key.expose_secret()).unwrap().environment(),
            Environment::Test
        );
        // A key of another kind is malformed for this format.
        let other = KeyFormat::default().generate();
        assert_eq!(
            format.parse(other.expose_secret()).unwrap_err().kind(),
            ErrorKind::Malformed
        );
        for bad in ["", "A", "1pk", "pk_", "waytoolongkind", "p-k"] {
            assert_eq!(
                KeyFormat::new(bad, Environment::Live).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad}"
            );
        }
    }

    #[test]
    fn checksum_round_trips_at_the_edges() {
        for value in [0, 1, 61, 62, u32::MAX - 1, u32::MAX] {
            assert_eq!(decode_checksum(&encode_checksum(value)), Some(value));
        }
        assert_eq!(decode_checksum(b"zzzzzz"), None); // above u32::MAX
        assert_eq!(decode_checksum(b"00000-"), None);
        assert_eq!(&encode_checksum(0), b"000000");
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let format = KeyFormat::default();
        let valid = format.generate();
        let raw = valid.expose_secret();
        let mut wrong_checksum = raw.to_owned();
        let last = wrong_checksum.pop().unwrap();
        wrong_checksum.push(if last == 'a' { 'b' } else { 'a' });
        let long = "a".repeat(10 * 1024);
        let long_prefixed = format!("pk_live_{}", "a".repeat(10 * 1024));
        let non_ascii = format!("pk_live_{}é", "a".repeat(47));
        let truncated = raw.chars().take(raw.len() - 1).collect::<String>();
        let cases: Vec<(&str, ErrorKind, &str)> = vec![
            ("", ErrorKind::Missing, ""),
            (&long, ErrorKind::Malformed, "too long"),
            (&long_prefixed, ErrorKind::Malformed, "too long"),
            (
                &non_ascii,
                ErrorKind::Malformed,
                "character outside [0-9A-Za-z]",
            ),
            (&wrong_checksum, ErrorKind::Malformed, "checksum mismatch"),
            (&truncated, ErrorKind::Malformed, "wrong length"),
            ("sk_live_abc", ErrorKind::Malformed, "wrong prefix"),
            ("pk_prod_abc", ErrorKind::Malformed, "wrong prefix"),
            ("pk", ErrorKind::Malformed, "wrong prefix"),
            ("\u{0}\u{feff}", ErrorKind::Malformed, "wrong prefix"),
        ];
        for (input, kind, detail) in cases {
            let error = format.parse(input).unwrap_err();
            assert_eq!(error.kind(), kind, "{input:?}");
            assert_eq!(error.detail().unwrap_or(""), detail, "{input:?}");
        }
    }

    #[test]
    fn every_single_character_substitution_is_caught() {
        let format = KeyFormat::default();
        let key = format.generate();
        let raw = key.expose_secret().as_bytes().to_vec();
        for position in 8..raw.len() {
            for &replacement in BASE62 {
                if raw.get(position) == Some(&replacement) {
                    continue;
                }
                let mut mutated = raw.clone();
                if let Some(slot) = mutated.get_mut(position) {
                    *slot = replacement;
                }
                let mutated = String::from_utf8(mutated).unwrap();
                assert_eq!(
                    format.parse(&mutated).unwrap_err().detail(),
                    Some("checksum mismatch")
                );
            }
        }
    }

    #[test]
    fn secrets_are_redacted_and_hinted() {
        let key = KeyFormat::default().generate();
        let debug = format!("{key:?}");
        assert!(!debug.contains(key.expose_secret()));
        let hint = key.hint();
        assert!(hint.starts_with("pk_live_..."));
        assert_eq!(hint.len(), "pk_live_...".len() + 4);
        assert!(key.expose_secret().ends_with(hint.get(11..).unwrap()));
        let parsed = KeyFormat::default().parse(key.expose_secret()).unwrap();
        assert!(!format!("{parsed:?}").contains(key.expose_secret()));
    }

    #[test]
    fn checksum_is_standard_crc32() {
        // Made independently with Python's zlib.crc32 (IEEE CRC-32) and base62 digits
        // 0-9A-Za-z, most significant first; also in fuzz/corpus/apikey_parse/valid_live.
        let key = "pk_live_ZumrEcp9YEq0knHcnzF9Glo0qZ618ytbkPLZhcKmQYn0rBk9K";
        assert!(KeyFormat::default().parse(key).is_ok());
        assert_eq!(
            crc32fast::hash(b"123456789"),
            0xCBF4_3926 // the CRC-32 check value
        );
    }

    #[test]
    fn scanner_pattern_names_kind_and_length() {
        assert_eq!(
            KeyFormat::default().scanner_pattern(),
            r"\bpk_(?:live|test)_[0-9A-Za-z]{49}\b"
        );
    }
}
