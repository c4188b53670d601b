use std::borrow::Cow;
use std::fmt;

/// Every failure of this crate: a kind with a stable code, and a detail that never holds
/// a secret (at most a claim or header name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: Option<Cow<'static, str>>,
}

/// What went wrong. Match on it, or use [`Error::code`] for a stable machine-readable
/// string.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The token is larger than the configured limit; nothing of it was parsed.
    TooLarge,
    /// Not a compact JWS of three base64url parts with JSON objects in them.
    Malformed,
    /// A JSON object in the header or the claims repeats a member name.
    DuplicateJsonKey,
    /// `alg` is `none`, unknown, or not in the validator's allowlist.
    AlgorithmNotAllowed,
    /// `alg` is not the one algorithm the selected key is bound to.
    AlgorithmKeyMismatch,
    /// The header lacks `kid` while the key set holds more than one key.
    KidRequired,
    /// `kid` holds characters outside `[A-Za-z0-9._-]` or is too long.
    InvalidKid,
    /// No key in the set has that `kid`.
    UnknownKey,
    /// The header carries `jku`, `x5u`, `jwk` or `x5c`, which are never followed.
    ForbiddenHeader,
    /// The header carries `crit`: no extension is understood, so it is always refused.
    UnknownCritical,
    /// The signature does not verify with the selected key.
    SignatureMismatch,
    /// The `typ` header does not match the kind of token expected (RFC 9068 `at+jwt`).
    WrongTokenType,
    /// `exp` has passed (beyond the clock tolerance).
    Expired,
    /// `nbf` lies in the future (beyond the clock tolerance).
    NotYetValid,
    /// `iat` lies in the future (beyond the clock tolerance).
    IssuedInFuture,
    /// A required claim is absent.
    MissingClaim,
    /// A claim has the wrong JSON type or an impossible value.
    InvalidClaim,
    /// `iss` is not the expected issuer.
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    WrongAudience,
    /// The token's `jti` is on the revocation list.
    Revoked,
    /// Key material could not be generated, parsed or used.
    InvalidKey,
    /// A configuration value is unusable.
    InvalidConfig,
    /// The remote JWKS could not be fetched or parsed, and no usable cached copy exists.
    JwksUnavailable,
    /// Reading or writing key files failed.
    Io,
    /// The storage backend failed.
    Storage,
}

impl ErrorKind {
    /// The stable, snake_case, machine-readable code of this kind.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooLarge => "token_too_large",
            Self::Malformed => "malformed_token",
            Self::DuplicateJsonKey => "duplicate_json_key",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::AlgorithmKeyMismatch => "algorithm_key_mismatch",
            Self::KidRequired => "kid_required",
            Self::InvalidKid => "invalid_kid",
            Self::UnknownKey => "unknown_kid",
            Self::ForbiddenHeader => "forbidden_header",
            Self::UnknownCritical => "unknown_crit",
            Self::SignatureMismatch => "signature_mismatch",
            Self::WrongTokenType => "wrong_token_type",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaim => "invalid_claim",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Revoked => "revoked",
            Self::InvalidKey => "invalid_key",
            Self::InvalidConfig => "invalid_config",
            Self::JwksUnavailable => "jwks_unavailable",
            Self::Io => "io",
            Self::Storage => "storage",
        }
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind, detail: None }
    }

    pub(crate) fn with(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            detail: Some(detail.into()),
        }
    }

    /// A storage failure, for implementors of the storage traits (the message must
    /// not contain a credential).
    pub fn storage(error: impl fmt::Display) -> Self {
        Self::with(ErrorKind::Storage, error.to_string())
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine-readable code (`expired`, `signature_mismatch`, ...).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// A human-readable detail (a claim or header name, say), never a secret.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.kind.code()),
            None => f.write_str(self.kind.code()),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
