use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// An RFC 6749 §5.2 error code (with the RFC 8628 and RFC 7009 additions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`: a parameter is missing, repeated or malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (HTTP 401).
    InvalidClient,
    /// `invalid_grant`: the code, refresh token or device code is invalid, expired,
    /// revoked, reused, or was issued to another client.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`: a scope is unknown or wider than allowed.
    InvalidScope,
    /// `access_denied`: the user refused (device grant).
    AccessDenied,
    /// `unsupported_response_type` (authorization endpoint).
    UnsupportedResponseType,
    /// `authorization_pending` (device grant: keep polling).
    AuthorizationPending,
    /// `slow_down` (device grant: poll less often).
    SlowDown,
    /// `expired_token` (device grant: the device code expired).
    ExpiredToken,
    /// `unsupported_token_type` (revocation).
    UnsupportedTokenType,
    /// `server_error`: a backend failed.
    ServerError,
}

impl OAuthErrorCode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
        }
    }
}

/// An OAuth error response: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    #[serde(rename = "error", serialize_with = "ser_code")]
    code: OAuthErrorCode,
    #[serde(rename = "error_description")]
    description: Cow<'static, str>,
}

fn ser_code<S: serde::Serializer>(code: &OAuthErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.as_str())
}

impl OAuthError {
    /// An error with a description (never holding a secret).
    pub fn new(code: OAuthErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// The code.
    pub fn code(&self) -> OAuthErrorCode {
        self.code
    }

    /// The `error_description`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The HTTP status RFC 6749 prescribes: 401 for `invalid_client`, 500 for
    /// `server_error`, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self.code {
            OAuthErrorCode::InvalidClient => 401,
            OAuthErrorCode::ServerError => 500,
            _ => 400,
        }
    }

    pub(crate) fn invalid_request(d: &'static str) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, d)
    }
    pub(crate) fn invalid_grant(d: &'static str) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, d)
    }
    pub(crate) fn invalid_client() -> Self {
        Self::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        )
    }
}

impl From<crate::Error> for OAuthError {
    fn from(error: crate::Error) -> Self {
        tracing::error!(%error, "authorization server backend failure");
        Self::new(OAuthErrorCode::ServerError, "internal error")
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}
