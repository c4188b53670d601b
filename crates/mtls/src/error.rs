use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, as a stable category.
///
/// [`ErrorKind::code`] gives the machine-readable code the HTTP adapter maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A configured file could not be read (missing, permissions, ...).
    FileUnreadable,
    /// A file holds no usable PEM (or DER) section of the expected type.
    InvalidPem,
    /// A certificate could not be parsed, or is not usable for its role.
    InvalidCertificate,
    /// The private key could not be parsed or is of an unsupported type.
    InvalidKey,
    /// The private key does not belong to the server certificate.
    KeyMismatch,
    /// A certificate (server certificate at start-up, client certificate in a handshake)
    /// is past its `notAfter`.
    Expired,
    /// A certificate is before its `notBefore`.
    NotYetValid,
    /// A certificate revocation list could not be parsed, was not issued by a configured
    /// CA, or is out of date while the policy refuses stale lists.
    InvalidCrl,
    /// A configuration value is invalid (identity rule, CA set, proxy network, ...).
    InvalidConfig,
    /// A client certificate is listed as revoked by a configured CRL.
    Revoked,
    /// The revocation status of a client certificate is unknown and the policy refuses it.
    RevocationStatusUnknown,
    /// A client certificate does not chain to a trusted CA (unknown issuer, or a
    /// signature that a trusted CA did not make).
    UntrustedIssuer,
    /// No client certificate was presented while one is required.
    CertificateRequired,
    /// A client certificate was refused for another reason (key usage, signature, ...).
    BadCertificate,
    /// The TLS handshake failed for a reason unrelated to the client certificate.
    Handshake,
    /// A verified certificate yields no identity (no SPIFFE ID, no single common name and
    /// no matching rule).
    NoIdentity,
    /// A certificate claims a SPIFFE ID but is not a valid SPIFFE identity (more than one
    /// URI SAN, or a malformed ID).
    InvalidSpiffeId,
    /// Forwarded-certificate headers arrived from an address that is not a trusted proxy.
    UntrustedForwardedCertificate,
    /// Forwarded-certificate headers from a trusted proxy are malformed or ambiguous.
    MalformedForwardedCertificate,
    /// The trusted proxy reports that it failed to verify the client certificate.
    ForwardedVerificationFailed,
    /// Generating development certificates failed.
    CertificateGeneration,
}

impl ErrorKind {
    /// The stable, machine-readable snake_case code of this kind.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::FileUnreadable => "file_unreadable",
            Self::InvalidPem => "invalid_pem",
            Self::InvalidCertificate => "invalid_certificate",
            Self::InvalidKey => "invalid_key",
            Self::KeyMismatch => "key_mismatch",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::InvalidCrl => "invalid_crl",
            Self::InvalidConfig => "invalid_config",
            Self::Revoked => "revoked",
            Self::RevocationStatusUnknown => "revocation_status_unknown",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::CertificateRequired => "certificate_required",
            Self::BadCertificate => "bad_certificate",
            Self::Handshake => "handshake_failed",
            Self::NoIdentity => "no_identity",
            Self::InvalidSpiffeId => "invalid_spiffe_id",
            Self::UntrustedForwardedCertificate => "untrusted_forwarded_certificate",
            Self::MalformedForwardedCertificate => "malformed_forwarded_certificate",
            Self::ForwardedVerificationFailed => "forwarded_verification_failed",
            Self::CertificateGeneration => "certificate_generation",
        }
    }
}

/// The error type of this crate.
///
/// Start-up errors name the file they concern ([`Error::path`]). Messages never contain
/// key material or header values a client sent.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    path: Option<PathBuf>,
    detail: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            path: None,
            detail: detail.into(),
        }
    }

    pub(crate) fn with_path(mut self, path: &Path) -> Self {
        self.path = Some(path.to_path_buf());
        self
    }

    /// The category of this error.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine-readable code (see [`ErrorKind::code`]).
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The file this error concerns, when there is one.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Classifies a failed server-side handshake, recognising the rustls verification
    /// errors that refuse a client certificate.
    pub(crate) fn from_handshake(err: &std::io::Error) -> Self {
        use rustls::CertificateError as C;
        let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return Self::new(ErrorKind::Handshake, format!("TLS handshake failed: {err}"));
        };
        let kind = match tls {
            rustls::Error::NoCertificatesPresented => ErrorKind::CertificateRequired,
            rustls::Error::InvalidCertificate(cert) => match cert {
                C::Revoked => ErrorKind::Revoked,
                C::Expired | C::ExpiredContext { .. } => ErrorKind::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => ErrorKind::NotYetValid,
                // A certificate from a foreign CA that shares the trusted CA's name fails
                // on the signature: either way it does not chain to a trusted CA.
                C::UnknownIssuer | C::BadSignature => ErrorKind::UntrustedIssuer,
                C::UnknownRevocationStatus
                | C::ExpiredRevocationList
                | C::ExpiredRevocationListContext { .. } => ErrorKind::RevocationStatusUnknown,
                _ => ErrorKind::BadCertificate,
            },
            _ => ErrorKind::Handshake,
        };
        Self::new(kind, format!("TLS handshake failed: {tls}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", path.display(), self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_file() {
        let err = Error::new(ErrorKind::InvalidPem, "no certificate found")
            .with_path(Path::new("/etc/palisade/server.pem"));
        assert_eq!(
            err.to_string(),
            "/etc/palisade/server.pem: no certificate found"
        );
        assert_eq!(err.code(), "invalid_pem");
    }

    #[test]
    fn handshake_errors_are_classified() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked),
        );
        assert_eq!(Error::from_handshake(&io).kind(), ErrorKind::Revoked);
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::NoCertificatesPresented,
        );
        assert_eq!(Error::from_handshake(&io).code(), "certificate_required");
        let io = std::io::Error::other("reset");
        assert_eq!(Error::from_handshake(&io).code(), "handshake_failed");
    }
}
