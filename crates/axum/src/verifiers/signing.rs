use std::sync::Arc;

use axum::extract::OriginalUri;
use http::header::{AUTHORIZATION, HOST};
use http::request::Parts;
use palisade_headers::Challenge;
use palisade_signing::{
    CredentialStore, Error, ErrorKind, NonceStore, Request, Rfc9421Policy, SigV4Profile, Verified,
    Verifier as SigningVerifier,
};

use super::has_scheme;
use crate::authenticate::{AuthFailure, CredentialRequest, Verifier, VerifyFuture};
use crate::principal::{AuthMethod, Principal};

/// The `Authorization` scheme and presigned query parameters of a SigV4-style profile.
struct Form {
    profile: SigV4Profile,
    /// `X-Palisade-` or `X-Amz-`.
    query_prefix: &'static str,
}

impl Form {
    fn new(profile: SigV4Profile) -> Self {
        let query_prefix = if profile.name() == "aws4" {
            "X-Amz-"
        } else {
            "X-Palisade-"
        };
        Self {
            profile,
            query_prefix,
        }
    }

    /// Whether the request carries this profile's signature, in `Authorization` or in
    /// the query (a presigned URL: `X-...-Signature` or `X-...-Algorithm`).
    fn is_present(&self, parts: &Parts) -> bool {
        let algorithm = self.profile.algorithm();
        parts
            .headers
            .get_all(AUTHORIZATION)
            .iter()
            .any(|value| has_scheme(value, algorithm))
            || parts.uri.query().is_some_and(|query| {
                let prefix = self.query_prefix;
                query.split('&').any(|pair| {
                    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                    name.get(..prefix.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
                        && name.get(prefix.len()..).is_some_and(|rest| {
                            rest.eq_ignore_ascii_case("Signature")
                                || rest.eq_ignore_ascii_case("Algorithm")
                        })
                })
            })
    }

    fn method(&self) -> AuthMethod {
        if self.profile.name() == "aws4" {
            AuthMethod::AwsSignature
        } else {
            AuthMethod::PalisadeSignature
        }
    }

    fn challenge(&self) -> Challenge {
        scheme_challenge(self.profile.algorithm())
    }
}

fn scheme_challenge(scheme: &str) -> Challenge {
    // The schemes named here are HTTP tokens, so the fallback is never taken.
    Challenge::new(scheme)
        .unwrap_or_else(|_| Challenge::bearer())
        .realm("api")
}

/// Authenticates requests signed with a Signature-Version-4-style profile of
/// [`palisade_signing`]: the `palisade` profile (`Authorization: PALISADE-HMAC-SHA256
/// ...` with `X-Palisade-Date`) and, when enabled, AWS Signature Version 4
/// (`AWS4-HMAC-SHA256`), each also as a presigned URL (`X-Palisade-Signature` /
/// `X-Amz-Signature` in the query).
///
/// [`SignatureVerifier::new`] enables the `palisade` profile with
/// [`SigV4Profile::palisade`]; [`SignatureVerifier::palisade`] replaces it and
/// [`SignatureVerifier::aws4`] enables AWS. The body is read (bounded by the
/// [`AuthenticateLayer`](crate::AuthenticateLayer)'s body limit) and its hash checked.
///
/// The request is rebuilt as it came on the wire: the method, the request target (path
/// and query, before any router nesting stripped a prefix), every header including
/// `host` (from the HTTP/2 `:authority` when there is no `Host`), and the body. The
/// principal's identity is the access key id, its owner the credential's owner, its
/// method [`AuthMethod::PalisadeSignature`] or [`AuthMethod::AwsSignature`].
///
/// # Errors
///
/// Every refusal of the signature, malformed ones included, is a 401 with a challenge
/// naming the scheme (`PALISADE-HMAC-SHA256 realm="api"`) and the signing crate's code as
/// the problem type (`signature_mismatch`, `replay`, `request_time_too_skewed`,
/// `unsigned_required_header`, `malformed_authorization`, ...). A malformed signature is
/// a refused credential rather than a malformed request, and so also counts as a failed
/// attempt for the abuse layer. A credential or nonce store that cannot answer is a 503.
/// The owner-only mismatch details (the canonical request the server computed) are never
/// put in the answer.
pub struct SignatureVerifier<C, N> {
    verifier: Arc<SigningVerifier<C, N>>,
    palisade: Option<Form>,
    aws4: Option<Form>,
}

impl<C, N> std::fmt::Debug for SignatureVerifier<C, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field(
                "palisade",
                &self.palisade.as_ref().map(|form| &form.profile),
            )
            .field("aws4", &self.aws4.as_ref().map(|form| &form.profile))
            .finish_non_exhaustive()
    }
}

impl<C: CredentialStore, N: NonceStore> SignatureVerifier<C, N> {
    /// Verifies with `verifier` (its credential store, nonce store, skew and replay
    /// settings), accepting the `palisade` profile.
    pub fn new(verifier: Arc<SigningVerifier<C, N>>) -> Self {
        Self {
            verifier,
            palisade: Some(Form::new(SigV4Profile::palisade())),
            aws4: None,
        }
    }

    /// Accepts the `palisade` profile with these settings (`PALISADE-HMAC-SHA256`,
    /// `X-Palisade-Signature`).
    #[must_use]
    pub fn palisade(mut self, profile: SigV4Profile) -> Self {
        self.palisade = Some(Form::new(profile));
        self
    }

    /// Accepts AWS Signature Version 4 for the profile's region and service
    /// (`AWS4-HMAC-SHA256`, `X-Amz-Signature`).
    #[must_use]
    pub fn aws4(mut self, profile: SigV4Profile) -> Self {
        self.aws4 = Some(Form::new(profile));
        self
    }

    fn forms(&self) -> impl Iterator<Item = &Form> {
        self.palisade.iter().chain(self.aws4.iter())
    }
}

impl<C, N> Verifier for SignatureVerifier<C, N>
where
    C: CredentialStore + 'static,
    N: NonceStore + 'static,
{
    fn kind(&self) -> &'static str {
        "signature"
    }

    fn is_present(&self, parts: &Parts) -> bool {
        self.forms().any(|form| form.is_present(parts))
    }

    fn needs_body(&self) -> bool {
        true
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        Box::pin(async move {
            let mut present = self.forms().filter(|form| form.is_present(request.parts));
            let (Some(form), None) = (present.next(), present.next()) else {
                let scheme = self
                    .palisade
                    .as_ref()
                    .map_or("AWS4-HMAC-SHA256", |form| form.profile.algorithm());
                return Err(AuthFailure::unauthorized(
                    "malformed_authorization",
                    "the request carries signatures of more than one profile",
                    scheme_challenge(scheme),
                ));
            };
            let challenge = || form.challenge();
            let wire = WireRequest::new(request).map_err(|detail| {
                AuthFailure::unauthorized("invalid_request", detail, challenge())
            })?;
            match self
                .verifier
                .verify(&form.profile, &wire.request(), request.now)
                .await
            {
                Ok(verified) => Ok(principal(verified, form.method())),
                Err(error) => Err(failure(&error, challenge())),
            }
        })
    }
}

/// Authenticates RFC 9421 HTTP Message Signatures (`Signature-Input` and `Signature`)
/// with [`palisade_signing::Verifier::verify_rfc9421`] under an [`Rfc9421Policy`]
/// (usually [`Rfc9421Policy::palisade`]: `@method`, `@authority`, `@path`, `@query` when
/// there is a query, `content-digest` when there is a body, `created` required).
///
/// The request is rebuilt as for [`SignatureVerifier`], with the scheme `https` when the
/// request came over TLS ([`ClientInfo::over_tls`](crate::ClientInfo)), else `http`.
/// The principal's identity is the `keyid`, its method
/// [`AuthMethod::HttpMessageSignature`]. Refusals are 401 with a `Signature realm="api"`
/// challenge and the signing crate's code; a store that cannot answer is a 503.
pub struct HttpSignatureVerifier<C, N> {
    verifier: Arc<SigningVerifier<C, N>>,
    policy: Rfc9421Policy,
}

impl<C, N> std::fmt::Debug for HttpSignatureVerifier<C, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSignatureVerifier")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<C: CredentialStore, N: NonceStore> HttpSignatureVerifier<C, N> {
    /// Verifies with `verifier` under `policy`.
    pub fn new(verifier: Arc<SigningVerifier<C, N>>, policy: Rfc9421Policy) -> Self {
        Self { verifier, policy }
    }
}

impl<C, N> Verifier for HttpSignatureVerifier<C, N>
where
    C: CredentialStore + 'static,
    N: NonceStore + 'static,
{
    fn kind(&self) -> &'static str {
        "http_signature"
    }

    fn is_present(&self, parts: &Parts) -> bool {
        parts.headers.contains_key("signature-input") || parts.headers.contains_key("signature")
    }

    fn needs_body(&self) -> bool {
        true
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        Box::pin(async move {
            let challenge = || scheme_challenge("Signature");
            let wire = WireRequest::new(request).map_err(|detail| {
                AuthFailure::unauthorized("invalid_request", detail, challenge())
            })?;
            match self
                .verifier
                .verify_rfc9421(&self.policy, &wire.request(), request.now)
                .await
            {
                Ok(verified) => Ok(principal(verified, AuthMethod::HttpMessageSignature)),
                Err(error) => Err(failure(&error, challenge())),
            }
        })
    }
}

fn principal(verified: Verified, method: AuthMethod) -> Principal {
    Principal::new(
        verified.access_key_id,
        verified.owner,
        method,
        verified.scopes,
    )
}

/// Maps a signing error: 503 when a backend cannot answer, else 401 with `challenge`.
/// Only the crate's fixed description goes out, never the mismatch details.
fn failure(error: &Error, challenge: Challenge) -> AuthFailure {
    match error.kind() {
        // A store that cannot answer, or a stored secret that cannot be opened: nothing
        // the client did, and nothing it can fix but retrying.
        ErrorKind::Store | ErrorKind::Crypto => AuthFailure::with_status(
            503,
            error.code(),
            "the credential store is unavailable; retry shortly",
        ),
        _ => AuthFailure::unauthorized(error.code(), error.detail(), challenge),
    }
}

/// The parts of an HTTP request a signature covers, as text borrowed from the request.
struct WireRequest<'a> {
    method: &'a str,
    target: &'a str,
    scheme: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

impl<'a> WireRequest<'a> {
    /// Collects the request. A header value that is not UTF-8 cannot have been signed
    /// as text: such a request is refused outright rather than verified without it, so
    /// that a signed header cannot be shadowed by an unreadable duplicate.
    fn new(request: &'a CredentialRequest<'a>) -> Result<Self, &'static str> {
        let parts = request.parts;
        // A nested router strips its prefix from the URI; the signature covers the
        // target as it came on the wire.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut headers = Vec::with_capacity(parts.headers.len() + 1);
        for (name, value) in &parts.headers {
            let value = std::str::from_utf8(value.as_bytes())
                .map_err(|_| "a header value is not valid UTF-8")?;
            headers.push((name.as_str(), value));
        }
        // HTTP/2 carries the host in `:authority`, which the URI holds.
        if !parts.headers.contains_key(HOST)
            && let Some(authority) = parts.uri.authority().or_else(|| uri.authority())
        {
            headers.push(("host", authority.as_str()));
        }
        let scheme = match request.client {
            Some(client) if client.over_tls => "https",
            Some(_) => "http",
            None => uri.scheme_str().unwrap_or("https"),
        };
        Ok(Self {
            method: parts.method.as_str(),
            target,
            scheme,
            headers,
            body: request.body,
        })
    }

    fn request(&self) -> Request<'a> {
        let mut request = Request::new(self.method, self.target)
            .scheme(self.scheme)
            .body(self.body);
        for (name, value) in &self.headers {
            request.push_header(name, value);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, authorization: Option<&str>) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn presence_by_header_scheme_or_presigned_query() {
        let palisade = Form::new(SigV4Profile::palisade());
        let aws = Form::new(SigV4Profile::aws4("us-east-1", "execute-api"));
        let header = parts("/x", Some("PALISADE-HMAC-SHA256 Credential=a/b"));
        assert!(palisade.is_present(&header));
        assert!(!aws.is_present(&header));
        let presigned = parts("/x?a=1&X-Amz-Signature=abc", None);
        assert!(aws.is_present(&presigned));
        assert!(!palisade.is_present(&presigned));
        assert!(palisade.is_present(&parts("/x?X-Palisade-Algorithm=PALISADE-HMAC-SHA256", None)));
        assert!(!palisade.is_present(&parts("/x?X-Palisade-Signaturex=1", None)));
        assert!(!palisade.is_present(&parts("/x", Some("Bearer abc"))));
    }

    #[test]
    fn http2_authority_becomes_host_and_tls_sets_the_scheme() {
        let parts = parts("https://api.example.com/a?b=1", None);
        let client = crate::ClientInfo {
            address: "192.0.2.1".parse().unwrap(),
            over_tls: false,
            via_proxy: false,
        };
        let request = CredentialRequest {
            parts: &parts,
            body: b"",
            client: Some(&client),
            now: std::time::SystemTime::UNIX_EPOCH,
        };
        let wire = WireRequest::new(&request).unwrap();
        assert_eq!(wire.target, "/a?b=1");
        assert_eq!(wire.scheme, "http");
        assert_eq!(wire.headers, vec![("host", "api.example.com")]);
    }

    #[test]
    fn unreadable_header_values_are_refused() {
        let mut parts = parts("/a", None);
        parts.headers.insert(
            "x-thing",
            http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        let request = CredentialRequest {
            parts: &parts,
            body: b"",
            client: None,
            now: std::time::SystemTime::UNIX_EPOCH,
        };
        assert!(WireRequest::new(&request).is_err());
    }
}
