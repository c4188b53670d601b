use std::task::{Context, Poll};

use axum::response::Response;
use http::{HeaderName, HeaderValue, Request};
use palisade_headers::RequestId;
use tower::Service;

use crate::future::ResponseFuture;

const HEADER: HeaderName = HeaderName::from_static(RequestId::HEADER);

/// Service of [`RequestIdLayer`](super::RequestIdLayer).
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    pub(super) inner: S,
}

impl<S, B> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = RequestId::accept_or_generate_bytes(
            request.headers().get(&HEADER).map(HeaderValue::as_bytes),
        );
        // Well-formed ids are visible ASCII, so this conversion cannot fail.
        let value = HeaderValue::from_str(id.as_str()).ok();
        if let Some(value) = &value {
            request.headers_mut().insert(HEADER, value.clone());
        }
        request.extensions_mut().insert(id);
        let future = self.inner.call(request);
        ResponseFuture::then(
            future,
            Box::new(move |response: &mut Response| {
                if let Some(value) = value {
                    response.headers_mut().insert(HEADER, value);
                }
            }),
        )
    }
}
