//! The `Palisade` builder with every layer: real API keys, a real rate limiter and a real
//! abuse monitor, checked through the headers each layer adds.
#![cfg(all(feature = "abuse", feature = "apikey"))]
// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use palisade_abuse::AbuseMonitor;
use palisade_apikey::{ApiKeys, MemoryKeyStore, NewKey};
use palisade_axum::{
    AbuseLayer, ApiKeyVerifier, Connection, Palisade, Principal, RateLimitLayer, RequireScopeLayer,
    TrustedProxies,
};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};
use tower::ServiceExt;

async fn app(per_minute: u64) -> (Router, String) {
    let keys = Arc::new(ApiKeys::new(MemoryKeyStore::new()));
    let created = keys
        .create(
            NewKey::new("alice").scopes(["orders:read"]),
            SystemTime::now(),
        )
        .await
        .unwrap();
    let limiter = RateLimiter::new(MemoryStore::new(), Policy::per_minute(per_minute).unwrap());
    let monitor = Arc::new(AbuseMonitor::in_memory());
    let palisade = Palisade::new()
        .trusted_proxies(TrustedProxies::parse(["10.0.0.0/8"]).unwrap())
        .verifier(ApiKeyVerifier::new(keys))
        .rate_limit(RateLimitLayer::new(limiter))
        .abuse(AbuseLayer::new(monitor).record_in_background(false));
    let app = Router::new()
        .route(
            "/api/orders",
            get(|principal: Principal| async move { principal.owner().to_owned() }),
        )
        .route_layer(RequireScopeLayer::new(["orders:read"]))
        .layer(palisade.layer());
    (app, created.key.expose_secret().to_owned())
}

fn get_orders(key: Option<&str>, peer: [u8; 4], forwarded_for: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/api/orders").header("x-request-id", "trace-1");
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    if let Some(client) = forwarded_for {
        builder = builder
            .header("x-forwarded-for", client)
            .header("x-forwarded-proto", "https");
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request.extensions_mut().insert(Connection {
        peer: SocketAddr::from((peer, 40000)),
        tls: false,
    });
    request
}

#[tokio::test]
async fn every_layer_answers_in_order() {
    let (app, key) = app(100).await;
    let response = app
        .clone()
        .oneshot(get_orders(Some(&key), [192, 0, 2, 1], None))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["x-request-id"], "trace-1");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-ratelimit-limit"], "100");
    assert!(!headers.contains_key("strict-transport-security"));

    // Through the trusted proxy: HTTPS, and the client address from X-Forwarded-For.
    let response = app
        .oneshot(get_orders(Some(&key), [10, 0, 0, 1], Some("198.51.100.7")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn failures_lock_out_with_every_header_on_the_429() {
    let (app, key) = app(100).await;
    for _ in 0..6 {
        let response = app
            .clone()
            .oneshot(get_orders(Some("pk_live_wrong"), [203, 0, 113, 9], None))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        // The rate limiter sits between authentication and the 401: it counted it.
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
    }
    let response = app
        .clone()
        .oneshot(get_orders(Some(&key), [203, 0, 113, 9], None))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let headers = response.headers();
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["x-request-id"], "trace-1");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    // Through the proxy, the locked address is the forwarded client, not the proxy.
    let response = app
        .clone()
        .oneshot(get_orders(Some(&key), [10, 0, 0, 1], Some("203.0.113.9")))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let response = app
        .oneshot(get_orders(Some(&key), [10, 0, 0, 1], Some("198.51.100.7")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_rate_limit_applies_per_key() {
    let (app, key) = app(2).await;
    for _ in 0..2 {
        let response = app
            .clone()
            .oneshot(get_orders(Some(&key), [192, 0, 2, 1], None))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Another address, the same key: the same bucket.
    let response = app
        .oneshot(get_orders(Some(&key), [192, 0, 2, 2], None))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}
