use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::Request;
use palisade_headers::{BearerError, Challenge, WwwAuthenticate};
use tower::{Layer, Service};

use super::AuthOutcome;
use crate::future::ResponseFuture;
use crate::principal::{AuthMethod, Principal};
use crate::problem::ProblemResponse;

/// Lets a request through only when it is authenticated with every required scope (and,
/// if asked, by a method that proves possession of a key).
///
/// - a refused credential: its own failure (401 with a challenge, or 403);
/// - no credential: 401 with a challenge;
/// - a missing scope: 403 (`insufficient_scope`, RFC 6750, for bearer tokens);
/// - possession required but a bearer credential used: 403, whatever its scopes.
///
/// ```
/// use palisade_axum::RequireScopeLayer;
/// use axum::routing::get;
///
/// let orders: axum::Router = axum::Router::new()
///     .route("/api/orders", get(|| async { "[]" }))
///     .route_layer(RequireScopeLayer::new(["orders:read"]));
/// let admin: axum::Router = axum::Router::new()
///     .route("/admin/keys", get(|| async { "[]" }))
///     .route_layer(RequireScopeLayer::new(["admin"]).with_proof_of_possession());
/// # let _ = (orders, admin);
/// ```
#[derive(Debug, Clone)]
pub struct RequireScopeLayer {
    scopes: Arc<[String]>,
    possession: bool,
}

impl RequireScopeLayer {
    /// Requires authentication and each of `scopes` (none: authentication alone).
    pub fn new<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            scopes: scopes.into_iter().map(Into::into).collect(),
            possession: false,
        }
    }

    /// Also requires a method that proves possession (a signature or a client
    /// certificate); see [`AuthMethod::proves_possession`].
    #[must_use]
    pub fn with_proof_of_possession(mut self) -> Self {
        self.possession = true;
        self
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            scopes: Arc::clone(&self.scopes),
            possession: self.possession,
        }
    }
}

/// Service of [`RequireScopeLayer`].
#[derive(Debug, Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    scopes: Arc<[String]>,
    possession: bool,
}

impl<S> RequireScopeService<S> {
    fn refusal<B>(&self, request: &Request<B>) -> Option<ProblemResponse> {
        let extensions = request.extensions();
        let principal = match extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Failed(failure)) => return Some(failure.to_problem()),
            Some(AuthOutcome::Authenticated(principal)) => principal,
            Some(AuthOutcome::Anonymous) | None => match extensions.get::<Principal>() {
                Some(principal) => principal,
                None => return Some(ProblemResponse::unauthenticated()),
            },
        };
        if self.possession && !principal.method().proves_possession() {
            return Some(ProblemResponse::coded(
                403,
                "proof_of_possession_required",
                "this endpoint needs a signed request or a client certificate",
            ));
        }
        let missing: Vec<&str> = self
            .scopes
            .iter()
            .filter(|scope| !principal.has_scope(scope))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return None;
        }
        let needed = missing.join(" ");
        let problem = ProblemResponse::coded(
            403,
            "insufficient_scope",
            &format!("this request needs the scope {needed}"),
        );
        Some(if principal.method() == AuthMethod::Bearer {
            problem.with_challenge(
                WwwAuthenticate::new().challenge(
                    Challenge::bearer()
                        .error(BearerError::InsufficientScope)
                        .scope(&needed),
                ),
            )
        } else {
            problem
        })
    }
}

impl<S, B> Service<Request<B>> for RequireScopeService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.refusal(&request) {
            Some(problem) => ResponseFuture::ready(problem.into_response()),
            None => ResponseFuture::then(self.inner.call(request), Box::new(|_| {})),
        }
    }
}
