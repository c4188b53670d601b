//! Palisade: API security for Rust services, as one integrated design.
//!
//! This facade re-exports Palisade's focused crates, each behind a feature of the same
//! name (`full` enables them all). Each crate is also usable alone: depend on
//! `palisade-apikey` directly if API keys are all you need.
//!
//! | feature     | crate                | what it does                                           |
//! |-------------|----------------------|--------------------------------------------------------|
//! | `apikey`    | [`palisade-apikey`]  | API keys: format, hashing, verification, rotation      |
//! | `jwt`       | [`palisade-jwt`]     | JWT validation, key sets, OAuth 2.0 core               |
//! | `signing`   | [`palisade-signing`] | Palisade HMAC, AWS SigV4, RFC 9421, webhook signatures |
//! | `ratelimit` | [`palisade-ratelimit`]| rate-limit algorithms, in memory and on Redis         |
//! | `validate`  | [`palisade-validate`]| bounded JSON, validation, injection and SSRF guards    |
//! | `abuse`     | [`palisade-abuse`]   | behaviour tracking, throttle and block decisions       |
//! | `headers`   | [`palisade-headers`] | security headers, request ids, problem documents       |
//! | `mtls`      | [`palisade-mtls`]    | mutual TLS configuration and peer identities           |
//!
//! The web-framework adapter lives in `palisade-axum`, which is a separate crate so that
//! nothing here depends on a web framework.
//!
//! [`palisade-apikey`]: https://docs.rs/palisade-apikey
//! [`palisade-jwt`]: https://docs.rs/palisade-jwt
//! [`palisade-signing`]: https://docs.rs/palisade-signing
//! [`palisade-ratelimit`]: https://docs.rs/palisade-ratelimit
//! [`palisade-validate`]: https://docs.rs/palisade-validate
//! [`palisade-abuse`]: https://docs.rs/palisade-abuse
//! [`palisade-headers`]: https://docs.rs/palisade-headers
//! [`palisade-mtls`]: https://docs.rs/palisade-mtls
//!
//! # Example
//!
//! ```toml
//! [dependencies]
//! palisade = { version = "0.1", features = ["apikey", "ratelimit"] }
//! ```
//!
//! ```
//! // Each enabled crate is a module of the facade.
//! #[cfg(feature = "apikey")]
//! use palisade::apikey as _;
//! ```
//!
//! [`prelude`] gathers the most used types of the enabled crates for a glob import.

#[cfg(feature = "abuse")]
pub use palisade_abuse as abuse;
#[cfg(feature = "apikey")]
pub use palisade_apikey as apikey;
#[cfg(feature = "headers")]
pub use palisade_headers as headers;
#[cfg(feature = "jwt")]
pub use palisade_jwt as jwt;
#[cfg(feature = "mtls")]
pub use palisade_mtls as mtls;
#[cfg(feature = "ratelimit")]
pub use palisade_ratelimit as ratelimit;
#[cfg(feature = "signing")]
pub use palisade_signing as signing;
#[cfg(feature = "validate")]
pub use palisade_validate as validate;

/// The most used types of each enabled crate, for `use palisade::prelude::*;`.
///
/// Only names that are unambiguous across the crates are here: each crate's `Error`,
/// `ErrorKind` and its in-memory store named `MemoryStore` (rate limiting, abuse, OAuth)
/// are reached through the crate's module (`palisade::ratelimit::MemoryStore`), as are
/// `Decision`, `Plan` and `Algorithm`, which several crates define.
///
/// ```
/// use palisade::prelude::*;
///
/// #[cfg(feature = "headers")]
/// {
///     let policy = SecurityHeaders::default();
///     let over_tls = policy.for_response(true, true);
///     assert!(over_tls.iter().any(|(name, _)| *name == "strict-transport-security"));
///     assert_eq!(Problem::new(404).status(), 404);
/// }
///
/// #[cfg(feature = "ratelimit")]
/// {
///     let policy = Policy::per_minute(60).unwrap();
///     let _limiter = RateLimiter::new(palisade::ratelimit::MemoryStore::new(), policy);
/// }
///
/// #[cfg(feature = "signing")]
/// {
///     assert_eq!(SigV4Profile::palisade().algorithm(), "PALISADE-HMAC-SHA256");
///     let _policy = Rfc9421Policy::palisade();
/// }
///
/// #[cfg(feature = "apikey")]
/// {
///     let _keys = ApiKeys::new(MemoryKeyStore::new());
/// }
///
/// #[cfg(feature = "abuse")]
/// {
///     let monitor = AbuseMonitor::in_memory();
///     let _ = monitor.config();
///     assert_eq!(Identity::api_key("key_1").as_str(), "apikey:key_1");
/// }
/// ```
pub mod prelude {
    #[cfg(feature = "abuse")]
    pub use palisade_abuse::{AbuseConfig, AbuseMonitor, AbuseStore, Identity, RequestEvent};
    #[cfg(feature = "apikey")]
    pub use palisade_apikey::{ApiKeys, CreatedKey, KeyStore, MemoryKeyStore, NewKey, VerifiedKey};
    #[cfg(feature = "headers")]
    pub use palisade_headers::{
        BearerError, Challenge, Problem, RateLimitHeaders, RequestId, SecurityHeaders,
        WwwAuthenticate,
    };
    #[cfg(feature = "jwt")]
    pub use palisade_jwt::{
        AccessTokenClaims, AccessTokenValidator, AuthorizationServer, AuthorizationServerConfig,
        Blocklist, ClientRegistration, GrantType, KeyRing, MemoryBlocklist, OAuthStore,
        RotationPolicy,
    };
    #[cfg(feature = "mtls")]
    pub use palisade_mtls::{
        ClientAuthSettings, IdentityMap, IdentityRule, MtlsAcceptor, PeerIdentity,
        ReloadableConfig, TlsSettings,
    };
    #[cfg(feature = "ratelimit")]
    pub use palisade_ratelimit::{Policy, RateLimiter};
    #[cfg(feature = "signing")]
    pub use palisade_signing::{
        CredentialStore, MemoryCredentialStore, MemoryNonceStore, NonceStore, Rfc9421Policy,
        SigV4Profile, Verifier,
    };
    #[cfg(feature = "validate")]
    pub use palisade_validate::{Limits, UploadPolicy, UrlPolicy};
}
