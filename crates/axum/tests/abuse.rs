//! `AuthLockoutLayer` and `AbuseLayer` with a real `palisade_abuse::AbuseMonitor` and real
//! API keys (`palisade_apikey`, in-memory store).
#![cfg(all(feature = "abuse", feature = "apikey"))]
// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use palisade_abuse::{AbuseMonitor, AbuseStore, Action, Decision, Flag, Identity, Reason};
use palisade_apikey::{ApiKeys, MemoryKeyStore, NewKey};
use palisade_axum::{
    AbuseLayer, ApiKeyVerifier, AuthenticateLayer, ClientInfoLayer, Connection, RequireScopeLayer,
    TrustedProxies,
};
use tower::{ServiceBuilder, ServiceExt};

struct Setup {
    app: Router,
    monitor: Arc<AbuseMonitor>,
    key: String,
    key_id: String,
}

async fn setup() -> Setup {
    let keys = Arc::new(ApiKeys::new(MemoryKeyStore::new()));
    let created = keys
        .create(
            NewKey::new("alice").scopes(["orders:read"]),
            SystemTime::now(),
        )
        .await
        .unwrap();
    let monitor = Arc::new(AbuseMonitor::in_memory());
    let abuse = AbuseLayer::new(Arc::clone(&monitor)).record_in_background(false);
    let orders = Router::new()
        .route("/api/orders", get(|| async { "[]" }))
        .route_layer(RequireScopeLayer::new(["orders:read"]));
    let public = Router::new().route(
        "/public/orders/{id}",
        get(|| async { StatusCode::NOT_FOUND }),
    );
    let app = Router::new().merge(orders).merge(public).layer(
        ServiceBuilder::new()
            .layer(ClientInfoLayer::new(TrustedProxies::none()))
            .layer(abuse.lockout_layer())
            .layer(AuthenticateLayer::new().verifier(ApiKeyVerifier::new(keys)))
            .layer(abuse),
    );
    Setup {
        app,
        monitor,
        key: created.key.expose_secret().to_owned(),
        key_id: created.record.key_id.clone(),
    }
}

fn get_from(path: &str, key: Option<&str>, peer: [u8; 4]) -> Request<Body> {
    let mut builder = Request::get(path).header("user-agent", "test/1");
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request.extensions_mut().insert(Connection {
        peer: SocketAddr::from((peer, 40000)),
        tls: false,
    });
    request
}

async fn json(response: axum::response::Response) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

const ATTACKER: [u8; 4] = [203, 0, 113, 9];
const OTHER: [u8; 4] = [198, 51, 100, 7];

#[tokio::test]
async fn failed_api_keys_lock_the_address_out() {
    let Setup { app, key, .. } = setup().await;
    let mut wrong = key.clone();
    wrong.pop();
    wrong.push(if key.ends_with('A') { 'B' } else { 'A' });

    // Five free attempts, then the sixth failure starts the backoff.
    for attempt in 0..6 {
        let response = app
            .clone()
            .oneshot(get_from("/api/orders", Some(&wrong), ATTACKER))
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    // Locked: even the right key is not verified.
    let response = app
        .clone()
        .oneshot(get_from("/api/orders", Some(&key), ATTACKER))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    let body = json(response).await;
    assert_eq!(
        body["type"],
        "https://palisade.dev/problems/too-many-auth-failures"
    );

    // Another address is not affected.
    let response = app
        .oneshot(get_from("/api/orders", Some(&key), OTHER))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A request without any credential is not a failed attempt: a client that forgot its
/// key keeps getting 401, never a lockout.
#[tokio::test]
async fn anonymous_401s_are_not_failed_attempts() {
    let Setup { app, .. } = setup().await;
    for _ in 0..12 {
        let response = app
            .clone()
            .oneshot(get_from("/api/orders", None, ATTACKER))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
}

async fn flag(monitor: &AbuseMonitor, identity: Identity, action: Action) {
    let now = SystemTime::now();
    monitor
        .store()
        .set_flag(&Flag {
            identity,
            action,
            reason: Reason::ErrorRate,
            detail: "61 errors in 80 requests".to_owned(),
            since: now,
            until: now + Duration::from_secs(600),
        })
        .await;
}

#[tokio::test]
async fn a_blocked_identity_gets_403_with_the_reason_only() {
    let Setup {
        app,
        monitor,
        key,
        key_id,
    } = setup().await;
    flag(&monitor, Identity::api_key(&key_id), Action::Block).await;

    let response = app
        .clone()
        .oneshot(get_from("/api/orders", Some(&key), OTHER))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body = json(response).await;
    assert_eq!(body["type"], "https://palisade.dev/problems/blocked");
    assert_eq!(body["reason"], "error_rate");
    assert!(
        !body.to_string().contains("61 errors"),
        "no internals: {body}"
    );

    // The block is the key's, not the address's.
    let response = app
        .oneshot(get_from("/public/orders/1", None, OTHER))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_throttled_address_gets_429_with_retry_after() {
    let Setup { app, monitor, .. } = setup().await;
    flag(
        &monitor,
        Identity::address("203.0.113.9".parse().unwrap()),
        Action::Throttle,
    )
    .await;
    let response = app
        .oneshot(get_from("/public/orders/1", None, ATTACKER))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&retry), "{retry}");
    let body = json(response).await;
    assert_eq!(
        body["type"],
        "https://iana.org/assignments/http-problem-types#abnormal-usage-detected"
    );
}

#[tokio::test]
async fn recorded_errors_lead_to_a_throttle() {
    let Setup { app, monitor, .. } = setup().await;
    // Enumerating ids: every request a 404. The error-rate rule needs 50 requests.
    for id in 0..50 {
        let response = app
            .clone()
            .oneshot(get_from(&format!("/public/orders/{id}"), None, ATTACKER))
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "request {id}");
    }
    let identity = Identity::address("203.0.113.9".parse().unwrap());
    assert!(matches!(
        monitor.decision(&identity, SystemTime::now()).await,
        Decision::Throttle {
            reason: Reason::ErrorRate,
            ..
        }
    ));
    let response = app
        .oneshot(get_from("/public/orders/51", None, ATTACKER))
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn endpoints_are_recorded_as_routes_not_paths() {
    let Setup { app, monitor, .. } = setup().await;
    for id in 0..5 {
        app.clone()
            .oneshot(get_from(&format!("/public/orders/{id}"), None, OTHER))
            .await
            .unwrap();
    }
    let identity = Identity::address("198.51.100.7".parse().unwrap());
    let behaviour = monitor
        .record(
            &identity,
            &palisade_abuse::RequestEvent {
                endpoint: "GET /public/orders/{id}",
                is_auth_endpoint: false,
                status: 200,
                response_bytes: 0,
                user_agent: Some("test/1"),
                source_ip: "198.51.100.7".parse().unwrap(),
                rate_limit: None,
            },
            SystemTime::now(),
        )
        .await;
    assert_eq!(behaviour.requests, 6);
    assert_eq!(behaviour.distinct_endpoints, 1, "{behaviour:?}");
    assert_eq!(behaviour.distinct_user_agents, 1);
}
