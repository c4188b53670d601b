//! Who is misbehaving: per-identity behaviour over sliding windows, rules that throttle
//! or block, and brute-force / credential-stuffing defence for authentication.
//!
//! [`AbuseMonitor`] records one [`RequestEvent`] per request for an [`Identity`] (API key,
//! client, user or address) and measures, over a sliding window: request rate, error
//! rate, response bytes, share of authentication endpoints, requests made just under the
//! rate limit, distinct endpoints, distinct user agents, distinct source networks, and
//! hour-by-hour activity. [`Rules`] turn that into a [`Decision`] that carries its
//! [`Reason`] and its expiry; each new flag goes to an [`AlertSink`] ([`TracingSink`] by
//! default). Defaults follow the seed design: error rate over 50% after 50 requests
//! throttles, over 100 MB of responses in the window throttles, over 80% authentication
//! endpoints after 20 requests blocks; user-agent rotation, source-network hopping,
//! riding just under the rate limit and round-the-clock activity are the other signals.
//!
//! Failed authentications are counted per address and per account
//! ([`AbuseMonitor::record_auth_failure`]) with exponential backoff and lockout, and
//! failures for many distinct accounts from one address lock that address.
//!
//! State lives in a [`MemoryStore`] (sharded, bounded, idle identities evicted) or, with
//! the `redis` feature, in `RedisStore`, so that every instance sees the same picture
//! (HyperLogLog for distinct counts, TTL'd per-window hashes for counters);
//! `RedisStore::batched` writes each instance's sums once per interval instead of once per
//! request, for busy multi-instance deployments. A Redis failure degrades to local state
//! with a logged warning, never an error.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use palisade_abuse::{AbuseMonitor, Decision, Identity, Reason, RequestEvent};
//!
//! # tokio_test_block_on(async {
//! let monitor = AbuseMonitor::in_memory();
//! let key = Identity::api_key("key_42");
//! let now = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
//! let not_found = RequestEvent {
//!     endpoint: "GET /api/orders/{id}",
//!     is_auth_endpoint: false,
//!     status: 404,
//!     response_bytes: 120,
//!     user_agent: Some("curl/8.5.0"),
//!     source_ip: "203.0.113.9".parse().unwrap(),
//!     rate_limit: None,
//! };
//! // Enumerating order ids: 50 requests, all 404.
//! for i in 0..50 {
//!     monitor.record(&key, &not_found, now + Duration::from_millis(i)).await;
//! }
//! match monitor.decision(&key, now + Duration::from_secs(1)).await {
//!     Decision::Throttle { reason, .. } => assert_eq!(reason, Reason::ErrorRate),
//!     other => panic!("expected a throttle, got {other:?}"),
//! }
//! // The throttle expires (5 minutes by default).
//! let later = now + Duration::from_secs(3600);
//! assert_eq!(monitor.decision(&key, later).await, Decision::Allow);
//!
//! // Brute force: backoff after five failures from one address.
//! let addr = "198.51.100.4".parse().unwrap();
//! for _ in 0..6 {
//!     monitor.record_auth_failure(addr, Some("alice"), later).await;
//! }
//! assert!(monitor.is_locked(addr, Some("alice"), later).await.is_some());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! # Security
//!
//! Handled: slow, persistent abuse that a rate limiter alone lets through (enumeration
//! producing errors, scraping by volume, credential attacks through authentication
//! endpoints, leaked keys used from many networks or clients, pacing just under the
//! limit), online password guessing per account and per address, and credential
//! stuffing across many accounts from one address. Memory is bounded whatever the
//! traffic: identity values are capped (long ones hashed), user agents and endpoints are
//! cut at 256 bytes and only hashed, distinct sets are capped, identities are capped and
//! evicted, and a flood of new identities cannot evict an active block. Account names
//! are stored only as SHA-256 prefixes.
//!
//! Not handled: attacks spread over many addresses and accounts at once (a botnet trying
//! one password per account per address stays under every per-identity threshold), and
//! account lockout as a denial-of-service lever: an attacker who knows a user name can
//! lock that account for `lockout_for`. Keep account lockouts short, or disable them
//! (`account_lockout_after = u64::MAX`) and rely on per-address limits where that risk
//! matters more. Decisions are only as good as the identity the caller passes: the
//! address must come from trusted-proxy resolution, not from a client's
//! `X-Forwarded-For`.

mod alert;
mod config;
mod decision;
mod error;
mod identity;
mod memory;
mod monitor;
#[cfg(feature = "redis")]
mod redis_batch;
#[cfg(feature = "redis")]
mod redis_store;
mod store;

pub use alert::{AlertSink, TracingSink};
pub use config::{
    AbuseConfig, Action, AuthShareRule, BruteForceConfig, DistinctRule, ErrorRateRule,
    NearLimitRule, ResponseBytesRule, RoundTheClockRule, Rules,
};
pub use decision::{
    AccountKey, AuthCounts, AuthFailureOutcome, AuthLock, AuthSubject, Behaviour, Decision, Flag,
    Observation, Reason, WindowSpec,
};
pub use error::{Error, ErrorKind};
pub use identity::{Identity, IdentityKind, LimitUsage, RequestEvent};
pub use memory::{MAX_DISTINCT, MemoryStore};
pub use monitor::AbuseMonitor;
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
pub use store::AbuseStore;
