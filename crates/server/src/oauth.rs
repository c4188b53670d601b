//! The OAuth 2.0 endpoints over [`palisade_jwt::AuthorizationServer`]: form parsing,
//! client and user authentication, and RFC 6749 §5.2 error bodies (not problem
//! documents, as OAuth clients expect).

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use palisade_axum::ClientInfo;
use palisade_jwt::{AuthorizeError, OAuthError};
use serde::Serialize;

use crate::app::Ctx;
use crate::clock;

/// Largest form an OAuth endpoint reads.
const MAX_FORM: usize = 16 * 1024;
/// Parameters per form.
const MAX_PARAMS: usize = 32;

/// A form as the authorization server takes it.
type Form = HashMap<String, String>;

/// An OAuth error answer: status, `{"error", "error_description"}`, `no-store`.
#[derive(Debug)]
struct OAuthReply(OAuthError);

/// 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1) when a backend cannot answer.
fn temporarily_unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        no_store(),
        [(header::RETRY_AFTER, "1")],
        Json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "a backend is unavailable; retry shortly",
        })),
    )
        .into_response()
}

impl IntoResponse for OAuthReply {
    fn into_response(self) -> Response {
        // The crate reports a failing store as server_error; to a client that is a
        // temporary condition, never a 500.
        if self.0.code() == palisade_jwt::OAuthErrorCode::ServerError {
            return temporarily_unavailable();
        }
        let status = StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, no_store(), Json(&self.0)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"oauth\""),
            );
        }
        response
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

fn invalid_request(description: &'static str) -> OAuthReply {
    OAuthReply(OAuthError::new(
        palisade_jwt::OAuthErrorCode::InvalidRequest,
        description,
    ))
}

/// Parses `application/x-www-form-urlencoded`, refusing repeated parameters (RFC 6749
/// §3.1), oversized forms and other content types.
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, OAuthReply> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    parse_pairs(body)
}

/// The body, read up to [`MAX_FORM`] bytes; longer is a 413 `invalid_request`, a body
/// that stops arriving a 408.
async fn read_form_body(body: Body) -> Result<Bytes, Response> {
    match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(bytes) => Ok(bytes),
        Err(error) => {
            // The length error sits somewhere in axum's error chain.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            let mut too_large = false;
            while let Some(current) = cause {
                too_large |= current.is::<http_body_util::LengthLimitError>();
                cause = current.source();
            }
            let status = if too_large {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::REQUEST_TIMEOUT
            };
            let mut response = invalid_request(if too_large {
                "the request body is larger than 16 KiB"
            } else {
                "the request body did not arrive in time"
            })
            .into_response();
            *response.status_mut() = status;
            Err(response)
        }
    }
}

fn parse_pairs(raw: &[u8]) -> Result<Form, OAuthReply> {
    if raw.len() > MAX_FORM {
        return Err(invalid_request("the request is too large"));
    }
    let mut form = Form::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if form.len() >= MAX_PARAMS {
            return Err(invalid_request("too many parameters"));
        }
        if form.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(invalid_request("a parameter is repeated"));
        }
    }
    Ok(form)
}

fn authorization(headers: &HeaderMap) -> Result<Option<&str>, OAuthReply> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| {
            OAuthReply(OAuthError::new(
                palisade_jwt::OAuthErrorCode::InvalidClient,
                "client authentication failed",
            ))
        }),
        (Some(_), Some(_)) => Err(invalid_request("more than one Authorization header")),
    }
}

/// `user:password` from `Basic <base64>`.
pub(crate) fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 4096 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

async fn locked_out(ctx: &Ctx, client: Option<&ClientInfo>) -> Option<u64> {
    let client = client?;
    let lock = ctx
        .runtime
        .abuse
        .is_locked(client.address, None, clock::now())
        .await?;
    Some(lock.retry_after(clock::now()).as_secs().max(1))
}

async fn note_failure(ctx: &Ctx, client: Option<&ClientInfo>, account: Option<&str>) {
    if let Some(client) = client {
        ctx.runtime
            .abuse
            .record_auth_failure(client.address, account, clock::now())
            .await;
    }
}

fn too_many(retry_after: u64) -> Response {
    let mut response = OAuthReply(OAuthError::new(
        palisade_jwt::OAuthErrorCode::InvalidRequest,
        "too many failed authentication attempts; retry later",
    ))
    .into_response();
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(value) = http::HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Runs an endpoint that authenticates a client: lockout first, failures counted.
async fn client_endpoint<T, F, Fut>(
    ctx: &Ctx,
    client: Option<ClientInfo>,
    headers: &HeaderMap,
    body: Body,
    call: F,
) -> Response
where
    T: Serialize,
    F: FnOnce(Form, Option<String>) -> Fut,
    Fut: Future<Output = Result<T, OAuthError>>,
{
    if let Some(retry) = locked_out(ctx, client.as_ref()).await {
        return too_many(retry);
    }
    let body = match read_form_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let form = match parse_form(headers, &body) {
        Ok(form) => form,
        Err(reply) => return reply.into_response(),
    };
    let authorization = match authorization(headers) {
        Ok(value) => value.map(str::to_owned),
        Err(reply) => return reply.into_response(),
    };
    match call(form, authorization).await {
        Ok(answer) => (StatusCode::OK, no_store(), Json(answer)).into_response(),
        Err(error) => {
            if error.code() == palisade_jwt::OAuthErrorCode::InvalidClient {
                tracing::warn!(
                    event = "auth_failure",
                    method = "oauth_client",
                    "client authentication failed"
                );
                note_failure(ctx, client.as_ref(), None).await;
            }
            OAuthReply(error).into_response()
        }
    }
}

/// The token endpoint.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded", description = "grant_type = client_credentials | authorization_code (PKCE S256) | refresh_token | urn:ietf:params:oauth:grant-type:device_code"),
    responses((status = 200, description = "`{access_token, token_type: \"Bearer\", expires_in: 900, refresh_token?, scope}`"), (status = 400, description = "RFC 6749 error"), (status = 401, description = "invalid_client")))]
pub(crate) async fn token(
    State(ctx): State<Ctx>,
    client: Option<axum::Extension<ClientInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let oauth = &ctx.state.oauth;
    client_endpoint(&ctx, client.map(|c| c.0), &headers, body, |form, authorization| async move {
        let answer = oauth.token(&form, authorization.as_deref(), clock::now()).await;
        if let Ok(answer) = &answer {
            tracing::info!(event = "token_issued", grant = form.get("grant_type").map(String::as_str).unwrap_or(""), scope = %answer.scope);
        }
        answer
    })
    .await
}

/// RFC 8628 device authorization.
#[utoipa::path(post, path = "/oauth/device_authorization", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded", description = "client authentication and `scope`"),
    responses((status = 200, description = "`{device_code, user_code, verification_uri, expires_in, interval}`"), (status = 400), (status = 401)))]
pub(crate) async fn device_authorization(
    State(ctx): State<Ctx>,
    client: Option<axum::Extension<ClientInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let oauth = &ctx.state.oauth;
    client_endpoint(
        &ctx,
        client.map(|c| c.0),
        &headers,
        body,
        |form, authorization| async move {
            oauth
                .device_authorization(&form, authorization.as_deref(), clock::now())
                .await
        },
    )
    .await
}

/// RFC 7009 revocation.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded", description = "`token`, client authentication"),
    responses((status = 200), (status = 400), (status = 401)))]
pub(crate) async fn revoke(
    State(ctx): State<Ctx>,
    client: Option<axum::Extension<ClientInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let oauth = &ctx.state.oauth;
    client_endpoint(
        &ctx,
        client.map(|c| c.0),
        &headers,
        body,
        |form, authorization| async move {
            let result = oauth
                .revoke(&form, authorization.as_deref(), clock::now())
                .await;
            if result.is_ok() {
                tracing::info!(event = "revocation", "token revocation requested");
            }
            result.map(|()| serde_json::json!({}))
        },
    )
    .await
}

/// RFC 7662 introspection.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded", description = "`token`, client authentication required"),
    responses((status = 200, description = "`{active, scope, client_id, sub, exp, iat, token_type}`"), (status = 400), (status = 401)))]
pub(crate) async fn introspect(
    State(ctx): State<Ctx>,
    client: Option<axum::Extension<ClientInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let oauth = &ctx.state.oauth;
    client_endpoint(
        &ctx,
        client.map(|c| c.0),
        &headers,
        body,
        |form, authorization| async move {
            oauth
                .introspect(&form, authorization.as_deref(), clock::now())
                .await
        },
    )
    .await
}

/// Authenticates the user by HTTP Basic; `Err` is the answer to send.
async fn authenticate_user(
    ctx: &Ctx,
    client: Option<&ClientInfo>,
    headers: &HeaderMap,
) -> Result<String, Response> {
    if let Some(retry) = locked_out(ctx, client).await {
        return Err(too_many(retry));
    }
    let challenge = || {
        (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"palisade\", charset=\"UTF-8\"",
            )],
            Json(serde_json::json!({
                "error": "access_denied",
                "error_description": "the user must authenticate with HTTP Basic",
            })),
        )
            .into_response()
    };
    let Some((user, password)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_basic)
    else {
        return Err(challenge());
    };
    match ctx.users.verify(&user, &password).await {
        Ok(true) => {
            ctx.runtime
                .abuse
                .record_auth_success(&user, clock::now())
                .await;
            Ok(user)
        }
        Ok(false) => {
            tracing::warn!(
                event = "auth_failure",
                method = "basic",
                "user authentication failed"
            );
            note_failure(ctx, client, Some(&user)).await;
            Err(challenge())
        }
        Err(_) => Err(temporarily_unavailable()),
    }
}

/// The authorization endpoint: the user authenticates with HTTP Basic; the answer is a
/// redirect carrying the code.
#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth",
    params(
        ("response_type" = String, Query, min_length = 1, description = "`code`"),
        ("client_id" = String, Query, min_length = 1),
        ("redirect_uri" = String, Query, min_length = 1, description = "exactly a registered one"),
        ("scope" = Option<String>, Query),
        ("state" = Option<String>, Query),
        ("code_challenge" = String, Query, min_length = 43, max_length = 128, description = "RFC 7636: BASE64URL(SHA-256(code_verifier))"),
        ("code_challenge_method" = String, Query, min_length = 1, description = "`S256`"),
    ),
    responses((status = 302, description = "to `redirect_uri?code=..&state=..`"), (status = 400, description = "unknown client or redirect URI (never redirected)"), (status = 401, description = "HTTP Basic needed")))]
pub(crate) async fn authorize(
    State(ctx): State<Ctx>,
    client: Option<axum::Extension<ClientInfo>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let params = match parse_pairs(uri.query().unwrap_or("").as_bytes()) {
        Ok(params) => params,
        Err(reply) => return reply.into_response(),
    };
    // The client and its redirect URI first: a request that could never succeed gets
    // its 400 at once, without asking a user to log in (RFC 6749 §4.1.2.1).
    if let Some(response) = check_client_and_redirect(&ctx, &params).await {
        return response;
    }
    let client = client.map(|c| c.0);
    let user = match authenticate_user(&ctx, client.as_ref(), &headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match ctx
        .state
        .oauth
        .authorize(&params, &user, clock::now())
        .await
    {
        Ok(location) | Err(AuthorizeError::Redirect(location)) => redirect(&location),
        Err(AuthorizeError::Direct(error)) => direct_error(error),
        Err(_) => temporarily_unavailable(),
    }
}

/// `Some(400)` when `client_id` is unknown or `redirect_uri` is not one of its registered
/// URIs (exact match).
async fn check_client_and_redirect(ctx: &Ctx, params: &Form) -> Option<Response> {
    let bad = |description: &'static str| {
        Some(direct_error(OAuthError::new(
            palisade_jwt::OAuthErrorCode::InvalidRequest,
            description,
        )))
    };
    let (Some(client_id), Some(redirect_uri)) =
        (params.get("client_id"), params.get("redirect_uri"))
    else {
        return bad("client_id and redirect_uri are required");
    };
    match palisade_jwt::OAuthStore::get_client(ctx.state.oauth.store(), client_id).await {
        Ok(Some(client)) if client.redirect_uris.iter().any(|uri| uri == redirect_uri) => None,
        Ok(Some(_)) => bad("redirect_uri is not registered for this client"),
        Ok(None) => bad("unknown client_id"),
        Err(_) => Some(temporarily_unavailable()),
    }
}

/// An error the authorization endpoint answers itself instead of redirecting (unknown
/// client, unregistered redirect URI): always 400. No client authenticates here, so the
/// crate's 401 for `invalid_client` (and its challenge) does not apply.
fn direct_error(error: OAuthError) -> Response {
    if error.code() == palisade_jwt::OAuthErrorCode::ServerError {
        return temporarily_unavailable();
    }
    (StatusCode::BAD_REQUEST, no_store(), Json(&error)).into_response()
}

fn redirect(location: &str) -> Response {
    match http::HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(_) => invalid_request("the redirect URI cannot be used").into_response(),
    }
}

/// The user's decision on a device grant.
#[utoipa::path(post, path = "/oauth/device", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded", description = "`user_code`, `action=approve|deny`; the user authenticates with HTTP Basic"),
    responses((status = 200), (status = 400), (status = 401)))]
pub(crate) async fn device(
    State(ctx): State<Ctx>,
    client: Option<axum::Extension<ClientInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_form_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let client = client.map(|c| c.0);
    let user = match authenticate_user(&ctx, client.as_ref(), &headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let form = match parse_form(&headers, &body) {
        Ok(form) => form,
        Err(reply) => return reply.into_response(),
    };
    let approve = match form.get("action").map(String::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        _ => return invalid_request("action must be approve or deny").into_response(),
    };
    let Some(user_code) = form.get("user_code") else {
        return invalid_request("user_code is required").into_response();
    };
    match ctx
        .state
        .oauth
        .device_decision(user_code, &user, approve, clock::now())
        .await
    {
        Ok(()) => (
            StatusCode::OK,
            no_store(),
            Json(serde_json::json!({ "status": if approve { "approved" } else { "denied" } })),
        )
            .into_response(),
        Err(error) => OAuthReply(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn forms_refuse_repeats_and_other_types() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8"
                .parse()
                .unwrap(),
        );
        let form = parse_form(&headers, b"grant_type=client_credentials&scope=a+b").unwrap();
        assert_eq!(form["scope"], "a b");
        assert!(parse_form(&headers, b"scope=a&scope=b").is_err());
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(parse_form(&headers, b"grant_type=x").is_err());
    }

    #[test]
    fn basic_credentials_parse() {
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pa:ss")
        );
        assert_eq!(parse_basic(&value), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }
}
