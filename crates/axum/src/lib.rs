//! Tower layers and axum extractors that wire Palisade's crates into any axum or tower
//! service.
//!
//! This is the only library crate of Palisade that knows about HTTP frameworks. The core
//! crates take plain data and return plain data; the layers here read requests, call
//! them, and turn their answers into headers, extensions and RFC 9457 problem documents.
//!
//! A request passes the layers in the order of the architecture:
//!
//! | step | layer | puts into the request | adds to the response |
//! |---|---|---|---|
//! | request id | [`RequestIdLayer`] | [`RequestId`](palisade_headers::RequestId) | `X-Request-Id` |
//! | headers | [`SecurityHeadersLayer`] | | the security headers (also on every rejection below) |
//! | connection | [`ClientInfoLayer`] | [`ClientInfo`] (address, TLS, via trusted proxy) | 403/400 for bad forwarding |
//! | lockout | `AuthLockoutLayer` (feature `abuse`) | | 429 `too-many-auth-failures` with `Retry-After` for an address locked after failed authentication, before any credential is verified |
//! | authentication | [`AuthenticateLayer`] with one [`Verifier`] per method | [`AuthOutcome`], [`Principal`] | 400 for two kinds of credential (given where a credential is required, after routing), 413 for a signed body over the limit |
//! | rate limit | [`RateLimitLayer`] | the limiter's [`Decision`](palisade_ratelimit::Decision) | `X-RateLimit-*`, `RateLimit-Policy`, `RateLimit`; 429 with `Retry-After` |
//! | abuse | `AbuseLayer` (feature `abuse`) | | 403 `blocked`, 429 `abnormal-usage-detected`; records the request and 401s |
//! | authorization | [`RequireScopeLayer`] (per route) | | 401 with a challenge, 403 |
//! | body | [`ValidatedJson`] (extractor) | the typed, validated body | 413, 415, 400, 422 with field errors |
//!
//! [`Palisade`] stacks all of them but the per-route ones in this order, in one call.
//!
//! The verifiers, one per feature:
//!
//! | feature | verifier | credential | [`AuthMethod`] |
//! |---|---|---|---|
//! | `apikey` | `ApiKeyVerifier` | `X-API-Key` | `ApiKey` |
//! | `jwt` | `BearerVerifier` | `Authorization: Bearer` (RFC 9068 access token) | `Bearer` |
//! | `signing` | `SignatureVerifier` | `PALISADE-HMAC-SHA256` / `AWS4-HMAC-SHA256`, or presigned query | `PalisadeSignature`, `AwsSignature` |
//! | `signing` | `HttpSignatureVerifier` | RFC 9421 `Signature-Input` + `Signature` | `HttpMessageSignature` |
//! | `mtls` | `ClientCertVerifier` | the connection's verified client certificate (`PeerIdentity` extension) | `ClientCertificate` |
//!
//! Every rejection is a [`ProblemResponse`]. The single authenticated identity is the
//! [`Principal`], which handlers extract.
//!
//! # Example
//!
//! ```
//! use std::net::SocketAddr;
//!
//! use axum::{Router, routing::get};
//! use palisade_axum::{ClientInfoLayer, Connection, RequestIdLayer, SecurityHeadersLayer, TrustedProxies};
//! use palisade_headers::SecurityHeaders;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new().route("/", get(|| async { "hello" })).layer(
//!     ServiceBuilder::new()
//!         .layer(RequestIdLayer::new())
//!         .layer(SecurityHeadersLayer::new(SecurityHeaders::default()))
//!         .layer(ClientInfoLayer::new(TrustedProxies::none())),
//! );
//!
//! let mut request = http::Request::new(axum::body::Body::empty());
//! // A server inserts this per connection (or uses axum's ConnectInfo).
//! request.extensions_mut().insert(Connection { peer: SocketAddr::from(([127, 0, 0, 1], 5000)), tls: false });
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["x-content-type-options"], "nosniff");
//! assert!(response.headers().contains_key("x-request-id"));
//! assert!(!response.headers().contains_key("strict-transport-security"));
//! # }
//! ```
//!
//! # Security
//!
//! `X-Forwarded-*` headers are believed only from configured proxies; everything else
//! about the client comes from the connection. Problem documents never carry internal
//! error messages or credentials.

#[cfg(feature = "abuse")]
mod abuse;
mod authenticate;
mod builder;
mod client;
mod future;
mod principal;
mod problem;
mod rate_limit;
mod request_id;
mod security_headers;
mod validated_json;
mod verifiers;

#[cfg(feature = "abuse")]
pub use abuse::{AbuseLayer, AbuseService, AuthLockoutLayer, AuthLockoutService, abuse_identity};
pub use authenticate::{
    AuthFailure, AuthOutcome, AuthenticateLayer, AuthenticateService, CredentialRequest,
    FnVerifier, RequireScopeLayer, RequireScopeService, Verifier, VerifyFuture,
};
pub use builder::{Palisade, PalisadeLayer};
pub use client::{ClientInfo, ClientInfoLayer, ClientInfoService, Connection, TrustedProxies};
pub use future::ResponseFuture;
pub use principal::{AuthMethod, Principal};
pub use problem::{PROBLEM_BASE, ProblemResponse};
pub use rate_limit::{RateLimitLayer, RateLimitService};
pub use request_id::{RequestIdLayer, RequestIdService};
pub use security_headers::{Authenticated, SecurityHeadersLayer, SecurityHeadersService};
pub use validated_json::ValidatedJson;
#[cfg(feature = "apikey")]
pub use verifiers::ApiKeyVerifier;
#[cfg(feature = "jwt")]
pub use verifiers::BearerVerifier;
#[cfg(feature = "mtls")]
pub use verifiers::ClientCertVerifier;
#[cfg(feature = "signing")]
pub use verifiers::{HttpSignatureVerifier, SignatureVerifier};
