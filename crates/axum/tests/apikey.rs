//! `ApiKeyVerifier` with a real `palisade_apikey::ApiKeys` (in-memory store).
#![cfg(feature = "apikey")]
// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use palisade_apikey::{ApiKeys, MemoryKeyStore, NewKey};
use palisade_axum::{
    ApiKeyVerifier, AuthenticateLayer, ClientInfoLayer, Connection, Principal, RequireScopeLayer,
    TrustedProxies,
};
use tower::{ServiceBuilder, ServiceExt};

async fn setup() -> (Router, Arc<ApiKeys<MemoryKeyStore>>, String, String) {
    let keys = Arc::new(ApiKeys::new(MemoryKeyStore::new()));
    let created = keys
        .create(
            NewKey::new("alice")
                .scopes(["orders:read"])
                .allowed_networks(["198.51.100.0/24".parse().unwrap()]),
            SystemTime::now(),
        )
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/api/orders",
            get(|principal: Principal| async move {
                format!("{} {}", principal.owner(), principal.identity())
            }),
        )
        .route_layer(RequireScopeLayer::new(["orders:read"]))
        .layer(
            ServiceBuilder::new()
                .layer(ClientInfoLayer::new(TrustedProxies::none()))
                .layer(AuthenticateLayer::new().verifier(ApiKeyVerifier::new(Arc::clone(&keys)))),
        );
    (
        app,
        keys,
        created.key.expose_secret().to_owned(),
        created.record.key_id.clone(),
    )
}

fn get_orders(key: &str, peer: &str) -> Request<Body> {
    let mut request = Request::get("/api/orders")
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    request.extensions_mut().insert(Connection {
        peer: SocketAddr::new(peer.parse().unwrap(), 1),
        tls: false,
    });
    request
}

#[tokio::test]
async fn a_created_key_authenticates_as_its_owner() {
    let (app, _, key, key_id) = setup().await;
    let response = app.oneshot(get_orders(&key, "198.51.100.7")).await.unwrap();
    assert_eq!(response.status(), 200);
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, format!("alice {key_id}"));
}

#[tokio::test]
async fn revoked_malformed_and_misplaced_keys_are_refused() {
    let (app, keys, key, key_id) = setup().await;
    let outside = app
        .clone()
        .oneshot(get_orders(&key, "203.0.113.1"))
        .await
        .unwrap();
    assert_eq!(
        outside.status(),
        403,
        "address outside the allowed networks"
    );

    let mut mistyped = key.clone();
    mistyped.pop();
    mistyped.push(if key.ends_with('A') { 'B' } else { 'A' });
    let response = app
        .clone()
        .oneshot(get_orders(&mistyped, "198.51.100.7"))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("ApiKey")
    );

    keys.revoke(&key_id, SystemTime::now()).await.unwrap();
    let response = app.oneshot(get_orders(&key, "198.51.100.7")).await.unwrap();
    assert_eq!(
        response.status(),
        401,
        "revocation takes effect on the next request"
    );
}
