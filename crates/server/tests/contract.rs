//! Walks `/work/shared/spec/CONTRACT.md` row by row over HTTP and the command line,
//! against the real `palisade` binary on its embedded defaults (SQLite, in-memory rate
//! limits). Every test runs its own server where state matters.
//!
//! The abuse layer locks an address out (429) after more than five failed
//! authentications in 15 minutes, so no test fails authentication more than five times on
//! one server from 127.0.0.1; the lockout itself is tested from 127.0.0.2.
//!
//! Servers whose tests make many requests set `PALISADE_RATELIMIT__DEFAULT_PLAN=
//! enterprise` (burst 1000): on the default `free` plan every client address and
//! credential gets a burst of 10, which the rate-limit tests check on the defaults.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    ApiKey, Cli, Credential, OAuthClient, Profile, Resp, Server, basic, eventually, order_body,
    pkce, sign_request, signed, with_headers,
};
use reqwest::Method;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const REDIRECT: &str = "https://client.example/callback";
const PASSWORD: &str = "correct horse battery staple";

/// A server on the defaults except a generous default rate-limit plan.
fn busy_server() -> Server {
    Server::builder()
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .start()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A key with read and write scopes on the enterprise plan.
fn rw_key(cli: &Cli, owner: &str) -> ApiKey {
    cli.create_key(owner, "orders:read,orders:write", &["--plan", "enterprise"])
}

async fn with_key(server: &Server, key: &ApiKey, method: Method, path: &str) -> Resp {
    server
        .send(
            server
                .http()
                .request(method, server.url(path))
                .header("x-api-key", &key.key),
        )
        .await
}

async fn create_order(server: &Server, key: &ApiKey, body: &Value) -> Resp {
    server
        .send(
            server
                .http()
                .post(server.url("/api/orders"))
                .header("x-api-key", &key.key)
                .json(body),
        )
        .await
}

async fn with_bearer(server: &Server, token: &str, method: Method, path: &str) -> Resp {
    server
        .send(
            server
                .http()
                .request(method, server.url(path))
                .bearer_auth(token),
        )
        .await
}

async fn signed_send(
    server: &Server,
    profile: Profile,
    credential: &Credential,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Resp {
    server
        .send(signed(
            server.http(),
            profile,
            credential,
            method,
            &server.url(path),
            body,
        ))
        .await
}

/// `GET /oauth/authorize` with these parameters, the user (if any) by HTTP Basic.
async fn authorize(server: &Server, params: &[(&str, &str)], user: Option<(&str, &str)>) -> Resp {
    let mut request = server
        .http()
        .get(server.url("/oauth/authorize"))
        .query(params);
    if let Some((name, password)) = user {
        request = request.header("authorization", basic(name, password));
    }
    server.send(request).await
}

/// The query parameters of a redirect's `Location`.
fn location_params(response: &Resp) -> (String, Vec<(String, String)>) {
    let location = response.header("location").expect("a Location header");
    let url = url::Url::parse(location).unwrap();
    let base = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap(),
        url.path()
    );
    (base, url.query_pairs().into_owned().collect())
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Runs the authorization-code flow for `user`; returns the token answer.
async fn code_flow(server: &Server, client: &OAuthClient, user: &str, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let response = authorize(
        server,
        &[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
        Some((user, PASSWORD)),
    )
    .await;
    response.expect(302);
    let (_, params) = location_params(&response);
    let code = param(&params, "code").unwrap().to_owned();
    let tokens = server
        .token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    tokens.expect(200);
    tokens.json()
}

async fn introspect(server: &Server, client: &OAuthClient, token: &str) -> Value {
    let response = server
        .send(
            server
                .http()
                .post(server.url("/oauth/introspect"))
                .basic_auth(&client.client_id, Some(&client.client_secret))
                .form(&[("token", token)]),
        )
        .await;
    response.expect(200);
    response.json()
}

fn str_of<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {value}"))
}

/// Whether `text` holds a run of `len` or more hexadecimal digits (a hash, say).
fn has_hex_run(text: &str, len: usize) -> bool {
    let mut run = 0;
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run += 1;
            if run >= len {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------
// Public endpoints
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn public_endpoints_describe_the_server() {
    let server = Server::start();

    let health = server.get("/health").await;
    health.expect(200);
    assert_eq!(health.content_type(), "application/json");
    assert_eq!(health.json()["status"], "ok");

    let jwks = server.get("/.well-known/jwks.json").await;
    jwks.expect(200);
    let keys = jwks.json()["keys"].as_array().unwrap().clone();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
        assert_eq!(key["alg"], "ES256", "{key}");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key.get("d").is_none(), "a private key in the JWKS: {key}");
    }

    let metadata = server.get("/.well-known/oauth-authorization-server").await;
    metadata.expect(200);
    let metadata = metadata.json();
    assert_eq!(metadata["issuer"], server.url.as_str(), "{metadata}");
    for (name, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        (
            "device_authorization_endpoint",
            "/oauth/device_authorization",
        ),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(metadata[name], server.url(path), "{name}: {metadata}");
    }
    let list = |name: &str| -> Vec<String> {
        metadata[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(list("response_types_supported"), ["code"]);
    assert_eq!(list("code_challenge_methods_supported"), ["S256"]);
    for grant in [
        "client_credentials",
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        assert!(list("grant_types_supported").iter().any(|g| g == grant));
    }
    for method in ["client_secret_basic", "client_secret_post"] {
        assert!(
            list("token_endpoint_auth_methods_supported")
                .iter()
                .any(|m| m == method)
        );
    }

    let openapi = server.get("/openapi.json").await;
    openapi.expect(200);
    let doc = openapi.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/.well-known/oauth-authorization-server", "get"),
        ("/openapi.json", "get"),
        ("/oauth/token", "post"),
        ("/oauth/authorize", "get"),
        ("/oauth/device_authorization", "post"),
        ("/oauth/device", "post"),
        ("/oauth/revoke", "post"),
        ("/oauth/introspect", "post"),
        ("/api/orders", "get"),
        ("/api/orders", "post"),
        ("/api/orders/{id}", "get"),
        ("/api/orders/{id}", "delete"),
        ("/api/webhooks", "post"),
        ("/admin/keys", "post"),
        ("/admin/keys", "get"),
        ("/admin/keys/{key_id}", "delete"),
        ("/admin/keys/{key_id}/rotate", "post"),
        ("/admin/abuse", "get"),
        ("/admin/abuse/{identity}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from /openapi.json"
        );
    }
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// OAuth
// ---------------------------------------------------------------------------------------

/// Verifies an access token as an independent resource server would: the JWKS, ES256,
/// `typ: at+jwt`, issuer and audience; returns the claims.
async fn verify_access_token(server: &Server, token: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, Algorithm::ES256);
    let kid = header.kid.expect("a kid");
    let jwks: JwkSet =
        serde_json::from_value(server.get("/.well-known/jwks.json").await.json()).unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["palisade-api"]);
    validation.set_issuer(&[server.url.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap();
    data.claims
}

#[tokio::test]
async fn client_credentials_issue_verifiable_access_tokens() {
    let server = busy_server();
    let client = server.cli().create_client(
        "svc",
        "orders:read,orders:write",
        &["client_credentials"],
        &[],
    );

    // client_secret_basic
    let basic_answer = server
        .token(
            &client,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read"),
            ],
        )
        .await;
    basic_answer.expect(200);
    assert!(
        basic_answer
            .header("cache-control")
            .is_some_and(|v| v.contains("no-store"))
    );
    let body = basic_answer.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "orders:read");
    assert!(body.get("refresh_token").is_none_or(Value::is_null));
    let token = str_of(&body, "access_token").to_owned();

    let claims = verify_access_token(&server, &token).await;
    assert_eq!(claims["iss"], server.url.as_str());
    assert_eq!(claims["sub"], client.client_id.as_str());
    let aud = &claims["aud"];
    assert!(
        aud == "palisade-api"
            || aud
                .as_array()
                .is_some_and(|a| a.contains(&json!("palisade-api"))),
        "{claims}"
    );
    assert_eq!(claims["client_id"], client.client_id.as_str());
    assert_eq!(claims["scope"], "orders:read");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (iat, exp, nbf) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
        claims["nbf"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 900, "{claims}");
    assert!(nbf <= unix_now() + 1 && iat.abs_diff(unix_now()) < 60);

    // The token opens the API.
    with_bearer(&server, &token, Method::GET, "/api/orders")
        .await
        .expect(200);

    // client_secret_post, default scope.
    let post_answer = server
        .send(server.http().post(server.url("/oauth/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client.client_id),
            ("client_secret", &client.client_secret),
        ]))
        .await;
    server.remember_tokens(&post_answer);
    post_answer.expect(200);
    let post_body = post_answer.json();
    let scopes: Vec<&str> = str_of(&post_body, "scope").split(' ').collect();
    assert!(scopes.contains(&"orders:read") && scopes.contains(&"orders:write"));
    verify_access_token(&server, str_of(&post_body, "access_token")).await;

    // Errors are RFC 6749 JSON, not problem documents.
    let wrong = server
        .send(
            server
                .http()
                .post(server.url("/oauth/token"))
                .basic_auth(&client.client_id, Some("not-the-secret"))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    wrong.oauth_error(401, "invalid_client");
    assert!(wrong.header("www-authenticate").is_some());
    server
        .token(&client, &[("grant_type", "password")])
        .await
        .oauth_error(400, "unsupported_grant_type");
    server
        .token(
            &client,
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await
        .oauth_error(400, "invalid_scope");
    server
        .token(&client, &[("scope", "orders:read")])
        .await
        .oauth_error(400, "invalid_request");
    // A client may not use a grant it was not registered for.
    server
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", "y"),
            ],
        )
        .await
        .oauth_error(400, "unauthorized_client");
    let json_body = server
        .send(
            server
                .http()
                .post(server.url("/oauth/token"))
                .basic_auth(&client.client_id, Some(&client.client_secret))
                .json(&json!({"grant_type": "client_credentials"})),
        )
        .await;
    json_body.oauth_error(400, "invalid_request");
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn authorization_code_flow_with_pkce() {
    let server = busy_server();
    let cli = server.cli();
    cli.create_user("alice", PASSWORD);
    let client = cli.create_client(
        "web",
        "orders:read,orders:write",
        &["authorization_code"],
        &[REDIRECT],
    );
    let (verifier, challenge) = pkce();
    let params = |challenge: &str, method: &str| -> Vec<(String, String)> {
        [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "orders:read"),
            ("state", "xyz-123"),
            ("code_challenge", challenge),
            ("code_challenge_method", method),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
    };
    let run = |p: Vec<(String, String)>, user: Option<(&'static str, &'static str)>| {
        let server = &server;
        async move {
            let refs: Vec<(&str, &str)> = p.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            authorize(server, &refs, user).await
        }
    };

    // The user must authenticate with HTTP Basic.
    let anonymous = run(params(&challenge, "S256"), None).await;
    anonymous.expect(401);
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic")),
        "{:?}",
        anonymous.headers
    );
    assert!(anonymous.header("location").is_none());
    run(
        params(&challenge, "S256"),
        Some(("alice", "wrong password")),
    )
    .await
    .expect(401);

    // 302 to the redirect URI with code, state (and iss).
    let granted = run(params(&challenge, "S256"), Some(("alice", PASSWORD))).await;
    granted.expect(302);
    let (base, query) = location_params(&granted);
    assert_eq!(base, REDIRECT);
    assert_eq!(param(&query, "state"), Some("xyz-123"));
    let code = param(&query, "code").expect("a code").to_owned();
    assert!(param(&query, "error").is_none());

    // `plain` (and no challenge at all) is refused: an error redirect without a code.
    for refused in [
        params(&verifier, "plain"),
        params(&challenge, "plain"),
        params(&challenge, "S256")
            .into_iter()
            .filter(|(n, _)| n != "code_challenge" && n != "code_challenge_method")
            .collect::<Vec<_>>(),
    ] {
        let answer = run(refused, Some(("alice", PASSWORD))).await;
        answer.expect(302);
        let (base, query) = location_params(&answer);
        assert_eq!(base, REDIRECT);
        assert_eq!(param(&query, "error"), Some("invalid_request"));
        assert!(param(&query, "code").is_none());
        assert_eq!(param(&query, "state"), Some("xyz-123"));
    }

    // An unknown client or an unregistered redirect URI: 400, never redirected.
    let mut unknown = params(&challenge, "S256");
    unknown[1].1 = "client_does_not_exist".into();
    let mut elsewhere = params(&challenge, "S256");
    elsewhere[2].1 = "https://evil.example/callback".into();
    let mut almost = params(&challenge, "S256");
    almost[2].1 = format!("{REDIRECT}/");
    for bad in [unknown, elsewhere, almost] {
        let answer = run(bad, Some(("alice", PASSWORD))).await;
        answer.oauth_error(400, answer.json()["error"].as_str().unwrap_or("?"));
        assert!(answer.header("location").is_none(), "{:?}", answer.headers);
    }

    // A wrong verifier fails (on a code of its own: any presentation consumes a code).
    let other = run(params(&challenge, "S256"), Some(("alice", PASSWORD))).await;
    let other_code = param(&location_params(&other).1, "code")
        .unwrap()
        .to_owned();
    server
        .token(
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &other_code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &"x".repeat(50)),
            ],
        )
        .await
        .oauth_error(400, "invalid_grant");

    // The exchange.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens = server.token(&client, &form).await;
    tokens.expect(200);
    let tokens = tokens.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert_eq!(tokens["scope"], "orders:read");
    let access = str_of(&tokens, "access_token").to_owned();
    let refresh = str_of(&tokens, "refresh_token").to_owned();
    let claims = verify_access_token(&server, &access).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], client.client_id.as_str());
    with_bearer(&server, &access, Method::GET, "/api/orders")
        .await
        .expect(200);

    // A second use of the code fails and revokes what the first one issued.
    server
        .token(&client, &form)
        .await
        .oauth_error(400, "invalid_grant");
    assert_eq!(introspect(&server, &client, &access).await["active"], false);
    with_bearer(&server, &access, Method::GET, "/api/orders")
        .await
        .problem(401);
    server
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await
        .oauth_error(400, "invalid_grant");
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let server = busy_server();
    let cli = server.cli();
    cli.create_user("bob", PASSWORD);
    let client = cli.create_client(
        "app",
        "orders:read,orders:write",
        &["authorization_code"],
        &[REDIRECT],
    );
    let first = code_flow(&server, &client, "bob", "orders:read orders:write").await;
    let access1 = str_of(&first, "access_token").to_owned();
    let refresh1 = str_of(&first, "refresh_token").to_owned();

    let refresh = |token: String| {
        let server = &server;
        let client = &client;
        async move {
            server
                .token(
                    client,
                    &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                )
                .await
        }
    };

    let second = refresh(refresh1.clone()).await;
    second.expect(200);
    let second = second.json();
    let access2 = str_of(&second, "access_token").to_owned();
    let refresh2 = str_of(&second, "refresh_token").to_owned();
    assert_ne!(refresh2, refresh1, "refresh tokens rotate");
    // Refresh tokens are opaque (not JWTs).
    assert_ne!(refresh2.matches('.').count(), 2);

    let third = refresh(refresh2.clone()).await;
    third.expect(200);
    let third = third.json();
    let access3 = str_of(&third, "access_token").to_owned();
    let refresh3 = str_of(&third, "refresh_token").to_owned();
    assert_eq!(
        introspect(&server, &client, &refresh3).await["active"],
        true
    );
    with_bearer(&server, &access3, Method::GET, "/api/orders")
        .await
        .expect(200);

    // Reuse of a used refresh token: invalid_grant, and the whole family is revoked.
    refresh(refresh1.clone())
        .await
        .oauth_error(400, "invalid_grant");
    refresh(refresh3.clone())
        .await
        .oauth_error(400, "invalid_grant");
    for token in [&access1, &access2, &access3, &refresh3] {
        assert_eq!(
            introspect(&server, &client, token).await["active"],
            false,
            "still active after reuse"
        );
    }
    with_bearer(&server, &access3, Method::GET, "/api/orders")
        .await
        .problem(401);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn device_flow() {
    let server = busy_server();
    let cli = server.cli();
    cli.create_user("carol", PASSWORD);
    let client = cli.create_client("tv", "orders:read", &["device_code"], &[]);

    let start = || {
        let server = &server;
        let client = &client;
        async move {
            let answer = server
                .send(
                    server
                        .http()
                        .post(server.url("/oauth/device_authorization"))
                        .basic_auth(&client.client_id, Some(&client.client_secret))
                        .form(&[("scope", "orders:read")]),
                )
                .await;
            answer.expect(200);
            server.remember_tokens(&answer);
            answer.json()
        }
    };
    let poll = |device_code: String| {
        let server = &server;
        let client = &client;
        async move {
            server
                .token(
                    client,
                    &[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                        ("device_code", &device_code),
                    ],
                )
                .await
        }
    };
    let decide = |user_code: String, action: &'static str, user: Option<&'static str>| {
        let server = &server;
        async move {
            let mut request = server
                .http()
                .post(server.url("/oauth/device"))
                .form(&[("user_code", user_code.as_str()), ("action", action)]);
            if let Some(user) = user {
                request = request.header("authorization", basic(user, PASSWORD));
            }
            server.send(request).await
        }
    };

    let pending = start().await;
    for field in ["device_code", "user_code", "verification_uri"] {
        assert!(pending[field].is_string(), "{field}: {pending}");
    }
    assert_eq!(pending["verification_uri"], server.url("/oauth/device"));
    assert!(pending["expires_in"].as_u64().unwrap() > 0);
    assert!(pending["interval"].as_u64().unwrap() >= 1);
    poll(str_of(&pending, "device_code").to_owned())
        .await
        .oauth_error(400, "authorization_pending");

    // Approval needs the user.
    let approved = start().await;
    let user_code = str_of(&approved, "user_code").to_owned();
    decide(user_code.clone(), "approve", None).await.expect(401);
    decide(user_code, "approve", Some("carol"))
        .await
        .expect(200);
    let tokens = poll(str_of(&approved, "device_code").to_owned()).await;
    tokens.expect(200);
    let tokens = tokens.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].is_string());
    let access = str_of(&tokens, "access_token");
    assert_eq!(verify_access_token(&server, access).await["sub"], "carol");
    with_bearer(&server, access, Method::GET, "/api/orders")
        .await
        .expect(200);

    let denied = start().await;
    decide(
        str_of(&denied, "user_code").to_owned(),
        "deny",
        Some("carol"),
    )
    .await
    .expect(200);
    poll(str_of(&denied, "device_code").to_owned())
        .await
        .oauth_error(400, "access_denied");
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn revocation_and_introspection() {
    let server = busy_server();
    let client = server
        .cli()
        .create_client("svc", "orders:read", &["client_credentials"], &[]);
    let token = server.client_credentials(&client, None).await;

    // Introspection requires client authentication.
    let anonymous = server
        .send(
            server
                .http()
                .post(server.url("/oauth/introspect"))
                .form(&[("token", token.as_str())]),
        )
        .await;
    anonymous.oauth_error(401, "invalid_client");

    let active = introspect(&server, &client, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["scope"], "orders:read");
    assert_eq!(active["client_id"], client.client_id.as_str());
    assert_eq!(active["sub"], client.client_id.as_str());
    assert!(active["exp"].as_u64().unwrap() > unix_now());
    assert!(active["iat"].as_u64().unwrap() <= unix_now() + 1);
    assert!(active["token_type"].is_string(), "{active}");
    with_bearer(&server, &token, Method::GET, "/api/orders")
        .await
        .expect(200);

    // RFC 7009: revoke, then the token is refused.
    let revoke = |token: String, authenticated: bool| {
        let server = &server;
        let client = &client;
        async move {
            let mut request = server
                .http()
                .post(server.url("/oauth/revoke"))
                .form(&[("token", token.as_str())]);
            if authenticated {
                request = request.basic_auth(&client.client_id, Some(&client.client_secret));
            }
            server.send(request).await
        }
    };
    revoke(token.clone(), false)
        .await
        .oauth_error(401, "invalid_client");
    revoke(token.clone(), true).await.expect(200);
    assert_eq!(introspect(&server, &client, &token).await["active"], false);
    with_bearer(&server, &token, Method::GET, "/api/orders")
        .await
        .problem(401);
    // Unknown tokens are answered with success too (RFC 7009 §2.2).
    revoke("not-a-token-at-all".into(), true).await.expect(200);
    assert_eq!(
        introspect(&server, &client, "not-a-token-at-all").await,
        json!({"active": false})
    );
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// The protected API
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_credential_kind_reaches_the_api() {
    let server = busy_server();
    let cli = server.cli();
    let key = rw_key(&cli, "alice");
    let client = cli.create_client(
        "svc",
        "orders:read,orders:write",
        &["client_credentials"],
        &[],
    );
    let token = server.client_credentials(&client, None).await;
    let credential = cli.create_credential("carol", "orders:read,orders:write");
    let order = order_body();

    let check = |created: &Resp| {
        created.expect(201);
        let body = created.json();
        let id = str_of(&body, "id").to_owned();
        assert!(id.starts_with("ord_"), "{body}");
        assert_eq!(body["status"], "created");
        assert_eq!(body["items"], order["items"]);
        assert_eq!(
            created.header("location"),
            Some(format!("/api/orders/{id}").as_str())
        );
        assert!(
            created
                .header("cache-control")
                .is_some_and(|v| v.contains("no-store"))
        );
        id
    };

    // X-API-Key
    let id = check(&create_order(&server, &key, &order).await);
    with_key(&server, &key, Method::GET, &format!("/api/orders/{id}"))
        .await
        .expect(200);
    let list = with_key(&server, &key, Method::GET, "/api/orders").await;
    list.expect(200);
    assert_eq!(list.json()["orders"][0]["id"], id.as_str());

    // Bearer
    let created = server
        .send(
            server
                .http()
                .post(server.url("/api/orders"))
                .bearer_auth(&token)
                .json(&order),
        )
        .await;
    let id = check(&created);
    let got = with_bearer(&server, &token, Method::GET, &format!("/api/orders/{id}")).await;
    got.expect(200);
    assert!(
        got.header("cache-control")
            .is_some_and(|v| v.contains("no-store"))
    );

    // Both signature profiles, with a body, a query and a plain GET.
    for profile in [Profile::Palisade, Profile::Rfc9421] {
        let created = signed_send(
            &server,
            profile,
            &credential,
            Method::POST,
            "/api/orders",
            Some(&order),
        )
        .await;
        let id = check(&created);
        signed_send(
            &server,
            profile,
            &credential,
            Method::GET,
            &format!("/api/orders/{id}"),
            None,
        )
        .await
        .expect(200);
        let list = signed_send(
            &server,
            profile,
            &credential,
            Method::GET,
            "/api/orders?limit=50",
            None,
        )
        .await;
        list.expect(200);
        assert!(
            list.json()["orders"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["id"] == id.as_str())
        );
    }
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn two_kinds_of_credential_at_once_are_refused() {
    let server = busy_server();
    let cli = server.cli();
    let key = rw_key(&cli, "alice");
    let client = cli.create_client("svc", "orders:read", &["client_credentials"], &[]);
    let token = server.client_credentials(&client, None).await;
    let credential = cli.create_credential("alice", "orders:read");
    let url = server.url("/api/orders");

    let both = server
        .send(
            server
                .http()
                .get(&url)
                .header("x-api-key", &key.key)
                .bearer_auth(&token),
        )
        .await;
    both.problem(400);

    for profile in [Profile::Palisade, Profile::Rfc9421] {
        let headers = sign_request(
            profile,
            &credential,
            "GET",
            &url,
            None,
            b"",
            SystemTime::now(),
        );
        let answer = server
            .send(with_headers(server.http().get(&url), &headers).header("x-api-key", &key.key))
            .await;
        answer.problem(400);
    }
    // A signature and a bearer token together.
    let headers = sign_request(
        Profile::Rfc9421,
        &credential,
        "GET",
        &url,
        None,
        b"",
        SystemTime::now(),
    );
    server
        .send(with_headers(server.http().get(&url), &headers).bearer_auth(&token))
        .await
        .problem(400);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn missing_invalid_and_insufficient_credentials() {
    let server = busy_server();
    let cli = server.cli();
    let reader = cli.create_key("alice", "orders:read", &["--plan", "enterprise"]);
    let client = cli.create_client("ro", "orders:read", &["client_credentials"], &[]);
    let token = server.client_credentials(&client, None).await;

    let none = server.get("/api/orders").await;
    none.problem(401);
    assert!(none.header("www-authenticate").is_some());

    let wrong_key = server
        .send(
            server
                .http()
                .get(server.url("/api/orders"))
                .header("x-api-key", "pk_live_ThisIsNotAKeyThisIsNotAKey0000"),
        )
        .await;
    let problem = wrong_key.problem(401);
    assert!(wrong_key.header("www-authenticate").is_some());
    assert!(!problem.to_string().contains("ThisIsNotAKey"));

    let bad_token = with_bearer(
        &server,
        "eyJhbGciOiJub25lIn0.e30.",
        Method::GET,
        "/api/orders",
    )
    .await;
    bad_token.problem(401);
    assert!(bad_token.header("www-authenticate").is_some());

    // Authenticated but without the scope: 403.
    create_order(&server, &reader, &order_body())
        .await
        .problem(403);
    let forbidden = server
        .send(
            server
                .http()
                .post(server.url("/api/orders"))
                .bearer_auth(&token)
                .json(&order_body()),
        )
        .await;
    forbidden.problem(403);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn another_owners_order_is_indistinguishable_from_a_missing_one() {
    let server = busy_server();
    let cli = server.cli();
    let alice = rw_key(&cli, "alice");
    let bob = rw_key(&cli, "bob");
    let created = create_order(&server, &alice, &order_body()).await;
    created.expect(201);
    let id = str_of(&created.json(), "id").to_owned();

    let strip = |resp: &Resp| {
        let mut body = resp.problem(404);
        body.as_object_mut().unwrap().remove("instance");
        body
    };
    let theirs = with_key(&server, &bob, Method::GET, &format!("/api/orders/{id}")).await;
    let missing = with_key(
        &server,
        &bob,
        Method::GET,
        "/api/orders/ord_0000000000000000000000000000",
    )
    .await;
    assert_eq!(strip(&theirs), strip(&missing));
    assert_eq!(theirs.content_type(), missing.content_type());
    let delete_theirs = with_key(&server, &bob, Method::DELETE, &format!("/api/orders/{id}")).await;
    assert_eq!(strip(&delete_theirs), strip(&missing));
    let bobs_list = with_key(&server, &bob, Method::GET, "/api/orders").await;
    assert_eq!(bobs_list.json()["orders"], json!([]));

    // The owner still has it, deletes it (204), and then it is gone.
    with_key(&server, &alice, Method::GET, &format!("/api/orders/{id}"))
        .await
        .expect(200);
    let deleted = with_key(
        &server,
        &alice,
        Method::DELETE,
        &format!("/api/orders/{id}"),
    )
    .await;
    deleted.expect(204);
    assert!(deleted.body.is_empty());
    with_key(&server, &alice, Method::GET, &format!("/api/orders/{id}"))
        .await
        .problem(404);
    with_key(
        &server,
        &alice,
        Method::DELETE,
        &format!("/api/orders/{id}"),
    )
    .await
    .problem(404);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn order_lists_are_paginated_with_cursors() {
    let server = busy_server();
    let cli = server.cli();
    let alice = rw_key(&cli, "alice");
    let bob = rw_key(&cli, "bob");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let created = create_order(&server, &alice, &order_body()).await;
        created.expect(201);
        ids.push(str_of(&created.json(), "id").to_owned());
    }
    let page = |key: &ApiKey, query: Vec<(&'static str, String)>| {
        let server = &server;
        let key = key.clone();
        async move {
            server
                .send(
                    server
                        .http()
                        .get(server.url("/api/orders"))
                        .query(&query)
                        .header("x-api-key", &key.key),
                )
                .await
        }
    };

    let all = page(&alice, vec![]).await;
    all.expect(200);
    let all = all.json();
    assert_eq!(all["orders"].as_array().unwrap().len(), 5);
    assert!(all["next_cursor"].is_null());

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = vec![("limit", "2".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let answer = page(&alice, query).await;
        answer.expect(200);
        let body = answer.json();
        let orders = body["orders"].as_array().unwrap();
        assert!(orders.len() <= 2);
        seen.extend(orders.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every order once, in order");

    // limit above 100 (or below 1) is a 422 naming the parameter.
    for bad in ["101", "0", "ten"] {
        let answer = page(&alice, vec![("limit", bad.to_owned())]).await;
        let problem = answer.problem(422);
        assert_eq!(problem["errors"][0]["field"], "limit", "{problem}");
    }
    page(&alice, vec![("limit", "100".to_owned())])
        .await
        .expect(200);

    // A cursor the server did not issue (or issued to someone else) is a 4xx.
    let first = page(&alice, vec![("limit", "2".to_owned())]).await.json();
    let issued = str_of(&first, "next_cursor").to_owned();
    for forged in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "not a cursor".to_owned(),
        format!("{issued}A"),
        "x".repeat(500),
    ] {
        let answer = page(&alice, vec![("cursor", forged)]).await;
        assert!((400..500).contains(&answer.status), "{}", answer.body);
        answer.problem(answer.status);
    }
    let stolen = page(&bob, vec![("cursor", issued)]).await;
    assert!((400..500).contains(&stolen.status), "{}", stolen.body);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn order_bodies_are_validated() {
    let server = busy_server();
    let key = rw_key(&server.cli(), "alice");
    let with = |path: &[&str], value: Value| {
        let mut body = order_body();
        let mut target = &mut body;
        for (i, part) in path.iter().enumerate() {
            if i + 1 == path.len() {
                if value.is_null() {
                    target.as_object_mut().unwrap().remove(*part);
                } else {
                    target[*part] = value.clone();
                }
                break;
            }
            target = match part.parse::<usize>() {
                Ok(index) => &mut target[index],
                Err(_) => &mut target[*part],
            };
        }
        body
    };
    let many_items: Vec<Value> = (0..101)
        .map(|_| json!({"product_id": "prod_a1", "quantity": 1}))
        .collect();
    let many_pairs: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&["items", "0", "quantity"], json!(0)),
            "items.0.quantity",
        ),
        (
            with(&["items", "0", "quantity"], json!(1000)),
            "items.0.quantity",
        ),
        (
            with(&["items", "0", "quantity"], json!(1.5)),
            "items.0.quantity",
        ),
        (
            with(&["items", "0", "quantity"], json!("2")),
            "items.0.quantity",
        ),
        (
            with(&["items", "0", "product_id"], json!("abc")),
            "items.0.product_id",
        ),
        (
            with(&["items", "0", "product_id"], json!("prod_a-b")),
            "items.0.product_id",
        ),
        (with(&["items"], json!([])), "items"),
        (with(&["items"], Value::Array(many_items)), "items"),
        (
            with(&["shipping_address", "country"], json!("us")),
            "shipping_address.country",
        ),
        (
            with(&["shipping_address", "country"], json!("USA")),
            "shipping_address.country",
        ),
        (
            with(&["shipping_address", "street"], json!("")),
            "shipping_address.street",
        ),
        (
            with(&["shipping_address", "city"], json!("c".repeat(101))),
            "shipping_address.city",
        ),
        (
            with(&["shipping_address", "postal_code"], json!("12")),
            "shipping_address.postal_code",
        ),
        (with(&["shipping_address"], Value::Null), "shipping_address"),
        (with(&["notes"], json!("n".repeat(501))), "notes"),
        (with(&["metadata"], json!({"$where": "1"})), "metadata"),
        (with(&["metadata"], json!({"__proto__": "x"})), "metadata"),
        (with(&["metadata"], json!({"constructor": "x"})), "metadata"),
        (with(&["metadata"], Value::Object(many_pairs)), "metadata"),
        (with(&["admin"], json!(true)), "admin"),
        (
            with(&["shipping_address", "floor"], json!(3)),
            "shipping_address.floor",
        ),
    ];
    for (body, field) in cases {
        let answer = create_order(&server, &key, &body).await;
        let problem = answer.problem(422);
        let errors = problem["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{problem}"));
        assert!(!errors.is_empty(), "{problem}");
        for error in errors {
            for name in ["field", "code", "message"] {
                assert!(error[name].is_string(), "{name} in {error}");
            }
        }
        assert!(
            errors.iter().any(|e| e["field"]
                .as_str()
                .is_some_and(|f| f == field || f.starts_with(&format!("{field}.")))),
            "expected an error on {field}: {problem}"
        );
    }

    // `__proto__` anywhere, even escaped, is a validation error like any other.
    let escaped = serde_json::to_string(&order_body()).unwrap().replacen(
        '{',
        "{\"metadata\":{\"__pro\\u0074o__\":\"x\"},",
        1,
    );
    let answer = server
        .send(
            server
                .http()
                .post(server.url("/api/orders"))
                .header("x-api-key", &key.key)
                .header("content-type", "application/json")
                .body(escaped),
        )
        .await;
    let problem = answer.problem(422);
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("metadata"),
        "{problem}"
    );
    let nested = with(&["items", "0", "__proto__"], json!({"admin": true}));
    let problem = create_order(&server, &key, &nested).await.problem(422);
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("items.0"),
        "{problem}"
    );

    // A valid body with every optional field passes.
    let mut full = order_body();
    full["notes"] = json!("leave at the door");
    full["metadata"] = json!({"gift": "yes"});
    create_order(&server, &key, &full).await.expect(201);

    // Malformed JSON: 400; too large: 413; not JSON: 415.
    let raw = |content_type: Option<&str>, body: Vec<u8>| {
        let mut request = server
            .http()
            .post(server.url("/api/orders"))
            .header("x-api-key", &key.key)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        server.send(request)
    };
    raw(Some("application/json"), b"{\"items\": [".to_vec())
        .await
        .problem(400);
    let mut huge = order_body();
    huge["notes"] = json!("x".repeat(300 * 1024));
    raw(Some("application/json"), serde_json::to_vec(&huge).unwrap())
        .await
        .problem(413);
    // Too large in total although every part is small.
    let mut long = order_body();
    long["items"] = Value::Array(
        (0..7000)
            .map(|_| json!({"product_id": "prod_a1b2c3d4e5", "quantity": 1}))
            .collect(),
    );
    let long = serde_json::to_vec(&long).unwrap();
    assert!(long.len() > 256 * 1024);
    raw(Some("application/json"), long).await.problem(413);
    let valid = serde_json::to_vec(&order_body()).unwrap();
    raw(Some("text/plain"), valid.clone()).await.problem(415);
    raw(None, valid.clone()).await.problem(415);
    raw(Some("application/x-www-form-urlencoded"), valid)
        .await
        .problem(415);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problem_documents() {
    let server = busy_server();
    let key = rw_key(&server.cli(), "alice");
    server.get("/no/such/path").await.problem(404);
    server
        .send(server.http().post(server.url("/health")))
        .await
        .problem(405);
    server
        .send(server.http().delete(server.url("/.well-known/jwks.json")))
        .await
        .problem(405);
    with_key(&server, &key, Method::PUT, "/api/orders")
        .await
        .problem(405);
    with_key(&server, &key, Method::PATCH, "/api/orders/ord_1")
        .await
        .problem(405);
    let oauth = server.get("/oauth/token").await;
    oauth.expect(405);
    server.assert_no_secret_leaks();
}

/// Replay, tampering and staleness for one signature profile.
async fn signature_defences(profile: Profile) {
    let server = busy_server();
    let credential = server
        .cli()
        .create_credential("dave", "orders:read,orders:write");
    let url = server.url("/api/orders");

    // The same signed request twice: the second is a replay.
    let headers = sign_request(
        profile,
        &credential,
        "GET",
        &url,
        None,
        b"",
        SystemTime::now(),
    );
    server
        .send(with_headers(server.http().get(&url), &headers))
        .await
        .expect(200);
    let replay = server
        .send(with_headers(server.http().get(&url), &headers))
        .await;
    replay.problem(401);
    assert!(replay.header("www-authenticate").is_some());

    // A body other than the one signed.
    let signed_body = serde_json::to_vec(&order_body()).unwrap();
    let mut other = order_body();
    other["items"][0]["quantity"] = json!(999);
    let headers = sign_request(
        profile,
        &credential,
        "POST",
        &url,
        Some("application/json"),
        &signed_body,
        SystemTime::now(),
    );
    server
        .send(
            with_headers(server.http().post(&url), &headers)
                .body(serde_json::to_vec(&other).unwrap()),
        )
        .await
        .problem(401);
    // The untampered request is accepted (once).
    server
        .send(with_headers(server.http().post(&url), &headers).body(signed_body))
        .await
        .expect(201);

    // Six minutes old.
    let stale = SystemTime::now() - Duration::from_secs(6 * 60);
    let headers = sign_request(profile, &credential, "GET", &url, None, b"", stale);
    if profile == Profile::Palisade {
        let date = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-palisade-date"))
            .unwrap();
        assert_eq!(date.1.len(), 16, "ISO 8601 basic: {}", date.1);
    }
    server
        .send(with_headers(server.http().get(&url), &headers))
        .await
        .problem(401);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn palisade_signatures_refuse_replay_tampering_and_stale_dates() {
    signature_defences(Profile::Palisade).await;
}

#[tokio::test]
async fn rfc9421_signatures_refuse_replay_tampering_and_stale_dates() {
    signature_defences(Profile::Rfc9421).await;
}

// ---------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------

#[track_caller]
fn assert_rate_limit_headers(response: &Resp) {
    let number = |name: &str| -> u64 {
        response
            .header(name)
            .unwrap_or_else(|| {
                panic!(
                    "{name} missing (status {}): {:?}",
                    response.status, response.headers
                )
            })
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number"))
    };
    let limit = number("x-ratelimit-limit");
    let remaining = number("x-ratelimit-remaining");
    let reset = number("x-ratelimit-reset");
    assert!(limit > 0 && remaining <= limit);
    let now = unix_now();
    assert!(
        reset + 1 >= now && reset <= now + 2 * 86_400,
        "X-RateLimit-Reset must be Unix seconds: {reset}"
    );
    for name in ["ratelimit-policy", "ratelimit"] {
        assert!(
            response.header(name).is_some_and(|v| !v.is_empty()),
            "{name} missing (status {})",
            response.status
        );
    }
}

#[tokio::test]
async fn every_api_and_oauth_answer_carries_rate_limit_fields() {
    // The defaults: the free plan.
    let server = Server::start();
    let cli = server.cli();
    let key = cli.create_key("alice", "orders:read", &[]);
    let client = cli.create_client("svc", "orders:read", &["client_credentials"], &[]);

    let answers = vec![
        with_key(&server, &key, Method::GET, "/api/orders").await,
        with_key(&server, &key, Method::GET, "/api/orders/ord_missing").await,
        create_order(&server, &key, &order_body()).await,
        server.get("/api/orders").await,
        server
            .token(&client, &[("grant_type", "client_credentials")])
            .await,
        server
            .send(
                server
                    .http()
                    .post(server.url("/oauth/token"))
                    .basic_auth(&client.client_id, Some("wrong"))
                    .form(&[("grant_type", "client_credentials")]),
            )
            .await,
        server.token(&client, &[("grant_type", "nonsense")]).await,
        server.get("/oauth/authorize?client_id=x").await,
        server
            .send(
                server
                    .http()
                    .post(server.url("/oauth/introspect"))
                    .form(&[("token", "x")]),
            )
            .await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 404, 403, 401, 200, 401, 400, 400, 401]);
    for answer in &answers {
        assert_rate_limit_headers(answer);
    }
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn a_key_with_a_rate_limit_of_three_gets_429_on_its_fourth_request() {
    let server = Server::start();
    let key = server
        .cli()
        .create_key("alice", "orders:read", &["--rate-limit", "3"]);
    // Counting is per minute: keep the four requests inside one.
    while unix_now() % 60 >= 57 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for expected_remaining in [2, 1, 0] {
        let answer = with_key(&server, &key, Method::GET, "/api/orders").await;
        answer.expect(200);
        assert_rate_limit_headers(&answer);
        assert_eq!(answer.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(
            answer.header("x-ratelimit-remaining"),
            Some(expected_remaining.to_string().as_str())
        );
    }
    let limited = with_key(&server, &key, Method::GET, "/api/orders").await;
    limited.problem(429);
    assert_rate_limit_headers(&limited);
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    // The per-minute window slides, so the wait may exceed 60 s a little.
    assert!((1..=120).contains(&retry), "{retry}");
    // Another key is not affected.
    let other = server.cli().create_key("bob", "orders:read", &[]);
    with_key(&server, &other, Method::GET, "/api/orders")
        .await
        .expect(200);
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Administration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_needs_the_scope_and_proof_of_possession() {
    let server = busy_server();
    let cli = server.cli();
    let admin_key = cli.create_key("ops", "admin,orders:read", &["--plan", "enterprise"]);
    let admin_client = cli.create_client("ops", "admin", &["client_credentials"], &[]);
    let admin_token = server
        .client_credentials(&admin_client, Some("admin"))
        .await;
    let reader = cli.create_credential("ops", "orders:read");
    let admin = cli.create_credential("ops", "admin");

    server.get("/admin/keys").await.problem(401);
    with_key(&server, &admin_key, Method::GET, "/admin/keys")
        .await
        .problem(403);
    with_bearer(&server, &admin_token, Method::GET, "/admin/keys")
        .await
        .problem(403);
    with_bearer(&server, &admin_token, Method::GET, "/admin/abuse")
        .await
        .problem(403);
    for profile in [Profile::Palisade, Profile::Rfc9421] {
        signed_send(&server, profile, &reader, Method::GET, "/admin/keys", None)
            .await
            .problem(403);
        let listed = signed_send(&server, profile, &admin, Method::GET, "/admin/keys", None).await;
        listed.expect(200);
        assert!(
            listed
                .header("cache-control")
                .is_some_and(|v| v.contains("no-store"))
        );
        assert!(
            listed
                .json()
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["key_id"] == admin_key.key_id.as_str())
        );
    }
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn admin_manages_keys() {
    let server = busy_server();
    let cli = server.cli();
    let admin = cli.create_credential("ops", "admin");
    let send = |method: Method, path: String, body: Option<Value>| {
        let server = &server;
        let admin = &admin;
        async move {
            signed_send(
                server,
                Profile::Palisade,
                admin,
                method,
                &path,
                body.as_ref(),
            )
            .await
        }
    };

    let created = send(
        Method::POST,
        "/admin/keys".into(),
        Some(json!({"owner": "dave", "scopes": ["orders:read"], "plan": "enterprise"})),
    )
    .await;
    created.expect(201);
    let body = created.json();
    let dave = ApiKey {
        key: str_of(&body, "key").to_owned(),
        key_id: str_of(&body, "key_id").to_owned(),
    };
    server.secret_from(&dave.key, &created);
    with_key(&server, &dave, Method::GET, "/api/orders")
        .await
        .expect(200);

    // Invalid specs are 422 naming the field.
    let invalid = send(
        Method::POST,
        "/admin/keys".into(),
        Some(json!({"owner": "dave", "scopes": ["orders:read"], "plan": "gold"})),
    )
    .await;
    assert_eq!(invalid.problem(422)["errors"][0]["field"], "plan");

    // Listing shows the key, never the raw key or a hash.
    let listed = send(Method::GET, "/admin/keys?owner=dave".into(), None).await;
    listed.expect(200);
    let keys = listed.json();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["key_id"], dave.key_id.as_str());
    assert_eq!(keys[0]["owner"], "dave");
    for entry in keys {
        let object = entry.as_object().unwrap();
        assert!(!object.contains_key("key"));
        assert!(!object.keys().any(|k| k.contains("hash")), "{entry}");
    }
    assert!(!has_hex_run(&listed.body, 32), "{}", listed.body);

    // Rotation: a successor; the old key works through the grace period.
    let rotated = send(
        Method::POST,
        format!("/admin/keys/{}/rotate", dave.key_id),
        Some(json!({"grace": "30s"})),
    )
    .await;
    rotated.expect(201);
    let body = rotated.json();
    let successor = ApiKey {
        key: str_of(&body, "key").to_owned(),
        key_id: str_of(&body, "key_id").to_owned(),
    };
    server.secret_from(&successor.key, &rotated);
    assert_ne!(successor.key_id, dave.key_id);
    with_key(&server, &successor, Method::GET, "/api/orders")
        .await
        .expect(200);
    with_key(&server, &dave, Method::GET, "/api/orders")
        .await
        .expect(200);
    // Rotating it again is a conflict; an unknown key is a 404.
    let again = send(
        Method::POST,
        format!("/admin/keys/{}/rotate", dave.key_id),
        None,
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    send(
        Method::POST,
        "/admin/keys/key_doesnotexist0000/rotate".into(),
        None,
    )
    .await
    .problem(404);

    // Revocation is effective on the next request.
    send(
        Method::DELETE,
        format!("/admin/keys/{}", successor.key_id),
        None,
    )
    .await
    .expect(204);
    with_key(&server, &successor, Method::GET, "/api/orders")
        .await
        .problem(401);
    send(
        Method::DELETE,
        "/admin/keys/key_doesnotexist0000".into(),
        None,
    )
    .await
    .problem(404);

    // The RFC 9421 profile works as well.
    signed_send(
        &server,
        Profile::Rfc9421,
        &admin,
        Method::GET,
        "/admin/keys",
        None,
    )
    .await
    .expect(200);
    server.assert_no_secret_leaks();
}

/// A client that connects from 127.0.0.2 (another loopback address), so that its failed
/// authentications lock out only itself.
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

#[tokio::test]
async fn failed_authentications_lock_an_address_out_until_an_admin_clears_it() {
    let server = busy_server();
    let admin = server.cli().create_credential("ops", "admin");
    let key = server
        .cli()
        .create_key("erin", "orders:read", &["--plan", "enterprise"]);
    let attacker = client_from("127.0.0.2");
    let attempt = || {
        let server = &server;
        let attacker = &attacker;
        async move {
            server
                .send(
                    attacker
                        .get(server.url("/api/orders"))
                        .header("x-api-key", "pk_live_guessguessguessguessguess00"),
                )
                .await
        }
    };
    // Five free failures, then backoff lockouts (1 s, 2 s, 4 s, ...) for the address.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(attempt().await.status);
    }
    assert_eq!(statuses, [401; 5]);
    let locked = loop {
        let answer = attempt().await;
        statuses.push(answer.status);
        if answer.status == 429 {
            break answer;
        }
        assert!(statuses.len() < 12, "never locked out: {statuses:?}");
    };
    let problem = locked.problem(429);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .contains("too-many-auth-failures")
    );
    assert!(locked.header("retry-after").is_some());
    // A good key from the locked address is refused too; 127.0.0.1 is unaffected.
    server
        .send(
            attacker
                .get(server.url("/api/orders"))
                .header("x-api-key", &key.key),
        )
        .await
        .problem(429);
    with_key(&server, &key, Method::GET, "/api/orders")
        .await
        .expect(200);

    // The admin lifts the lockout.
    signed_send(
        &server,
        Profile::Palisade,
        &admin,
        Method::DELETE,
        "/admin/abuse/address:127.0.0.2",
        None,
    )
    .await
    .expect(204);
    server
        .send(
            attacker
                .get(server.url("/api/orders"))
                .header("x-api-key", &key.key),
        )
        .await
        .expect(200);
    signed_send(
        &server,
        Profile::Palisade,
        &admin,
        Method::DELETE,
        "/admin/abuse/robot:1",
        None,
    )
    .await
    .problem(422);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn abnormal_use_is_listed_for_the_admin_and_can_be_cleared() {
    let server = busy_server();
    let admin = server.cli().create_credential("ops", "admin");
    let mallory = rw_key(&server.cli(), "mallory");
    // Far more errors than successes: the error-rate rule throttles the key.
    for _ in 0..70 {
        let answer = with_key(&server, &mallory, Method::GET, "/api/orders/ord_missing").await;
        if answer.status == 429 {
            break;
        }
    }
    let identity = format!("apikey:{}", mallory.key_id);
    let deadline = Instant::now() + Duration::from_secs(3);
    let flag = loop {
        let answer = signed_send(
            &server,
            Profile::Palisade,
            &admin,
            Method::GET,
            "/admin/abuse",
            None,
        )
        .await;
        answer.expect(200);
        let listed = answer.json();
        if let Some(flag) = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["identity"] == identity.as_str())
        {
            break flag.clone();
        }
        assert!(Instant::now() < deadline, "{identity} not in {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        flag["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{flag}"
    );
    assert!(flag["action"].is_string(), "{flag}");
    let throttled = with_key(&server, &mallory, Method::GET, "/api/orders").await;
    assert!(matches!(throttled.status, 429 | 403), "{}", throttled.body);

    signed_send(
        &server,
        Profile::Rfc9421,
        &admin,
        Method::DELETE,
        &format!("/admin/abuse/{identity}"),
        None,
    )
    .await
    .expect(204);
    with_key(&server, &mallory, Method::GET, "/api/orders")
        .await
        .expect(200);
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// On every response
// ---------------------------------------------------------------------------------------

#[track_caller]
fn assert_security_headers(response: &Resp) {
    let expect = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in expect {
        assert_eq!(
            response.header(name),
            Some(value),
            "{name} on a {} answer",
            response.status
        );
    }
    for absent in ["server", "x-powered-by", "strict-transport-security"] {
        assert!(
            response.header(absent).is_none(),
            "{absent} on a {} answer over plain HTTP",
            response.status
        );
    }
}

#[tokio::test]
async fn security_headers_are_on_every_answer() {
    let server = busy_server();
    let key = rw_key(&server.cli(), "alice");
    let mut unauthenticated = vec![
        server.get("/health").await,
        server.get("/openapi.json").await,
        server.get("/.well-known/jwks.json").await,
        server.get("/.well-known/oauth-authorization-server").await,
        server.get("/nope").await,
        server.send(server.http().post(server.url("/health"))).await,
        server.get("/api/orders").await,
        server
            .send(
                server
                    .http()
                    .post(server.url("/oauth/token"))
                    .form(&[("grant_type", "client_credentials")]),
            )
            .await,
        server.get("/oauth/authorize").await,
    ];
    let created = create_order(&server, &key, &order_body()).await;
    let id = str_of(&created.json(), "id").to_owned();
    let authenticated = vec![
        with_key(&server, &key, Method::GET, "/api/orders").await,
        created,
        with_key(&server, &key, Method::GET, &format!("/api/orders/{id}")).await,
        with_key(&server, &key, Method::GET, "/api/orders/ord_missing").await,
        with_key(&server, &key, Method::GET, "/api/orders?limit=500").await,
        create_order(&server, &key, &json!({"items": []})).await,
        with_key(&server, &key, Method::DELETE, &format!("/api/orders/{id}")).await,
    ];
    let statuses: Vec<u16> = authenticated.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 201, 200, 404, 422, 422, 204]);
    for answer in &authenticated {
        assert_security_headers(answer);
        assert!(
            answer
                .header("cache-control")
                .is_some_and(|v| v.split(',').any(|d| d.trim() == "no-store")),
            "Cache-Control: no-store on an authenticated {} answer",
            answer.status
        );
    }
    unauthenticated.extend(authenticated);
    for answer in &unauthenticated {
        assert_security_headers(answer);
    }
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn request_ids_are_echoed_when_valid_and_replaced_otherwise() {
    let server = Server::start();
    let with_id = |id: String| {
        let server = &server;
        async move {
            server
                .send(
                    server
                        .http()
                        .get(server.url("/health"))
                        .header("x-request-id", id),
                )
                .await
        }
    };
    let is_uuid = |value: Option<&str>| value.is_some_and(|v| uuid::Uuid::parse_str(v).is_ok());

    for valid in [
        "abc".to_owned(),
        "A-z_0.9:x".to_owned(),
        "r".repeat(128),
        "1".to_owned(),
    ] {
        let answer = with_id(valid.clone()).await;
        assert_eq!(answer.header("x-request-id"), Some(valid.as_str()));
    }
    for invalid in [
        "r".repeat(129),
        "has space".to_owned(),
        "semi;colon".to_owned(),
        "slash/id".to_owned(),
        String::new(),
    ] {
        let answer = with_id(invalid.clone()).await;
        let echoed = answer.header("x-request-id");
        assert_ne!(echoed, Some(invalid.as_str()));
        assert!(is_uuid(echoed), "{invalid:?} was answered with {echoed:?}");
    }
    let none = server.get("/health").await;
    assert!(is_uuid(none.header("x-request-id")));
    // On errors too.
    let missing = server
        .send(
            server
                .http()
                .get(server.url("/nope"))
                .header("x-request-id", "trace-42"),
        )
        .await;
    missing.expect(404);
    assert_eq!(missing.header("x-request-id"), Some("trace-42"));
    let unauthenticated = server
        .send(
            server
                .http()
                .get(server.url("/api/orders"))
                .header("x-request-id", "trace-43"),
        )
        .await;
    unauthenticated.expect(401);
    assert_eq!(unauthenticated.header("x-request-id"), Some("trace-43"));
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn metrics_are_served_only_on_the_metrics_listener() {
    let server = Server::start();
    server.get("/health").await.expect(200);
    server.get("/metrics").await.problem(404);
    assert_ne!(server.metrics_url, server.url("/metrics"));
    let metrics = server.send(server.http().get(&server.metrics_url)).await;
    metrics.expect(200);
    assert!(
        metrics.body.contains("palisade_http_requests"),
        "{}",
        metrics.body
    );
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn a_trusted_proxy_must_forward_https_and_then_gets_hsts() {
    let server = Server::builder()
        .env("PALISADE_TRUSTED_PROXIES", "[\"127.0.0.0/8\"]")
        .start();
    let plain = server.get("/health").await;
    plain.problem(403);
    assert_security_headers(&plain);
    let forwarded = server
        .send(
            server
                .http()
                .get(server.url("/health"))
                .header("x-forwarded-proto", "https"),
        )
        .await;
    forwarded.expect(200);
    assert_eq!(
        forwarded.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    server
        .send(
            server
                .http()
                .get(server.url("/health"))
                .header("x-forwarded-proto", "http"),
        )
        .await
        .problem(403);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn a_key_limited_to_an_address_is_refused_elsewhere() {
    let server = busy_server();
    let key = server.cli().create_key(
        "alice",
        "orders:read",
        &["--plan", "enterprise", "--allowed-ip", "127.0.0.2/32"],
    );
    with_key(&server, &key, Method::GET, "/api/orders")
        .await
        .problem(403);
    server
        .send(
            client_from("127.0.0.2")
                .get(server.url("/api/orders"))
                .header("x-api-key", &key.key),
        )
        .await
        .expect(200);
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn webhook_urls_must_be_https_and_public() {
    let server = busy_server();
    let key = rw_key(&server.cli(), "alice");
    let register = |body: Value| {
        let server = &server;
        let key = &key;
        async move {
            server
                .send(
                    server
                        .http()
                        .post(server.url("/api/webhooks"))
                        .header("x-api-key", &key.key)
                        .json(&body),
                )
                .await
        }
    };
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://192.168.0.1/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let answer = register(json!({"url": url, "events": ["order.created"]})).await;
        let problem = answer.problem(422);
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    let answer =
        register(json!({"url": "https://example.com/hook", "events": ["user.deleted"]})).await;
    assert_eq!(answer.problem(422)["errors"][0]["field"], "events");
    // Read-only credentials may not register webhooks.
    let reader = server
        .cli()
        .create_key("alice", "orders:read", &["--plan", "enterprise"]);
    server
        .send(
            server
                .http()
                .post(server.url("/api/webhooks"))
                .header("x-api-key", &reader.key)
                .json(&json!({"url": "https://example.com/hook", "events": ["order.created"]})),
        )
        .await
        .problem(403);
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn cli_keys_create_list_revoke_and_rotate() {
    let server = busy_server();
    let cli = server.cli();

    // --json prints the raw key and its id.
    let created = cli.json(
        &[
            "keys",
            "create",
            "--owner",
            "erin",
            "--scopes",
            "orders:read",
            "--plan",
            "enterprise",
        ],
        None,
    );
    let key = ApiKey {
        key: str_of(&created, "key").to_owned(),
        key_id: str_of(&created, "key_id").to_owned(),
    };
    cli.secret(&key.key);
    // Text mode prints it too, once.
    let text = cli.run_ok(
        &[
            "keys",
            "create",
            "--owner",
            "erin",
            "--scopes",
            "orders:read",
            "--plan",
            "enterprise",
        ],
        None,
    );
    let text_key = text.lines().next().unwrap().trim().to_owned();
    cli.secret(&text_key);
    assert!(text.contains("key_id"), "{text}");

    // Listing never shows a raw key or a hash.
    for args in [
        vec!["keys", "list"],
        vec!["keys", "list", "--json"],
        vec!["keys", "list", "--owner", "erin"],
    ] {
        let listing = cli.run_ok(&args, None);
        assert!(listing.contains(&key.key_id), "{listing}");
        assert!(
            !listing.contains(&key.key) && !listing.contains(&text_key),
            "{listing}"
        );
        assert!(!has_hex_run(&listing, 32), "{listing}");
        assert!(!listing.to_ascii_lowercase().contains("hash"), "{listing}");
    }
    let listed = cli.json(&["keys", "list", "--owner", "erin"], None);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Revocation reaches the running server within about a second.
    with_key(&server, &key, Method::GET, "/api/orders")
        .await
        .expect(200);
    cli.run_ok(&["keys", "revoke", &key.key_id], None);
    let started = Instant::now();
    let refused = eventually(Duration::from_secs(2), || {
        let server = &server;
        let key = &key;
        async move {
            with_key(server, key, Method::GET, "/api/orders")
                .await
                .status
                == 401
        }
    })
    .await;
    assert!(refused, "a revoked key still works after 2 s");
    assert!(
        started.elapsed() < Duration::from_millis(1600),
        "{:?}",
        started.elapsed()
    );
    let (status, _, stderr) = cli.run(&["keys", "revoke", &key.key_id], None);
    assert!(!status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // Rotation with a grace period: both keys work; the old one shows its successor.
    let old = cli.create_key("frank", "orders:read", &["--plan", "enterprise"]);
    let rotated = cli.json(&["keys", "rotate", &old.key_id, "--grace", "30s"], None);
    let new = ApiKey {
        key: str_of(&rotated, "key").to_owned(),
        key_id: str_of(&rotated, "key_id").to_owned(),
    };
    cli.secret(&new.key);
    assert_ne!(new.key_id, old.key_id);
    for key in [&old, &new] {
        with_key(&server, key, Method::GET, "/api/orders")
            .await
            .expect(200);
    }
    let listed = cli.json(&["keys", "list", "--owner", "frank"], None);
    let old_entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == old.key_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(old_entry["rotated_to"], new.key_id.as_str(), "{old_entry}");
    let grace_until = time::OffsetDateTime::parse(
        str_of(&old_entry, "grace_until"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    let in_secs = grace_until - i64::try_from(unix_now()).unwrap();
    assert!((20..=40).contains(&in_secs), "grace ends in {in_secs} s");
    let (status, _, stderr) = cli.run(&["keys", "rotate", &new.key_id, "--grace", "30x"], None);
    assert!(!status.success());
    assert!(stderr.contains("--grace"), "{stderr}");
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn cli_clients_credentials_and_users() {
    let server = busy_server();
    let cli = server.cli();
    let client = cli.json(
        &[
            "clients",
            "create",
            "--name",
            "web",
            "--scopes",
            "orders:read",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
        ],
        None,
    );
    let client_secret = str_of(&client, "client_secret").to_owned();
    cli.secret(&client_secret);
    assert!(!str_of(&client, "client_id").is_empty());
    let grants = client["grant_types"].as_array().unwrap();
    assert!(grants.contains(&json!("refresh_token")), "{client}");

    let credential = cli.json(
        &[
            "credentials",
            "create",
            "--owner",
            "gina",
            "--scopes",
            "orders:read",
        ],
        None,
    );
    let credential = Credential {
        access_key_id: str_of(&credential, "access_key_id").to_owned(),
        secret: str_of(&credential, "secret").to_owned(),
    };
    cli.secret(&credential.secret);
    signed_send(
        &server,
        Profile::Palisade,
        &credential,
        Method::GET,
        "/api/orders",
        None,
    )
    .await
    .expect(200);

    // The password loses exactly one trailing newline.
    cli.create_user("henry", PASSWORD);
    let client = OAuthClient {
        client_id: str_of(&client, "client_id").to_owned(),
        client_secret,
    };
    let tokens = code_flow(&server, &client, "henry", "orders:read").await;
    assert!(tokens["access_token"].is_string());
    cli.run_ok(
        &["users", "create", "ivy", "--password-stdin"],
        Some("two newlines\n\n"),
    );
    cli.secret("two newlines");
    let (_, challenge) = pkce();
    let params = [
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    authorize(&server, &params, Some(("ivy", "two newlines\n")))
        .await
        .expect(302);

    // Bad input: a non-zero exit and one line.
    for args in [
        vec![
            "clients", "create", "--name", "x", "--scopes", "a", "--grant", "password",
        ],
        vec![
            "clients",
            "create",
            "--name",
            "x",
            "--scopes",
            "a",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "not a uri",
        ],
        vec![
            "keys",
            "create",
            "--owner",
            "x",
            "--scopes",
            "orders:read",
            "--plan",
            "gold",
        ],
        vec![
            "keys",
            "create",
            "--owner",
            "x",
            "--scopes",
            "orders:read",
            "--allowed-ip",
            "10.0.0.0/33",
        ],
    ] {
        let (status, stdout, stderr) = cli.run(&args, None);
        assert!(!status.success(), "{args:?}: {stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
    server.assert_no_secret_leaks();
}

#[test]
fn cli_config_print_redacts_passwords_and_needs_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cli = Cli::new(&data)
        .env(
            "PALISADE_DATABASE_URL",
            "postgres://u:hunter2@127.0.0.1:1/x",
        )
        .env("PALISADE_REDIS_URL", "redis://:redispass99@127.0.0.1:1/0");
    let text = cli.run_ok(&["config", "print"], None);
    assert!(text.contains("database_url"), "{text}");
    assert!(text.contains("postgres://u:***@127.0.0.1:1/x"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("redispass99"),
        "{text}"
    );
    let json = cli.json(&["config", "print"], None);
    assert_eq!(json["database_url"], "postgres://u:***@127.0.0.1:1/x");
    assert!(!json.to_string().contains("hunter2"));
    assert!(!json.to_string().contains("redispass99"));
    assert!(json["listen"].is_string());
    // Nothing was created: the command did not open a database.
    assert!(!data.exists());

    // The same from a configuration file; `--config` may stand after the command.
    let file = dir.path().join("palisade.toml");
    std::fs::write(
        &file,
        "database_url = \"postgres://app:filepass77@db.internal/palisade\"\nlisten = \"127.0.0.1:9999\"\n",
    )
    .unwrap();
    let (status, stdout, stderr) = common::cli(
        &data,
        &["config", "print", "--config", file.to_str().unwrap()],
        None,
    );
    assert!(status.success(), "{stderr}");
    assert!(!stdout.contains("filepass77"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:9999"), "{stdout}");
}

#[test]
fn cli_bad_configuration_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("palisade.toml");
    let check = |toml: &str, env: &[(&str, &str)], name: &str| {
        std::fs::write(&file, toml).unwrap();
        let mut cli = Cli::new(&data).config(&file);
        for (k, v) in env {
            cli = cli.env(k, v);
        }
        // `serve` on a public address: should the configuration pass, the server still
        // refuses to start (plain HTTP), so the test cannot hang on a running server.
        for args in [
            vec!["config", "print"],
            vec!["serve", "--listen", "0.0.0.0:0"],
        ] {
            let (status, _, stderr) = cli.run(&args, None);
            assert!(
                !status.success(),
                "{toml} / {env:?} was accepted by {args:?}"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
            assert!(stderr.contains(name), "{name} not named: {stderr}");
        }
    };
    check("lissten = \"127.0.0.1:1\"\n", &[], "lissten");
    check(
        "[ratelimit]\ndefault_plan = \"gold\"\n",
        &[],
        "ratelimit.default_plan",
    );
    check(
        "",
        &[("PALISADE_RATELIMIT__DEFAULT_PLAN", "gold")],
        "ratelimit.default_plan",
    );
    check("database_url = \"mysql://x\"\n", &[], "database_url");
    check("[ratelimit]\nburst = 3\n", &[], "burst");
    check("listen = \"not an address\"\n", &[], "listen");
    check(
        "",
        &[("PALISADE_METRICS_LISTEN", "nowhere")],
        "metrics_listen",
    );
    check("issuer = \"not a url\"\n", &[], "issuer");
    check("listen = [\n", &[], "palisade.toml");
}

#[tokio::test]
async fn cli_sign_is_reproducible_and_accepted_by_the_server() {
    let server = busy_server();
    let cli = server.cli();
    let credential = cli.create_credential("jill", "orders:read,orders:write");
    let secret_line = format!("{}\n", credential.secret);
    let sign = |extra: &[&str]| {
        let mut args = vec![
            "sign",
            "--access-key-id",
            &credential.access_key_id,
            "--secret-stdin",
        ];
        args.extend_from_slice(extra);
        cli.run_ok(&args, Some(&secret_line))
    };

    // A fixed --timestamp reproduces the signature, for every profile.
    let url = "http://127.0.0.1:8080/api/orders?limit=5";
    for profile in ["palisade", "rfc9421", "aws4"] {
        let args = [
            "--profile",
            profile,
            "--timestamp",
            "2026-11-27T12:00:00Z",
            "GET",
            url,
        ];
        let first = sign(&args);
        assert_eq!(first, sign(&args), "{profile} is not reproducible");
        assert!(!first.contains(&credential.secret));
    }
    let palisade = sign(&["--timestamp", "2026-11-27T12:00:00Z", "GET", url]);
    let lines: Vec<&str> = palisade.lines().collect();
    assert!(
        lines.contains(&"X-Palisade-Date: 20261127T120000Z"),
        "{palisade}"
    );
    let authorization = lines
        .iter()
        .find_map(|l| l.strip_prefix("Authorization: "))
        .unwrap();
    assert!(
        authorization.starts_with(&format!(
            "PALISADE-HMAC-SHA256 Credential={}/20261127/api/request, SignedHeaders=host;x-palisade-date, Signature=",
            credential.access_key_id
        )),
        "{authorization}"
    );
    // Exactly what the signing crate computes with the secret (its newline dropped).
    let expected = palisade_signing::sign(
        &palisade_signing::SigV4Profile::palisade(),
        &palisade_signing::SigningCredential::new(
            &credential.access_key_id,
            palisade_signing::Secret::new(credential.secret.as_bytes().to_vec()),
        ),
        &palisade_signing::Request::new("GET", "/api/orders?limit=5")
            .scheme("http")
            .header("host", "127.0.0.1:8080"),
        SystemTime::from(time::macros::datetime!(2026-11-27 12:00:00 UTC)),
    )
    .unwrap();
    let expected_authorization = &expected
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .unwrap()
        .1;
    assert_eq!(authorization, expected_authorization);
    let json_out = cli.json(
        &[
            "sign",
            "--access-key-id",
            &credential.access_key_id,
            "--secret-stdin",
            "--timestamp",
            "2026-11-27T12:00:00Z",
            "GET",
            url,
        ],
        Some(&secret_line),
    );
    assert_eq!(json_out["Authorization"], authorization);
    assert_eq!(json_out["X-Palisade-Date"], "20261127T120000Z");

    // Signed now, the server accepts the headers (GET, and POST with a body).
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let send = |method: Method, url: String, headers: String, body: Option<String>| {
        let server = &server;
        async move {
            let mut request = server.http().request(method, &url);
            for line in headers.lines() {
                let (name, value) = line.split_once(": ").unwrap();
                request = request.header(name, value);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body);
            }
            server.send(request).await
        }
    };
    for profile in ["palisade", "rfc9421"] {
        let list_url = server.url("/api/orders?limit=5");
        let headers = sign(&["--profile", profile, "--timestamp", &now, "GET", &list_url]);
        send(Method::GET, list_url, headers, None).await.expect(200);
        let body = serde_json::to_string(&order_body()).unwrap();
        let create_url = server.url("/api/orders");
        let headers = sign(&[
            "--profile",
            profile,
            "--timestamp",
            &now,
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
            "POST",
            &create_url,
        ]);
        send(Method::POST, create_url, headers, Some(body))
            .await
            .expect(201);
    }
    server.assert_no_secret_leaks();
}

#[test]
fn cli_certs_dev_writes_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let written = Cli::new(&dir.path().join("data"))
        .json(&["certs", "dev", "--out", out.to_str().unwrap()], None);
    for name in [
        "ca_cert",
        "ca_key",
        "server_cert",
        "server_key",
        "client_cert",
        "client_key",
        "crl",
    ] {
        let path = std::path::PathBuf::from(str_of(&written, name));
        assert!(path.starts_with(&out), "{name}: {}", path.display());
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!bytes.is_empty(), "{name} is empty");
        if name != "crl" {
            assert!(
                String::from_utf8_lossy(&bytes).starts_with("-----BEGIN"),
                "{name} is not PEM"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// No secret in any answer or log line
// ---------------------------------------------------------------------------------------

/// Every kind of credential, used well and badly, on a server logging at debug level:
/// no raw key, secret, password or token may appear in a log line, nor in an answer
/// other than the one that issued it.
#[tokio::test]
async fn no_secret_appears_in_answers_or_logs() {
    let server = Server::builder()
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .env("PALISADE_LOG", "debug")
        .start();
    let cli = server.cli();
    let key = rw_key(&cli, "alice");
    let credential = cli.create_credential("alice", "orders:read,orders:write");
    let admin = cli.create_credential("ops", "admin");
    cli.create_user("alice", PASSWORD);
    let client = cli.create_client(
        "web",
        "orders:read,orders:write",
        &["authorization_code", "client_credentials"],
        &[REDIRECT],
    );
    let tokens = code_flow(&server, &client, "alice", "orders:read orders:write").await;
    let access = str_of(&tokens, "access_token").to_owned();
    let refresh = str_of(&tokens, "refresh_token").to_owned();

    // Good uses.
    create_order(&server, &key, &order_body()).await.expect(201);
    with_bearer(&server, &access, Method::GET, "/api/orders")
        .await
        .expect(200);
    for profile in [Profile::Palisade, Profile::Rfc9421] {
        signed_send(
            &server,
            profile,
            &credential,
            Method::POST,
            "/api/orders",
            Some(&order_body()),
        )
        .await
        .expect(201);
    }
    let made = signed_send(
        &server,
        Profile::Palisade,
        &admin,
        Method::POST,
        "/admin/keys",
        Some(&json!({"owner": "bob", "scopes": ["orders:read"]})),
    )
    .await;
    made.expect(201);
    server.secret_from(str_of(&made.json(), "key"), &made);
    let refreshed = server
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    refreshed.expect(200);
    let webhook = server
        .send(
            server
                .http()
                .post(server.url("/api/webhooks"))
                .header("x-api-key", &key.key)
                .json(&json!({"url": "http://example.com/", "events": ["order.created"]})),
        )
        .await;
    webhook.problem(422);

    // Bad uses that carry real secrets in the wrong place.
    server
        .send(
            server
                .http()
                .get(server.url("/api/orders"))
                .header("x-api-key", &key.key)
                .bearer_auth(&access),
        )
        .await
        .problem(400);
    server
        .send(
            server
                .http()
                .post(server.url("/oauth/token"))
                .basic_auth(&client.client_id, Some(&credential.secret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await
        .oauth_error(401, "invalid_client");
    server
        .token(
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await
        .oauth_error(400, "invalid_grant");
    authorize(
        &server,
        &[("client_id", &client.client_id), ("redirect_uri", REDIRECT)],
        Some(("alice", &key.key)),
    )
    .await
    .expect(401);
    with_bearer(&server, &refresh, Method::GET, "/api/orders")
        .await
        .problem(401);

    let checked = server.assert_no_secret_leaks();
    assert!(checked >= 10, "only {checked} secrets were checked");
    assert!(server.log_lines().len() > 10, "the server logged nothing?");
}
