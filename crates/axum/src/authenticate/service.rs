use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::Request;
use http_body_util::{BodyExt, Limited};
use tower::Service;

use super::{AuthFailure, AuthOutcome, CredentialRequest, Verifier};
use crate::client::ClientInfo;
use crate::security_headers::Authenticated;

/// Service of [`AuthenticateLayer`](super::AuthenticateLayer).
///
/// Its future is boxed: verification is asynchronous (a store lookup) and must finish
/// before the inner service is called.
#[derive(Clone)]
pub struct AuthenticateService<S> {
    pub(super) inner: S,
    pub(super) verifiers: Arc<[Arc<dyn Verifier>]>,
    pub(super) body_limit: usize,
}

impl<S> std::fmt::Debug for AuthenticateService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticateService")
            .field("verifiers", &self.verifiers.len())
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for AuthenticateService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifiers = Arc::clone(&self.verifiers);
        let body_limit = self.body_limit;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let present: Vec<&Arc<dyn Verifier>> =
                verifiers.iter().filter(|v| v.is_present(&parts)).collect();
            let verifier = match present.as_slice() {
                [] => {
                    parts.extensions.insert(AuthOutcome::Anonymous);
                    return inner.call(Request::from_parts(parts, body)).await;
                }
                [one] => Arc::clone(one),
                several => {
                    let kinds: Vec<&str> = several.iter().map(|v| v.kind()).collect();
                    tracing::info!(event = "auth_ambiguous", kinds = ?kinds, "request carried several kinds of credential");
                    // No verifier runs, so the request cannot pick its check; the 400 is
                    // given where a credential is required, like any failure, so that
                    // routing answers first (404, 405).
                    parts
                        .extensions
                        .insert(AuthOutcome::Failed(AuthFailure::with_status(
                            400,
                            "ambiguous_credentials",
                            "the request carries more than one kind of credential; send exactly one",
                        )));
                    return inner.call(Request::from_parts(parts, body)).await;
                }
            };

            let (bytes, body) = if verifier.needs_body() {
                match Limited::new(body, body_limit).collect().await {
                    Ok(collected) => {
                        let bytes = collected.to_bytes();
                        (bytes.clone(), Body::from(bytes))
                    }
                    Err(error) => {
                        return Ok(
                            crate::validated_json::body_error(error.as_ref(), body_limit)
                                .into_response(),
                        );
                    }
                }
            } else {
                (Bytes::new(), body)
            };

            let outcome = {
                let request = CredentialRequest {
                    parts: &parts,
                    body: &bytes,
                    client: parts.extensions.get::<ClientInfo>(),
                    now: SystemTime::now(),
                };
                match verifier.verify(&request).await {
                    Ok(principal) => {
                        tracing::info!(
                            event = "auth_success",
                            method = principal.method().as_str(),
                            identity = principal.identity(),
                        );
                        AuthOutcome::Authenticated(principal)
                    }
                    Err(failure) => {
                        tracing::warn!(
                            event = "auth_failure",
                            method = verifier.kind(),
                            code = failure.code(),
                            client = ?request.client.map(|c| c.address),
                        );
                        AuthOutcome::Failed(failure)
                    }
                }
            };
            let authenticated = if let AuthOutcome::Authenticated(principal) = &outcome {
                parts.extensions.insert(principal.clone());
                true
            } else {
                false
            };
            parts.extensions.insert(outcome);
            let mut response = inner.call(Request::from_parts(parts, body)).await?;
            if authenticated {
                response.extensions_mut().insert(Authenticated);
            }
            Ok(response)
        })
    }
}
