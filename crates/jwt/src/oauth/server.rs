use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::error::{OAuthError, OAuthErrorCode};
use super::pkce;
use crate::blocklist::Blocklist;
use crate::error::{Error, ErrorKind, Result};
use crate::issue::AccessTokenIssuer;
use crate::keyring::KeyRing;
use crate::keys::{Algorithm, random_bytes, random_token};
use crate::store::{
    AccessRecord, ClientRecord, CodeOutcome, CodeRecord, DeviceRecord, DeviceStatus, FamilyRecord,
    OAuthStore, RefreshRecord,
};
use crate::validate::{AccessTokenClaims, AccessTokenValidator, unix};

const REFRESH_PREFIX: &str = "prt_";
const DEVICE_PREFIX: &str = "pdc_";
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const MAX_PARAM_BYTES: usize = 4096;

/// An OAuth grant type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrantType {
    /// `client_credentials`.
    ClientCredentials,
    /// `authorization_code` (PKCE S256 required).
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628).
    DeviceCode,
}

impl GrantType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// Parses the wire spelling (and `device_code` as a short form).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_credentials" => Some(Self::ClientCredentials),
            "authorization_code" => Some(Self::AuthorizationCode),
            "refresh_token" => Some(Self::RefreshToken),
            "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => {
                Some(Self::DeviceCode)
            }
            _ => None,
        }
    }
}

/// Settings of the authorization server. Build with [`AuthorizationServerConfig::new`]
/// and adjust the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthorizationServerConfig {
    /// The issuer URL (`iss`), also the base of the endpoint URLs in the metadata.
    pub issuer: String,
    /// The audience of access tokens (`aud`).
    pub audience: String,
    /// Access-token lifetime (default 15 minutes).
    pub access_token_ttl: Duration,
    /// Lifetime of each refresh token (default 14 days).
    pub refresh_token_ttl: Duration,
    /// Absolute lifetime of a refresh-token family (default 90 days).
    pub family_lifetime: Duration,
    /// Authorization-code lifetime (default 60 s).
    pub code_ttl: Duration,
    /// Device-code lifetime (default 10 minutes).
    pub device_code_ttl: Duration,
    /// Minimum device polling interval (default 5 s).
    pub device_poll_interval: Duration,
    /// Grace window in which the immediate parent of the current refresh token may be
    /// presented again and gets the same new pair back (default: off).
    pub refresh_grace: Option<Duration>,
    /// Where users enter device user codes (default `<issuer>/oauth/device`).
    pub verification_uri: String,
}

impl AuthorizationServerConfig {
    /// Defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let issuer: String = issuer.into();
        let base = issuer.trim_end_matches('/').to_owned();
        Self {
            audience: audience.into(),
            access_token_ttl: crate::issue::DEFAULT_ACCESS_TOKEN_TTL,
            refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            family_lifetime: Duration::from_secs(90 * 24 * 3600),
            code_ttl: Duration::from_secs(60),
            device_code_ttl: Duration::from_secs(600),
            device_poll_interval: Duration::from_secs(5),
            refresh_grace: None,
            verification_uri: format!("{base}/oauth/device"),
            issuer,
        }
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer.trim_end_matches('/'))
    }
}

/// What registering a client takes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientRegistration {
    /// A display name.
    pub name: String,
    /// Grant types allowed.
    pub grant_types: Vec<GrantType>,
    /// Exact redirect URIs (required for `authorization_code`).
    pub redirect_uris: Vec<String>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// A public client (no secret; PKCE is its only protection). Public clients cannot
    /// use `client_credentials` or introspection.
    pub public: bool,
}

impl ClientRegistration {
    /// A confidential client named `name` with these grants and scopes.
    pub fn new(name: impl Into<String>, grant_types: Vec<GrantType>, scopes: Vec<String>) -> Self {
        Self {
            name: name.into(),
            grant_types,
            redirect_uris: Vec::new(),
            scopes,
            public: false,
        }
    }

    /// Adds exact redirect URIs.
    pub fn with_redirect_uris(mut self, uris: Vec<String>) -> Self {
        self.redirect_uris = uris;
        self
    }

    /// Makes it a public client.
    pub fn public(mut self) -> Self {
        self.public = true;
        self
    }
}

/// A newly registered client: its id, and its secret shown this once.
#[derive(Clone)]
#[non_exhaustive]
pub struct RegisteredClient {
    /// The client id.
    pub client_id: String,
    /// The secret (`None` for a public client). Only its hash is stored.
    pub client_secret: Option<Zeroizing<String>>,
}

impl fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token (an RFC 9068 JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The new refresh token, when one is issued.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refresh_token: Option<String>,
    /// The granted scope.
    pub scope: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .finish()
    }
}

/// The RFC 8628 device authorization response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceAuthorizationResponse {
    /// The device code the client polls with.
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the user code filled in.
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Minimum seconds between polls.
    pub interval: u64,
}

/// An RFC 7662 introspection response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IntrospectionResponse {
    /// Whether the token is active.
    pub active: bool,
    /// Scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issue time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not-before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audiences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// RFC 8414 authorization server metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// Issuer.
    pub issuer: String,
    /// `/oauth/authorize`.
    pub authorization_endpoint: String,
    /// `/oauth/token`.
    pub token_endpoint: String,
    /// `/oauth/device_authorization`.
    pub device_authorization_endpoint: String,
    /// `/oauth/revoke`.
    pub revocation_endpoint: String,
    /// `/oauth/introspect`.
    pub introspection_endpoint: String,
    /// `/.well-known/jwks.json`.
    pub jwks_uri: String,
    /// `code`.
    pub response_types_supported: Vec<String>,
    /// The four grants.
    pub grant_types_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Same as the token endpoint's.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// `S256` only.
    pub code_challenge_methods_supported: Vec<String>,
    /// The access-token signing algorithm.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 9207: the `iss` parameter is sent with authorization responses.
    pub authorization_response_iss_parameter_supported: bool,
}

/// How an authorization request fails.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// Answer directly (HTTP 400), never redirect: the client or redirect URI is not
    /// trustworthy.
    Direct(OAuthError),
    /// Redirect (HTTP 302) to this location, which carries `error` and `state`.
    Redirect(String),
}

/// The authorization server: token, authorization, device, revocation and
/// introspection endpoints as plain async functions over parsed form parameters.
///
/// Form parameters come as a map: the HTTP layer must refuse a request that repeats a
/// parameter (RFC 6749 §3.1) before building it.
pub struct AuthorizationServer<S, B> {
    config: AuthorizationServerConfig,
    store: S,
    blocklist: B,
    issuer: AccessTokenIssuer,
    validator: AccessTokenValidator,
    verified: VerifiedTokens,
}

/// Entries kept by [`VerifiedTokens`] before it starts over.
const VERIFIED_CAPACITY: usize = 8192;

/// Access tokens whose signature and claims were verified, by SHA-256 of the token, so
/// that a token presented again costs a hash and a lookup instead of an ECDSA
/// verification (about 70 us). An entry is tied to the key set it was verified with: a
/// rotation or retirement of keys (a new `KeySet`) misses. Time claims are checked again
/// on every use, and the blocklist is always consulted.
#[derive(Default)]
struct VerifiedTokens {
    entries: std::sync::Mutex<HashMap<[u8; 32], VerifiedEntry>>,
}

/// The key set a token was verified with, and its claims.
type VerifiedEntry = (Arc<crate::keys::KeySet>, AccessTokenClaims);

impl VerifiedTokens {
    fn get(&self, hash: &[u8; 32], keys: &Arc<crate::keys::KeySet>) -> Option<AccessTokenClaims> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (set, claims) = entries.get(hash)?;
        Arc::ptr_eq(set, keys).then(|| claims.clone())
    }

    fn put(&self, hash: [u8; 32], keys: Arc<crate::keys::KeySet>, claims: AccessTokenClaims) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: start over rather than grow (the next uses verify again).
        if entries.len() >= VERIFIED_CAPACITY {
            entries.clear();
        }
        entries.insert(hash, (keys, claims));
    }
}

impl<S, B> fmt::Debug for AuthorizationServer<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type Form = HashMap<String, String>;

fn sha256_hex(s: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, s.as_bytes()))
}

fn param<'a>(
    form: &'a Form,
    name: &'static str,
) -> std::result::Result<Option<&'a str>, OAuthError> {
    match form.get(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.len() > MAX_PARAM_BYTES => {
            Err(OAuthError::invalid_request("parameter too long"))
        }
        Some(v) => Ok(Some(v.as_str())),
    }
}

fn required_param<'a>(
    form: &'a Form,
    name: &'static str,
) -> std::result::Result<&'a str, OAuthError> {
    param(form, name)?.ok_or_else(|| {
        OAuthError::new(
            OAuthErrorCode::InvalidRequest,
            format!("missing parameter {name}"),
        )
    })
}

fn valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The granted scope: the request's (each one allowed) or, without one, all allowed.
fn resolve_scope(
    requested: Option<&str>,
    allowed: &[String],
) -> std::result::Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.join(" "));
    };
    let mut out: Vec<&str> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !valid_scope_token(scope) || !allowed.iter().any(|a| a == scope) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "scope not allowed",
            ));
        }
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if out.is_empty() {
        return Err(OAuthError::new(OAuthErrorCode::InvalidScope, "empty scope"));
    }
    Ok(out.join(" "))
}

fn valid_redirect_uri(uri: &str) -> bool {
    if uri.len() > 2000
        || uri.contains('#')
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let loopback = ["http://localhost", "http://127.0.0.1", "http://[::1]"];
    if uri.starts_with("https://") && uri.len() > "https://".len() {
        return true;
    }
    if loopback.iter().any(|l| {
        uri.strip_prefix(l)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(':') || rest.starts_with('/'))
    }) {
        return true;
    }
    // Private-use schemes of native apps (RFC 8252 §7.1), reverse domain names.
    uri.split_once(':').is_some_and(|(scheme, _)| {
        scheme.contains('.')
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    })
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(header: &str) -> Option<Option<(String, Zeroizing<String>)>> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Some(None);
    }
    let decoded = Zeroizing::new(STANDARD.decode(rest.trim()).ok()?);
    let text = std::str::from_utf8(&decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some(Some((
        form_decode(id)?,
        Zeroizing::new(form_decode(secret)?),
    )))
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&percent_encode(v));
        sep = '&';
    }
    out
}

fn retry_key(parent_raw: &str) -> Option<LessSafeKey> {
    // Derived from the parent token itself (not from its stored hash), so only whoever
    // presents the parent can read the stored response.
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, parent_raw.as_bytes()),
        b"palisade-jwt refresh retry v1",
    );
    UnboundKey::new(&AES_256_GCM, tag.as_ref())
        .ok()
        .map(LessSafeKey::new)
}

fn seal_retry(parent_raw: &str, parent_hash: &str, response: &TokenResponse) -> Option<String> {
    let key = retry_key(parent_raw)?;
    let nonce: [u8; 12] = random_bytes();
    let mut data = Zeroizing::new(serde_json::to_vec(response).ok()?);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(parent_hash.as_bytes()),
        &mut *data,
    )
    .ok()?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&data);
    Some(URL_SAFE_NO_PAD.encode(blob))
}

fn open_retry(parent_raw: &str, parent_hash: &str, blob: &str) -> Option<TokenResponse> {
    let key = retry_key(parent_raw)?;
    let mut bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(blob).ok()?);
    let nonce: [u8; 12] = bytes.get(..12)?.try_into().ok()?;
    let sealed = bytes.get_mut(12..)?;
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(parent_hash.as_bytes()),
            sealed,
        )
        .ok()?;
    serde_json::from_slice(plain).ok()
}

fn user_code() -> String {
    let mut out = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            out.push('-');
        }
        let index = rand::random_range(0..USER_CODE_ALPHABET.len());
        out.push(char::from(
            USER_CODE_ALPHABET.get(index).copied().unwrap_or(b'B'),
        ));
    }
    out
}

fn normalize_user_code(input: &str) -> Option<String> {
    let chars: Vec<char> = input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if chars.len() != 8
        || !chars
            .iter()
            .all(|c| c.is_ascii() && USER_CODE_ALPHABET.contains(&(*c as u8)))
    {
        return None;
    }
    let mut out: String = chars.iter().take(4).collect();
    out.push('-');
    out.extend(chars.iter().skip(4));
    Some(out)
}

impl<S: OAuthStore, B: Blocklist> AuthorizationServer<S, B> {
    /// An authorization server signing with `keys`, keeping state in `store` and
    /// revocations in `blocklist`.
    pub fn new(
        config: AuthorizationServerConfig,
        keys: Arc<KeyRing>,
        store: S,
        blocklist: B,
    ) -> Result<Self> {
        let issuer = AccessTokenIssuer::new(config.issuer.clone(), config.audience.clone(), keys)?
            .with_ttl(config.access_token_ttl)?;
        let validator = AccessTokenValidator::new(
            config.issuer.clone(),
            config.audience.clone(),
            &[
                Algorithm::ES256,
                Algorithm::EdDSA,
                Algorithm::RS256,
                Algorithm::PS256,
            ],
        )?;
        if config
            .refresh_grace
            .is_some_and(|g| g > Duration::from_secs(300))
        {
            return Err(Error::with(
                ErrorKind::InvalidConfig,
                "refresh grace window above 5 minutes",
            ));
        }
        Ok(Self {
            config,
            store,
            blocklist,
            issuer,
            validator,
            verified: VerifiedTokens::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AuthorizationServerConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The blocklist.
    pub fn blocklist(&self) -> &B {
        &self.blocklist
    }

    /// The key ring.
    pub fn keys(&self) -> &Arc<KeyRing> {
        self.issuer.keys()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        self.keys().jwks()
    }

    /// Registers a client; the secret is returned once and only its hash is stored.
    pub async fn register_client(
        &self,
        reg: ClientRegistration,
        now: SystemTime,
    ) -> Result<RegisteredClient> {
        let invalid = |what: &'static str| Error::with(ErrorKind::InvalidConfig, what);
        if reg.grant_types.is_empty() {
            return Err(invalid("a client needs at least one grant type"));
        }
        if reg.scopes.iter().any(|s| !valid_scope_token(s)) {
            return Err(invalid("invalid scope name"));
        }
        if reg.redirect_uris.iter().any(|u| !valid_redirect_uri(u)) {
            return Err(invalid(
                "redirect URIs must be https, loopback http, or a private-use scheme, without a fragment",
            ));
        }
        if reg.grant_types.contains(&GrantType::AuthorizationCode) && reg.redirect_uris.is_empty() {
            return Err(invalid("authorization_code needs a redirect URI"));
        }
        if reg.public && reg.grant_types.contains(&GrantType::ClientCredentials) {
            return Err(invalid("a public client cannot use client_credentials"));
        }
        let client_id = format!("cl_{}", random_token(16));
        let secret = (!reg.public).then(|| Zeroizing::new(format!("cs_{}", random_token(32))));
        self.store
            .put_client(ClientRecord {
                client_id: client_id.clone(),
                secret_hash: secret.as_deref().map(|s| sha256_hex(s)),
                name: reg.name,
                grant_types: reg
                    .grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
                redirect_uris: reg.redirect_uris,
                scopes: reg.scopes,
                created_at: unix(now),
            })
            .await?;
        Ok(RegisteredClient {
            client_id,
            client_secret: secret,
        })
    }

    /// Authenticates the client of a request by `client_secret_basic` (the
    /// `Authorization` header value) or `client_secret_post`; a public client by its
    /// `client_id` alone. Using both methods at once is `invalid_request`.
    pub async fn authenticate_client(
        &self,
        form: &Form,
        authorization: Option<&str>,
    ) -> std::result::Result<ClientRecord, OAuthError> {
        let basic = match authorization {
            Some(header) => parse_basic(header).ok_or_else(OAuthError::invalid_client)?,
            None => None,
        };
        let post_secret = param(form, "client_secret")?;
        let form_id = param(form, "client_id")?;
        let (client_id, secret): (String, Option<Zeroizing<String>>) = match (basic, post_secret) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "more than one client authentication method",
                ));
            }
            (Some((id, secret)), None) => {
                if form_id.is_some_and(|f| f != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id disagrees with the credentials",
                    ));
                }
                (id, Some(secret))
            }
            (None, Some(secret)) => (
                form_id.ok_or_else(OAuthError::invalid_client)?.to_owned(),
                Some(Zeroizing::new(secret.to_owned())),
            ),
            (None, None) => (
                form_id.ok_or_else(OAuthError::invalid_client)?.to_owned(),
                None,
            ),
        };
        let client = self.store.get_client(&client_id).await?;
        let presented = secret.as_deref().map(|s| sha256_hex(s));
        match (client, presented) {
            (Some(client), Some(presented)) => {
                let expected = client.secret_hash.as_deref().unwrap_or("");
                if bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
                    && !expected.is_empty()
                {
                    Ok(client)
                } else {
                    Err(OAuthError::invalid_client())
                }
            }
            (Some(client), None) if client.secret_hash.is_none() => Ok(client),
            _ => Err(OAuthError::invalid_client()),
        }
    }

    /// The token endpoint (`POST /oauth/token`).
    pub async fn token(
        &self,
        form: &Form,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let grant = required_param(form, "grant_type")?;
        let grant = GrantType::parse(grant).ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "unsupported grant_type",
            )
        })?;
        let client = self.authenticate_client(form, authorization).await?;
        let allowed = |g: GrantType| client.grant_types.iter().any(|c| c == g.as_str());
        match grant {
            GrantType::ClientCredentials => {
                if client.secret_hash.is_none() || !allowed(grant) {
                    return Err(OAuthError::new(
                        OAuthErrorCode::UnauthorizedClient,
                        "grant not allowed for this client",
                    ));
                }
                let scope = resolve_scope(param(form, "scope")?, &client.scopes)?;
                let access =
                    self.issuer
                        .issue(&client.client_id, &client.client_id, &scope, now)?;
                Ok(TokenResponse {
                    access_token: access.token,
                    token_type: "Bearer".into(),
                    expires_in: access.expires_in,
                    refresh_token: None,
                    scope,
                })
            }
            GrantType::AuthorizationCode => {
                if !allowed(grant) {
                    return Err(OAuthError::new(
                        OAuthErrorCode::UnauthorizedClient,
                        "grant not allowed for this client",
                    ));
                }
                self.exchange_code(&client, form, now).await
            }
            GrantType::RefreshToken => self.refresh(&client, form, now).await,
            GrantType::DeviceCode => {
                if !allowed(grant) {
                    return Err(OAuthError::new(
                        OAuthErrorCode::UnauthorizedClient,
                        "grant not allowed for this client",
                    ));
                }
                self.poll_device(&client, form, now).await
            }
        }
    }

    async fn issue_with_family(
        &self,
        client_id: &str,
        subject: &str,
        scope: &str,
        family_id: String,
        now: SystemTime,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let secs = unix(now);
        let access = self.issuer.issue(subject, client_id, scope, now)?;
        let raw = Zeroizing::new(format!("{REFRESH_PREFIX}{}", random_token(32)));
        let family_expires = secs.saturating_add(self.config.family_lifetime.as_secs());
        let family = FamilyRecord {
            family_id: family_id.clone(),
            client_id: client_id.to_owned(),
            subject: subject.to_owned(),
            scope: scope.to_owned(),
            created_at: secs,
            expires_at: family_expires,
            revoked_at: None,
        };
        let first = RefreshRecord {
            token_hash: sha256_hex(&raw),
            family_id: family_id.clone(),
            parent_hash: None,
            issued_at: secs,
            expires_at: secs
                .saturating_add(self.config.refresh_token_ttl.as_secs())
                .min(family_expires),
            used_at: None,
            replaced_by: None,
            retry_blob: None,
        };
        let record = AccessRecord {
            jti: access.jti,
            family_id,
            expires_at: access.expires_at,
        };
        self.store.create_family(family, first, record).await?;
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer".into(),
            expires_in: access.expires_in,
            refresh_token: Some(raw.to_string()),
            scope: scope.to_owned(),
        })
    }

    /// Revokes a family and blocklists every live access token issued in it.
    async fn revoke_family(&self, family_id: &str, now: SystemTime) -> Result<()> {
        let live = self.store.revoke_family(family_id, unix(now)).await?;
        for access in live {
            self.blocklist
                .revoke(&access.jti, access.expires_at, now)
                .await?;
        }
        Ok(())
    }

    async fn exchange_code(
        &self,
        client: &ClientRecord,
        form: &Form,
        now: SystemTime,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let code = required_param(form, "code")?;
        let redirect_uri = required_param(form, "redirect_uri")?;
        let verifier = required_param(form, "code_verifier")?;
        let family_id = random_token(16);
        match self
            .store
            .consume_code(&sha256_hex(code), &family_id, unix(now))
            .await?
        {
            CodeOutcome::Missing => Err(OAuthError::invalid_grant("unknown authorization code")),
            CodeOutcome::Reused(record) => {
                if let Some(family) = &record.family_id {
                    self.revoke_family(family, now).await?;
                }
                tracing::warn!(client_id = %record.client_id, "authorization code replayed; its tokens are revoked");
                Err(OAuthError::invalid_grant("authorization code already used"))
            }
            CodeOutcome::Fresh(record) => {
                if record.client_id != client.client_id {
                    return Err(OAuthError::invalid_grant("code issued to another client"));
                }
                if record.expires_at <= unix(now) {
                    return Err(OAuthError::invalid_grant("authorization code expired"));
                }
                if record.redirect_uri != redirect_uri {
                    return Err(OAuthError::invalid_grant("redirect_uri does not match"));
                }
                if !pkce::verify_pkce_s256(verifier, &record.code_challenge) {
                    return Err(OAuthError::invalid_grant("PKCE verification failed"));
                }
                self.issue_with_family(
                    &client.client_id,
                    &record.subject,
                    &record.scope,
                    family_id,
                    now,
                )
                .await
            }
        }
    }

    async fn refresh(
        &self,
        client: &ClientRecord,
        form: &Form,
        now: SystemTime,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let raw = required_param(form, "refresh_token")?;
        let requested_scope = param(form, "scope")?;
        let hash = sha256_hex(raw);
        let secs = unix(now);
        // Two rounds at most: losing the compare-and-swap to a concurrent rotation sends
        // us back to read the token again, which is then a reuse.
        for _ in 0..2 {
            let Some((token, family)) = self.store.get_refresh(&hash).await? else {
                return Err(OAuthError::invalid_grant("unknown refresh token"));
            };
            if family.client_id != client.client_id {
                return Err(OAuthError::invalid_grant(
                    "refresh token issued to another client",
                ));
            }
            if family.revoked_at.is_some() {
                return Err(OAuthError::invalid_grant("refresh token revoked"));
            }
            if let Some(used_at) = token.used_at {
                if let Some(response) = self.grace_retry(raw, &token, used_at, secs).await? {
                    return Ok(response);
                }
                self.revoke_family(&family.family_id, now).await?;
                tracing::warn!(client_id = %family.client_id, "refresh token reused; its family is revoked");
                return Err(OAuthError::invalid_grant("refresh token already used"));
            }
            if token.expires_at <= secs || family.expires_at <= secs {
                return Err(OAuthError::invalid_grant("refresh token expired"));
            }
            let granted: Vec<String> = family
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let scope = resolve_scope(requested_scope, &granted)?;
            let access = self
                .issuer
                .issue(&family.subject, &family.client_id, &scope, now)?;
            let new_raw = Zeroizing::new(format!("{REFRESH_PREFIX}{}", random_token(32)));
            let response = TokenResponse {
                access_token: access.token,
                token_type: "Bearer".into(),
                expires_in: access.expires_in,
                refresh_token: Some(new_raw.to_string()),
                scope,
            };
            let retry_blob = self
                .config
                .refresh_grace
                .and_then(|_| seal_retry(raw, &hash, &response));
            let new = RefreshRecord {
                token_hash: sha256_hex(&new_raw),
                family_id: family.family_id.clone(),
                parent_hash: Some(hash.clone()),
                issued_at: secs,
                expires_at: secs
                    .saturating_add(self.config.refresh_token_ttl.as_secs())
                    .min(family.expires_at),
                used_at: None,
                replaced_by: None,
                retry_blob: None,
            };
            let record = AccessRecord {
                jti: access.jti,
                family_id: family.family_id.clone(),
                expires_at: access.expires_at,
            };
            if self
                .store
                .rotate_refresh(&hash, new, retry_blob, record, secs)
                .await?
            {
                return Ok(response);
            }
        }
        Err(OAuthError::invalid_grant("refresh token already used"))
    }

    /// Within the grace window, the immediate parent of the family's current token gets
    /// the same pair back.
    async fn grace_retry(
        &self,
        raw: &str,
        token: &RefreshRecord,
        used_at: u64,
        now: u64,
    ) -> Result<Option<TokenResponse>> {
        let Some(grace) = self.config.refresh_grace else {
            return Ok(None);
        };
        let (Some(child_hash), Some(blob)) = (&token.replaced_by, &token.retry_blob) else {
            return Ok(None);
        };
        if now > used_at.saturating_add(grace.as_secs()) {
            return Ok(None);
        }
        let child_unused = self
            .store
            .get_refresh(child_hash)
            .await?
            .is_some_and(|(child, _)| child.used_at.is_none());
        if !child_unused {
            return Ok(None);
        }
        Ok(open_retry(raw, &token.token_hash, blob))
    }

    /// The authorization endpoint (`GET /oauth/authorize`) after the server has
    /// authenticated the user as `subject` (and obtained consent). Returns the redirect
    /// location carrying `code`, `state` and `iss`.
    pub async fn authorize(
        &self,
        params: &Form,
        subject: &str,
        now: SystemTime,
    ) -> std::result::Result<String, AuthorizeError> {
        let direct = AuthorizeError::Direct;
        let client_id = required_param(params, "client_id").map_err(direct)?;
        let redirect_uri = required_param(params, "redirect_uri").map_err(direct)?;
        let client = self
            .store
            .get_client(client_id)
            .await
            .map_err(|e| direct(e.into()))?
            .ok_or_else(|| {
                direct(OAuthError::new(
                    OAuthErrorCode::InvalidClient,
                    "unknown client",
                ))
            })?;
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(direct(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            )));
        }
        let state = param(params, "state").ok().flatten();
        let fail = |code: OAuthErrorCode, description: &str| {
            let mut pairs = vec![("error", code.as_str()), ("error_description", description)];
            if let Some(state) = state {
                pairs.push(("state", state));
            }
            pairs.push(("iss", &self.config.issuer));
            AuthorizeError::Redirect(with_query(redirect_uri, &pairs))
        };
        if param(params, "response_type").ok().flatten() != Some("code") {
            return Err(fail(
                OAuthErrorCode::UnsupportedResponseType,
                "response_type must be code",
            ));
        }
        if !client
            .grant_types
            .iter()
            .any(|g| g == GrantType::AuthorizationCode.as_str())
        {
            return Err(fail(
                OAuthErrorCode::UnauthorizedClient,
                "client may not use authorization_code",
            ));
        }
        let challenge = param(params, "code_challenge").ok().flatten();
        let method = param(params, "code_challenge_method").ok().flatten();
        let Some(challenge) = challenge.filter(|c| pkce::valid_challenge(c)) else {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "code_challenge (S256) is required",
            ));
        };
        if method != Some("S256") {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
        let scope = match param(params, "scope").ok().flatten().map_or_else(
            || resolve_scope(None, &client.scopes),
            |s| resolve_scope(Some(s), &client.scopes),
        ) {
            Ok(scope) => scope,
            Err(_) => return Err(fail(OAuthErrorCode::InvalidScope, "scope not allowed")),
        };
        let code = Zeroizing::new(random_token(32));
        self.store
            .put_code(CodeRecord {
                code_hash: sha256_hex(&code),
                client_id: client.client_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                scope,
                subject: subject.to_owned(),
                code_challenge: challenge.to_owned(),
                expires_at: unix(now).saturating_add(self.config.code_ttl.as_secs()),
                used_at: None,
                family_id: None,
            })
            .await
            .map_err(|e| direct(e.into()))?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.config.issuer));
        Ok(with_query(redirect_uri, &pairs))
    }

    /// The device authorization endpoint (`POST /oauth/device_authorization`, RFC 8628).
    pub async fn device_authorization(
        &self,
        form: &Form,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> std::result::Result<DeviceAuthorizationResponse, OAuthError> {
        let client = self.authenticate_client(form, authorization).await?;
        if !client
            .grant_types
            .iter()
            .any(|g| g == GrantType::DeviceCode.as_str())
        {
            return Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "client may not use the device grant",
            ));
        }
        let scope = resolve_scope(param(form, "scope")?, &client.scopes)?;
        let device_code = Zeroizing::new(format!("{DEVICE_PREFIX}{}", random_token(32)));
        let user_code = user_code();
        let expires_in = self.config.device_code_ttl.as_secs();
        let interval = self.config.device_poll_interval.as_secs().max(1);
        self.store
            .put_device(DeviceRecord {
                device_code_hash: sha256_hex(&device_code),
                user_code: user_code.clone(),
                client_id: client.client_id,
                scope,
                expires_at: unix(now).saturating_add(expires_in),
                interval,
                last_poll: None,
                status: DeviceStatus::Pending,
                subject: None,
            })
            .await?;
        Ok(DeviceAuthorizationResponse {
            device_code: device_code.to_string(),
            verification_uri_complete: with_query(
                &self.config.verification_uri,
                &[("user_code", &user_code)],
            ),
            user_code,
            verification_uri: self.config.verification_uri.clone(),
            expires_in,
            interval,
        })
    }

    /// Records the user's decision on a device grant (`POST /oauth/device`), after the
    /// server authenticated the user as `subject`.
    pub async fn device_decision(
        &self,
        user_code: &str,
        subject: &str,
        approve: bool,
        now: SystemTime,
    ) -> std::result::Result<(), OAuthError> {
        let code = normalize_user_code(user_code)
            .ok_or_else(|| OAuthError::invalid_request("malformed user_code"))?;
        if self
            .store
            .decide_device(&code, approve, subject, unix(now))
            .await?
        {
            Ok(())
        } else {
            Err(OAuthError::invalid_grant(
                "unknown, expired or already decided user_code",
            ))
        }
    }

    async fn poll_device(
        &self,
        client: &ClientRecord,
        form: &Form,
        now: SystemTime,
    ) -> std::result::Result<TokenResponse, OAuthError> {
        let device_code = required_param(form, "device_code")?;
        let hash = sha256_hex(device_code);
        let secs = unix(now);
        let Some(device) = self.store.get_device(&hash).await? else {
            return Err(OAuthError::invalid_grant("unknown device_code"));
        };
        if device.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "device_code issued to another client",
            ));
        }
        if device.expires_at <= secs {
            return Err(OAuthError::new(
                OAuthErrorCode::ExpiredToken,
                "device_code expired",
            ));
        }
        if device
            .last_poll
            .is_some_and(|last| secs < last.saturating_add(device.interval))
        {
            let interval = device.interval.saturating_add(5);
            self.store.record_device_poll(&hash, secs, interval).await?;
            return Err(OAuthError::new(
                OAuthErrorCode::SlowDown,
                "polling too fast",
            ));
        }
        self.store
            .record_device_poll(&hash, secs, device.interval)
            .await?;
        match device.status {
            DeviceStatus::Pending => Err(OAuthError::new(
                OAuthErrorCode::AuthorizationPending,
                "waiting for the user",
            )),
            DeviceStatus::Denied => Err(OAuthError::new(
                OAuthErrorCode::AccessDenied,
                "the user denied the request",
            )),
            DeviceStatus::Consumed => Err(OAuthError::invalid_grant("device_code already used")),
            DeviceStatus::Approved => {
                if !self.store.consume_device(&hash).await? {
                    return Err(OAuthError::invalid_grant("device_code already used"));
                }
                let subject = device.subject.unwrap_or_default();
                self.issue_with_family(
                    &client.client_id,
                    &subject,
                    &device.scope,
                    random_token(16),
                    now,
                )
                .await
            }
        }
    }

    /// Validates a bearer access token and checks the blocklist: what the API calls on
    /// every request.
    pub async fn verify_access_token(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<AccessTokenClaims> {
        let keys = self.keys().key_set();
        let hash: [u8; 32] = digest::digest(&digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .map_err(|_| Error::new(ErrorKind::Malformed))?;
        let claims = match self.verified.get(&hash, &keys) {
            Some(claims) => {
                self.validator
                    .check_times(claims.exp, claims.nbf, Some(claims.iat), now)?;
                claims
            }
            None => {
                let claims = self.validator.validate(token, &keys, now)?;
                self.verified.put(hash, Arc::clone(&keys), claims.clone());
                claims
            }
        };
        if self.blocklist.is_revoked(&claims.jti, now).await? {
            return Err(Error::new(ErrorKind::Revoked));
        }
        Ok(claims)
    }

    /// The revocation endpoint (`POST /oauth/revoke`, RFC 7009). Unknown tokens, and
    /// tokens of other clients, are answered with success and left alone, so the
    /// endpoint reveals nothing.
    pub async fn revoke(
        &self,
        form: &Form,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> std::result::Result<(), OAuthError> {
        let client = self.authenticate_client(form, authorization).await?;
        let token = required_param(form, "token")?;
        if token.starts_with(REFRESH_PREFIX) {
            if let Some((_, family)) = self.store.get_refresh(&sha256_hex(token)).await?
                && family.client_id == client.client_id
            {
                self.revoke_family(&family.family_id, now).await?;
            }
            return Ok(());
        }
        if let Ok(claims) = self
            .validator
            .validate_ignoring_time(token, &self.keys().key_set())
            && claims.client_id == client.client_id
        {
            self.blocklist.revoke(&claims.jti, claims.exp, now).await?;
        }
        Ok(())
    }

    /// The introspection endpoint (`POST /oauth/introspect`, RFC 7662); only
    /// confidential clients may call it.
    pub async fn introspect(
        &self,
        form: &Form,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> std::result::Result<IntrospectionResponse, OAuthError> {
        let client = self.authenticate_client(form, authorization).await?;
        if client.secret_hash.is_none() {
            return Err(OAuthError::invalid_client());
        }
        let token = required_param(form, "token")?;
        let inactive = IntrospectionResponse::default();
        if token.starts_with(REFRESH_PREFIX) {
            let secs = unix(now);
            return Ok(match self.store.get_refresh(&sha256_hex(token)).await? {
                Some((record, family))
                    if family.client_id == client.client_id
                        && record.used_at.is_none()
                        && family.revoked_at.is_none()
                        && record.expires_at > secs =>
                {
                    IntrospectionResponse {
                        active: true,
                        scope: Some(family.scope),
                        client_id: Some(family.client_id),
                        sub: Some(family.subject),
                        exp: Some(record.expires_at),
                        iat: Some(record.issued_at),
                        token_type: Some("refresh_token".into()),
                        iss: Some(self.config.issuer.clone()),
                        ..IntrospectionResponse::default()
                    }
                }
                _ => inactive,
            });
        }
        match self.verify_access_token(token, now).await {
            Ok(claims) => Ok(IntrospectionResponse {
                active: true,
                scope: Some(claims.scope),
                client_id: Some(claims.client_id),
                sub: Some(claims.sub),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                nbf: claims.nbf,
                token_type: Some("Bearer".into()),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
                jti: Some(claims.jti),
            }),
            Err(error) if error.kind() == ErrorKind::Storage => Err(error.into()),
            Err(_) => Ok(inactive),
        }
    }

    /// RFC 8414 metadata (`GET /.well-known/oauth-authorization-server`).
    pub fn metadata(&self) -> AuthorizationServerMetadata {
        let c = &self.config;
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let auth_methods = strings(&["client_secret_basic", "client_secret_post", "none"]);
        AuthorizationServerMetadata {
            issuer: c.issuer.clone(),
            authorization_endpoint: c.endpoint("/oauth/authorize"),
            token_endpoint: c.endpoint("/oauth/token"),
            device_authorization_endpoint: c.endpoint("/oauth/device_authorization"),
            revocation_endpoint: c.endpoint("/oauth/revoke"),
            introspection_endpoint: c.endpoint("/oauth/introspect"),
            jwks_uri: c.endpoint("/.well-known/jwks.json"),
            response_types_supported: strings(&["code"]),
            grant_types_supported: [
                GrantType::ClientCredentials,
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::DeviceCode,
            ]
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect(),
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            revocation_endpoint_auth_methods_supported: auth_methods,
            introspection_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
            ]),
            code_challenge_methods_supported: strings(&["S256"]),
            token_endpoint_auth_signing_alg_values_supported: vec![
                self.keys()
                    .signing_key(SystemTime::UNIX_EPOCH)
                    .algorithm()
                    .as_str()
                    .to_owned(),
            ],
            authorization_response_iss_parameter_supported: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20id:p%3Ass+w"));
        let (id, secret) = parse_basic(&header).unwrap().unwrap();
        assert_eq!(id, "my id");
        assert_eq!(secret.as_str(), "p:ss w");
        assert!(parse_basic("Basic !!!").is_none());
        assert!(parse_basic("Bearer x").unwrap().is_none());
        assert!(form_decode("%zz").is_none());
        assert!(form_decode("%4").is_none());
    }

    #[test]
    fn scopes_narrow_but_never_widen() {
        let allowed = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(resolve_scope(None, &allowed).unwrap(), "a b");
        assert_eq!(resolve_scope(Some("b"), &allowed).unwrap(), "b");
        assert_eq!(resolve_scope(Some("b a b"), &allowed).unwrap(), "b a");
        assert_eq!(
            resolve_scope(Some("c"), &allowed).unwrap_err().code(),
            OAuthErrorCode::InvalidScope
        );
        assert_eq!(
            resolve_scope(Some("a\"b"), &allowed).unwrap_err().code(),
            OAuthErrorCode::InvalidScope
        );
    }

    #[test]
    fn redirect_uris_are_checked() {
        assert!(valid_redirect_uri("https://app.example/cb"));
        assert!(valid_redirect_uri("http://127.0.0.1:8765/cb"));
        assert!(valid_redirect_uri("com.example.app:/cb"));
        assert!(!valid_redirect_uri("http://app.example/cb"));
        assert!(!valid_redirect_uri("https://app.example/cb#frag"));
        assert!(!valid_redirect_uri("javascript:alert(1)"));
        assert!(!valid_redirect_uri("http://localhost.evil.example/cb"));
    }

    #[test]
    fn user_codes_normalize() {
        let code = user_code();
        assert_eq!(
            normalize_user_code(&code.to_lowercase()),
            Some(code.clone())
        );
        assert_eq!(normalize_user_code(&code.replace('-', " ")), Some(code));
        assert_eq!(normalize_user_code("AAAA-AAAA"), None);
        assert_eq!(normalize_user_code("BCD"), None);
    }

    #[test]
    fn retry_blob_needs_the_parent_token() {
        let response = TokenResponse {
            access_token: "a".into(),
            token_type: "Bearer".into(),
            expires_in: 1,
            refresh_token: Some("r".into()),
            scope: "s".into(),
        };
        let blob = seal_retry("prt_parent", "h", &response).unwrap();
        assert_eq!(open_retry("prt_parent", "h", &blob), Some(response));
        assert_eq!(open_retry("prt_other", "h", &blob), None);
        assert_eq!(open_retry("prt_parent", "x", &blob), None);
    }
}
