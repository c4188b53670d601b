//! `BearerVerifier` with a real `palisade_jwt::AuthorizationServer`: an ES256 key ring,
//! an in-memory store and blocklist, and a token issued by a `client_credentials` grant.
#![cfg(feature = "jwt")]
// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http::request::Parts;
use http_body_util::BodyExt;
use palisade_axum::{
    AuthFailure, AuthMethod, AuthenticateLayer, BearerVerifier, FnVerifier, Principal,
    RequireScopeLayer,
};
use palisade_jwt::{
    AuthorizationServer, AuthorizationServerConfig, Blocklist, ClientRegistration, GrantType,
    KeyRing, MemoryBlocklist, MemoryStore, RotationPolicy,
};
use tower::ServiceExt;

type Server<B> = AuthorizationServer<MemoryStore, B>;

fn server<B: Blocklist>(blocklist: B) -> Arc<Server<B>> {
    let keys = Arc::new(KeyRing::ephemeral(RotationPolicy::default(), SystemTime::now()).unwrap());
    let config = AuthorizationServerConfig::new("https://auth.example", "https://api.example");
    Arc::new(AuthorizationServer::new(config, keys, MemoryStore::new(), blocklist).unwrap())
}

/// Registers a client and runs a `client_credentials` grant for `scope`.
async fn token<B: Blocklist>(server: &Server<B>, scope: &str) -> (String, String) {
    let registered = server
        .register_client(
            ClientRegistration::new(
                "reporting",
                vec![GrantType::ClientCredentials],
                vec!["orders:read".into(), "orders:write".into()],
            ),
            SystemTime::now(),
        )
        .await
        .unwrap();
    let secret = registered.client_secret.unwrap().to_string();
    let form: HashMap<String, String> = [
        ("grant_type", "client_credentials"),
        ("client_id", registered.client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", scope),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let response = server.token(&form, None, SystemTime::now()).await.unwrap();
    (response.access_token, registered.client_id)
}

fn api_key_present(parts: &Parts) -> bool {
    parts.headers.contains_key("x-api-key")
}

fn app<B: Blocklist + 'static>(server: Arc<Server<B>>) -> Router {
    let reads = Router::new()
        .route(
            "/api/orders",
            get(|principal: Principal| async move {
                format!(
                    "{} {} {:?} {}",
                    principal.identity(),
                    principal.owner(),
                    principal.method(),
                    principal.scopes().join(",")
                )
            }),
        )
        .route_layer(RequireScopeLayer::new(["orders:read"]));
    let writes = Router::new()
        .route("/api/admin", get(|| async { "admin" }))
        .route_layer(RequireScopeLayer::new(["orders:write"]));
    let api_key = FnVerifier::new("api_key", api_key_present, |_| {
        Ok::<_, AuthFailure>(Principal::new(
            "k",
            "o",
            AuthMethod::ApiKey,
            ["orders:read"],
        ))
    });
    Router::new().merge(reads).merge(writes).layer(
        AuthenticateLayer::new()
            .verifier(BearerVerifier::new(server))
            .verifier(api_key),
    )
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::get(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

async fn body(response: axum::response::Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn an_issued_token_authenticates_its_client() {
    let server = server(MemoryBlocklist::new());
    let (token, client_id) = token(&server, "orders:read").await;
    let app = app(Arc::clone(&server));

    let response = app
        .clone()
        .oneshot(get_with(
            "/api/orders",
            &[("authorization", &format!("Bearer {token}"))],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        body(response).await,
        format!("{client_id} {client_id} Bearer orders:read")
    );

    // The scheme is case-insensitive (RFC 9110 §11.1).
    let response = app
        .oneshot(get_with(
            "/api/orders",
            &[("authorization", &format!("bearer {token}"))],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_missing_scope_is_403_with_an_insufficient_scope_challenge() {
    let server = server(MemoryBlocklist::new());
    let (token, _) = token(&server, "orders:read").await;
    let response = app(server)
        .oneshot(get_with(
            "/api/admin",
            &[("authorization", &format!("Bearer {token}"))],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn tampered_and_revoked_tokens_are_401_invalid_token() {
    let server = server(MemoryBlocklist::new());
    let (token, _) = token(&server, "orders:read").await;
    let app = app(Arc::clone(&server));

    // Change one character of the signature.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let response = app
        .clone()
        .oneshot(get_with(
            "/api/orders",
            &[("authorization", &format!("Bearer {tampered}"))],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with(r#"Bearer realm="api", error="invalid_token""#),
        "{challenge}"
    );
    let text = body(response).await;
    assert!(!text.contains(&tampered), "the token is never echoed");

    let claims = server
        .verify_access_token(&token, SystemTime::now())
        .await
        .unwrap();
    server
        .blocklist()
        .revoke(&claims.jti, claims.exp, SystemTime::now())
        .await
        .unwrap();
    let response = app
        .oneshot(get_with(
            "/api/orders",
            &[("authorization", &format!("Bearer {token}"))],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let json: serde_json::Value = serde_json::from_str(&body(response).await).unwrap();
    assert_eq!(json["type"], "https://palisade.dev/problems/revoked");
}

#[tokio::test]
async fn malformed_duplicated_and_ambiguous_credentials() {
    let server = server(MemoryBlocklist::new());
    let (token, _) = token(&server, "orders:read").await;
    let app = app(server);
    let bearer = format!("Bearer {token}");

    for value in ["Bearer", "Bearer    ", "Bearer not.a.jwt"] {
        let response = app
            .clone()
            .oneshot(get_with("/api/orders", &[("authorization", value)]))
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value:?}");
        assert!(response.headers().contains_key("www-authenticate"));
    }

    let response = app
        .clone()
        .oneshot(get_with(
            "/api/orders",
            &[("authorization", &bearer), ("authorization", &bearer)],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "two Authorization headers");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_request""#),
        "{challenge}"
    );

    let response = app
        .clone()
        .oneshot(get_with(
            "/api/orders",
            &[("authorization", &bearer), ("x-api-key", "k")],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "a token and an API key");

    // Another scheme is not a bearer credential: anonymous, so 401 unauthenticated.
    let response = app
        .oneshot(get_with("/api/orders", &[("authorization", "Basic dTpw")]))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let json: serde_json::Value = serde_json::from_str(&body(response).await).unwrap();
    assert_eq!(
        json["type"],
        "https://palisade.dev/problems/unauthenticated"
    );
}

/// A blocklist whose backend is down.
struct DownBlocklist;

impl Blocklist for DownBlocklist {
    async fn revoke(&self, _: &str, _: u64, _: SystemTime) -> palisade_jwt::Result<()> {
        Err(palisade_jwt::Error::storage("connection refused"))
    }

    async fn is_revoked(&self, _: &str, _: SystemTime) -> palisade_jwt::Result<bool> {
        Err(palisade_jwt::Error::storage("connection refused"))
    }
}

#[tokio::test]
async fn an_unavailable_blocklist_fails_closed_with_503() {
    let server = server(DownBlocklist);
    let (token, _) = token(&server, "orders:read").await;
    let response = app(server)
        .oneshot(get_with(
            "/api/orders",
            &[("authorization", &format!("Bearer {token}"))],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let text = body(response).await;
    assert!(!text.contains("connection refused"), "no internals: {text}");
}
