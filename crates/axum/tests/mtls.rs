//! `ClientCertVerifier` with a `PeerIdentity` read from a real certificate issued by
//! `palisade_mtls::DevCa` and mapped by an `IdentityMap`, as the server's accept loop
//! does after the handshake.
#![cfg(feature = "mtls")]
// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http::request::Parts;
use http_body_util::BodyExt;
use palisade_axum::{
    AuthFailure, AuthMethod, AuthenticateLayer, ClientCertVerifier, FnVerifier, Principal,
    RequireScopeLayer,
};
use palisade_mtls::{ClientCertSpec, DevCa, IdentityMap, IdentityRule, PeerIdentity};
use tower::ServiceExt;

const SPIFFE: &str = "spiffe://palisade.dev/billing";

/// The server stores the identity per connection and clones it into each request.
fn assert_connection_state<T: Clone + Send + Sync + 'static>() {}

fn peer() -> PeerIdentity {
    assert_connection_state::<PeerIdentity>();
    let now = SystemTime::now();
    let ca = DevCa::generate(now).unwrap();
    let cert = ca
        .issue_client(&ClientCertSpec::new("billing", now).uri(SPIFFE))
        .unwrap();
    let map = IdentityMap::new([IdentityRule::new(SPIFFE, ["orders:read", "admin"])]).unwrap();
    map.identify_chain(Some(std::slice::from_ref(cert.der())))
        .unwrap()
        .unwrap()
}

fn api_key_present(parts: &Parts) -> bool {
    parts.headers.contains_key("x-api-key")
}

fn app() -> Router {
    let orders = Router::new()
        .route(
            "/api/orders",
            get(|principal: Principal| async move {
                format!(
                    "{} {} {} {}",
                    principal.identity(),
                    principal.owner(),
                    principal.method().as_str(),
                    principal.scopes().join(",")
                )
            }),
        )
        .route_layer(RequireScopeLayer::new(["orders:read"]));
    let admin = Router::new()
        .route("/admin/keys", get(|| async { "keys" }))
        .route_layer(RequireScopeLayer::new(["admin"]).with_proof_of_possession());
    let api_key = FnVerifier::new("api_key", api_key_present, |_| {
        Ok::<_, AuthFailure>(Principal::new("k", "o", AuthMethod::ApiKey, ["admin"]))
    });
    Router::new().merge(orders).merge(admin).layer(
        AuthenticateLayer::new()
            .verifier(ClientCertVerifier::new())
            .verifier(api_key),
    )
}

fn request(path: &str, peer: Option<&PeerIdentity>, api_key: bool) -> Request<Body> {
    let mut builder = Request::get(path);
    if api_key {
        builder = builder.header("x-api-key", "k");
    }
    let mut request = builder.body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        request.extensions_mut().insert(peer.clone());
    }
    request
}

async fn text(response: axum::response::Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_verified_certificate_is_the_principal() {
    let peer = peer();
    let response = app()
        .oneshot(request("/api/orders", Some(&peer), false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        text(response).await,
        format!("{SPIFFE} {SPIFFE} client_certificate orders:read,admin")
    );
}

#[tokio::test]
async fn a_certificate_proves_possession_and_an_api_key_does_not() {
    let peer = peer();
    let app = app();
    let response = app
        .clone()
        .oneshot(request("/admin/keys", Some(&peer), false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = app
        .oneshot(request("/admin/keys", None, true))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn no_certificate_is_anonymous_and_two_credentials_are_400() {
    let peer = peer();
    let app = app();
    let response = app
        .clone()
        .oneshot(request("/api/orders", None, false))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .oneshot(request("/api/orders", Some(&peer), true))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
