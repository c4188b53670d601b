//! The security headers of every response, from a
//! [`SecurityHeaders`](palisade_headers::SecurityHeaders) policy.
//!
//! HSTS is added only when the request came over TLS (directly or through a trusted
//! proxy, as [`ClientInfo`](crate::ClientInfo) says), `Cache-Control: no-store` only on
//! authenticated responses (an authentication layer marks them), and any `Server` or
//! `X-Powered-By` header is removed whoever set it.
//!
//! ```
//! use palisade_axum::SecurityHeadersLayer;
//! use palisade_headers::SecurityHeaders;
//!
//! let app: axum::Router = axum::Router::new().layer(SecurityHeadersLayer::new(SecurityHeaders::default()));
//! # let _ = app;
//! ```

mod layer;
mod service;

pub use layer::SecurityHeadersLayer;
pub use service::SecurityHeadersService;

/// Marks a response as answering an authenticated request, so that it is not cached.
/// Authentication layers insert it into the response extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated;
