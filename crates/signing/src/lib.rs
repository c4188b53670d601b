//! Request signing that interoperates: the Palisade HMAC scheme, AWS Signature Version 4
//! (signing, presigning and — unlike any other Rust crate — verification), RFC 9421 HTTP
//! Message Signatures, and webhook signatures (Standard Webhooks and Stripe style).
//!
//! Requests are plain data ([`Request`]: method, the wire target, ordered headers, body
//! bytes); time is an argument; credentials come from a [`CredentialStore`] and replays
//! are refused through a [`NonceStore`]. No web framework is involved.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use palisade_signing::{
//!     Credential, KeyMaterial, MasterKey, MemoryCredentialStore, MemoryNonceStore, Request,
//!     Secret, SigV4Profile, SigningCredential, Verifier, sign,
//! };
//!
//! # tokio_test_block_on(async {
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
//! let profile = SigV4Profile::palisade();
//!
//! // Client side: sign, then add the returned headers.
//! let client = SigningCredential::new("AKID1", Secret::from("wJalrXUtnFEMI/K7MDENG"));
//! let request = Request::new("POST", "/api/orders?dry_run=1")
//!     .header("Host", "api.example.com")
//!     .header("Content-Type", "application/json")
//!     .body(br#"{"items":[]}"#);
//! let added = sign(&profile, &client, &request, now)?;
//! let mut signed = request.clone();
//! for (name, value) in &added {
//!     signed.push_header(name, value);
//! }
//!
//! // Server side: secrets are sealed at rest under a master key.
//! let store = MemoryCredentialStore::new(MasterKey::generate());
//! store.insert(Credential {
//!     access_key_id: "AKID1".into(),
//!     owner: "acme".into(),
//!     scopes: vec!["orders:write".into()],
//!     key: KeyMaterial::Secret(Secret::from("wJalrXUtnFEMI/K7MDENG")),
//! })?;
//! let verifier = Verifier::new(store, MemoryNonceStore::new());
//! let verified = verifier.verify(&profile, &signed, now).await?;
//! assert_eq!(verified.owner, "acme");
//!
//! // The same signature a second time is a replay.
//! let replay = verifier.verify(&profile, &signed, now).await.unwrap_err();
//! assert_eq!(replay.code(), "replay");
//! # Ok::<(), palisade_signing::Error>(())
//! # })?;
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! # Ok::<(), palisade_signing::Error>(())
//! ```
//!
//! # Profiles
//!
//! - [`SigV4Profile::palisade`]: `Authorization: PALISADE-HMAC-SHA256
//!   Credential=<id>/<yyyymmdd>/api/request, SignedHeaders=.., Signature=..`, time in
//!   `X-Palisade-Date`. Required signed headers: `host`, `x-palisade-date`, and
//!   `content-type` when there is a body; the body hash always enters the canonical
//!   request.
//! - [`SigV4Profile::aws4`]: byte-for-byte AWS Signature Version 4 (checked against the
//!   official AWS test suite), including S3's path rules, `X-Amz-Content-Sha256`,
//!   `UNSIGNED-PAYLOAD`, session tokens and presigned URLs ([`presign`]). A literal `+`
//!   in the query follows [`PlusPolicy`] (botocore's reading by default).
//! - [`rfc9421`](Rfc9421Signer): HTTP Message Signatures with `hmac-sha256`, `ed25519`
//!   and `ecdsa-p256-sha256`, checked against RFC 9421 Appendix B; [`content_digest`]
//!   implements RFC 9530.
//! - Webhooks: [`StandardWebhook`] and [`StripeWebhook`].
//!
//! # Security
//!
//! Handled: tampering with the method, path, query, signed headers or body (the body
//! hash is checked against the real body); replay inside the skew window (a nonce store,
//! consulted only after a valid signature so it cannot be flooded); stale or future
//! timestamps (5 minutes by default; the credential date must match); credential-scope
//! confusion between profiles, regions and services; timing leaks of the signature
//! comparison (constant time); malformed, oversized or duplicated signature fields (typed
//! errors, never a panic). Secrets are sealed at rest with AES-256-GCM under a master key,
//! zeroized in memory, redacted in `Debug`, and never part of an error.
//!
//! Not handled: headers that the client chose not to sign can be changed in transit (the
//! policy only forces `host`, the date and the body binding); the secret of an HMAC
//! credential must be available to the server in clear at verification time, so a
//! compromised server process can sign as its clients (use `ed25519` with RFC 9421 where
//! that matters); [`PlusPolicy::Space`] makes `+` and `%20` share a signature.

mod clock;
mod credential;
mod encode;
mod error;
mod nonce;
mod request;
mod rfc9421;
mod sfv;
mod sigv4;
mod verifier;
mod webhook;

pub use credential::{
    Credential, CredentialStore, KeyMaterial, MasterKey, MemoryCredentialStore, SealedKey,
    SealedSecret, Secret,
};
pub use encode::PlusPolicy;
pub use error::{Error, ErrorKind, MismatchDetails};
#[cfg(feature = "redis")]
pub use nonce::RedisNonceStore;
pub use nonce::{MemoryNonceStore, NonceStore};
pub use request::{Request, Response};
pub use rfc9421::{
    Rfc9421Algorithm, Rfc9421Key, Rfc9421Policy, Rfc9421Signer, SignatureParams, content_digest,
    parse_signature_input, verify_content_digest, verify_request_signature, verify_response,
};
pub use sigv4::{
    ParsedAuthorization, Presigned, SigV4Profile, Signed, SigningCredential, UNSIGNED_PAYLOAD,
    parse_authorization, presign, presign_detailed, sign, sign_detailed,
};
pub use verifier::{Verified, Verifier};
pub use webhook::{StandardWebhook, StripeWebhook, WEBHOOK_TOLERANCE};
