//! Who is behaving: identities and the per-request event.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;

use foldhash::SharedSeed;
use foldhash::quality::FoldHasher;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind};

/// Longest identity value kept as is; longer or unusual values are hashed.
const MAX_VALUE: usize = 128;
/// Longest user agent or endpoint looked at; the rest is ignored.
pub(crate) const MAX_TEXT: usize = 256;

/// What kind of principal an identity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    /// An API key (by its key id, never the raw key).
    ApiKey,
    /// An OAuth client or a request-signing credential.
    Client,
    /// A user (subject of an access token, or a certificate identity).
    User,
    /// A client address (unauthenticated traffic).
    Address,
}

impl IdentityKind {
    /// The prefix used in the identity's string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "apikey",
            Self::Client => "client",
            Self::User => "user",
            Self::Address => "address",
        }
    }
}

/// A bounded identity whose behaviour is tracked: `kind:value`.
///
/// The value is kept verbatim when it has 1 to 128 characters from
/// `A-Z a-z 0-9 . _ : @ / + = -` (key ids, client ids, addresses); anything longer or
/// with other characters is replaced by `h-` and the first 32 hex digits of its SHA-256,
/// so the state per identity is bounded, its string form is safe in logs and Redis keys,
/// and two different values do not collide in practice.
///
/// The string form (`Display`) parses back with [`FromStr`], which is what
/// `DELETE /admin/abuse/{identity}` needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    kind: IdentityKind,
    // The full string form `kind:value`, built once.
    text: String,
    // Keyed hash of `text`, computed once so the stores never hash the identity again.
    hash: u64,
    // A second, independently keyed hash of `text`: with `hash`, 128 bits that tell
    // identities apart where a store keeps hashes only.
    check: u64,
}

/// A keyed (per-process random key) SipHash: attackers cannot aim collisions at it. For
/// keys of hash maps (identities, authentication subjects), where collisions cost time.
pub(crate) fn keyed_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    KEY.get_or_init(RandomState::new).hash_one(value)
}

/// Foldhash keyed from the OS-seeded [`RandomState`] (foldhash's own seed is only address
/// space layout and time).
struct FastKey {
    per_hasher: u64,
    shared: SharedSeed,
}

/// A fast keyed hash (foldhash, quality variant) for the per-request values that only go
/// into the small distinct-count sets: user agents, endpoints, networks. Those sets are
/// scanned, not hashed into, so a collision can only make two values count as one, and
/// the random per-process key keeps collisions out of a client's reach. SipHash over a
/// user agent cost more than all the rest of recording a request.
pub(crate) fn value_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    static KEY: OnceLock<FastKey> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let os_seeded = RandomState::new();
        FastKey {
            per_hasher: os_seeded.hash_one(0u8),
            shared: SharedSeed::from_u64(os_seeded.hash_one(1u8)),
        }
    });
    let mut hasher = FoldHasher::with_seed(key.per_hasher, &key.shared);
    value.hash(&mut hasher);
    hasher.finish()
}

impl Identity {
    /// An identity of `kind` for `value`.
    pub fn new(kind: IdentityKind, value: &str) -> Self {
        let safe = (1..=MAX_VALUE).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:@/+=-".contains(&b));
        let text = if safe {
            format!("{}:{value}", kind.as_str())
        } else {
            let digest = Sha256::digest(value.as_bytes());
            let short = digest.get(..16).unwrap_or_default();
            format!("{}:h-{}", kind.as_str(), hex::encode(short))
        };
        let hash = keyed_hash(text.as_str());
        let check = value_hash(text.as_str());
        Self {
            kind,
            text,
            hash,
            check,
        }
    }

    pub(crate) fn hash64(&self) -> u64 {
        self.hash
    }

    pub(crate) fn check64(&self) -> u64 {
        self.check
    }

    /// An API key, by key id.
    pub fn api_key(key_id: &str) -> Self {
        Self::new(IdentityKind::ApiKey, key_id)
    }

    /// An OAuth client or signing credential.
    pub fn client(client_id: &str) -> Self {
        Self::new(IdentityKind::Client, client_id)
    }

    /// A user.
    pub fn user(subject: &str) -> Self {
        Self::new(IdentityKind::User, subject)
    }

    /// A client address.
    pub fn address(address: IpAddr) -> Self {
        Self::new(IdentityKind::Address, &address.to_string())
    }

    /// The kind.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    /// The string form `kind:value`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The address, for an address identity.
    pub fn ip(&self) -> Option<IpAddr> {
        if self.kind != IdentityKind::Address {
            return None;
        }
        self.text.split_once(':').and_then(|(_, v)| v.parse().ok())
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Identity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::new(ErrorKind::InvalidIdentity, "identity must be kind:value");
        let (kind, value) = s.split_once(':').ok_or_else(bad)?;
        let kind = match kind {
            "apikey" => IdentityKind::ApiKey,
            "client" => IdentityKind::Client,
            "user" => IdentityKind::User,
            "address" => IdentityKind::Address,
            _ => return Err(bad()),
        };
        if value.is_empty() {
            return Err(bad());
        }
        if kind == IdentityKind::Address {
            // Normalise the address so `address:::1` and `address:0::1` are one identity.
            return value
                .parse::<IpAddr>()
                .map(Self::address)
                .map_err(|_| bad());
        }
        Ok(Self::new(kind, value))
    }
}

/// Rate-limit usage at the time of a request, for the near-limit signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitUsage {
    /// Requests left in the limiter's window after this one.
    pub remaining: u64,
    /// The limiter's quota for the window.
    pub limit: u64,
}

/// One request, as the abuse monitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestEvent<'a> {
    /// The endpoint, preferably the matched route (`GET /api/orders/{id}`) rather than
    /// the raw path, so that ids do not look like distinct endpoints. Only the first
    /// 256 bytes count.
    pub endpoint: &'a str,
    /// Whether the endpoint authenticates (token, login, authorize, device).
    pub is_auth_endpoint: bool,
    /// Response status. 4xx statuses count as errors (5xx are the server's fault).
    pub status: u16,
    /// Response body size in bytes.
    pub response_bytes: u64,
    /// The `User-Agent`, if any. Only the first 256 bytes count.
    pub user_agent: Option<&'a str>,
    /// The client address (after trusted-proxy resolution).
    pub source_ip: IpAddr,
    /// The rate limiter's state after this request, if known.
    pub rate_limit: Option<LimitUsage>,
}

/// A string cut to at most `MAX_TEXT` bytes on a character boundary.
pub(crate) fn bounded(s: &str) -> &str {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The network an address belongs to: /24 for IPv4, /48 for IPv6 (a typical site).
pub(crate) fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return network_of(IpAddr::V4(v4));
            }
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn safe_values_kept_and_others_hashed() {
        assert_eq!(Identity::api_key("key_123").as_str(), "apikey:key_123");
        let long = Identity::user(&"x".repeat(1000));
        assert!(long.as_str().starts_with("user:h-"));
        assert_eq!(long.as_str().len(), "user:h-".len() + 32);
        assert_ne!(Identity::user("a b"), Identity::user("a c"));
        assert!(Identity::user("a}b{c").as_str().starts_with("user:h-"));
    }

    #[test]
    fn round_trips() {
        for id in [
            Identity::api_key("k1"),
            Identity::client("c:1"),
            Identity::user(&"é".repeat(300)),
            Identity::address("2001:db8::1".parse().expect("ip")),
            Identity::address("192.0.2.7".parse().expect("ip")),
        ] {
            let back: Identity = id.as_str().parse().expect("parse");
            assert_eq!(back, id);
        }
        assert_eq!(
            "address:192.0.2.7".parse::<Identity>().expect("ip").ip(),
            Some("192.0.2.7".parse().expect("ip"))
        );
        for bad in ["", "apikey", "apikey:", "nobody:x", "address:not-an-ip"] {
            assert_eq!(
                bad.parse::<Identity>().map_err(|e| e.kind()),
                Err(ErrorKind::InvalidIdentity)
            );
        }
    }

    #[test]
    fn networks() {
        assert_eq!(
            network_of("203.0.113.77".parse().expect("ip")),
            "203.0.113.0".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            network_of("2001:db8:1:2:3::9".parse().expect("ip")),
            "2001:db8:1::".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            network_of("::ffff:198.51.100.3".parse().expect("ip")),
            "198.51.100.0".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn bounded_respects_char_boundaries() {
        let s = "é".repeat(200);
        let b = bounded(&s);
        assert!(b.len() <= MAX_TEXT);
        assert!(b.chars().all(|c| c == 'é'));
    }

    proptest! {
        #[test]
        fn any_string_gives_a_bounded_parsable_identity(s in any::<String>()) {
            let id = Identity::user(&s);
            prop_assert!(id.as_str().len() <= 5 + MAX_VALUE);
            prop_assert_eq!(id.as_str().parse::<Identity>().ok(), Some(id.clone()));
            let _ = s.parse::<Identity>();
            prop_assert!(bounded(&s).len() <= MAX_TEXT);
        }
    }
}
