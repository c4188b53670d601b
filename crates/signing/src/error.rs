use std::fmt;

/// What went wrong, as a stable category. Match on this, never on the message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request carries no signature of the expected kind.
    MissingSignature,
    /// The `Authorization` header (or the presigned query) is malformed: truncated,
    /// oversized, a part missing, duplicated or out of order, non-ASCII bytes.
    MalformedAuthorization,
    /// `Signature-Input`/`Signature` (RFC 9421) or another structured field does not parse.
    MalformedSignatureInput,
    /// The algorithm named by the request is not the one this verifier accepts.
    UnsupportedAlgorithm,
    /// A header or component the signature needs is absent from the request.
    MissingHeader,
    /// A header or component that policy requires to be signed is not covered.
    UnsignedRequiredHeader,
    /// The credential scope (date, region, service, terminator) does not match.
    InvalidScope,
    /// The signing time is outside the allowed clock skew.
    RequestTimeTooSkewed,
    /// A presigned URL or an RFC 9421 `expires` parameter is in the past.
    Expired,
    /// The body does not match the signed content hash or `Content-Digest`.
    BodyHashMismatch,
    /// The access key id (or key id) is unknown to the credential store.
    UnknownCredential,
    /// The signature does not match the request.
    SignatureMismatch,
    /// The same signature was already accepted inside the replay window.
    Replay,
    /// The request model itself is unusable (bad target, oversized, bad header value).
    InvalidRequest,
    /// Key material is malformed, of the wrong type or the wrong size.
    InvalidKey,
    /// A credential or nonce store backend failed.
    Store,
    /// Encryption or decryption of a stored secret failed.
    Crypto,
}

impl ErrorKind {
    /// Stable machine-readable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::MalformedAuthorization => "malformed_authorization",
            Self::MalformedSignatureInput => "malformed_signature_input",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::MissingHeader => "missing_header",
            Self::UnsignedRequiredHeader => "unsigned_required_header",
            Self::InvalidScope => "invalid_scope",
            Self::RequestTimeTooSkewed => "request_time_too_skewed",
            Self::Expired => "expired",
            Self::BodyHashMismatch => "body_hash_mismatch",
            Self::UnknownCredential => "unknown_credential",
            Self::SignatureMismatch => "signature_mismatch",
            Self::Replay => "replay",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidKey => "invalid_key",
            Self::Store => "store_unavailable",
            Self::Crypto => "crypto",
        }
    }

    /// The error code AWS itself returns for this failure (for AWS-shaped answers).
    pub fn aws_code(self) -> &'static str {
        match self {
            Self::MissingSignature => "MissingAuthenticationToken",
            Self::MalformedAuthorization | Self::InvalidScope => "AuthorizationHeaderMalformed",
            Self::MalformedSignatureInput | Self::InvalidRequest => "InvalidRequest",
            Self::UnsupportedAlgorithm => "IncompleteSignature",
            Self::MissingHeader | Self::UnsignedRequiredHeader => "AccessDenied",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Self::Expired => "AccessDenied",
            Self::BodyHashMismatch => "XAmzContentSHA256Mismatch",
            Self::UnknownCredential => "InvalidAccessKeyId",
            Self::SignatureMismatch => "SignatureDoesNotMatch",
            Self::Replay => "AccessDenied",
            Self::InvalidKey | Self::Store | Self::Crypto => "InternalError",
        }
    }
}

/// Debugging material for a signature mismatch, in the shape AWS returns it.
///
/// Hand it only to the owner of the credential named in the request: it shows what the
/// server signed. Values of sensitive headers (`authorization`, `cookie`,
/// `x-amz-security-token`, ...) are redacted; no secret or derived key is ever included.
#[derive(Clone, PartialEq, Eq)]
pub struct MismatchDetails {
    /// The access key id the request claimed.
    pub access_key_id: String,
    /// The owner recorded for that credential.
    pub owner: String,
    /// The canonical request (or RFC 9421 signature base) the server computed, redacted.
    pub canonical_request: String,
    /// The string to sign the server computed (empty for RFC 9421).
    pub string_to_sign: String,
}

impl fmt::Debug for MismatchDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MismatchDetails")
            .field("access_key_id", &self.access_key_id)
            .field("owner", &self.owner)
            .field("canonical_request", &self.canonical_request)
            .field("string_to_sign", &self.string_to_sign)
            .finish()
    }
}

/// The one error type of this crate. It never contains a secret.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    detail: &'static str,
    mismatch: Option<Box<MismatchDetails>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: &'static str) -> Self {
        Self {
            kind,
            detail,
            mismatch: None,
        }
    }

    pub(crate) fn mismatch(details: MismatchDetails) -> Self {
        Self {
            kind: ErrorKind::SignatureMismatch,
            detail: "the computed signature does not match the one provided",
            mismatch: Some(Box::new(details)),
        }
    }

    /// The error a [`CredentialStore`](crate::CredentialStore) or
    /// [`NonceStore`](crate::NonceStore) implemented outside this crate returns when its
    /// backend cannot answer (the caller answers 503, not 401).
    pub fn store_unavailable() -> Self {
        Self::new(
            ErrorKind::Store,
            "the credential or nonce store is unavailable",
        )
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Stable machine-readable snake_case code (`signature_mismatch`, `replay`, ...).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The AWS error code for this failure (`SignatureDoesNotMatch`, ...).
    pub fn aws_code(&self) -> &'static str {
        self.kind.aws_code()
    }

    /// A short fixed description of the precise cause (never request data or secrets).
    pub fn detail(&self) -> &'static str {
        self.detail
    }

    /// For a signature mismatch: the redacted canonical request and string to sign.
    /// Show it only to the credential's owner.
    pub fn mismatch_details(&self) -> Option<&MismatchDetails> {
        self.mismatch.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl std::error::Error for Error {}

pub(crate) fn err(kind: ErrorKind, detail: &'static str) -> Error {
    Error::new(kind, detail)
}
