//! What every response says: security headers, request ids, rate-limit header fields,
//! RFC 9457 problem documents and `WWW-Authenticate` challenges.
//!
//! The crate knows nothing of HTTP libraries: it produces `(name, value)` pairs with
//! lower-case names (ready for `HeaderName::from_static`) and JSON bodies, and the
//! framework adapter (`palisade-axum`) sets them. Its pieces:
//!
//! - [`SecurityHeaders`]: the header set of every response, with documented defaults
//!   (HSTS only over TLS, `Cache-Control: no-store` on authenticated responses, a CSP for
//!   JSON APIs, no header naming the software, no `X-XSS-Protection`).
//! - [`RequestId`]: echo a well-formed inbound `X-Request-Id`, otherwise a new UUID.
//! - [`RateLimitHeaders`]: `X-RateLimit-*`, `Retry-After` and the IETF `RateLimit-Policy` /
//!   `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10, rendered from a
//!   rate limiter's decision ([`QuotaPolicy`] + [`ServiceLimit`]).
//! - [`Problem`]: the RFC 9457 problem document every crate's error becomes.
//! - [`Challenge`] / [`WwwAuthenticate`]: challenges of a 401, with RFC 6750 error codes
//!   ([`BearerError`]) for Bearer.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use palisade_headers::{
//!     BearerError, Challenge, Problem, QuotaPolicy, RateLimitHeaders, RequestId,
//!     SecurityHeaders, ServiceLimit, WwwAuthenticate,
//! };
//!
//! let now = UNIX_EPOCH + Duration::from_secs(1_764_244_800);
//! let mut response: Vec<(&str, String)> = Vec::new();
//!
//! // Every response.
//! let policy = SecurityHeaders::default();
//! for (name, value) in policy.for_response(true, true) {
//!     response.push((name, value.to_owned()));
//! }
//! let id = RequestId::accept_or_generate(Some("bad id\r\n"));
//! response.push((RequestId::HEADER, id.to_string()));
//!
//! // Rate-limit fields from the limiter's decision.
//! let permin = QuotaPolicy::new("permin", 60, 60)?;
//! let limit = ServiceLimit { remaining: 0, reset_after: Some(Duration::from_secs(17)), partition_key: None };
//! response.extend(RateLimitHeaders::new().policy(&permin, limit).retry_after(Duration::from_secs(17)).render(now));
//!
//! // A 401 with a challenge and a problem document.
//! let challenge = WwwAuthenticate::new()
//!     .challenge(Challenge::bearer().realm("palisade").error(BearerError::InvalidToken))
//!     .header();
//! let body = Problem::new(401).with_detail("the access token expired").to_json();
//!
//! assert!(response.contains(&("strict-transport-security", "max-age=31536000; includeSubDomains".to_owned())));
//! assert!(response.contains(&("ratelimit", "\"permin\";r=0;t=17".to_owned())));
//! assert!(response.contains(&("retry-after", "17".to_owned())));
//! assert_ne!(id.as_str(), "bad id\r\n");
//! assert_eq!(challenge.map(|c| c.1).as_deref(), Some(r#"Bearer realm="palisade", error="invalid_token""#));
//! assert!(body.contains("\"status\":401"));
//! # Ok::<(), palisade_headers::Error>(())
//! ```
//!
//! # Security
//!
//! Handled: browser-side attacks on API responses (MIME sniffing, framing, script
//! execution if a response is ever rendered, referrer leaks, cross-origin embedding),
//! downgrade to plain HTTP after a first TLS visit (HSTS), personal responses kept by
//! caches, fingerprinting through `Server`/`X-Powered-By`, header injection and log
//! injection through request ids, challenge parameters and rate-limit policy names
//! (values are checked or sanitised to visible ASCII, quoted strings escaped).
//!
//! Not handled: deciding whether a request really came over TLS. `over_tls` is the
//! caller's claim; an adapter must trust `X-Forwarded-Proto` only from configured
//! proxies. Nor does it keep secrets out of a problem's `detail`: that is the caller's
//! duty (never put a credential, a stack trace or an internal message there).

mod challenge;
mod error;
mod problem;
mod ratelimit;
mod request_id;
mod security;

pub use challenge::{BearerError, Challenge, WwwAuthenticate};
pub use error::{Error, ErrorKind};
pub use problem::{FieldError, Problem};
pub use ratelimit::{QuotaPolicy, QuotaUnit, RateLimitHeaders, ServiceLimit, ServiceLimitItems};
pub use request_id::RequestId;
pub use security::{FrameOptions, Hsts, SecurityHeaders, XssProtection};
