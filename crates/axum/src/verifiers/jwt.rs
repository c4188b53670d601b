use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::request::Parts;
use palisade_headers::{BearerError, Challenge};
use palisade_jwt::{AuthorizationServer, Blocklist, ErrorKind, OAuthStore};

use super::has_scheme;
use crate::authenticate::{AuthFailure, CredentialRequest, Verifier, VerifyFuture};
use crate::principal::{AuthMethod, Principal};

/// Authenticates `Authorization: Bearer <access token>` with
/// [`palisade_jwt::AuthorizationServer::verify_access_token`]: signature, `typ: at+jwt`,
/// issuer, audience, time claims, then the `jti` blocklist.
///
/// The principal's identity is the token's `client_id`, its owner the subject (`sub`),
/// its scopes the `scope` claim split on spaces; the method is [`AuthMethod::Bearer`], so
/// it never proves possession.
///
/// Refusals are 401 with an RFC 6750 challenge, `Bearer realm="api",
/// error="invalid_token", error_description="..."`, and the core crate's code as the
/// problem type (`expired`, `signature_mismatch`, `revoked`, ...). Two `Authorization`
/// headers are a malformed request: 400 with `error="invalid_request"`. A blocklist or
/// store that cannot answer is a 503 (fail closed).
///
/// ```
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use palisade_axum::{AuthenticateLayer, BearerVerifier};
/// use palisade_jwt::{
///     AuthorizationServer, AuthorizationServerConfig, KeyRing, MemoryBlocklist, MemoryStore,
///     RotationPolicy,
/// };
///
/// let keys = Arc::new(KeyRing::ephemeral(RotationPolicy::default(), SystemTime::now())?);
/// let config = AuthorizationServerConfig::new("https://auth.example", "https://api.example");
/// let server = Arc::new(AuthorizationServer::new(config, keys, MemoryStore::new(), MemoryBlocklist::new())?);
/// let layer = AuthenticateLayer::new().verifier(BearerVerifier::new(server));
/// # let _ = layer;
/// # Ok::<(), palisade_jwt::Error>(())
/// ```
pub struct BearerVerifier<S, B> {
    server: Arc<AuthorizationServer<S, B>>,
}

impl<S, B> std::fmt::Debug for BearerVerifier<S, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerVerifier").finish_non_exhaustive()
    }
}

impl<S, B> Clone for BearerVerifier<S, B> {
    fn clone(&self) -> Self {
        Self {
            server: Arc::clone(&self.server),
        }
    }
}

impl<S: OAuthStore, B: Blocklist> BearerVerifier<S, B> {
    /// Verifies with `server` (shared with the token endpoint that issues and revokes).
    pub fn new(server: Arc<AuthorizationServer<S, B>>) -> Self {
        Self { server }
    }
}

fn challenge(error: BearerError, description: &str) -> Challenge {
    Challenge::bearer()
        .realm("api")
        .error(error)
        .error_description(description)
}

fn invalid_token(code: &'static str, detail: &str) -> AuthFailure {
    AuthFailure::unauthorized(code, detail, challenge(BearerError::InvalidToken, detail))
}

impl<S, B> Verifier for BearerVerifier<S, B>
where
    S: OAuthStore + 'static,
    B: Blocklist + 'static,
{
    fn kind(&self) -> &'static str {
        "bearer"
    }

    fn is_present(&self, parts: &Parts) -> bool {
        parts
            .headers
            .get_all(AUTHORIZATION)
            .iter()
            .any(|value| has_scheme(value, "bearer"))
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        Box::pin(async move {
            let mut values = request.parts.headers.get_all(AUTHORIZATION).iter();
            let (Some(value), None) = (values.next(), values.next()) else {
                let detail = "send exactly one Authorization header";
                return Err(AuthFailure::with_challenge(
                    BearerError::InvalidRequest.status(),
                    "malformed",
                    detail,
                    challenge(BearerError::InvalidRequest, detail),
                ));
            };
            // "Bearer" plus one or more spaces, then the token (RFC 6750 §2.1). A value
            // that is not ASCII cannot be a JWT: the validator refuses the placeholder.
            let token = value
                .to_str()
                .ok()
                .and_then(|text| text.split_once(' '))
                .map_or("", |(_, token)| token.trim_matches(' '));
            if token.is_empty() {
                return Err(invalid_token(
                    "malformed_token",
                    "the bearer token is empty",
                ));
            }
            match self.server.verify_access_token(token, request.now).await {
                Ok(claims) => Ok(Principal::new(
                    claims.client_id.clone(),
                    claims.sub.clone(),
                    AuthMethod::Bearer,
                    claims.scopes(),
                )),
                Err(error) => Err(match error.kind() {
                    ErrorKind::Storage | ErrorKind::JwksUnavailable => AuthFailure::with_status(
                        503,
                        error.code(),
                        "token revocation cannot be checked right now; retry shortly",
                    ),
                    kind => invalid_token(error.code(), describe(kind)),
                }),
            }
        })
    }
}

/// A fixed, client-safe description per kind (never a claim value or key material).
fn describe(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Expired => "the access token expired",
        ErrorKind::NotYetValid | ErrorKind::IssuedInFuture => "the access token is not valid yet",
        ErrorKind::Revoked => "the access token was revoked",
        ErrorKind::WrongIssuer | ErrorKind::WrongAudience => {
            "the access token was issued for another service"
        }
        ErrorKind::WrongTokenType => "this token is not an access token",
        ErrorKind::SignatureMismatch | ErrorKind::UnknownKey | ErrorKind::KidRequired => {
            "the access token signature does not verify"
        }
        _ => "the access token is malformed or invalid",
    }
}
