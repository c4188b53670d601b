//! Hardened JWT validation, signing key sets and an OAuth 2.0 authorization core, on
//! [`jsonwebtoken`]'s aws-lc-rs crypto.
//!
//! - [`Validator`] checks access tokens ([`AccessTokenValidator`], RFC 9068
//!   `typ: at+jwt`) and ID tokens ([`IdTokenValidator`]); the two kinds have different
//!   claims types and never pass for one another. Every rejection is an [`Error`] with
//!   a stable [`Error::code`].
//! - [`SigningKey`], [`VerifyingKey`] and [`KeySet`] bind each key to one
//!   [`Algorithm`]; [`KeyRing`] generates, persists, publishes (JWKS) and rotates the
//!   issuer's own keys; [`RemoteJwks`] follows a third-party issuer's JWKS URL.
//! - [`AccessTokenIssuer`] signs access tokens; [`AuthorizationServer`] implements the
//!   token, authorization, device, revocation, introspection and metadata endpoints as
//!   plain async functions, with refresh-token families rotated by an atomic
//!   compare-and-swap in an [`OAuthStore`] (memory, SQLite, PostgreSQL) and revoked
//!   access tokens kept in a [`Blocklist`] (memory, Redis).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::SystemTime;
//! use palisade_jwt::{
//!     AccessTokenIssuer, AccessTokenValidator, Algorithm, ErrorKind, KeyRing, RotationPolicy,
//! };
//!
//! let now = SystemTime::now();
//! let keys = Arc::new(KeyRing::ephemeral(RotationPolicy::default(), now)?);
//! let issuer = AccessTokenIssuer::new("https://auth.example", "https://api.example", keys.clone())?;
//! let token = issuer.issue("user-42", "client-7", "orders:read", now)?.token;
//!
//! let validator =
//!     AccessTokenValidator::new("https://auth.example", "https://api.example", &[Algorithm::ES256])?;
//! let claims = validator.validate(&token, &keys.key_set(), now)?;
//! assert_eq!(claims.sub, "user-42");
//! assert!(claims.has_scope("orders:read"));
//!
//! // `alg: none` never passes, whatever the configuration.
//! let forged = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.";
//! let error = validator.validate(forged, &keys.key_set(), now).unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::AlgorithmNotAllowed);
//! assert_eq!(error.code(), "algorithm_not_allowed");
//! # Ok::<(), palisade_jwt::Error>(())
//! ```
//!
//! # Crypto backend
//!
//! jsonwebtoken 11 needs exactly one crypto provider and panics on first use when
//! feature unification enables none or both. This crate enables `aws_lc_rs` and calls
//! `jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER` explicitly for every verification
//! (signing goes straight to aws-lc-rs), so its own paths never consult the
//! process-wide provider and cannot panic whatever features other crates enable. It also
//! installs that provider as the process default ([`install_crypto_provider`]) so that
//! other code calling jsonwebtoken directly works. aws-lc-rs verifies ES256 about 4x and
//! RS256 about 9x faster than the `rust_crypto` backend here, and avoids the `rsa`
//! crate's unfixed timing advisory (RUSTSEC-2023-0071).
//!
//! # Security
//!
//! How each point of RFC 8725 (JWT Best Current Practices) is met:
//!
//! - **3.1 algorithm verification**: an explicit allowlist per validator; `none` is not
//!   an [`Algorithm`] at all; every key is bound to one algorithm by its type, and the
//!   header's `alg` must equal it, so RS256-to-HS256 confusion is impossible
//!   (`AlgorithmKeyMismatch`). HMAC keys are only ever configured as secrets, never read
//!   from a JWKS.
//! - **3.2 appropriate algorithms**: ES256 (default), EdDSA, RS256/PS256 with keys of at
//!   least 2048 bits, HS256 with secrets of at least 32 bytes.
//! - **3.3 validate all cryptographic operations**: the signature is verified before any
//!   claim is read; aws-lc-rs refuses the all-zero ECDSA signature (CVE-2022-21449).
//! - **3.4 validate cryptographic inputs**: public keys are parsed and checked (curve,
//!   point length, RSA size); EC points are validated by aws-lc-rs.
//! - **3.5 ensure cryptographic keys have sufficient entropy**: keys and HMAC secrets
//!   come from the OS CSPRNG via aws-lc-rs; HS256 secrets under 32 bytes are refused.
//! - **3.7 use UTF-8**: JSON is parsed by serde_json, which requires UTF-8.
//! - **3.8 validate issuer and subject**: `iss` must equal the configured issuer;
//!   access tokens require `sub` and `client_id`. Keys come only from the configured
//!   set or JWKS URL: `jku`, `x5u`, `jwk` and `x5c` headers are refused outright.
//! - **3.9 use and validate audience**: `aud` is required and must contain the
//!   configured audience.
//! - **3.10 do not trust received claims**: `kid` is looked up, never used as a path or
//!   query, and must match `[A-Za-z0-9._~+=:-]{1,128}`; duplicate JSON member names
//!   (which parsers resolve differently) are refused at every depth.
//! - **3.11 use explicit typing**: access tokens must carry `typ: at+jwt` (RFC 9068),
//!   ID tokens must not; the claims types differ.
//! - **3.12 mutually exclusive validation rules**: the `typ` rule and the distinct
//!   required claims keep access and ID tokens apart; refresh tokens are opaque
//!   (`prt_...`) and not JWTs at all.
//! - Also: `exp` required, `nbf`/`iat` checked, 30 s default tolerance; time claims of
//!   another JSON type refused; `crit` refused (no extension is understood); a size
//!   limit (8 KiB) before any decoding; strict base64url (no padding, canonical bits).
//!
//! Refresh tokens are 256-bit random secrets stored as SHA-256 hashes, single-use and
//! rotated by an atomic compare-and-swap; a reused one revokes its whole family,
//! refresh and access tokens alike. Client secrets are stored hashed and compared in
//! constant time. Authorization codes need PKCE S256, live 60 s, and a replay revokes
//! what they issued.
//!
//! Not handled: the confidentiality of tokens in transit (use TLS), theft of a token
//! that is then used before its holder (a bearer token is a bearer token; short access
//! lifetimes and refresh rotation bound the damage), user authentication and consent
//! (the server authenticates the user and passes the subject in), repeated form
//! parameters (the HTTP layer must refuse them before building the parameter map), and
//! the compromise of the key directory.

mod blocklist;
mod error;
mod issue;
mod json;
mod keyring;
mod keys;
mod oauth;
mod remote;
mod store;
mod validate;

#[cfg(feature = "redis")]
pub use blocklist::RedisBlocklist;
pub use blocklist::{Blocklist, MemoryBlocklist};
pub use error::{Error, ErrorKind, Result};
pub use issue::{AccessTokenIssuer, DEFAULT_ACCESS_TOKEN_TTL, IssuedAccessToken};
pub use keyring::{KeyRing, RotationPolicy};
pub use keys::{Algorithm, KeySet, SigningKey, VerifyingKey, install_crypto_provider};
pub use oauth::{
    AuthorizationServer, AuthorizationServerConfig, AuthorizationServerMetadata, AuthorizeError,
    ClientRegistration, DeviceAuthorizationResponse, GrantType, IntrospectionResponse, OAuthError,
    OAuthErrorCode, RegisteredClient, TokenResponse, pkce_s256_challenge, verify_pkce_s256,
};
pub use remote::{JwksFetcher, RemoteJwks};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{
    AccessRecord, ClientRecord, CodeOutcome, CodeRecord, DeviceRecord, DeviceStatus, FamilyRecord,
    MemoryStore, OAuthStore, RefreshRecord,
};
pub use validate::{
    Access, AccessTokenClaims, AccessTokenValidator, DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, Id,
    IdTokenClaims, IdTokenValidator, TokenKind, Validator,
};
