//! Request ids: echo a well-formed inbound id, otherwise generate one.

use std::fmt;

/// Longest inbound request id that is echoed (the contract's bound).
const MAX_LEN: usize = 128;

/// A request id, safe to log and to echo in `X-Request-Id`.
///
/// An inbound id is accepted only when it has 1 to 128 characters from
/// `A-Z a-z 0-9 . _ : -`; anything else (too long, empty, spaces, quotes, CR/LF,
/// non-ASCII) is replaced by a fresh UUID v4 drawn from the OS random generator. The
/// restriction keeps ids out of log-injection and header-splitting territory and keeps
/// them bounded, while still letting a caller correlate its own traces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// The header carrying the id (lower case).
    pub const HEADER: &'static str = "x-request-id";

    /// Echoes `inbound` when it is well-formed, otherwise generates a new id.
    pub fn accept_or_generate(inbound: Option<&str>) -> Self {
        match inbound {
            Some(id) if Self::is_well_formed(id) => Self(id.to_owned()),
            _ => Self::generate(),
        }
    }

    /// Like [`accept_or_generate`](Self::accept_or_generate), for a raw header value that
    /// may not be UTF-8.
    pub fn accept_or_generate_bytes(inbound: Option<&[u8]>) -> Self {
        Self::accept_or_generate(inbound.and_then(|b| std::str::from_utf8(b).ok()))
    }

    /// A new random id (UUID v4, hyphenated lower case).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// Whether `id` would be echoed: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`.
    pub fn is_well_formed(id: &str) -> bool {
        (1..=MAX_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    }

    /// The id as a string (always a valid header value).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `(name, value)` pair to set on the response.
    pub fn header(&self) -> (&'static str, &str) {
        (Self::HEADER, &self.0)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn echoes_well_formed_ids() {
        for id in ["a", "req-123", "trace:abc.def_1", &"x".repeat(128)] {
            assert_eq!(RequestId::accept_or_generate(Some(id)).as_str(), id);
        }
    }

    #[test]
    fn replaces_bad_ids() {
        let long = "x".repeat(129);
        for id in [
            "",
            " ",
            "a b",
            "a\r\nSet-Cookie: x",
            "é",
            "a/b",
            "\"q\"",
            &long,
        ] {
            let got = RequestId::accept_or_generate(Some(id));
            assert_ne!(got.as_str(), id);
            assert!(uuid::Uuid::parse_str(got.as_str()).is_ok());
        }
        let fresh = RequestId::accept_or_generate(None);
        let parsed = uuid::Uuid::parse_str(fresh.as_str()).expect("uuid");
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(RequestId::generate(), RequestId::generate());
    }

    #[test]
    fn bytes_variant() {
        assert_eq!(
            RequestId::accept_or_generate_bytes(Some(b"abc")).as_str(),
            "abc"
        );
        assert_ne!(
            RequestId::accept_or_generate_bytes(Some(&[0xff, 0xfe])).as_str(),
            "\u{fffd}"
        );
        assert_eq!(RequestId::generate().header().0, "x-request-id");
    }

    proptest! {
        #[test]
        fn output_always_well_formed(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let id = RequestId::accept_or_generate_bytes(Some(&input));
            prop_assert!(RequestId::is_well_formed(id.as_str()));
            if let Ok(s) = std::str::from_utf8(&input)
                && RequestId::is_well_formed(s)
            {
                prop_assert_eq!(id.as_str(), s);
            }
        }
    }
}
