use std::fmt;

/// What went wrong when building a header policy, a challenge or a problem document.
///
/// These are configuration mistakes made by the server's own code, never client input:
/// client input (an inbound request id) is replaced, not rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    what: &'static str,
}

/// The kind of an [`Error`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A header value would contain a control character (CR, LF, NUL, ...) or a byte
    /// outside visible ASCII, which could split or smuggle a header.
    InvalidHeaderValue,
    /// A name that must be an HTTP `token` (an authentication scheme, a parameter name)
    /// is empty or holds a character outside the token set.
    InvalidToken,
    /// A rate-limit policy name cannot be written as a structured-field string
    /// (it is empty, too long, or holds a character outside printable ASCII).
    InvalidPolicyName,
    /// A rate-limit policy has a zero time window.
    InvalidWindow,
    /// A problem-document extension member would overwrite a standard member
    /// (`type`, `title`, `status`, `detail`, `instance`, `errors`).
    ReservedMember,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, what: &'static str) -> Self {
        Self { kind, what }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A stable, machine-readable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self.kind {
            ErrorKind::InvalidHeaderValue => "invalid_header_value",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::InvalidPolicyName => "invalid_policy_name",
            ErrorKind::InvalidWindow => "invalid_window",
            ErrorKind::ReservedMember => "reserved_member",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.code())
    }
}

impl std::error::Error for Error {}
