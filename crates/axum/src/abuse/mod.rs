//! Abuse defence with [`palisade_abuse`]: brute-force lockout, throttle and block
//! decisions, and the request events they are made from.
//!
//! Two layers, because authentication sits between the two things they check:
//!
//! - [`AuthLockoutLayer`], *outside* [`AuthenticateLayer`](crate::AuthenticateLayer):
//!   a client address locked for failed authentication gets 429
//!   `too-many-auth-failures` with `Retry-After` before any credential is verified, so
//!   a locked-out guesser learns nothing, not even from timing, and costs no store
//!   lookup.
//! - [`AbuseLayer`], *inside* `AuthenticateLayer` (after the rate limiter, as the design
//!   orders it): it sees the [`Principal`](crate::Principal) or, for anonymous requests,
//!   the client address. An identity the monitor blocks gets 403 `blocked` with the
//!   reason code; a throttled one 429 (`abnormal-usage-detected`) with `Retry-After`.
//!   After the inner service answers, it records the request event (identity, endpoint
//!   as the matched route, status, response size, user agent, source network, rate-limit
//!   headroom) and, for a refused credential, an authentication failure of the client
//!   address (a request that presented no credential is not a failed attempt). It also checks the lockout itself when no `AuthLockoutLayer` ran.
//!
//! ```text
//! ClientInfoLayer -> AuthLockoutLayer -> AuthenticateLayer -> RateLimitLayer -> AbuseLayer -> routes
//! ```
//!
//! The 401s of [`RequireScopeLayer`](crate::RequireScopeLayer) come from inside the
//! routes, so the abuse layer sees them on the response; a credential refused on a
//! route that does not require one is counted too, from the request's
//! [`AuthOutcome`](crate::AuthOutcome).
//!
//! Request events are recorded on a spawned tokio task, so that a Redis round trip is
//! never added to the response; authentication failures are recorded before the 401
//! goes out (a refusal is not latency-sensitive, and a sequential guesser's next attempt
//! then always sees the count). Both need [`ClientInfo`](crate::ClientInfo) from a
//! [`ClientInfoLayer`](crate::ClientInfoLayer) further out.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use palisade_abuse::AbuseMonitor;
//! use palisade_axum::{AbuseLayer, AuthenticateLayer, ClientInfoLayer, TrustedProxies};
//! use tower::ServiceBuilder;
//!
//! let abuse = AbuseLayer::new(Arc::new(AbuseMonitor::in_memory()));
//! let app: Router = Router::new().route("/api/orders", get(|| async { "[]" })).layer(
//!     ServiceBuilder::new()
//!         .layer(ClientInfoLayer::new(TrustedProxies::none()))
//!         .layer(abuse.lockout_layer())
//!         .layer(AuthenticateLayer::new())
//!         .layer(abuse),
//! );
//! # let _ = app;
//! ```

mod layer;
mod service;

use std::time::{Duration, SystemTime};

use axum::response::{IntoResponse, Response};
use palisade_abuse::{AuthLock, Decision, Identity};
use palisade_headers::Problem;

pub use layer::{AbuseLayer, AuthLockoutLayer};
pub use service::{AbuseService, AuthLockoutService};

use crate::principal::{AuthMethod, Principal};
use crate::problem::ProblemResponse;

/// The abuse-monitor identity of a principal: API keys and signing credentials by
/// their key id (`apikey:...`), OAuth clients and certificate identities as clients
/// (`client:...`), anything else as a user. Administration endpoints that list or clear
/// flags use the same mapping.
pub fn abuse_identity(principal: &Principal) -> Identity {
    match principal.method() {
        AuthMethod::ApiKey
        | AuthMethod::PalisadeSignature
        | AuthMethod::AwsSignature
        | AuthMethod::HttpMessageSignature => Identity::api_key(principal.identity()),
        AuthMethod::Bearer | AuthMethod::ClientCertificate => {
            Identity::client(principal.identity())
        }
        _ => Identity::user(principal.identity()),
    }
}

/// `Retry-After` seconds: rounded up, at least 1.
fn retry_seconds(after: Duration) -> String {
    let mut seconds = after.as_secs();
    if after.subsec_nanos() > 0 || seconds == 0 {
        seconds = seconds.saturating_add(1);
    }
    seconds.to_string()
}

/// 429 for an address locked after failed authentication.
fn locked(lock: &AuthLock, now: SystemTime) -> Response {
    ProblemResponse::coded(
        429,
        "too-many-auth-failures",
        "too many failed authentication attempts from this address; retry after the time in Retry-After",
    )
    .with_header("retry-after", &retry_seconds(lock.retry_after(now)))
    .into_response()
}

/// The answer to a throttle or block decision, `None` for `Allow`. Only the reason's
/// code goes out, never the measurement behind it.
fn refusal(decision: &Decision, now: SystemTime) -> Option<Response> {
    let (problem, reason) = match decision {
        Decision::Allow => return None,
        Decision::Block { reason, .. } => (
            Problem::new(403)
                .with_type(format!("{}blocked", crate::PROBLEM_BASE))
                .with_detail(format!(
                    "this client is blocked for abnormal use ({})",
                    reason.code()
                )),
            reason,
        ),
        Decision::Throttle { reason, .. } => (
            Problem::new(429)
                .with_type(Problem::ABNORMAL_USAGE_DETECTED)
                .with_detail(format!(
                    "this client is throttled for abnormal use ({}); retry after the time in Retry-After",
                    reason.code()
                )),
            reason,
        ),
    };
    let problem = problem
        .clone()
        .with_extension("reason", serde_json::Value::from(reason.code()))
        .unwrap_or(problem);
    Some(
        ProblemResponse::new(problem)
            .with_header("retry-after", &retry_seconds(decision.retry_after(now)))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_seconds(Duration::ZERO), "1");
        assert_eq!(retry_seconds(Duration::from_millis(1500)), "2");
        assert_eq!(retry_seconds(Duration::from_secs(60)), "60");
    }

    #[test]
    fn identities_by_method() {
        let key = Principal::new("key_1", "alice", AuthMethod::ApiKey, ["a"]);
        assert_eq!(abuse_identity(&key).as_str(), "apikey:key_1");
        let token = Principal::new("cl_1", "alice", AuthMethod::Bearer, ["a"]);
        assert_eq!(abuse_identity(&token).as_str(), "client:cl_1");
        let signed = Principal::new("AK1", "bob", AuthMethod::HttpMessageSignature, ["a"]);
        assert_eq!(abuse_identity(&signed).as_str(), "apikey:AK1");
    }
}
