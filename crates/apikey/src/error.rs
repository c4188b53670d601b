use std::borrow::Cow;
use std::fmt;

/// What went wrong, as a stable category with a machine-readable [`code`](ErrorKind::code).
///
/// The first six variants are the reasons [`ApiKeys::verify`](crate::ApiKeys::verify)
/// refuses a key; the others come from management operations and storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No key was presented (no header, or an empty value).
    Missing,
    /// The presented value is not a well-formed key: wrong length, prefix, alphabet or
    /// checksum. Decided offline, before any store lookup.
    Malformed,
    /// A well-formed key of another environment (a `test` key sent to a `live`
    /// deployment, or the reverse).
    WrongEnvironment,
    /// A well-formed key that no store record matches.
    Unknown,
    /// The key was revoked.
    Revoked,
    /// The key is past its expiry, or past the grace deadline of a rotation.
    Expired,
    /// The client address is outside the key's allowed networks (or unknown while the
    /// key has an allowlist).
    AddressNotAllowed,
    /// No key has the given key id (management operations).
    NotFound,
    /// The key was already rotated; rotate its successor instead.
    AlreadyRotated,
    /// An argument was rejected (owner, scope, plan, network list, key format, pepper).
    InvalidInput,
    /// The key store failed (database unreachable, migration error, ...).
    Storage,
}

impl ErrorKind {
    /// A stable, machine-readable, snake_case code for this kind.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::WrongEnvironment => "wrong_environment",
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::NotFound => "not_found",
            Self::AlreadyRotated => "already_rotated",
            Self::InvalidInput => "invalid_input",
            Self::Storage => "storage",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Missing => "no API key presented",
            Self::Malformed => "malformed API key",
            Self::WrongEnvironment => "API key of another environment",
            Self::Unknown => "unknown API key",
            Self::Revoked => "API key revoked",
            Self::Expired => "API key expired",
            Self::AddressNotAllowed => "client address not allowed for this API key",
            Self::NotFound => "no such key id",
            Self::AlreadyRotated => "API key already rotated",
            Self::InvalidInput => "invalid input",
            Self::Storage => "key store failure",
        }
    }
}

/// The error of every operation of this crate.
///
/// It never contains a key, a hash or a pepper: only a kind and a short, fixed or
/// operator-supplied detail (a store's message, the name of a rejected argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: Option<Cow<'static, str>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self { kind, detail: None }
    }

    pub(crate) fn with_detail(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            detail: Some(detail.into()),
        }
    }

    pub(crate) fn invalid(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::with_detail(ErrorKind::InvalidInput, detail)
    }

    pub(crate) fn storage(detail: impl fmt::Display) -> Self {
        Self::with_detail(ErrorKind::Storage, detail.to_string())
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable, machine-readable code of this error's kind (`revoked`, `expired`, ...).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// A short explanation for logs (which check failed, which argument was wrong). It
    /// never holds a secret, but it is meant for operators, not for API clients.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}
