//! Request ids: every request gets one, echoed in `X-Request-Id` on its response.
//!
//! A well-formed inbound id (1 to 128 characters from `A-Z a-z 0-9 . _ : -`) is kept so a
//! caller can correlate its traces; anything else is replaced by a new UUID, so an id can
//! never inject into logs or headers. The id is put in the request extensions as a
//! [`RequestId`](palisade_headers::RequestId) for handlers and logs.
//!
//! ```
//! use palisade_axum::RequestIdLayer;
//!
//! let app: axum::Router = axum::Router::new().layer(RequestIdLayer::new());
//! # let _ = app;
//! ```

mod layer;
mod service;

pub use layer::RequestIdLayer;
pub use service::RequestIdService;
