//! The layers stacked on a real axum router, driven with in-process requests.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use http::Request;
use palisade_axum::{
    Authenticated, ClientInfo, ClientInfoLayer, Connection, RequestIdLayer, SecurityHeadersLayer,
    TrustedProxies,
};
use palisade_headers::{RequestId, SecurityHeaders};
use tower::{ServiceBuilder, ServiceExt};

async fn whoami(axum::Extension(info): axum::Extension<ClientInfo>) -> impl IntoResponse {
    let mut response = format!("{} {}", info.address, info.over_tls).into_response();
    response
        .headers_mut()
        .insert("server", "leaky/1.0".parse().unwrap());
    response
}

async fn private() -> impl IntoResponse {
    let mut response = "secret".into_response();
    response.extensions_mut().insert(Authenticated);
    response
}

async fn echo_id(axum::Extension(id): axum::Extension<RequestId>) -> String {
    id.as_str().to_owned()
}

fn app(proxies: &[&str]) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/private", get(private))
        .route("/id", get(echo_id))
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer::new())
                .layer(SecurityHeadersLayer::new(SecurityHeaders::default()))
                .layer(ClientInfoLayer::new(
                    TrustedProxies::parse(proxies).unwrap(),
                )),
        )
}

fn request(path: &str, peer: &str, tls: bool, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::get(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request.extensions_mut().insert(Connection {
        peer: SocketAddr::new(peer.parse().unwrap(), 1234),
        tls,
    });
    request
}

async fn body(response: axum::response::Response) -> String {
    use http_body_util::BodyExt;
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test]
async fn every_response_carries_the_contract_headers_and_no_server_name() {
    let response = app(&[])
        .oneshot(request("/whoami", "203.0.113.5", false, &[]))
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cross-origin-resource-policy"], "same-origin");
    assert!(!headers.contains_key("server"));
    assert!(!headers.contains_key("x-powered-by"));
    assert!(
        !headers.contains_key("strict-transport-security"),
        "plain HTTP gets no HSTS"
    );
    assert!(
        !headers.contains_key("cache-control"),
        "anonymous responses may be cached"
    );
    assert_eq!(body(response).await, "203.0.113.5 false");
}

#[tokio::test]
async fn tls_gets_hsts_and_authenticated_responses_are_not_stored() {
    let response = app(&[])
        .oneshot(request("/private", "203.0.113.5", true, &[]))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let spoofed = &[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
    ];
    let direct = app(&["10.0.0.0/8"])
        .oneshot(request("/whoami", "203.0.113.5", false, spoofed))
        .await
        .unwrap();
    assert!(!direct.headers().contains_key("strict-transport-security"));
    assert_eq!(body(direct).await, "203.0.113.5 false");

    let proxied = app(&["10.0.0.0/8"])
        .oneshot(request("/whoami", "10.0.0.2", false, spoofed))
        .await
        .unwrap();
    assert!(proxied.headers().contains_key("strict-transport-security"));
    assert_eq!(body(proxied).await, "1.2.3.4 true");
}

#[tokio::test]
async fn plain_http_through_a_trusted_proxy_is_forbidden() {
    let response = app(&["10.0.0.0/8"])
        .oneshot(request(
            "/whoami",
            "10.0.0.2",
            false,
            &[
                ("x-forwarded-for", "1.2.3.4"),
                ("x-forwarded-proto", "http"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn request_ids_are_echoed_only_when_well_formed() {
    let kept = app(&[])
        .oneshot(request(
            "/id",
            "127.0.0.1",
            false,
            &[("x-request-id", "trace-42.a:b_c")],
        ))
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42.a:b_c");
    assert_eq!(body(kept).await, "trace-42.a:b_c");

    for bad in ["has space", "<script>", &"x".repeat(129)] {
        let replaced = app(&[])
            .oneshot(request("/id", "127.0.0.1", false, &[("x-request-id", bad)]))
            .await
            .unwrap();
        let id = replaced.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36, "a UUID replaces {bad:?}");
        assert_eq!(body(replaced).await, id, "handlers see the same id");
    }
}

#[tokio::test]
async fn missing_connection_information_is_a_server_error_not_a_panic() {
    let response = app(&[])
        .oneshot(Request::get("/whoami").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}
