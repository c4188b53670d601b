//! The response future every Palisade layer returns.
//!
//! One type instead of one per layer (tower-http's pattern): each layer either answers
//! at once (a rejection) or calls the inner service and then adjusts its response (adds
//! headers). The adjustment is a boxed closure, one small allocation per request, which
//! keeps every layer's code short.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;
use pin_project_lite::pin_project;

/// What a layer does to the inner service's response.
pub(crate) type After = Box<dyn FnOnce(&mut Response) + Send>;

pin_project! {
    /// Response future of Palisade's layers.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner { #[pin] future: F, after: Option<After> },
        Ready { response: Option<Response> },
    }
}

impl<F> ResponseFuture<F> {
    /// Waits for the inner service's response, then applies `after` to it.
    pub(crate) fn then(future: F, after: After) -> Self {
        Self {
            state: State::Inner {
                future,
                after: Some(after),
            },
        }
    }

    /// Answers at once without calling the inner service.
    pub(crate) fn ready(response: Response) -> Self {
        Self {
            state: State::Ready {
                response: Some(response),
            },
        }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future, after } => {
                let mut response = match future.poll(cx) {
                    Poll::Ready(Ok(response)) => response,
                    other => return other,
                };
                if let Some(after) = after.take() {
                    after(&mut response);
                }
                Poll::Ready(Ok(response))
            }
            // Polled again after completion: answer with an empty 500 rather than panic.
            StateProj::Ready { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    let mut response = Response::default();
                    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                    response
                })))
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
