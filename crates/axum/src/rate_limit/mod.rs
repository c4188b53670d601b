//! Rate limiting with the limit announced on every response.
//!
//! Requests are counted per [`Principal`](crate::Principal) identity when one is in the
//! request (so the authentication layer must sit outside this one), otherwise per client
//! address from [`ClientInfo`](crate::ClientInfo). Every response carries
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` and the IETF
//! `RateLimit-Policy`/`RateLimit` fields; a denied request gets a 429 problem document
//! with `Retry-After` and never reaches the inner service; when the limiter's store is
//! down and the policy fails closed, the answer is a 503 `unavailable` problem instead
//! (the caller did nothing wrong). An allowed request carries the
//! limiter's [`Decision`](palisade_ratelimit::Decision) in its extensions, so that inner
//! layers (the abuse monitor's near-the-limit rule) see the remaining quota.
//!
//! Which policy a key gets is the [`RateLimiter`](palisade_ratelimit::RateLimiter)'s
//! business: its default, or an override registered for the identity (a key's plan).
//!
//! ```
//! use palisade_axum::RateLimitLayer;
//! use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};
//!
//! let limiter = RateLimiter::new(MemoryStore::new(), Policy::per_minute(60).unwrap());
//! let app: axum::Router = axum::Router::new().layer(RateLimitLayer::new(limiter));
//! # let _ = app;
//! ```

mod layer;
mod service;

use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use palisade_headers::{QuotaPolicy, RateLimitHeaders, ServiceLimit};
use palisade_ratelimit::Decision;

pub use layer::RateLimitLayer;
pub use service::RateLimitService;

/// Writes the rate-limit fields of `decision` into `headers`.
pub(crate) fn write_headers(decision: &Decision, now: SystemTime, headers: &mut HeaderMap) {
    let windows = decision.windows();
    let policies: Vec<Option<QuotaPolicy>> = windows
        .iter()
        .map(|window| {
            QuotaPolicy::new(
                window.name(),
                window.limit(),
                window.window().as_secs().max(1),
            )
            .ok()
        })
        .collect();
    let mut fields = RateLimitHeaders::new();
    for (window, policy) in windows.iter().zip(&policies) {
        if let Some(policy) = policy {
            fields = fields.policy(
                policy,
                ServiceLimit {
                    remaining: window.remaining(),
                    reset_after: Some(window.reset()),
                    partition_key: None,
                },
            );
        }
    }
    if !decision.allowed()
        && let Some(retry) = decision.retry_after()
    {
        fields = fields.retry_after(retry);
    }
    for (name, value) in fields.render(now) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}
