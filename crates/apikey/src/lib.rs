//! API keys for third-party developers: recognisable, checksummed, hashed at rest,
//! scoped, limited, revocable at once and rotatable with a grace period.
//!
//! A key looks like `pk_live_` followed by 43 random base62 characters (256 bits from a
//! CSPRNG) and a 6-character CRC32 checksum, in the style of GitHub's tokens. The
//! checksum lets [`KeyFormat::parse`] reject a mistyped or truncated key offline, before
//! any store lookup, and lets secret scanners match keys without false positives. Each
//! key also has a short public id (`key_...`) for logs, lists and URLs.
//!
//! [`ApiKeys`] is the service a server holds: [`create`](ApiKeys::create),
//! [`verify`](ApiKeys::verify), [`revoke`](ApiKeys::revoke),
//! [`rotate`](ApiKeys::rotate), [`list`](ApiKeys::list) and [`flush`](ApiKeys::flush)
//! (batched last-used writes), generic over a [`KeyStore`]: [`MemoryKeyStore`] always,
//! `SqliteKeyStore` with the `sqlite` feature, `PostgresKeyStore` with `postgres`.
//! This crate knows nothing of HTTP: the caller passes the header value and the client
//! address.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use palisade_apikey::{ApiKeys, ErrorKind, MemoryKeyStore, NewKey, Plan};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), palisade_apikey::Error> {
//! let keys = ApiKeys::new(MemoryKeyStore::new());
//! let now = SystemTime::now(); // read the clock once, at the edge
//!
//! let created = keys
//!     .create(
//!         NewKey::new("acme")
//!             .scopes(["orders:read", "orders:write"])
//!             .plan(Plan::new("pro"))
//!             .allowed_networks(["203.0.113.0/24".parse().unwrap()]),
//!         now,
//!     )
//!     .await?;
//! let raw = created.key.expose_secret(); // show it once; only its hash is stored
//! assert!(raw.starts_with("pk_live_"));
//!
//! let client = Some("203.0.113.7".parse().unwrap());
//! let verified = keys.verify(Some(raw), client, now).await?;
//! assert_eq!(verified.owner(), "acme");
//! assert!(verified.has_scope("orders:read"));
//!
//! // A typo is caught by the checksum, without touching the store.
//! let mut chars: Vec<char> = raw.chars().collect();
//! chars[10] = if chars[10] == 'x' { 'y' } else { 'x' };
//! let typo: String = chars.into_iter().collect();
//! let error = keys.verify(Some(&typo), client, now).await.unwrap_err();
//! assert_eq!(error.code(), "malformed");
//!
//! keys.revoke(&created.record.key_id, now).await?;
//! let error = keys.verify(Some(raw), client, now + Duration::from_secs(1)).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::Revoked);
//! # Ok(())
//! # }
//! ```
//!
//! # Storage
//!
//! Stores keep a SHA-256 of each key, or an HMAC-SHA256 under a server-side
//! [`Pepper`] when one is configured ([`ApiKeys::with_pepper`]); never the key. The hash
//! covers the key after its kind (`live_` or `test_`, the random part and the checksum:
//! 54 bytes, a single SHA-256 block, which halves the cost of every verification).
//! Lookups go through a unique index on the hash, and hash comparisons are constant-time.
//! The SQL stores create their tables (`apikey_keys`, `apikey_state`) with their own embedded
//! migrations, recorded in their own bookkeeping table `apikey_migrations`, so they can
//! share a database with other crates' migrations. Times are stored as milliseconds since
//! the Unix epoch.
//!
//! Last-use times are buffered in memory and written in one batch by
//! [`ApiKeys::flush`], which the caller runs periodically and at shutdown: a request never
//! waits for a write. Their precision is one second (a cached key is buffered at most
//! once a second, so the hot path is one atomic load). Nothing in this crate spawns a
//! task.
//!
//! # Revocation across instances
//!
//! Verification caches what the store said about a key (keyed by the key's hash), so a
//! cached verification costs a hash and a map lookup. Revocations must still reach every
//! instance within one second, including revocations made directly in the database by
//! the command line while servers run. The design works with every store, SQLite
//! included:
//!
//! - every revocation and rotation increments a *revocation epoch* in the store, in the
//!   same transaction;
//! - verification reads that epoch at most once per
//!   [`CacheConfig::revocation_poll_interval`] (default 500 ms, one indexed one-row
//!   read per instance), and empties the cache when it moved;
//! - a revocation through the same [`ApiKeys`] empties its cache at once;
//! - entries are also re-read after [`CacheConfig::max_age`] (default 60 s);
//! - if the epoch cannot be read, verification fails closed (`storage`).
//!
//! A revocation is therefore honoured everywhere within the poll interval plus one store
//! round trip. For "the very next request, on every instance", set the interval to zero:
//! every verification then reads the epoch (one indexed one-row read), while key
//! records still come from the cache. A `redis` pub/sub channel is not needed for either;
//! a caller who has one can call [`ApiKeys::invalidate_cache`] on each message.
//!
//! Expiry, rotation grace and address checks are evaluated on every request against
//! `now`, cached or not. Keys are never cached as unknown: every unknown
//! well-formed key costs a store lookup (rate-limit failed attempts upstream).
//!
//! # Scopes
//!
//! A scope is 1 to 128 characters of `[A-Za-z0-9_.:-]`. A granted scope ending in `:*`
//! covers its family: `orders:*` covers `orders:read` and `orders:items:write`, not
//! `orders`. There is no lone `*`. See [`scope_covers`].
//!
//! # Security
//!
//! Handled: guessing (256 random bits per key); typos and garbage (offline checksum, no
//! store load); database theft (hashes only, and with a pepper the hashes cannot be
//! tested offline); timing attacks on the comparison (constant-time hash equality);
//! leaks through logs (`Debug` of keys, hashes and peppers is redacted, raw keys are
//! zeroized on drop, errors never carry a key); stolen keys used from elsewhere
//! (per-key IPv4/IPv6 allowlists, IPv4-mapped IPv6 addresses normalised); a leaked test
//! key used against production (environment in the prefix, checked); slow revocation
//! (see above).
//!
//! Not handled: a key stolen together with the client's network position; brute force of
//! well-formed keys against the store (bounded by rate limiting and abuse detection
//! upstream); a compromised server process (it sees raw keys in requests and holds the
//! pepper); pepper rotation (changing it makes every key unknown).

mod error;
mod format;
mod hash;
mod manager;
mod record;
mod scope;
mod store;

pub use crate::error::{Error, ErrorKind};
pub use crate::format::{Environment, KeyFormat, ParsedKey, RawKey};
pub use crate::hash::{KeyHash, Pepper};
pub use crate::manager::{ApiKeys, CacheConfig};
pub use crate::record::{CreatedKey, KeyRecord, NewKey, Plan, StoredKey, VerifiedKey};
pub use crate::scope::scope_covers;
pub use crate::store::KeyStore;
pub use crate::store::memory::MemoryKeyStore;
#[cfg(feature = "postgres")]
pub use crate::store::postgres::PostgresKeyStore;
#[cfg(feature = "sqlite")]
pub use crate::store::sqlite::SqliteKeyStore;
