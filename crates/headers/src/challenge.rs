//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1, RFC 6750 §3 for Bearer).

use crate::error::{Error, ErrorKind};

/// Longest parameter value written; longer ones are cut (a challenge is not a log).
const MAX_PARAM_VALUE: usize = 512;

/// RFC 6750 §3.1 error codes of the Bearer scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BearerError {
    /// `invalid_request`: malformed request (answer 400).
    InvalidRequest,
    /// `invalid_token`: expired, revoked, malformed or otherwise invalid token (401).
    InvalidToken,
    /// `insufficient_scope`: the token lacks the scope the resource needs (403).
    InsufficientScope,
}

impl BearerError {
    /// The error code as sent.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// The HTTP status RFC 6750 §3.1 pairs with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
        }
    }
}

/// Which characters a parameter value may hold.
#[derive(Clone, Copy)]
enum Charset {
    /// RFC 9110 quoted-string content limited to printable ASCII; `"` and `\` escaped.
    Quoted,
    /// RFC 6750 `error_description`: %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
    Rfc6750Text,
    /// RFC 6750 `scope`: scope tokens of %x21 / %x23-5B / %x5D-7E separated by one space.
    Rfc6750Scope,
}

/// One authentication challenge: a scheme and its auth-params.
///
/// Values are sanitised rather than refused, since they are often built from error
/// messages: characters a scheme does not allow become `?` (a quote in a Bearer
/// description becomes `'`), control characters never pass, and values are cut at 512
/// bytes. So no challenge can split the header or inject another one.
///
/// ```
/// use palisade_headers::{BearerError, Challenge};
///
/// let c = Challenge::bearer()
///     .realm("example")
///     .error(BearerError::InvalidToken)
///     .error_description("The access token expired");
/// assert_eq!(
///     c.to_header_value(),
///     r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// A `Bearer` challenge (RFC 6750).
    pub fn bearer() -> Self {
        Self {
            scheme: "Bearer".to_owned(),
            params: Vec::new(),
        }
    }

    /// A challenge of another scheme (`ApiKey`, `PALISADE-HMAC-SHA256`, `Signature`,
    /// `Basic`, ...).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidToken`] when `scheme` is not an HTTP token.
    pub fn new(scheme: &str) -> Result<Self, Error> {
        check_token(scheme)?;
        Ok(Self {
            scheme: scheme.to_owned(),
            params: Vec::new(),
        })
    }

    /// Adds `realm="..."`.
    #[must_use]
    pub fn realm(self, realm: &str) -> Self {
        self.push("realm", realm, Charset::Quoted)
    }

    /// Adds `error="..."` (Bearer).
    #[must_use]
    pub fn error(self, error: BearerError) -> Self {
        self.push("error", error.code(), Charset::Quoted)
    }

    /// Adds `error_description="..."` (Bearer), restricted to RFC 6750's character set.
    #[must_use]
    pub fn error_description(self, description: &str) -> Self {
        self.push("error_description", description, Charset::Rfc6750Text)
    }

    /// Adds `scope="..."` (Bearer): the scopes the resource needs, space separated.
    #[must_use]
    pub fn scope(self, scope: &str) -> Self {
        self.push("scope", scope, Charset::Rfc6750Scope)
    }

    /// Adds any other parameter as a quoted string.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidToken`] when `name` is not an HTTP token.
    pub fn param(self, name: &str, value: &str) -> Result<Self, Error> {
        check_token(name)?;
        Ok(self.push(name, value, Charset::Quoted))
    }

    fn push(mut self, name: &str, value: &str, charset: Charset) -> Self {
        self.params
            .push((name.to_owned(), sanitise(value, charset)));
        self
    }

    /// The scheme.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The challenge as it goes in `WWW-Authenticate`.
    pub fn to_header_value(&self) -> String {
        let mut out = self.scheme.clone();
        for (i, (name, value)) in self.params.iter().enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            out.push_str(name);
            out.push_str("=\"");
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        out
    }
}

/// The `WWW-Authenticate` field of a 401: one or more challenges, one per scheme the
/// endpoint accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WwwAuthenticate {
    challenges: Vec<Challenge>,
}

impl WwwAuthenticate {
    /// The header name (lower case).
    pub const HEADER: &'static str = "www-authenticate";

    /// No challenges yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a challenge.
    #[must_use]
    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenges.push(challenge);
        self
    }

    /// The `(name, value)` pair: challenges joined by `", "` in one field, or `None` when
    /// there is none.
    pub fn header(&self) -> Option<(&'static str, String)> {
        if self.challenges.is_empty() {
            return None;
        }
        let value = self
            .challenges
            .iter()
            .map(Challenge::to_header_value)
            .collect::<Vec<_>>()
            .join(", ");
        Some((Self::HEADER, value))
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_token(s: &str) -> Result<(), Error> {
    if s.is_empty() || s.len() > 64 || !s.bytes().all(is_tchar) {
        return Err(Error::new(
            ErrorKind::InvalidToken,
            "authentication scheme or parameter name must be an HTTP token",
        ));
    }
    Ok(())
}

fn sanitise(value: &str, charset: Charset) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_PARAM_VALUE));
    for c in value.chars() {
        if out.len() >= MAX_PARAM_VALUE {
            break;
        }
        let printable = matches!(c, ' '..='~');
        let mapped = match charset {
            Charset::Quoted => {
                if printable {
                    c
                } else {
                    '?'
                }
            }
            Charset::Rfc6750Text => match c {
                '"' => '\'',
                '\\' => '/',
                _ if printable => c,
                _ => '?',
            },
            Charset::Rfc6750Scope => match c {
                ' ' => {
                    // One space between scope tokens, none leading.
                    if out.is_empty() || out.ends_with(' ') {
                        continue;
                    }
                    ' '
                }
                '"' | '\\' => continue,
                _ if printable => c,
                _ => continue,
            },
        };
        out.push(mapped);
    }
    if matches!(charset, Charset::Rfc6750Scope) {
        while out.ends_with(' ') {
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc6750_examples() {
        // RFC 6750 §3.
        assert_eq!(
            Challenge::bearer().realm("example").to_header_value(),
            r#"Bearer realm="example""#
        );
        assert_eq!(
            Challenge::bearer()
                .realm("example")
                .error(BearerError::InvalidToken)
                .error_description("The access token expired")
                .to_header_value(),
            r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
        );
        let c = Challenge::bearer()
            .error(BearerError::InsufficientScope)
            .scope("  orders:read   orders:write ");
        assert_eq!(
            c.to_header_value(),
            r#"Bearer error="insufficient_scope", scope="orders:read orders:write""#
        );
        assert_eq!(BearerError::InsufficientScope.status(), 403);
        assert_eq!(BearerError::InvalidRequest.status(), 400);
        assert_eq!(BearerError::InvalidToken.status(), 401);
        assert_eq!(c.scheme(), "Bearer");
    }

    #[test]
    fn injection_is_neutralised() {
        let c = Challenge::bearer()
            .error_description("bad\r\nSet-Cookie: a=\"b\"\\")
            .realm("r\"e\\alm\n");
        assert_eq!(
            c.to_header_value(),
            r#"Bearer error_description="bad??Set-Cookie: a='b'/", realm="r\"e\\alm?""#
        );
    }

    #[test]
    fn other_schemes_and_multiple_challenges() {
        let api_key = Challenge::new("ApiKey")
            .expect("token")
            .realm("palisade")
            .param("header", "X-API-Key")
            .expect("token");
        let h = WwwAuthenticate::new()
            .challenge(Challenge::bearer().realm("palisade"))
            .challenge(api_key)
            .header()
            .expect("one");
        assert_eq!(h.0, "www-authenticate");
        assert_eq!(
            h.1,
            r#"Bearer realm="palisade", ApiKey realm="palisade", header="X-API-Key""#
        );
        assert!(WwwAuthenticate::new().header().is_none());
        assert_eq!(
            Challenge::new("Bad Scheme").map_err(|e| e.kind()),
            Err(ErrorKind::InvalidToken)
        );
        assert!(Challenge::bearer().param("x=y", "1").is_err());
        assert!(Challenge::new("").is_err());
    }

    #[test]
    fn long_values_are_cut() {
        let v = Challenge::bearer()
            .error_description(&"x".repeat(10_000))
            .to_header_value();
        assert!(v.len() < 600);
    }

    proptest! {
        #[test]
        fn never_emits_control_or_unescaped_quote(s in any::<String>()) {
            let v = Challenge::bearer()
                .realm(&s)
                .error_description(&s)
                .scope(&s)
                .to_header_value();
            prop_assert!(v.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            // Every quoted value ends where the grammar says: count unescaped quotes.
            let mut quotes = 0;
            let mut escaped = false;
            for b in v.bytes() {
                if escaped { escaped = false; continue; }
                if b == b'\\' { escaped = true; continue; }
                if b == b'"' { quotes += 1; }
            }
            prop_assert_eq!(quotes, 6);
        }
    }
}
