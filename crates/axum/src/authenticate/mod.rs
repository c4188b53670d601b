//! Authentication: exactly one credential per request becomes the [`Principal`].
//!
//! Each method is a [`Verifier`]: it says whether a request carries its kind of
//! credential and checks it. [`AuthenticateLayer`] runs them all:
//!
//! - no credential: the request goes on anonymous ([`AuthOutcome::Anonymous`]);
//! - two different kinds (an API key and a bearer token, say): no verifier runs, since a
//!   request must not be able to choose which check it gets, and the outcome is a 400
//!   [`AuthOutcome::Failed`] (`ambiguous_credentials`);
//! - one kind: its verifier decides. Success puts the [`Principal`] in the request
//!   extensions (and marks the response as authenticated, so it is not cached); failure
//!   is recorded as [`AuthOutcome::Failed`].
//!
//! Rejection of anonymous and failed requests is left to [`RequireScopeLayer`] on the
//! routes that need it, so that layers in between (the rate limiter) can count failed
//! attempts against the client address and put their headers on the 401.
//!
//! Signature verifiers need the body: it is read (bounded by the layer's body limit,
//! 413 beyond it) only when such a credential is present, and handed on unchanged.

mod layer;
mod require;
mod service;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use palisade_headers::{Challenge, WwwAuthenticate};

pub use layer::AuthenticateLayer;
pub use require::{RequireScopeLayer, RequireScopeService};
pub use service::AuthenticateService;

use crate::client::ClientInfo;
use crate::principal::Principal;
use crate::problem::ProblemResponse;

/// A boxed future returned by [`Verifier::verify`].
pub type VerifyFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Principal, AuthFailure>> + Send + 'a>>;

/// What a verifier sees of a request.
#[derive(Debug)]
pub struct CredentialRequest<'a> {
    /// Method, URI, headers and extensions (the TLS peer identity, for one).
    pub parts: &'a Parts,
    /// The body, when the verifier asked for it ([`Verifier::needs_body`]); else empty.
    pub body: &'a [u8],
    /// The client, when a [`ClientInfoLayer`](crate::ClientInfoLayer) ran before.
    pub client: Option<&'a ClientInfo>,
    /// The time of the request, read once by the layer.
    pub now: SystemTime,
}

/// One authentication method.
pub trait Verifier: Send + Sync + 'static {
    /// A short name of the credential kind (`api_key`, `bearer`, ...), for errors and
    /// logs.
    fn kind(&self) -> &'static str;

    /// Whether the request carries this kind of credential (looked at before anything
    /// is verified, to refuse ambiguous requests).
    fn is_present(&self, parts: &Parts) -> bool;

    /// Whether verification needs the request body.
    fn needs_body(&self) -> bool {
        false
    }

    /// Checks the credential.
    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a>;
}

/// The result of authentication, in the request extensions.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    /// No credential was presented.
    Anonymous,
    /// A credential was verified.
    Authenticated(Principal),
    /// A credential was presented and refused.
    Failed(AuthFailure),
}

/// Why a credential was refused: a status (401, or 403 when the credential is genuine
/// but not usable from here, or 503 when a backend cannot answer), a stable code, a
/// client-safe detail, and the challenge for a 401.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    status: u16,
    code: &'static str,
    detail: String,
    challenge: Option<WwwAuthenticate>,
}

impl AuthFailure {
    /// 401 with a `WWW-Authenticate` challenge of `scheme`.
    pub fn unauthorized(
        code: &'static str,
        detail: impl Into<String>,
        challenge: Challenge,
    ) -> Self {
        Self {
            status: 401,
            code,
            detail: detail.into(),
            challenge: Some(WwwAuthenticate::new().challenge(challenge)),
        }
    }

    /// Another status (403, 503) without a challenge.
    pub fn with_status(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            challenge: None,
        }
    }

    /// Another status with a challenge: RFC 6750's `invalid_request` is a 400 that still
    /// names the scheme.
    pub fn with_challenge(
        status: u16,
        code: &'static str,
        detail: impl Into<String>,
        challenge: Challenge,
    ) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            challenge: Some(WwwAuthenticate::new().challenge(challenge)),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The stable code (the core crate's error code).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The problem document for this failure.
    pub fn to_problem(&self) -> ProblemResponse {
        let problem = ProblemResponse::coded(self.status, self.code, &self.detail);
        match &self.challenge {
            Some(challenge) => problem.with_challenge(challenge.clone()),
            None => problem,
        }
    }
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

/// A verifier from a closure, for tests and small custom schemes.
#[derive(Debug, Clone)]
pub struct FnVerifier<P, V> {
    kind: &'static str,
    is_present: P,
    verify: V,
}

impl<P, V> FnVerifier<P, V>
where
    P: Fn(&Parts) -> bool + Send + Sync + 'static,
    V: Fn(&CredentialRequest<'_>) -> Result<Principal, AuthFailure> + Send + Sync + 'static,
{
    /// A synchronous verifier named `kind`.
    pub fn new(kind: &'static str, is_present: P, verify: V) -> Self {
        Self {
            kind,
            is_present,
            verify,
        }
    }
}

impl<P, V> Verifier for FnVerifier<P, V>
where
    P: Fn(&Parts) -> bool + Send + Sync + 'static,
    V: Fn(&CredentialRequest<'_>) -> Result<Principal, AuthFailure> + Send + Sync + 'static,
{
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn is_present(&self, parts: &Parts) -> bool {
        (self.is_present)(parts)
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        let result = (self.verify)(request);
        Box::pin(std::future::ready(result))
    }
}
