//! A client that signs its requests with `palisade-signing`'s `palisade` profile and
//! sends them with reqwest.
//!
//! ```text
//! export PALISADE_ACCESS_KEY_ID=AKID...  PALISADE_SECRET=...   # from `palisade credentials create`
//! cargo run -p palisade-examples --bin signing_client -- https://api.example.com/api/orders
//! cargo run -p palisade-examples --bin signing_client -- --method POST --data '{"items":[]}' URL
//! ```
//!
//! The signature covers the method, the path and query as they go on the wire, the
//! `Host` header, the `Content-Type` header when there is a body, the time
//! (`X-Palisade-Date`) and a hash of the body. The signer adds two headers:
//!
//! ```text
//! Authorization: PALISADE-HMAC-SHA256 Credential=<access key id>/<yyyymmdd>/api/request, SignedHeaders=host;x-palisade-date, Signature=<hex>
//! X-Palisade-Date: 20261127T120000Z
//! ```
//!
//! A server verifies with `palisade_signing::Verifier`, which refuses a signature more
//! than 5 minutes from its clock and the same signature a second time: sign each request
//! just before sending it, and never resend a signed request as is.

use std::fmt;
use std::time::SystemTime;

use palisade_signing::{Request, SigV4Profile, SigningCredential, sign};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Url};

/// The environment variable holding the access key id.
pub const ACCESS_KEY_ID_VAR: &str = "PALISADE_ACCESS_KEY_ID";

/// The environment variable holding the secret.
pub const SECRET_VAR: &str = "PALISADE_SECRET";

/// A request to sign and send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The method.
    pub method: Method,
    /// The URL; its path and query are signed as reqwest will send them.
    pub url: Url,
    /// The body's content type: required with a body, which the `palisade` profile
    /// signs together with its `Content-Type`.
    pub content_type: Option<String>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

impl Outgoing {
    /// A `GET` of `url`.
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// A request with a body of `content_type`.
    pub fn with_body(
        method: Method,
        url: Url,
        content_type: impl Into<String>,
        body: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            method,
            url,
            content_type: Some(content_type.into()),
            body: body.into(),
        }
    }

    /// The `Host` header: the URL's host, and its port unless it is the scheme's
    /// default (as reqwest writes it).
    fn host(&self) -> Result<String, ClientError> {
        if !matches!(self.url.scheme(), "http" | "https") {
            return Err(ClientError::Url("the URL must be http or https"));
        }
        // reqwest would turn credentials in the URL into an unsigned Authorization header.
        if !self.url.username().is_empty() || self.url.password().is_some() {
            return Err(ClientError::Url(
                "the URL must not carry a user or password",
            ));
        }
        let host = self
            .url
            .host_str()
            .ok_or(ClientError::Url("the URL has no host"))?;
        Ok(match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        })
    }

    /// The request target as it goes on the wire: the path and the query, already
    /// percent-encoded by the URL parser.
    fn target(&self) -> String {
        match self.url.query() {
            Some(query) => format!("{}?{query}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// Why a request could not be signed or sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL cannot be signed (not HTTP, no host, embedded credentials).
    Url(&'static str),
    /// The signer refused the request (a body without a content type, a header that is
    /// not a token, ...).
    Sign(palisade_signing::Error),
    /// A signed header is not a valid HTTP header.
    Header(&'static str),
    /// The request failed on the way (connection refused, timeout, ...).
    Http(reqwest::Error),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(why) => write!(f, "bad URL: {why}"),
            Self::Sign(error) => write!(f, "cannot sign: {error}"),
            Self::Header(why) => write!(f, "bad header: {why}"),
            Self::Http(error) => write!(f, "request failed: {error}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sign(error) => Some(error),
            Self::Http(error) => Some(error),
            Self::Url(_) | Self::Header(_) => None,
        }
    }
}

/// Reads the credential from [`ACCESS_KEY_ID_VAR`] and [`SECRET_VAR`]; the error names
/// the missing variable.
pub fn credential_from_env() -> Result<SigningCredential, String> {
    let access_key_id =
        std::env::var(ACCESS_KEY_ID_VAR).map_err(|_| format!("set {ACCESS_KEY_ID_VAR}"))?;
    let secret = std::env::var(SECRET_VAR).map_err(|_| format!("set {SECRET_VAR}"))?;
    Ok(SigningCredential::new(
        access_key_id,
        palisade_signing::Secret::new(secret),
    ))
}

/// The headers the `palisade` profile adds to `request` signed at `now`:
/// `Authorization` and `X-Palisade-Date`. The signature covers `Host` (from the URL)
/// and, with a body, `Content-Type`, which the request must then carry as given.
pub fn signed_headers(
    credential: &SigningCredential,
    request: &Outgoing,
    now: SystemTime,
) -> Result<Vec<(String, String)>, ClientError> {
    let host = request.host()?;
    let target = request.target();
    let mut plain = Request::new(request.method.as_str(), &target)
        .scheme(request.url.scheme())
        .header("host", &host)
        .body(&request.body);
    if let Some(content_type) = &request.content_type {
        plain.push_header("content-type", content_type);
    }
    sign(&SigV4Profile::palisade(), credential, &plain, now).map_err(ClientError::Sign)
}

/// Builds the reqwest request for `request`, signed at `now`, and returns it with the
/// headers the signer added (to show them).
pub fn build(
    client: &reqwest::Client,
    credential: &SigningCredential,
    request: &Outgoing,
    now: SystemTime,
) -> Result<(reqwest::Request, Vec<(String, String)>), ClientError> {
    let added = signed_headers(credential, request, now)?;
    let mut headers = vec![("host".to_owned(), request.host()?)];
    if let Some(content_type) = &request.content_type {
        headers.push(("content-type".to_owned(), content_type.clone()));
    }
    headers.extend(added.iter().cloned());

    let mut builder = client.request(request.method.clone(), request.url.clone());
    for (name, value) in &headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::Header("a header name is not a token"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| ClientError::Header("a header value is not visible ASCII"))?;
        builder = builder.header(name, value);
    }
    if !request.body.is_empty() {
        builder = builder.body(request.body.clone());
    }
    let built = builder.build().map_err(ClientError::Http)?;
    Ok((built, added))
}

/// Signs `request` now and sends it; returns the response and the headers the signer
/// added.
pub async fn send(
    client: &reqwest::Client,
    credential: &SigningCredential,
    request: &Outgoing,
) -> Result<(reqwest::Response, Vec<(String, String)>), ClientError> {
    let (built, added) = build(client, credential, request, SystemTime::now())?;
    let response = client.execute(built).await.map_err(ClientError::Http)?;
    Ok((response, added))
}
