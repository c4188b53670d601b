//! `SignatureVerifier` and `HttpSignatureVerifier` with a real `palisade_signing::Verifier`
//! (in-memory credential and nonce stores), requests signed by the crate's own signers.
#![cfg(feature = "signing")]
// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::Request;
use http::request::Parts;
use http_body_util::BodyExt;
use palisade_axum::{
    AuthFailure, AuthMethod, AuthenticateLayer, ClientInfoLayer, Connection, FnVerifier,
    HttpSignatureVerifier, Principal, RequireScopeLayer, SignatureVerifier, TrustedProxies,
};
use palisade_signing::{
    Credential, CredentialStore, KeyMaterial, MasterKey, MemoryCredentialStore, MemoryNonceStore,
    Rfc9421Key, Rfc9421Policy, Rfc9421Signer, Secret, SigV4Profile, SigningCredential, Verifier,
    content_digest, presign, sign,
};
use tower::{ServiceBuilder, ServiceExt};

const AKID: &str = "AKIDALICE1";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const HOST: &str = "api.example.com";
const BODY: &str = r#"{"items":[{"product_id":"prod_1","quantity":2}]}"#;

fn aws() -> SigV4Profile {
    SigV4Profile::aws4("us-east-1", "execute-api")
}

fn verifier() -> Arc<Verifier<MemoryCredentialStore, MemoryNonceStore>> {
    let store = MemoryCredentialStore::new(MasterKey::generate());
    store
        .insert(Credential {
            access_key_id: AKID.into(),
            owner: "alice".into(),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            key: KeyMaterial::Secret(Secret::from(SECRET)),
        })
        .unwrap();
    Arc::new(Verifier::new(store, MemoryNonceStore::new()))
}

fn api_key_present(parts: &Parts) -> bool {
    parts.headers.contains_key("x-api-key")
}

fn app<C, N>(verifier: Arc<Verifier<C, N>>) -> Router
where
    C: CredentialStore + 'static,
    N: palisade_signing::NonceStore + 'static,
{
    let echo = |principal: Principal, body: String| async move {
        format!(
            "{} {} {} {body}",
            principal.identity(),
            principal.owner(),
            principal.method().as_str()
        )
    };
    let api_key = FnVerifier::new("api_key", api_key_present, |_| {
        Ok::<_, AuthFailure>(Principal::new(
            "k",
            "o",
            AuthMethod::ApiKey,
            ["orders:write"],
        ))
    });
    Router::new()
        .route("/api/orders", post(echo).get(echo))
        .route_layer(RequireScopeLayer::new(["orders:write"]))
        .layer(
            ServiceBuilder::new()
                .layer(ClientInfoLayer::new(TrustedProxies::none()))
                .layer(
                    AuthenticateLayer::new()
                        .verifier(SignatureVerifier::new(Arc::clone(&verifier)).aws4(aws()))
                        .verifier(HttpSignatureVerifier::new(
                            verifier,
                            Rfc9421Policy::palisade(),
                        ))
                        .verifier(api_key),
                ),
        )
}

/// An HTTP request with `headers` and `body`, over TLS or not.
fn http_request(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &str,
    tls: bool,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(target);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let mut request = builder.body(Body::from(body.to_owned())).unwrap();
    request.extensions_mut().insert(Connection {
        peer: SocketAddr::from(([198, 51, 100, 7], 40000)),
        tls,
    });
    request
}

/// A POST of `BODY` to `/api/orders?dry_run=1`, signed under `profile`.
fn signed_post(profile: &SigV4Profile) -> Vec<(String, String)> {
    let base = palisade_signing::Request::new("POST", "/api/orders?dry_run=1")
        .header("host", HOST)
        .header("content-type", "application/json")
        .body(BODY.as_bytes());
    let mut headers = vec![
        ("host".to_owned(), HOST.to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let client = SigningCredential::new(AKID, Secret::from(SECRET));
    headers.extend(sign(profile, &client, &base, SystemTime::now()).unwrap());
    headers
}

async fn text(response: axum::response::Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn palisade_signature_authenticates_once() {
    let app = app(verifier());
    let headers = signed_post(&SigV4Profile::palisade());
    let response = app
        .clone()
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &headers,
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        text(response).await,
        format!("{AKID} alice palisade_signature {BODY}"),
        "the handler gets the body the verifier read"
    );

    let replay = app
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &headers,
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(
        replay.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("PALISADE-HMAC-SHA256")
    );
    let json: serde_json::Value = serde_json::from_str(&text(replay).await).unwrap();
    assert_eq!(json["type"], "https://palisade.dev/problems/replay");
}

#[tokio::test]
async fn a_tampered_body_or_target_is_refused_without_debug_details() {
    let app = app(verifier());
    let headers = signed_post(&SigV4Profile::palisade());
    let tampered = BODY.replace("\"quantity\":2", "\"quantity\":200");
    let response = app
        .clone()
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &headers,
            &tampered,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = text(response).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["type"],
        "https://palisade.dev/problems/signature_mismatch"
    );
    // The canonical request the server computed is for the credential's owner only.
    assert!(!body.contains("application/json"), "{body}");
    assert!(!body.contains("dry_run"), "{body}");

    let response = app
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=0",
            &headers,
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the query is signed");
}

#[tokio::test]
async fn a_signature_and_an_api_key_together_are_400() {
    let mut headers = signed_post(&SigV4Profile::palisade());
    headers.push(("x-api-key".to_owned(), "k".to_owned()));
    let response = app(verifier())
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &headers,
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(
        json["type"],
        "https://palisade.dev/problems/ambiguous_credentials"
    );
}

#[tokio::test]
async fn aws_signatures_and_presigned_urls() {
    let app = app(verifier());
    let response = app
        .clone()
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &signed_post(&aws()),
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(text(response).await.contains(" aws_signature "));

    let client = SigningCredential::new(AKID, Secret::from(SECRET));
    let base = palisade_signing::Request::new("GET", "/api/orders?limit=5").header("host", HOST);
    for profile in [SigV4Profile::palisade(), aws()] {
        let target = presign(
            &profile,
            &client,
            &base,
            SystemTime::now(),
            Duration::from_secs(60),
        )
        .unwrap();
        let host = [("host".to_owned(), HOST.to_owned())];
        let response = app
            .clone()
            .oneshot(http_request("GET", &target, &host, "", false))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{target}");
        let wrong_host = [("host".to_owned(), "evil.example".to_owned())];
        let response = app
            .clone()
            .oneshot(http_request("GET", &target, &wrong_host, "", false))
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "host is signed: {target}");
    }
}

#[tokio::test]
async fn a_disabled_profile_is_not_a_credential() {
    // Only the palisade profile is enabled here: an AWS signature is not recognised, so
    // the request is anonymous.
    let verifier = verifier();
    let app = Router::new()
        .route("/api/orders", post(|| async { "ok" }))
        .route_layer(RequireScopeLayer::new(["orders:write"]))
        .layer(AuthenticateLayer::new().verifier(SignatureVerifier::new(verifier)));
    let response = app
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &signed_post(&aws()),
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(
        json["type"],
        "https://palisade.dev/problems/unauthenticated"
    );
}

/// RFC 9421 headers for a POST of `BODY` to `target`, covering `components`.
fn rfc9421_headers(target: &str, components: &[&str]) -> Vec<(String, String)> {
    let digest = content_digest(BODY.as_bytes());
    let base = palisade_signing::Request::new("POST", target)
        .header("host", HOST)
        .header("content-type", "application/json")
        .header("content-digest", &digest)
        .body(BODY.as_bytes());
    let mut signer = Rfc9421Signer::new(AKID, Rfc9421Key::HmacSha256(Secret::from(SECRET)));
    for component in components {
        signer = signer.cover(*component);
    }
    let mut headers = vec![
        ("host".to_owned(), HOST.to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("content-digest".to_owned(), digest.clone()),
    ];
    headers.extend(signer.sign_request(&base, SystemTime::now()).unwrap());
    headers
}

#[tokio::test]
async fn http_message_signatures_verify_once_and_bind_the_body() {
    let app = app(verifier());
    let components = ["@method", "@authority", "@path", "@query", "content-digest"];
    let headers = rfc9421_headers("/api/orders?dry_run=1", &components);
    let response = app
        .clone()
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &headers,
            BODY,
            true,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        text(response).await,
        format!("{AKID} alice http_message_signature {BODY}")
    );

    let replay = app
        .clone()
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &headers,
            BODY,
            true,
        ))
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(
        replay.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Signature")
    );

    let fresh = rfc9421_headers("/api/orders?dry_run=1", &components);
    let response = app
        .clone()
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &fresh,
            "{}",
            true,
        ))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the body no longer matches the digest"
    );

    // Missing coverage of a required component.
    let partial = rfc9421_headers("/api/orders?dry_run=1", &["@method", "content-digest"]);
    let response = app
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &partial,
            BODY,
            true,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(
        json["type"],
        "https://palisade.dev/problems/unsigned_required_header"
    );
}

#[tokio::test]
async fn the_scheme_comes_from_the_connection() {
    // The signer assumes https; `@scheme` then matches only over TLS.
    let app = app(verifier());
    let components = [
        "@method",
        "@authority",
        "@path",
        "@query",
        "@scheme",
        "content-digest",
    ];
    let plain = rfc9421_headers("/api/orders?dry_run=1", &components);
    let response = app
        .clone()
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &plain,
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "plain HTTP is @scheme http");
    let tls = rfc9421_headers("/api/orders?dry_run=1", &components);
    let response = app
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &tls,
            BODY,
            true,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A credential store whose backend is down.
struct DownStore;

impl CredentialStore for DownStore {
    async fn credential(&self, _: &str) -> Result<Option<Credential>, palisade_signing::Error> {
        Err(palisade_signing::Error::store_unavailable())
    }
}

#[tokio::test]
async fn an_unavailable_store_is_503() {
    let app = app(Arc::new(Verifier::new(DownStore, MemoryNonceStore::new())));
    let response = app
        .oneshot(http_request(
            "POST",
            "/api/orders?dry_run=1",
            &signed_post(&SigV4Profile::palisade()),
            BODY,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
}
