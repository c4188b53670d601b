//! Authentication and scope requirements, with verifiers built from closures.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::Request;
use http::request::Parts;
use http_body_util::BodyExt;
use palisade_axum::{
    AuthFailure, AuthMethod, AuthenticateLayer, CredentialRequest, FnVerifier, Principal,
    RequireScopeLayer,
};
use palisade_headers::Challenge;
use tower::ServiceExt;

fn api_key_present(parts: &Parts) -> bool {
    parts.headers.contains_key("x-api-key")
}

fn api_key(request: &CredentialRequest<'_>) -> Result<Principal, AuthFailure> {
    match request.parts.headers["x-api-key"].to_str().unwrap() {
        "good" => Ok(Principal::new(
            "key_1",
            "alice",
            AuthMethod::ApiKey,
            ["orders:read", "admin"],
        )),
        _ => Err(AuthFailure::unauthorized(
            "unknown",
            "unknown API key",
            Challenge::new("ApiKey").unwrap(),
        )),
    }
}

fn signature_present(parts: &Parts) -> bool {
    parts
        .headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes().starts_with(b"SIG "))
}

/// A toy signature: the header must end with the body's length (proves the body is read).
fn signature(request: &CredentialRequest<'_>) -> Result<Principal, AuthFailure> {
    let header = request.parts.headers["authorization"].to_str().unwrap();
    if header == format!("SIG {}", request.body.len()) {
        Ok(Principal::new(
            "ak_1",
            "bob",
            AuthMethod::PalisadeSignature,
            ["admin"],
        ))
    } else {
        Err(AuthFailure::unauthorized(
            "signature_mismatch",
            "bad signature",
            Challenge::new("PALISADE-HMAC-SHA256").unwrap(),
        ))
    }
}

fn app() -> Router {
    let orders = Router::new()
        .route(
            "/api/orders",
            get(|principal: Principal| async move { principal.owner().to_owned() }),
        )
        .route_layer(RequireScopeLayer::new(["orders:read"]));
    let writes = Router::new()
        .route("/api/orders", post(|body: String| async move { body }))
        .route_layer(RequireScopeLayer::new(["orders:write"]));
    let admin = Router::new()
        .route("/admin/keys", post(|body: String| async move { body }))
        .route_layer(RequireScopeLayer::new(["admin"]).with_proof_of_possession());
    Router::new()
        .merge(orders)
        .merge(writes)
        .merge(admin)
        .route("/public", get(|| async { "hi" }))
        .route(
            "/api/items",
            get(|| async { "items" }).route_layer(RequireScopeLayer::new(["orders:read"])),
        )
        .route(
            "/whoami",
            get(|principal: Principal| async move { principal.owner().to_owned() }),
        )
        .layer(
            AuthenticateLayer::new()
                .verifier(FnVerifier::new("api_key", api_key_present, api_key))
                .verifier(SigVerifier)
                .body_limit(64),
        )
}

/// The signature verifier wants the body, so it is a hand-written Verifier.
struct SigVerifier;

impl palisade_axum::Verifier for SigVerifier {
    fn kind(&self) -> &'static str {
        "palisade_signature"
    }
    fn is_present(&self, parts: &Parts) -> bool {
        signature_present(parts)
    }
    fn needs_body(&self) -> bool {
        true
    }
    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> palisade_axum::VerifyFuture<'a> {
        Box::pin(std::future::ready(signature(request)))
    }
}

async fn send(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = app()
        .oneshot(builder.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn a_valid_key_with_the_scope_reaches_the_handler() {
    let (status, _, body) = send("GET", "/api/orders", &[("x-api-key", "good")], "").await;
    assert_eq!(status, 200);
    assert_eq!(body, "alice");
}

#[tokio::test]
async fn anonymous_requests_to_protected_routes_get_401_with_a_challenge() {
    let (status, headers, body) = send("GET", "/api/orders", &[], "").await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    assert!(body.contains("\"status\":401"));
    let (status, _, _) = send("GET", "/public", &[], "").await;
    assert_eq!(status, 200, "public routes stay open");
}

#[tokio::test]
async fn a_refused_credential_gives_its_own_failure_and_never_echoes_it() {
    let (status, headers, body) = send(
        "GET",
        "/api/orders",
        &[("x-api-key", "pk_secret_guess")],
        "",
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("ApiKey")
    );
    assert!(body.contains("unknown"));
    assert!(!body.contains("pk_secret_guess"));
}

/// An API key and a signature together.
const BOTH: [(&str, &str); 2] = [("x-api-key", "good"), ("authorization", "SIG 0")];

/// `GET path` with [`BOTH`] is refused as ambiguous.
async fn assert_ambiguous(path: &str) {
    let (status, _, body) = send("GET", path, &BOTH, "").await;
    assert_eq!(status, 400, "{path}");
    assert!(body.contains("ambiguous_credentials"), "{path}: {body}");
}

#[tokio::test]
async fn two_kinds_of_credential_are_ambiguous() {
    assert_ambiguous("/api/orders").await;
}

#[tokio::test]
async fn routing_answers_before_an_ambiguous_credential() {
    // (The scope layer is on the method router, so the 405 fallback is outside it.)
    let (status, _, _) = send("TRACE", "/api/items", &BOTH, "").await;
    assert_eq!(
        status, 405,
        "an unsupported method is that, whatever the credentials"
    );
    assert_ambiguous("/api/items").await;
    let (status, _, _) = send("GET", "/nowhere", &BOTH, "").await;
    assert_eq!(status, 404);
    let (status, _, _) = send("GET", "/public", &BOTH, "").await;
    assert_eq!(status, 200, "a route that needs no credential ignores them");
    // A handler that takes the principal without a scope layer gets the same 400.
    assert_ambiguous("/whoami").await;
}

#[tokio::test]
async fn a_handler_taking_the_principal_answers_a_refused_credential_with_its_failure() {
    let (status, headers, body) =
        send("GET", "/whoami", &[("x-api-key", "pk_secret_guess")], "").await;
    assert_eq!(status, 401);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("ApiKey")
    );
    assert!(body.contains("unknown"));
    let (status, _, _) = send("GET", "/whoami", &[], "").await;
    assert_eq!(status, 401);
    let (status, _, body) = send("GET", "/whoami", &[("x-api-key", "good")], "").await;
    assert_eq!((status, body.as_str()), (200, "alice"));
}

#[tokio::test]
async fn a_missing_scope_is_forbidden() {
    let (status, _, body) = send("POST", "/api/orders", &[("x-api-key", "good")], "{}").await;
    assert_eq!(status, 403);
    assert!(body.contains("insufficient_scope"));
}

#[tokio::test]
async fn admin_needs_proof_of_possession_whatever_the_scopes() {
    // The API key carries `admin`, but a bearer credential is never enough.
    let (status, _, body) = send("POST", "/admin/keys", &[("x-api-key", "good")], "x").await;
    assert_eq!(status, 403);
    assert!(body.contains("proof_of_possession_required"));
    // A signature over the body is, and the handler still gets the body.
    let (status, _, body) = send(
        "POST",
        "/admin/keys",
        &[("authorization", "SIG 5")],
        "hello",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, "hello");
    let (status, _, _) = send(
        "POST",
        "/admin/keys",
        &[("authorization", "SIG 4")],
        "hello",
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bodies_read_for_signatures_are_bounded() {
    let (status, _, _) = send(
        "POST",
        "/admin/keys",
        &[("authorization", "SIG 100")],
        &"x".repeat(100),
    )
    .await;
    assert_eq!(status, 413);
}
