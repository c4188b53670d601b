//! The crate's one error type.

use std::fmt;

/// What went wrong, in a form a program can match on.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A policy or limit was refused when it was built: a zero or absurd limit, period or
    /// burst, a bad window name, too many windows.
    InvalidPolicy,
    /// The backend (Redis) could not be reached or answered with an error.
    Backend,
    /// The backend did not answer within the configured timeout.
    Timeout,
    /// The backend answered, but the rate-limit script failed or returned something
    /// unexpected (a key of the wrong type, a malformed reply).
    Script,
}

impl ErrorKind {
    /// A stable, machine-readable snake_case code for this kind.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidPolicy => "invalid_policy",
            ErrorKind::Backend => "backend_unavailable",
            ErrorKind::Timeout => "backend_timeout",
            ErrorKind::Script => "script_failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error of this crate: a refused policy, or a backend failure.
///
/// A request that is rate limited is not an error: it is a [`crate::Decision`] whose
/// `allowed()` is false.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidPolicy, detail)
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A stable, machine-readable snake_case code (`invalid_policy`,
    /// `backend_unavailable`, `backend_timeout`, `script_failed`).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// A human-readable explanation (never contains a key or a credential).
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl std::error::Error for Error {}
