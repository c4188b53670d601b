use std::sync::Arc;

use http::request::Parts;
use palisade_apikey::{ApiKeys, ErrorKind, KeyStore, VerifiedKey};
use palisade_headers::Challenge;

use crate::authenticate::{AuthFailure, CredentialRequest, Verifier, VerifyFuture};
use crate::principal::{AuthMethod, Principal};

/// The API-key header.
const HEADER: &str = "x-api-key";

/// Authenticates `X-API-Key` with [`palisade_apikey::ApiKeys`].
///
/// The principal's identity is the key id, its owner the key's owner, its plan the
/// key's plan name (or what [`ApiKeyVerifier::plan_name`] makes of the key). A key used from an address outside its allowed networks is a 403; every
/// other refusal is a 401 with an `ApiKey` challenge; a store that cannot answer is a
/// 503 (fail closed).
pub struct ApiKeyVerifier<S> {
    keys: Arc<ApiKeys<S>>,
    plan_name: fn(&VerifiedKey) -> String,
}

impl<S> std::fmt::Debug for ApiKeyVerifier<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyVerifier").finish_non_exhaustive()
    }
}

impl<S> ApiKeyVerifier<S> {
    /// Verifies with `keys` (shared with the code that creates and revokes them).
    pub fn new(keys: Arc<ApiKeys<S>>) -> Self {
        Self {
            keys,
            plan_name: |key| key.plan().name.clone(),
        }
    }

    /// Names the principal's plan from the verified key, e.g. to give a key with its
    /// own per-minute limit a plan of its own for the rate limiter.
    #[must_use]
    pub fn plan_name(mut self, name: fn(&VerifiedKey) -> String) -> Self {
        self.plan_name = name;
        self
    }
}

fn challenge() -> Challenge {
    // "ApiKey" is a valid token, so the fallback is never taken.
    Challenge::new("ApiKey")
        .unwrap_or_else(|_| Challenge::bearer())
        .realm("api")
}

impl<S: KeyStore + 'static> Verifier for ApiKeyVerifier<S> {
    fn kind(&self) -> &'static str {
        "api_key"
    }

    fn is_present(&self, parts: &Parts) -> bool {
        parts.headers.contains_key(HEADER)
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        Box::pin(async move {
            let headers = request.parts.headers.get_all(HEADER);
            let mut values = headers.iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                return Err(AuthFailure::unauthorized(
                    "malformed",
                    "send exactly one X-API-Key header",
                    challenge(),
                ));
            };
            // A non-UTF-8 value is simply a malformed key: the parser says so.
            let raw = value.to_str().unwrap_or("\u{fffd}");
            let address = request.client.map(|client| client.address);
            match self.keys.verify(Some(raw), address, request.now).await {
                Ok(key) => {
                    let principal = Principal::new(
                        key.key_id(),
                        key.owner(),
                        AuthMethod::ApiKey,
                        key.scopes().iter().cloned(),
                    )
                    .with_plan((self.plan_name)(&key));
                    Ok(principal)
                }
                Err(error) => Err(match error.kind() {
                    ErrorKind::AddressNotAllowed => AuthFailure::with_status(
                        403,
                        error.code(),
                        "this API key may not be used from this address",
                    ),
                    ErrorKind::Storage => AuthFailure::with_status(
                        503,
                        error.code(),
                        "the key store is unavailable; retry shortly",
                    ),
                    _ => AuthFailure::unauthorized(error.code(), error.to_string(), challenge()),
                }),
            }
        })
    }
}
