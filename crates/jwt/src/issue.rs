//! Issuing RFC 9068 access tokens.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::keyring::KeyRing;
use crate::keys::random_token;
use crate::validate::unix;

/// Default access-token lifetime: 15 minutes.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Signs RFC 9068 access tokens (`typ: at+jwt`) with the key ring's current key.
#[derive(Debug, Clone)]
pub struct AccessTokenIssuer {
    issuer: String,
    audience: String,
    ttl: Duration,
    keys: Arc<KeyRing>,
}

/// A freshly signed access token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedAccessToken {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`, Unix seconds.
    pub expires_at: u64,
    /// Its lifetime in seconds (`expires_in`).
    pub expires_in: u64,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: &'a str,
    scope: &'a str,
    client_id: &'a str,
}

impl AccessTokenIssuer {
    /// An issuer of tokens for `audience`, valid for 15 minutes by default.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Arc<KeyRing>,
    ) -> Result<Self> {
        let (issuer, audience) = (issuer.into(), audience.into());
        if issuer.is_empty() || audience.is_empty() {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "issuer and audience must not be empty",
            ));
        }
        Ok(Self {
            issuer,
            audience,
            ttl: DEFAULT_ACCESS_TOKEN_TTL,
            keys,
        })
    }

    /// Sets the lifetime (between 1 minute and 24 hours).
    pub fn with_ttl(mut self, ttl: Duration) -> Result<Self> {
        if !(60..=86_400).contains(&ttl.as_secs()) {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "access token lifetime out of range",
            ));
        }
        self.ttl = ttl;
        Ok(self)
    }

    /// The lifetime of issued tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The key ring.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// Signs an access token for `subject` on behalf of `client_id` with `scope`.
    pub fn issue(
        &self,
        subject: &str,
        client_id: &str,
        scope: &str,
        now: SystemTime,
    ) -> Result<IssuedAccessToken> {
        let iat = unix(now);
        let expires_in = self.ttl.as_secs();
        let exp = iat.saturating_add(expires_in);
        let jti = random_token(16);
        let claims = Claims {
            iss: &self.issuer,
            sub: subject,
            aud: &self.audience,
            exp,
            iat,
            nbf: iat,
            jti: &jti,
            scope,
            client_id,
        };
        let token = self.keys.signing_key(now).encode("at+jwt", &claims)?;
        Ok(IssuedAccessToken {
            token,
            jti,
            expires_at: exp,
            expires_in,
        })
    }
}
