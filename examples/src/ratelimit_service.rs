//! A rate-limit-only service: `palisade-ratelimit` with its in-memory store and a
//! per-minute policy, keyed by client address through `palisade-axum`.
//!
//! ```text
//! cargo run -p palisade-examples --bin ratelimit_service -- --per-minute 5
//! for i in 1 2 3 4 5 6; do curl -si http://127.0.0.1:8080/hello | head -n 1; done
//! ```
//!
//! Every answer announces the limit: `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
//! `X-RateLimit-Reset` (Unix seconds) and the IETF `RateLimit-Policy` / `RateLimit`
//! fields. Past the limit the answer is a 429 `application/problem+json` document with
//! `Retry-After` (seconds), and the handler is not called.
//!
//! The limit is per client address, taken from the connection by [`ClientInfoLayer`]:
//! with [`TrustedProxies::none`] an `X-Forwarded-For` header is ignored, so a client
//! cannot pick a fresh bucket for each request. The policy is a weighted sliding window
//! (`permin`), so a full minute drains as the next one advances: `Retry-After` can reach
//! 90 seconds.

use axum::routing::get;
use axum::{Extension, Json, Router};
use palisade_axum::{ClientInfo, ClientInfoLayer, RateLimitLayer, TrustedProxies};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter, Store};
use serde_json::{Value, json};

/// Requests per minute per client when the binary is given no `--per-minute`.
pub const DEFAULT_PER_MINUTE: u64 = 5;

/// An in-memory limiter admitting `per_minute` requests per minute per key (an error
/// for 0).
pub fn limiter(per_minute: u64) -> Result<RateLimiter<MemoryStore>, palisade_ratelimit::Error> {
    Ok(RateLimiter::new(
        MemoryStore::new(),
        Policy::per_minute(per_minute)?,
    ))
}

/// The service: `GET /hello`, limited per client address by `limiter`.
pub fn app<S: Store + 'static>(limiter: RateLimiter<S>) -> Router {
    Router::new()
        .route("/hello", get(hello))
        // The last layer added runs first: the client address, then the limit.
        .layer(RateLimitLayer::new(limiter))
        .layer(ClientInfoLayer::new(TrustedProxies::none()))
}

/// `GET /hello`: says hello and which address the request was counted against.
async fn hello(Extension(client): Extension<ClientInfo>) -> Json<Value> {
    Json(json!({
        "message": "hello",
        "counted_as": client.address.to_string(),
    }))
}
