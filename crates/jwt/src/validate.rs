//! Token validation that cannot be configured into a hole.

use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::json;
use crate::keys::{Algorithm, KeySet};

/// Default largest token accepted, in bytes, checked before anything is decoded.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default clock tolerance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const MAX_LEEWAY: Duration = Duration::from_secs(300);

pub(crate) fn unix(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

mod sealed {
    pub trait Sealed {}
}

/// A kind of JWT. Each kind has its own claims type and its own `typ` rule, so a token
/// of one kind never validates as another.
pub trait TokenKind: sealed::Sealed + Send + Sync + 'static {
    /// The validated claims of this kind.
    type Claims;
    /// Whether the `typ` header is acceptable for this kind.
    #[doc(hidden)]
    fn typ_ok(typ: Option<&str>) -> bool;
    /// Builds the claims from the checked registered claims and the remaining members.
    #[doc(hidden)]
    fn build(registered: Registered, rest: Map<String, Value>) -> Result<Self::Claims>;
}

/// Marker for RFC 9068 access tokens (`typ: at+jwt`).
#[derive(Debug, Clone, Copy)]
pub enum Access {}
/// Marker for OpenID Connect ID tokens (`typ` absent or `JWT`, never `at+jwt`).
#[derive(Debug, Clone, Copy)]
pub enum Id {}

impl sealed::Sealed for Access {}
impl sealed::Sealed for Id {}

/// The registered claims every kind carries, already checked.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registered {
    iss: String,
    sub: Option<String>,
    aud: Vec<String>,
    exp: u64,
    iat: Option<u64>,
    nbf: Option<u64>,
    jti: Option<String>,
}

/// The claims of a validated RFC 9068 access token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AccessTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user, or the client itself for `client_credentials`.
    pub sub: String,
    /// Audiences (the configured one among them).
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issue time, Unix seconds.
    pub iat: u64,
    /// Not-before, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Token id, the revocation handle.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessTokenClaims {
    /// The scopes, one by one.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// The claims of a validated OpenID Connect ID token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issue time, Unix seconds.
    pub iat: u64,
    /// The nonce of the authentication request, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn required<T>(value: Option<T>, name: &'static str) -> Result<T> {
    value.ok_or_else(|| Error::with(ErrorKind::MissingClaim, name))
}

fn take_string(map: &mut Map<String, Value>, name: &'static str) -> Result<Option<String>> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::with(ErrorKind::InvalidClaim, name)),
    }
}

/// RFC 7519 NumericDate: a non-negative JSON number (fractions are floored). Strings,
/// booleans, `null` and negative numbers are refused.
fn take_date(map: &mut Map<String, Value>, name: &'static str) -> Result<Option<u64>> {
    let invalid = || Error::with(ErrorKind::InvalidClaim, name);
    match map.remove(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                return Ok(Some(v));
            }
            let f = n.as_f64().ok_or_else(invalid)?;
            if f.is_finite() && (0.0..9.007_199_254_740_992e15).contains(&f) {
                // Range-checked just above, so the conversion is exact for the integer part.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(f.floor() as u64))
            } else {
                Err(invalid())
            }
        }
        Some(_) => Err(invalid()),
    }
}

fn take_aud(map: &mut Map<String, Value>) -> Result<Option<Vec<String>>> {
    let invalid = || Error::with(ErrorKind::InvalidClaim, "aud");
    match map.remove("aud") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) if !items.is_empty() => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid()),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}

impl TokenKind for Access {
    type Claims = AccessTokenClaims;
    fn typ_ok(typ: Option<&str>) -> bool {
        typ.is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        })
    }
    fn build(r: Registered, mut rest: Map<String, Value>) -> Result<AccessTokenClaims> {
        let client_id = required(take_string(&mut rest, "client_id")?, "client_id")?;
        let scope = take_string(&mut rest, "scope")?.unwrap_or_default();
        Ok(AccessTokenClaims {
            iss: r.iss,
            sub: required(r.sub, "sub")?,
            aud: r.aud,
            exp: r.exp,
            iat: required(r.iat, "iat")?,
            nbf: r.nbf,
            jti: required(r.jti, "jti")?,
            client_id,
            scope,
            extra: rest,
        })
    }
}

impl TokenKind for Id {
    type Claims = IdTokenClaims;
    fn typ_ok(typ: Option<&str>) -> bool {
        typ.is_none_or(|t| t.eq_ignore_ascii_case("JWT"))
    }
    fn build(r: Registered, mut rest: Map<String, Value>) -> Result<IdTokenClaims> {
        let nonce = take_string(&mut rest, "nonce")?;
        if let Some(jti) = r.jti {
            rest.insert("jti".into(), jti.into());
        }
        if let Some(nbf) = r.nbf {
            rest.insert("nbf".into(), nbf.into());
        }
        Ok(IdTokenClaims {
            iss: r.iss,
            sub: required(r.sub, "sub")?,
            aud: r.aud,
            exp: r.exp,
            iat: required(r.iat, "iat")?,
            nonce,
            extra: rest,
        })
    }
}

/// Validates one kind of JWT against a key set.
///
/// Required, whatever the configuration: an allowlisted asymmetric or HMAC algorithm
/// that equals the selected key's own algorithm, a verifying signature, `iss` equal to
/// the issuer, `aud` containing the audience, `exp` in the future; `nbf` and `iat`
/// checked when present (`iat` is required for access and ID tokens); the kind's `typ`;
/// no `crit`, `jku`, `x5u`, `jwk` or `x5c` header; no repeated JSON member names;
/// a size limit before anything is decoded.
#[derive(Debug, Clone)]
pub struct Validator<K: TokenKind> {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    max_bytes: usize,
    kind: PhantomData<fn() -> K>,
}

/// A validator of RFC 9068 access tokens.
pub type AccessTokenValidator = Validator<Access>;
/// A validator of OpenID Connect ID tokens.
pub type IdTokenValidator = Validator<Id>;

impl<K: TokenKind> Validator<K> {
    /// A validator for tokens from `issuer` meant for `audience`, accepting only the
    /// listed algorithms (at least one; each key still accepts only its own).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        algorithms: &[Algorithm],
    ) -> Result<Self> {
        let (issuer, audience) = (issuer.into(), audience.into());
        if issuer.is_empty() || audience.is_empty() {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "issuer and audience must not be empty",
            ));
        }
        if algorithms.is_empty() {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "the algorithm allowlist is empty",
            ));
        }
        crate::keys::install_crypto_provider();
        Ok(Self {
            issuer,
            audience,
            algorithms: algorithms.to_vec(),
            leeway: DEFAULT_LEEWAY.as_secs(),
            max_bytes: DEFAULT_MAX_TOKEN_BYTES,
            kind: PhantomData,
        })
    }

    /// Sets the clock tolerance (default 30 s, at most 5 minutes).
    pub fn with_leeway(mut self, leeway: Duration) -> Result<Self> {
        if leeway > MAX_LEEWAY {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "leeway above 5 minutes",
            ));
        }
        self.leeway = leeway.as_secs();
        Ok(self)
    }

    /// Sets the largest token accepted (default 8 KiB, between 256 bytes and 64 KiB).
    pub fn with_max_bytes(mut self, max: usize) -> Result<Self> {
        if !(256..=64 * 1024).contains(&max) {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "max token size out of range",
            ));
        }
        self.max_bytes = max;
        Ok(self)
    }

    /// The expected issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Validates `token` with `keys` at time `now`.
    pub fn validate(&self, token: &str, keys: &KeySet, now: SystemTime) -> Result<K::Claims> {
        self.run(token, keys, Some(unix(now)))
    }

    /// Validates everything except the time claims (for revoking a token that may have
    /// expired already).
    pub(crate) fn validate_ignoring_time(&self, token: &str, keys: &KeySet) -> Result<K::Claims> {
        self.run(token, keys, None)
    }

    fn run(&self, token: &str, keys: &KeySet, now: Option<u64>) -> Result<K::Claims> {
        if token.len() > self.max_bytes {
            return Err(Error::new(ErrorKind::TooLarge));
        }
        let malformed = || Error::new(ErrorKind::Malformed);
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };

        let header_bytes = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| malformed())?;
        let header = json::parse_header(&header_bytes)?;
        if let Some(name) = header.forbidden {
            return Err(Error::with(ErrorKind::ForbiddenHeader, name));
        }
        if header.has_crit {
            return Err(Error::new(ErrorKind::UnknownCritical));
        }
        let alg_name = header
            .alg
            .as_deref()
            .ok_or_else(|| Error::with(ErrorKind::Malformed, "alg"))?;
        let alg = Algorithm::from_name(alg_name)
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or_else(|| Error::new(ErrorKind::AlgorithmNotAllowed))?;
        let key = keys.select(header.kid.as_deref())?;
        if key.algorithm() != alg {
            return Err(Error::new(ErrorKind::AlgorithmKeyMismatch));
        }
        if !K::typ_ok(header.typ.as_deref()) {
            return Err(Error::new(ErrorKind::WrongTokenType));
        }

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| Error::new(ErrorKind::SignatureMismatch))?;
        let signing_input_len = header_b64.len() + 1 + claims_b64.len();
        let signing_input = token
            .as_bytes()
            .get(..signing_input_len)
            .ok_or_else(malformed)?;
        if !key.verify(signing_input, signature) {
            return Err(Error::new(ErrorKind::SignatureMismatch));
        }

        let claims_bytes = URL_SAFE_NO_PAD
            .decode(claims_b64)
            .map_err(|_| malformed())?;
        let mut claims = json::parse_object(&claims_bytes)?;
        let registered = self.check_registered(&mut claims, now)?;
        K::build(registered, claims)
    }

    /// The time checks of [`Validator::validate`] alone, for claims validated before
    /// (a cache of verified tokens must expire them exactly as validation would).
    pub(crate) fn check_times(
        &self,
        exp: u64,
        nbf: Option<u64>,
        iat: Option<u64>,
        now: SystemTime,
    ) -> Result<()> {
        let now = unix(now);
        if now >= exp.saturating_add(self.leeway) {
            return Err(Error::new(ErrorKind::Expired));
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(Error::new(ErrorKind::NotYetValid));
        }
        if iat.is_some_and(|iat| iat > now.saturating_add(self.leeway)) {
            return Err(Error::new(ErrorKind::IssuedInFuture));
        }
        Ok(())
    }

    fn check_registered(
        &self,
        claims: &mut Map<String, Value>,
        now: Option<u64>,
    ) -> Result<Registered> {
        let exp = take_date(claims, "exp")?;
        let nbf = take_date(claims, "nbf")?;
        let iat = take_date(claims, "iat")?;
        let iss = take_string(claims, "iss")?;
        let aud = take_aud(claims)?;
        let sub = take_string(claims, "sub")?;
        let jti = take_string(claims, "jti")?;

        let exp = required(exp, "exp")?;
        if let Some(now) = now {
            if now >= exp.saturating_add(self.leeway) {
                return Err(Error::new(ErrorKind::Expired));
            }
            if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
                return Err(Error::new(ErrorKind::NotYetValid));
            }
            if iat.is_some_and(|iat| iat > now.saturating_add(self.leeway)) {
                return Err(Error::new(ErrorKind::IssuedInFuture));
            }
        }
        let iss = required(iss, "iss")?;
        if iss != self.issuer {
            return Err(Error::new(ErrorKind::WrongIssuer));
        }
        let aud = required(aud, "aud")?;
        if !aud.contains(&self.audience) {
            return Err(Error::new(ErrorKind::WrongAudience));
        }
        Ok(Registered {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf,
            jti,
        })
    }
}

/// Reads the `kid` of a token's header without trusting anything in it (used to decide
/// whether a remote key set must be refreshed). Returns `None` when the token is
/// malformed or has no `kid`.
pub(crate) fn peek_kid(token: &str, max_bytes: usize) -> Option<String> {
    if token.len() > max_bytes {
        return None;
    }
    let header_b64 = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header_b64).ok()?;
    let header = json::parse_header(&bytes).ok()?;
    header.kid.map(std::borrow::Cow::into_owned)
}

impl<K: TokenKind> Validator<K> {
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod round_trip_tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Value;

    /// Extra claims are kept as `Value`s: a number read from a token re-serializes to the
    /// same number (found by the `jwt_claims` fuzz target: without correctly rounded
    /// parsing, this one came back one ulp off, 8.888888888888176e52 against ...177e52).
    #[test]
    fn large_numbers_in_claims_survive_a_round_trip() {
        for text in [
            "88888888888881777777777777727777777777777777799999999",
            "1800000600.5",
            "0.1",
            "1e308",
            "2.2250738585072014e-308",
        ] {
            let read: Value = serde_json::from_str(text).unwrap();
            let again: Value =
                serde_json::from_str(&serde_json::to_string(&read).unwrap()).unwrap();
            assert_eq!(again, read, "{text}");
        }
    }
}
