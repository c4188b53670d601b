//! Rate limiting: fixed and sliding windows, token and leaky buckets and GCRA, exact
//! under concurrency, in memory and on Redis.
//!
//! A [`Policy`] is one to four windows (`burst`, `permin`, `perday`, ...), each with its
//! [`Algorithm`]; a request of any cost passes all of them or counts against none. A
//! [`Store`] keeps the state: [`MemoryStore`] (sharded, self-cleaning) for one process,
//! and with the `redis` feature `RedisStore` (one atomic Lua script per decision, Redis's
//! clock, Redis Cluster ready) and `HybridStore` (quota leased in small batches from
//! Redis, for high traffic). [`RateLimiter`] adds per-key overrides and turns a backend
//! failure into the policy's [`FailureMode`], never into an error.
//!
//! A [`Decision`] carries what the headers need: for every window its name, limit,
//! remaining units, reset and retry-after (draft-ietf-httpapi-ratelimit-headers-10
//! `RateLimit-Policy` and `RateLimit`, and `X-RateLimit-*` from
//! [`Decision::most_restrictive`]).
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use palisade_ratelimit::{MemoryStore, Plan, Policy, RateLimiter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let limiter = RateLimiter::new(MemoryStore::new(), Policy::plan(Plan::Free));
//! // A key with its own quota: 3 per minute.
//! limiter.set_override("key-42", Policy::per_minute(3).unwrap());
//!
//! let now = SystemTime::now();
//! for _ in 0..3 {
//!     assert!(limiter.check("key-42", 1, now).await.allowed());
//! }
//! let denied = limiter.check("key-42", 1, now).await;
//! assert!(!denied.allowed());
//! let window = denied.most_restrictive().unwrap();
//! assert_eq!((window.name(), window.limit(), window.remaining()), ("permin", 3, 0));
//! // The weighted window frees a unit once the past minute weighs less (within 2 minutes).
//! assert!(denied.retry_after().unwrap() <= Duration::from_secs(120));
//!
//! // The free plan: burst 10 at once, then the per-minute rate.
//! let admitted = {
//!     let mut n = 0;
//!     while limiter.check("someone", 1, now).await.allowed() { n += 1; }
//!     n
//! };
//! assert_eq!(admitted, 10);
//! # }
//! ```
//!
//! # Algorithms and their bursts
//!
//! With limit `L` per period `P`, burst `B` and `T = ceil(P/L)`; property tests check
//! each bound against a reference model for every interval:
//!
//! | algorithm | state | most admitted in any interval of length `t` |
//! | --- | --- | --- |
//! | fixed window | count | `L * (ceil(t/P) + 1)`: `2L` across an edge |
//! | sliding window (weighted) | two counts | each aligned window `<= L`; `< 2L` for `t = P` |
//! | sliding log (exact) | one entry per unit | `L` for `t < P`: exact; small limits only |
//! | token bucket | tokens, time | `B + ceil(t/T)` |
//! | leaky bucket (meter) | level, time | `B + ceil(t/T)` |
//! | GCRA | one time | `B + ceil(t/T)` |
//!
//! # Security
//!
//! Handles: request floods from one identity (API key, client, address), exactly, also
//! when many requests race and when several instances share Redis; unbounded memory from
//! many identities (the store sweeps itself; keys longer than 128 bytes are stored as
//! their SHA-256); a Redis outage (fail open or closed per policy, never an error or a
//! panic). The in-memory hash tables use foldhash under seeds drawn from the operating
//! system's randomness, fresh per store, so a client cannot choose keys that collide.
//!
//! Does not handle: choosing the identity (an attacker with many identities or
//! addresses gets many quotas: that is the abuse detector's job); the hybrid store's
//! documented overshoot (at most instances x lease size); an attacker who can write to
//! the Redis instance; an attacker who recovers a store's seed (foldhash, unlike
//! SipHash, is not a keyed PRF: in theory, by timing very many requests), who could then
//! slow the lookups in one of the 64 shards with colliding keys, each kept only until it
//! recovers.

mod algo;
mod clock;
mod decision;
mod error;
#[cfg(feature = "redis")]
mod hybrid;
mod key;
mod memory;
mod policy;
#[cfg(feature = "redis")]
mod redis;
mod store;

pub use crate::decision::{Decision, WindowDecision};
pub use crate::error::{Error, ErrorKind};
pub use crate::memory::MemoryStore;
pub use crate::policy::{
    Algorithm, FailureMode, Limit, MAX_LIMIT, MAX_LOG_LIMIT, MAX_PERIOD, MAX_WINDOWS, MIN_PERIOD,
    Plan, Policy, PolicyBuilder, Window, WindowName,
};
pub use crate::store::{RateLimiter, Store};

#[cfg(feature = "redis")]
pub use crate::hybrid::{HybridConfig, HybridStore};
#[cfg(feature = "redis")]
pub use crate::redis::{RedisConfig, RedisStore};
