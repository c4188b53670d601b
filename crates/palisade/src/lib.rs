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
