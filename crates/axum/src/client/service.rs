use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::Request;
use tower::Service;

use super::{ClientInfo, Connection, ForwardedError, TrustedProxies, resolve};
use crate::future::ResponseFuture;
use crate::problem::ProblemResponse;

/// Service of [`ClientInfoLayer`](super::ClientInfoLayer).
#[derive(Debug, Clone)]
pub struct ClientInfoService<S> {
    inner: S,
    proxies: Arc<TrustedProxies>,
}

impl<S> ClientInfoService<S> {
    pub(super) fn new(inner: S, proxies: Arc<TrustedProxies>) -> Self {
        Self { inner, proxies }
    }
}

impl<S, B> Service<Request<B>> for ClientInfoService<S>
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
        let extensions = request.extensions();
        let connection = extensions.get::<Connection>().copied().or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| Connection {
                    peer: info.0,
                    tls: false,
                })
        });
        let Some(connection) = connection else {
            // A wiring mistake of the server, never something a client can cause.
            tracing::error!(
                "no connection information: serve with into_make_service_with_connect_info or insert palisade_axum::Connection"
            );
            return ResponseFuture::ready(
                ProblemResponse::coded(500, "internal", "the server is misconfigured")
                    .into_response(),
            );
        };
        let headers = request.headers();
        let forwarded_for: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let forwarded_proto = headers
            .get_all("x-forwarded-proto")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok());
        match resolve(
            &self.proxies,
            connection.peer,
            connection.tls,
            &forwarded_for,
            forwarded_proto,
        ) {
            Ok(info) => {
                request.extensions_mut().insert::<ClientInfo>(info);
                // Outer layers (security headers) learn the outcome from the response.
                ResponseFuture::then(
                    self.inner.call(request),
                    Box::new(move |response: &mut Response| {
                        response.extensions_mut().insert(info);
                    }),
                )
            }
            Err(ForwardedError::PlainHttp) => ResponseFuture::ready(
                ProblemResponse::coded(
                    403,
                    "https_required",
                    "requests through the proxy must use HTTPS",
                )
                .into_response(),
            ),
            Err(ForwardedError::Malformed) => ResponseFuture::ready(
                ProblemResponse::coded(
                    400,
                    "malformed_forwarded_for",
                    "X-Forwarded-For is malformed",
                )
                .into_response(),
            ),
        }
    }
}
