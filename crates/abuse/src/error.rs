use std::fmt;

/// What went wrong: an invalid configuration or an unparsable identity.
///
/// Abuse decisions are values ([`Decision`](crate::Decision)), never errors, and a
/// failing Redis degrades to local state, so the request path never sees this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    what: &'static str,
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A configuration value is out of range (a zero window, a percentage over 100, a
    /// distinct-count threshold above what is tracked, ...).
    InvalidConfig,
    /// An identity string is not `kind:value` with a known kind and a non-empty value.
    InvalidIdentity,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, what: &'static str) -> Self {
        Self { kind, what }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A stable, machine-readable snake_case code.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InvalidIdentity => "invalid_identity",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.code())
    }
}

impl std::error::Error for Error {}
