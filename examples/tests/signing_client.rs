//! The signing client against an in-test axum server that verifies with
//! `palisade_signing::Verifier`, and its binary.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::{json, start};
use palisade_examples::signing_client::{ClientError, Outgoing, build, send, signed_headers};
use palisade_signing::{
    Credential, KeyMaterial, MasterKey, MemoryCredentialStore, MemoryNonceStore, Request,
    SigV4Profile, SigningCredential, Verifier,
};
use reqwest::Url;

const ACCESS_KEY_ID: &str = "AKIDEXAMPLE1";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

type ServerVerifier = Verifier<MemoryCredentialStore, MemoryNonceStore>;

/// Verifies every request with the `palisade` profile; 200 with who signed and what
/// arrived, or 401 with the error's code.
async fn verify(
    State(verifier): State<Arc<ServerVerifier>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri.path_and_query().map_or("/", |target| target.as_str());
    let mut request = Request::new(method.as_str(), target).body(&body);
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            request.push_header(name.as_str(), value);
        }
    }
    match verifier
        .verify(&SigV4Profile::palisade(), &request, SystemTime::now())
        .await
    {
        Ok(verified) => axum::Json(serde_json::json!({
            "owner": verified.owner,
            "access_key_id": verified.access_key_id,
            "method": method.as_str(),
            "target": target,
            "body": String::from_utf8_lossy(&body),
        }))
        .into_response(),
        Err(error) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "code": error.code() })),
        )
            .into_response(),
    }
}

async fn server() -> String {
    let store = MemoryCredentialStore::new(MasterKey::generate());
    store
        .insert(Credential {
            access_key_id: ACCESS_KEY_ID.into(),
            owner: "acme".into(),
            scopes: vec!["orders:read".into()],
            key: KeyMaterial::Secret(SECRET.into()),
        })
        .unwrap();
    let verifier = Arc::new(Verifier::new(store, MemoryNonceStore::new()));
    start(Router::new().fallback(verify).with_state(verifier)).await
}

fn credential() -> SigningCredential {
    SigningCredential::new(ACCESS_KEY_ID, SECRET.into())
}

fn url(base: &str, path: &str) -> Url {
    Url::parse(&format!("{base}{path}")).unwrap()
}

#[tokio::test]
async fn a_signed_get_with_a_query_verifies() {
    let base = server().await;
    let request = Outgoing::get(url(&base, "/api/orders?limit=5&cursor=a%20b"));
    let (response, added) = send(&reqwest::Client::new(), &credential(), &request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["owner"], "acme");
    assert_eq!(body["access_key_id"], ACCESS_KEY_ID);
    assert_eq!(body["target"], "/api/orders?limit=5&cursor=a%20b");

    let names: Vec<&str> = added.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["Authorization", "X-Palisade-Date"]);
    let authorization = &added[0].1;
    assert!(
        authorization.starts_with(&format!("PALISADE-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")),
        "{authorization}"
    );
    assert!(authorization.contains("/api/request, SignedHeaders=host;x-palisade-date, Signature="));
    assert!(!authorization.contains(SECRET));
    let date = &added[1].1;
    assert_eq!(date.len(), 16, "ISO 8601 basic: {date}");
    assert!(date.ends_with('Z') && date.contains('T'));
}

#[tokio::test]
async fn a_signed_post_binds_the_body_and_its_content_type() {
    let base = server().await;
    let payload = br#"{"items":[{"product_id":"prod_1","quantity":2}]}"#;
    let request = Outgoing::with_body(
        Method::POST,
        url(&base, "/api/orders"),
        "application/json",
        payload.to_vec(),
    );
    let client = reqwest::Client::new();
    let (response, added) = send(&client, &credential(), &request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        added[0]
            .1
            .contains("SignedHeaders=content-type;host;x-palisade-date")
    );
    let body = json(response).await;
    assert_eq!(body["method"], "POST");
    assert_eq!(body["body"], std::str::from_utf8(payload).unwrap());

    // The same request with another body on the wire.
    let (mut tampered, _) = build(&client, &credential(), &request, SystemTime::now()).unwrap();
    *tampered.body_mut() = Some(
        br#"{"items":[{"product_id":"prod_1","quantity":999}]}"#
            .to_vec()
            .into(),
    );
    let response = client.execute(tampered).await.unwrap();
    assert_eq!(response.status(), 401);
    // The palisade profile carries no body-hash header: the verifier hashes the body it
    // received, so another body is simply another signature.
    assert_eq!(json(response).await["code"], "signature_mismatch");
}

#[tokio::test]
async fn wrong_secrets_unknown_ids_stale_times_and_replays_are_refused() {
    let base = server().await;
    let client = reqwest::Client::new();
    let request = Outgoing::get(url(&base, "/api/orders"));

    let code = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 401);
        json(response).await["code"].as_str().unwrap().to_owned()
    };

    let wrong = SigningCredential::new(ACCESS_KEY_ID, "not-the-secret".into());
    let (response, _) = send(&client, &wrong, &request).await.unwrap();
    assert_eq!(code(response).await, "signature_mismatch");

    let unknown = SigningCredential::new("AKIDUNKNOWN", SECRET.into());
    let (response, _) = send(&client, &unknown, &request).await.unwrap();
    assert_eq!(code(response).await, "unknown_credential");

    let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
    let (stale, _) = build(&client, &credential(), &request, ten_minutes_ago).unwrap();
    let response = client.execute(stale).await.unwrap();
    assert_eq!(code(response).await, "request_time_too_skewed");

    // Signed once, sent twice: the second is a replay.
    let now = SystemTime::now();
    let (first, _) = build(&client, &credential(), &request, now).unwrap();
    let (second, _) = build(&client, &credential(), &request, now).unwrap();
    assert_eq!(client.execute(first).await.unwrap().status(), 200);
    assert_eq!(code(client.execute(second).await.unwrap()).await, "replay");
}

#[test]
fn requests_that_cannot_be_signed_are_refused_before_sending() {
    let credential = credential();
    let now = SystemTime::now();
    let no_type = Outgoing {
        body: b"{}".to_vec(),
        ..Outgoing::get(Url::parse("http://127.0.0.1:1/x").unwrap())
    };
    assert!(matches!(
        signed_headers(&credential, &no_type, now),
        Err(ClientError::Sign(error)) if error.code() == "missing_header"
    ));
    for bad in ["ftp://example.com/x", "http://user:pw@example.com/x"] {
        let request = Outgoing::get(Url::parse(bad).unwrap());
        assert!(
            matches!(
                signed_headers(&credential, &request, now),
                Err(ClientError::Url(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn the_host_is_signed_without_the_default_port() {
    // Signed with the port when it is not the scheme's default, without it otherwise:
    // the canonical requests then differ, so the signatures do.
    let now = SystemTime::now();
    let sign = |url: &str| {
        signed_headers(&credential(), &Outgoing::get(Url::parse(url).unwrap()), now).unwrap()[0]
            .1
            .clone()
    };
    assert_eq!(
        sign("https://example.com/x"),
        sign("https://example.com:443/x")
    );
    assert_ne!(
        sign("https://example.com/x"),
        sign("https://example.com:8443/x")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_signs_shows_the_headers_and_prints_the_answer() {
    let base = server().await;
    let run = |args: Vec<String>, secret: &'static str| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_signing_client"))
                .args(args)
                .env("PALISADE_ACCESS_KEY_ID", ACCESS_KEY_ID)
                .env("PALISADE_SECRET", secret)
                .output()
                .unwrap()
        })
    };

    let output = run(vec![format!("{base}/api/orders?limit=1")], SECRET)
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "> Authorization: PALISADE-HMAC-SHA256 Credential={ACCESS_KEY_ID}/"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("> X-Palisade-Date: "), "{stdout}");
    assert!(stdout.contains("< 200 OK"), "{stdout}");
    assert!(stdout.contains(r#""owner":"acme""#), "{stdout}");
    assert!(!stdout.contains(SECRET));

    let output = run(
        vec![
            "--data".to_owned(),
            r#"{"hello":"world"}"#.to_owned(),
            format!("{base}/api/echo"),
        ],
        SECRET,
    )
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("SignedHeaders=content-type;host;x-palisade-date"));
    assert!(stdout.contains(r#""method":"POST""#), "{stdout}");

    let output = run(vec![format!("{base}/api/orders")], "wrong")
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("< 401"), "{stdout}");
    assert!(stdout.contains("signature_mismatch"), "{stdout}");
}

#[test]
fn the_binary_names_what_is_missing() {
    let exe = env!("CARGO_BIN_EXE_signing_client");
    let output = std::process::Command::new(exe)
        .arg("http://127.0.0.1:1/")
        .env_remove("PALISADE_ACCESS_KEY_ID")
        .env("PALISADE_SECRET", "x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("PALISADE_ACCESS_KEY_ID")
    );

    let output = std::process::Command::new(exe).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("usage"));
}
