//! [`Verifier`](crate::Verifier)s for Palisade's authentication crates, each behind the
//! feature of the crate's name.

#[cfg(feature = "apikey")]
mod apikey;
#[cfg(feature = "jwt")]
mod jwt;
#[cfg(feature = "mtls")]
mod mtls;
#[cfg(feature = "signing")]
mod signing;

#[cfg(feature = "apikey")]
pub use apikey::ApiKeyVerifier;
#[cfg(feature = "jwt")]
pub use jwt::BearerVerifier;
#[cfg(feature = "mtls")]
pub use mtls::ClientCertVerifier;
#[cfg(feature = "signing")]
pub use signing::{HttpSignatureVerifier, SignatureVerifier};

/// Whether an `Authorization` value uses `scheme`, compared case-insensitively (RFC 9110
/// §11.1): the first word of the value, whole.
#[cfg(any(feature = "jwt", feature = "signing"))]
pub(crate) fn has_scheme(value: &http::HeaderValue, scheme: &str) -> bool {
    let bytes = value.as_bytes();
    let end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    bytes
        .get(..end)
        .is_some_and(|name| name.eq_ignore_ascii_case(scheme.as_bytes()))
}

#[cfg(all(test, any(feature = "jwt", feature = "signing")))]
mod tests {
    use http::HeaderValue;

    use super::has_scheme;

    #[test]
    fn scheme_is_case_insensitive_and_whole() {
        assert!(has_scheme(
            &HeaderValue::from_static("Bearer abc"),
            "bearer"
        ));
        assert!(has_scheme(
            &HeaderValue::from_static("bEaReR abc"),
            "bearer"
        ));
        assert!(has_scheme(&HeaderValue::from_static("Bearer"), "bearer"));
        assert!(!has_scheme(
            &HeaderValue::from_static("Bearerx abc"),
            "bearer"
        ));
        assert!(!has_scheme(
            &HeaderValue::from_static("Basic abc"),
            "bearer"
        ));
        assert!(!has_scheme(&HeaderValue::from_static(""), "bearer"));
    }
}
