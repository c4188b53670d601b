use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::Response;
use http::{HeaderName, HeaderValue, Request};
use palisade_headers::SecurityHeaders;
use tower::Service;

use super::Authenticated;
use crate::client::ClientInfo;
use crate::future::ResponseFuture;

/// Service of [`SecurityHeadersLayer`](super::SecurityHeadersLayer).
#[derive(Debug, Clone)]
pub struct SecurityHeadersService<S> {
    pub(super) inner: S,
    pub(super) policy: Arc<SecurityHeaders>,
}

impl<S, B> Service<Request<B>> for SecurityHeadersService<S>
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
        let over_tls = request
            .extensions()
            .get::<ClientInfo>()
            .is_some_and(|info| info.over_tls);
        let policy = Arc::clone(&self.policy);
        ResponseFuture::then(
            self.inner.call(request),
            Box::new(move |response: &mut Response| {
                // The client layer may sit inside this one: it reports on the response.
                let over_tls = over_tls
                    || response
                        .extensions()
                        .get::<ClientInfo>()
                        .is_some_and(|info| info.over_tls);
                let authenticated = response.extensions().get::<Authenticated>().is_some();
                let headers = response.headers_mut();
                for name in SecurityHeaders::removed() {
                    headers.remove(*name);
                }
                for (name, value) in policy.for_response(over_tls, authenticated) {
                    if let Ok(value) = HeaderValue::from_str(value) {
                        headers.insert(HeaderName::from_static(name), value);
                    }
                }
            }),
        )
    }
}
