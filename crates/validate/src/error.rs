use std::fmt;

/// Why a guard refused its input.
///
/// Every error has a stable, machine-readable [`code`](Error::code). Errors never echo the
/// refused input in full: at most a field path (names the client sent) or the class of a
/// refused address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    field: Option<String>,
    detail: Option<&'static str>,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The body is larger than [`Limits::max_body_bytes`](crate::Limits).
    BodyTooLarge,
    /// The body is not valid UTF-8.
    InvalidUtf8,
    /// The body is not JSON (RFC 8259): a syntax error, a lone surrogate escape, trailing data.
    Syntax,
    /// Objects and arrays are nested deeper than the limit.
    DepthExceeded,
    /// An object has more keys than the limit.
    TooManyKeys,
    /// An array has more elements than the limit.
    ArrayTooLong,
    /// A string (value or key) or a number is longer than the limit.
    StringTooLong,
    /// The same key appears twice in one object (a parser-differential vector).
    DuplicateKey,
    /// A key that is refused everywhere in a body (`__proto__` by default).
    ForbiddenKey,
    /// A client path contains a `..` component.
    PathTraversal,
    /// A client path is absolute (`/x`, `\x`, `C:x`, `\\server\share`).
    AbsolutePath,
    /// A client path contains a NUL byte or another control character.
    ControlCharacter,
    /// A client path contains percent-encoded separators, dots or NUL (`%2e%2e%2f`),
    /// or look-alike dots and slashes that some layer may normalise.
    EncodedTraversal,
    /// A client path resolves, through a symbolic link, outside the base directory.
    SymlinkEscape,
    /// A client path is empty or otherwise unusable, or the base directory cannot be read.
    InvalidPath,
    /// The URL does not parse, is too long, or has no host.
    InvalidUrl,
    /// The URL's scheme is not allowed.
    SchemeNotAllowed,
    /// The URL's port is not allowed.
    PortNotAllowed,
    /// The URL carries a user name or password (`https://user:pass@host/`).
    UserinfoNotAllowed,
    /// The host is on the deny list, or not on a non-empty allow list.
    HostNotAllowed,
    /// The host is, or resolves to, an address that is not publicly routable
    /// (loopback, private, link-local, metadata, ...).
    ForbiddenAddress,
    /// The host name could not be resolved, or resolved to no address.
    DnsFailure,
    /// Following redirects went over the allowed number of hops.
    TooManyRedirects,
    /// An uploaded file is larger than the limit.
    FileTooLarge,
    /// An uploaded file's content is not one of the allowed types.
    FileTypeNotAllowed,
    /// An uploaded file's declared content type disagrees with its content.
    FileTypeMismatch,
}

impl ErrorKind {
    /// The stable snake_case code of this kind.
    pub fn code(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "body_too_large",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Syntax => "invalid_json",
            Self::DepthExceeded => "depth_exceeded",
            Self::TooManyKeys => "too_many_keys",
            Self::ArrayTooLong => "array_too_long",
            Self::StringTooLong => "string_too_long",
            Self::DuplicateKey => "duplicate_key",
            Self::ForbiddenKey => "forbidden_key",
            Self::PathTraversal => "path_traversal",
            Self::AbsolutePath => "absolute_path",
            Self::ControlCharacter => "control_character",
            Self::EncodedTraversal => "encoded_traversal",
            Self::SymlinkEscape => "symlink_escape",
            Self::InvalidPath => "invalid_path",
            Self::InvalidUrl => "invalid_url",
            Self::SchemeNotAllowed => "scheme_not_allowed",
            Self::PortNotAllowed => "port_not_allowed",
            Self::UserinfoNotAllowed => "userinfo_not_allowed",
            Self::HostNotAllowed => "host_not_allowed",
            Self::ForbiddenAddress => "forbidden_address",
            Self::DnsFailure => "dns_failure",
            Self::TooManyRedirects => "too_many_redirects",
            Self::FileTooLarge => "file_too_large",
            Self::FileTypeNotAllowed => "file_type_not_allowed",
            Self::FileTypeMismatch => "file_type_mismatch",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "request body too large",
            Self::InvalidUtf8 => "request body is not valid UTF-8",
            Self::Syntax => "request body is not valid JSON",
            Self::DepthExceeded => "JSON nested too deeply",
            Self::TooManyKeys => "JSON object has too many keys",
            Self::ArrayTooLong => "JSON array has too many elements",
            Self::StringTooLong => "JSON string or number too long",
            Self::DuplicateKey => "duplicate key in JSON object",
            Self::ForbiddenKey => "forbidden key in JSON object",
            Self::PathTraversal => "path traversal refused",
            Self::AbsolutePath => "absolute path refused",
            Self::ControlCharacter => "control character refused",
            Self::EncodedTraversal => "encoded path separator or dot refused",
            Self::SymlinkEscape => "path leaves the base directory through a symbolic link",
            Self::InvalidPath => "invalid path",
            Self::InvalidUrl => "invalid URL",
            Self::SchemeNotAllowed => "URL scheme not allowed",
            Self::PortNotAllowed => "URL port not allowed",
            Self::UserinfoNotAllowed => "credentials in URL refused",
            Self::HostNotAllowed => "host not allowed",
            Self::ForbiddenAddress => "address is not publicly routable",
            Self::DnsFailure => "host name could not be resolved",
            Self::TooManyRedirects => "too many redirects",
            Self::FileTooLarge => "file too large",
            Self::FileTypeNotAllowed => "file type not allowed",
            Self::FileTypeMismatch => "file content does not match its declared type",
        }
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            field: None,
            detail: None,
        }
    }

    pub(crate) fn with_field(mut self, field: String) -> Self {
        self.field = Some(field);
        self
    }

    pub(crate) fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable snake_case code (`duplicate_key`, `forbidden_address`, ...).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// Where in a JSON body the problem is, as a dotted path (`items.0.product_id`), when known.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// A short static qualifier, such as the class of a refused address (`loopback`).
    pub fn detail(&self) -> Option<&'static str> {
        self.detail
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(detail) = self.detail {
            write!(f, " ({detail})")?;
        }
        if let Some(field) = &self.field {
            write!(f, " at `{field}`")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
