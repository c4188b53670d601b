//! Rate limiting and validated JSON bodies on a real axum router.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::Request;
use http_body_util::BodyExt;
use palisade_axum::{
    AuthMethod, ClientInfoLayer, Connection, Principal, RateLimitLayer, TrustedProxies,
    ValidatedJson,
};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};
use serde::Deserialize;
use tower::{ServiceBuilder, ServiceExt};
use validator::Validate;

fn limited_app(per_minute: u64) -> Router {
    let limiter = RateLimiter::new(MemoryStore::new(), Policy::per_minute(per_minute).unwrap());
    Router::new().route("/", get(|| async { "ok" })).layer(
        ServiceBuilder::new()
            .layer(ClientInfoLayer::new(TrustedProxies::none()))
            .layer(tower::util::MapRequestLayer::new(
                |mut request: Request<Body>| {
                    if let Some(user) = request.headers().get("x-test-user") {
                        let user = user.to_str().unwrap().to_owned();
                        request.extensions_mut().insert(Principal::new(
                            user.clone(),
                            user,
                            AuthMethod::ApiKey,
                            ["orders:read"],
                        ));
                    }
                    request
                },
            ))
            .layer(RateLimitLayer::new(limiter)),
    )
}

fn from(peer: &str, user: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/");
    if let Some(user) = user {
        builder = builder.header("x-test-user", user);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request.extensions_mut().insert(Connection {
        peer: SocketAddr::new(peer.parse().unwrap(), 1),
        tls: false,
    });
    request
}

async fn json(response: axum::response::Response) -> serde_json::Value {
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn every_response_announces_the_limit_and_the_excess_gets_429() {
    let app = limited_app(2);
    let first = app
        .clone()
        .oneshot(from("198.51.100.1", None))
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-limit"], "2");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
    assert!(first.headers().contains_key("x-ratelimit-reset"));
    assert!(
        first.headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .contains(";q=2;w=60"),
        "{:?}",
        first.headers()["ratelimit-policy"]
    );
    assert!(first.headers().contains_key("ratelimit"));
    assert!(!first.headers().contains_key("retry-after"));

    let second = app
        .clone()
        .oneshot(from("198.51.100.1", None))
        .await
        .unwrap();
    assert_eq!(second.headers()["x-ratelimit-remaining"], "0");

    let third = app
        .clone()
        .oneshot(from("198.51.100.1", None))
        .await
        .unwrap();
    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["content-type"], "application/problem+json");
    let retry: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // `per_minute` is a weighted sliding window: a full current window drains only as
    // the next one advances, so the wait can reach one and a half minutes.
    assert!((1..=90).contains(&retry), "retry-after {retry}");
    assert_eq!(third.headers()["x-ratelimit-remaining"], "0");
    let body = json(third).await;
    assert_eq!(
        body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );

    // Another address has its own bucket.
    let other = app.oneshot(from("198.51.100.2", None)).await.unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn authenticated_callers_are_counted_per_principal_not_per_address() {
    let app = limited_app(1);
    let alice = app
        .clone()
        .oneshot(from("198.51.100.1", Some("alice")))
        .await
        .unwrap();
    assert_eq!(alice.status(), 200);
    // Same address, different principal: a separate bucket.
    let bob = app
        .clone()
        .oneshot(from("198.51.100.1", Some("bob")))
        .await
        .unwrap();
    assert_eq!(bob.status(), 200);
    // Alice from elsewhere is still alice.
    let alice_again = app
        .oneshot(from("203.0.113.7", Some("alice")))
        .await
        .unwrap();
    assert_eq!(alice_again.status(), 429);
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Order {
    #[validate(nested)]
    items: Vec<Item>,
}

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Item {
    #[validate(range(min = 1, max = 999))]
    item_quantity: u32,
}

fn body_app() -> Router {
    Router::new().route(
        "/orders",
        post(|ValidatedJson(order): ValidatedJson<Order>| async move {
            order.items.len().to_string()
        }),
    )
}

fn post_json(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/orders");
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(body.into()).unwrap()
}

#[tokio::test]
async fn a_valid_body_reaches_the_handler() {
    let response = body_app()
        .oneshot(post_json(
            Some("application/json; charset=utf-8"),
            r#"{"items":[{"itemQuantity":3}]}"#,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn bodies_are_refused_with_the_right_status() {
    let cases: Vec<(Option<&str>, Vec<u8>, u16)> = vec![
        (None, br#"{"items":[]}"#.to_vec(), 415),
        (Some("text/plain"), br#"{"items":[]}"#.to_vec(), 415),
        (Some("application/json"), b"{not json".to_vec(), 400),
        (
            Some("application/json"),
            br#"{"items":[],"items":[]}"#.to_vec(),
            400,
        ),
        (Some("application/json"), vec![b' '; 2 * 1024 * 1024], 413),
        (
            Some("application/json"),
            br#"{"items":[{"itemQuantity":"3"}]}"#.to_vec(),
            422,
        ),
        (
            Some("application/json"),
            br#"{"items":[],"admin":true}"#.to_vec(),
            422,
        ),
    ];
    for (content_type, body, status) in cases {
        let response = body_app()
            .oneshot(post_json(content_type, body.clone()))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            status,
            "{content_type:?} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn validation_errors_name_the_field_as_the_client_spelled_it() {
    let response = body_app()
        .oneshot(post_json(
            Some("application/json"),
            r#"{"items":[{"itemQuantity":3},{"itemQuantity":0}]}"#,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body = json(response).await;
    assert_eq!(body["errors"][0]["field"], "items.1.itemQuantity");
    assert!(body["errors"][0]["code"].is_string());
    assert!(body["errors"][0]["message"].is_string());
}
