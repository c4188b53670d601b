use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::response::{IntoResponse, Response};
use http::Request;
use palisade_headers::Problem;
use palisade_ratelimit::{RateLimiter, Store};
use tower::Service;

use crate::client::ClientInfo;
use crate::principal::Principal;
use crate::problem::ProblemResponse;

/// Service of [`RateLimitLayer`](super::RateLimitLayer).
///
/// Its future is boxed: the decision is asynchronous (a Redis round trip) and must
/// finish before the inner service is called.
#[derive(Debug)]
pub struct RateLimitService<S, I> {
    pub(super) inner: I,
    pub(super) limiter: Arc<RateLimiter<S>>,
}

impl<S, I: Clone> Clone for RateLimitService<S, I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
        }
    }
}

/// The bucket a request is counted in.
fn bucket<B>(request: &Request<B>) -> String {
    let extensions = request.extensions();
    if let Some(principal) = extensions.get::<Principal>() {
        format!("principal:{}", principal.identity())
    } else if let Some(client) = extensions.get::<ClientInfo>() {
        format!("address:{}", client.address)
    } else {
        "address:unknown".to_owned()
    }
}

impl<S, I, B> Service<Request<B>> for RateLimitService<S, I>
where
    S: Store + 'static,
    I: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    I::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = I::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, I::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The service that was polled ready handles this request; a fresh clone takes
        // its place for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = Arc::clone(&self.limiter);
        Box::pin(async move {
            let key = bucket(&request);
            let now = SystemTime::now();
            let decision = limiter.check(&key, 1, now).await;
            if !decision.allowed() && decision.degraded().is_some() {
                // The limiter could not decide (its store is down) and the policy fails
                // closed: a temporary condition of the server, not the caller's quota.
                let mut response = ProblemResponse::coded(
                    503,
                    "unavailable",
                    "the rate limiter is unavailable; retry shortly",
                )
                .with_header("retry-after", "1")
                .into_response();
                super::write_headers(&decision, now, response.headers_mut());
                return Ok(response);
            }
            if !decision.allowed() {
                let violated: Vec<&str> = decision
                    .windows()
                    .iter()
                    .filter(|window| !window.allowed())
                    .map(palisade_ratelimit::WindowDecision::name)
                    .collect();
                let mut response = ProblemResponse::new(
                    Problem::quota_exceeded(&violated)
                        .with_detail("too many requests; retry after the time in Retry-After"),
                )
                .into_response();
                super::write_headers(&decision, now, response.headers_mut());
                return Ok(response);
            }
            // Inner layers (the abuse monitor) see how close the caller is to its limit.
            request.extensions_mut().insert(decision);
            let mut response = inner.call(request).await?;
            super::write_headers(&decision, now, response.headers_mut());
            Ok(response)
        })
    }
}
