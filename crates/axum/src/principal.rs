//! The one authenticated identity every handler sees.

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::authenticate::AuthOutcome;
use crate::problem::ProblemResponse;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `X-API-Key`.
    ApiKey,
    /// `Authorization: Bearer` with a JWT access token.
    Bearer,
    /// The `palisade` request-signing profile (HMAC over the request).
    PalisadeSignature,
    /// AWS Signature Version 4.
    AwsSignature,
    /// RFC 9421 HTTP Message Signatures.
    HttpMessageSignature,
    /// A verified TLS client certificate.
    ClientCertificate,
    /// HTTP Basic (development only).
    Basic,
}

impl AuthMethod {
    /// Whether the credential proves possession of a secret on every request (a
    /// signature over the request, or a TLS client key) rather than being a bearer
    /// string that anyone who saw it can replay. Administration requires this.
    pub fn proves_possession(self) -> bool {
        matches!(
            self,
            Self::PalisadeSignature
                | Self::AwsSignature
                | Self::HttpMessageSignature
                | Self::ClientCertificate
        )
    }

    /// A stable lower-case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Bearer => "bearer",
            Self::PalisadeSignature => "palisade_signature",
            Self::AwsSignature => "aws_signature",
            Self::HttpMessageSignature => "http_message_signature",
            Self::ClientCertificate => "client_certificate",
            Self::Basic => "basic",
        }
    }
}

/// The authenticated caller: who, how, and what they may do.
///
/// Whatever credential succeeded (a key record, token claims, a verified signature, a
/// peer certificate) becomes one `Principal`, so scope checks and rate-limit keys are
/// decided once, here, whatever the method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    identity: String,
    owner: String,
    method: AuthMethod,
    scopes: Vec<String>,
    plan: Option<String>,
}

impl Principal {
    /// A principal. `identity` names the credential (key id, client id, access key id,
    /// certificate identity); `owner` is whose data it may reach.
    pub fn new(
        identity: impl Into<String>,
        owner: impl Into<String>,
        method: AuthMethod,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            identity: identity.into(),
            owner: owner.into(),
            method,
            scopes: scopes.into_iter().map(Into::into).collect(),
            plan: None,
        }
    }

    /// Sets the rate-limit plan the credential belongs to.
    #[must_use]
    pub fn with_plan(mut self, plan: impl Into<String>) -> Self {
        self.plan = Some(plan.into());
        self
    }

    /// The credential's identity (never a secret).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whose resources the caller acts for (object-level authorization).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How the caller authenticated.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The rate-limit plan, if the credential has one.
    pub fn plan(&self) -> Option<&str> {
        self.plan.as_deref()
    }

    /// Whether `required` is granted: exactly, or by a family grant `family:*` covering
    /// `family:anything` (not `family` itself). `*` alone is not a wildcard: every grant
    /// names its family. This is the same rule as `palisade_apikey::scope_covers`.
    pub fn has_scope(&self, required: &str) -> bool {
        self.scopes
            .iter()
            .any(|granted| scope_covers(granted, required))
    }
}

fn scope_covers(granted: &str, required: &str) -> bool {
    if granted == required {
        return true;
    }
    match granted.strip_suffix(":*") {
        Some(family) if !family.is_empty() => required
            .strip_prefix(family)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|action| !action.is_empty() && !action.ends_with('*')),
        _ => false,
    }
}

/// Extracting a `Principal` in a handler fails when no authentication layer put one in
/// the request: with the refused credential's own failure (its status, 400, 401, 403 or
/// 503, and its challenge) when one was presented, else 401.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ProblemResponse;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        // A refused credential answers with its own failure (its status and challenge).
        match parts.extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Failed(failure)) => Err(failure.to_problem()),
            _ => Err(ProblemResponse::unauthenticated()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_grants_cover_their_family_only() {
        let principal = Principal::new(
            "k1",
            "alice",
            AuthMethod::ApiKey,
            ["orders:*", "users:read"],
        );
        assert!(principal.has_scope("orders:read"));
        assert!(principal.has_scope("orders:write"));
        assert!(principal.has_scope("users:read"));
        assert!(!principal.has_scope("users:write"));
        assert!(!principal.has_scope("ordersx:read"));
        assert!(!principal.has_scope("orders:"));
        assert!(!principal.has_scope("orders"));
        assert!(!principal.has_scope("admin"));
        assert!(principal.has_scope("orders:items:write"));
        assert!(
            !principal.has_scope("orders:x*"),
            "a wildcard is never granted by another"
        );
    }

    #[test]
    fn bare_star_grants_nothing() {
        let principal = Principal::new("k1", "alice", AuthMethod::ApiKey, ["*", ":*"]);
        assert!(!principal.has_scope("orders:read"));
        assert!(!principal.has_scope("admin"));
    }

    #[test]
    fn only_signatures_and_certificates_prove_possession() {
        assert!(!AuthMethod::ApiKey.proves_possession());
        assert!(!AuthMethod::Bearer.proves_possession());
        assert!(!AuthMethod::Basic.proves_possession());
        assert!(AuthMethod::PalisadeSignature.proves_possession());
        assert!(AuthMethod::AwsSignature.proves_possession());
        assert!(AuthMethod::HttpMessageSignature.proves_possession());
        assert!(AuthMethod::ClientCertificate.proves_possession());
    }
}
