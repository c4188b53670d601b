use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::HttpBody;
use axum::extract::MatchedPath;
use axum::response::Response;
use http::Request;
use http::header::{CONTENT_LENGTH, USER_AGENT};
use palisade_abuse::{AbuseMonitor, AbuseStore, Identity, LimitUsage, RequestEvent};
use tower::Service;

use super::{abuse_identity, locked, refusal};
use crate::authenticate::AuthOutcome;
use crate::client::ClientInfo;
use crate::principal::Principal;

/// Marks a request whose client address an [`AuthLockoutService`] already checked.
#[derive(Debug, Clone, Copy)]
struct LockoutChecked;

/// The request's future: boxed, since the decision is a store lookup that must finish
/// before the inner service is called.
type BoxFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

/// Service of [`AuthLockoutLayer`](super::AuthLockoutLayer).
#[derive(Debug)]
pub struct AuthLockoutService<S, I> {
    pub(super) inner: I,
    pub(super) monitor: Arc<AbuseMonitor<S>>,
}

impl<S, I: Clone> Clone for AuthLockoutService<S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            monitor: Arc::clone(&self.monitor),
        }
    }
}

impl<S, I, B> Service<Request<B>> for AuthLockoutService<S, I>
where
    S: AbuseStore + 'static,
    I: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    I::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = BoxFuture<I::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let monitor = Arc::clone(&self.monitor);
        Box::pin(async move {
            if let Some(client) = request.extensions().get::<ClientInfo>().copied() {
                let now = SystemTime::now();
                if let Some(lock) = monitor.is_locked(client.address, None, now).await {
                    tracing::info!(event = "auth_locked_out", client = %client.address, reason = lock.reason.code());
                    return Ok(locked(&lock, now));
                }
                request.extensions_mut().insert(LockoutChecked);
            }
            inner.call(request).await
        })
    }
}

/// Service of [`AbuseLayer`](super::AbuseLayer).
#[derive(Debug)]
pub struct AbuseService<S, I> {
    pub(super) inner: I,
    pub(super) monitor: Arc<AbuseMonitor<S>>,
    pub(super) background: bool,
    pub(super) auth_endpoints: Arc<[String]>,
}

impl<S, I: Clone> Clone for AbuseService<S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            monitor: Arc::clone(&self.monitor),
            background: self.background,
            auth_endpoints: Arc::clone(&self.auth_endpoints),
        }
    }
}

/// What is recorded of a request, taken before the request goes to the inner service.
struct Observed {
    identity: Identity,
    client: ClientInfo,
    endpoint: String,
    is_auth_endpoint: bool,
    user_agent: Option<String>,
    rate_limit: Option<LimitUsage>,
    refused_credential: bool,
}

impl<S, I, B> Service<Request<B>> for AbuseService<S, I>
where
    S: AbuseStore + 'static,
    I: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    I::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = BoxFuture<I::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let monitor = Arc::clone(&self.monitor);
        let background = self.background;
        let auth_endpoints = Arc::clone(&self.auth_endpoints);
        Box::pin(async move {
            let now = SystemTime::now();
            let Some(client) = request.extensions().get::<ClientInfo>().copied() else {
                // Without the client address nothing can be attributed; the server's
                // wiring is checked by ClientInfoLayer, not here.
                return inner.call(request).await;
            };
            let extensions = request.extensions();
            if extensions.get::<LockoutChecked>().is_none()
                && let Some(lock) = monitor.is_locked(client.address, None, now).await
            {
                return Ok(locked(&lock, now));
            }
            let observed = observe(&request, client, &auth_endpoints);
            let decision = monitor.decision(&observed.identity, now).await;
            if let Some(response) = refusal(&decision, now) {
                tracing::info!(
                    event = "abuse_refused",
                    identity = observed.identity.as_str(),
                    status = response.status().as_u16(),
                );
                return Ok(response);
            }

            let response = inner.call(request).await?;

            let status = response.status().as_u16();
            // A refused credential is a failed attempt; a request that presented none
            // (an anonymous 401) is not, so a client that forgot its key is not locked out.
            if observed.refused_credential {
                monitor
                    .record_auth_failure(observed.client.address, None, now)
                    .await;
            }
            let response_bytes = response_size(&response);
            let record = async move {
                let event = RequestEvent {
                    endpoint: &observed.endpoint,
                    is_auth_endpoint: observed.is_auth_endpoint,
                    status,
                    response_bytes,
                    user_agent: observed.user_agent.as_deref(),
                    source_ip: observed.client.address,
                    rate_limit: observed.rate_limit,
                };
                monitor.record(&observed.identity, &event, now).await;
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) if background => {
                    runtime.spawn(record);
                }
                _ => record.await,
            }
            Ok(response)
        })
    }
}

fn observe<B>(request: &Request<B>, client: ClientInfo, auth_endpoints: &[String]) -> Observed {
    let extensions = request.extensions();
    let identity = extensions
        .get::<Principal>()
        .map_or_else(|| Identity::address(client.address), abuse_identity);
    let path = request.uri().path();
    // The matched route (`/api/orders/{id}`) rather than the path, so that ids do not
    // make every request a distinct endpoint.
    let route = extensions
        .get::<MatchedPath>()
        .map_or(path, MatchedPath::as_str);
    let endpoint = format!("{} {route}", request.method());
    let is_auth_endpoint = auth_endpoints
        .iter()
        .any(|prefix| path.starts_with(prefix.as_str()));
    let user_agent = request
        .headers()
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let rate_limit = extensions
        .get::<palisade_ratelimit::Decision>()
        .and_then(palisade_ratelimit::Decision::most_restrictive)
        .map(|window| LimitUsage {
            remaining: window.remaining(),
            limit: window.limit(),
        });
    let refused_credential = matches!(
        extensions.get::<AuthOutcome>(),
        Some(AuthOutcome::Failed(failure)) if failure.status() == 401
    );
    Observed {
        identity,
        client,
        endpoint,
        is_auth_endpoint,
        user_agent,
        rate_limit,
        refused_credential,
    }
}

/// The body size from `Content-Length`, else from the body's exact size hint, else 0.
fn response_size(response: &Response) -> u64 {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .or_else(|| response.body().size_hint().exact())
        .unwrap_or(0)
}
