//! The webhook receiver over real HTTP, with deliveries signed by the crate's signer
//! and the Standard Webhooks published example, and its binary.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::{Running, json, start};
use palisade_examples::webhook_receiver::{Delivery, Inbox, MAX_BODY, app, app_with_clock};
use palisade_signing::StandardWebhook;

/// The published example of standard-webhooks/standard-webhooks
/// (libraries/go/webhook_test.go), also checked in palisade-signing's tests.
const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TS: u64 = 1_614_265_330;
const VECTOR_PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn vector_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(VECTOR_TS)
}

/// Posts `payload` with `headers` to the receiver at `url`.
async fn deliver(url: &str, headers: &[(String, String)], payload: &[u8]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/webhooks"))
        .header("content-type", "application/json")
        .body(payload.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

async fn assert_refused(response: reqwest::Response, code: &str) {
    assert_eq!(response.status(), 401, "expected {code}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("www-authenticate"));
    let body = json(response).await;
    assert_eq!(
        body["type"],
        format!("https://palisade.dev/problems/{code}"),
        "{body}"
    );
}

struct Setup {
    url: String,
    inbox: Inbox,
    signer: StandardWebhook,
}

async fn setup() -> Setup {
    let secret = StandardWebhook::generate_secret();
    let inbox = Inbox::new();
    let url = start(app(StandardWebhook::new(&secret).unwrap(), inbox.clone())).await;
    Setup {
        url,
        inbox,
        signer: StandardWebhook::new(&secret).unwrap(),
    }
}

#[tokio::test]
async fn a_signed_delivery_is_accepted_once() {
    let Setup { url, inbox, signer } = setup().await;
    let payload = br#"{"type":"order.created","data":{"id":"ord_1"}}"#;
    let headers = signer.headers("msg_1", SystemTime::now(), payload).unwrap();
    let response = deliver(&url, &headers, payload).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        inbox.deliveries(),
        vec![Delivery {
            id: "msg_1".to_owned(),
            payload: payload.to_vec()
        }]
    );

    // The sender retries the same message (newly signed): accepted, recorded once.
    let retry = signer.headers("msg_1", SystemTime::now(), payload).unwrap();
    assert_eq!(deliver(&url, &retry, payload).await.status(), 204);
    assert_eq!(inbox.deliveries().len(), 1);

    let other = signer.headers("msg_2", SystemTime::now(), b"{}").unwrap();
    assert_eq!(deliver(&url, &other, b"{}").await.status(), 204);
    assert_eq!(inbox.deliveries().len(), 2);
}

#[tokio::test]
async fn forged_tampered_and_incomplete_deliveries_get_401() {
    let Setup { url, inbox, signer } = setup().await;
    let payload = br#"{"amount":10}"#;
    let headers = signer.headers("msg_1", SystemTime::now(), payload).unwrap();

    // The body changed on the way.
    assert_refused(
        deliver(&url, &headers, br#"{"amount":1000}"#).await,
        "signature_mismatch",
    )
    .await;

    // Signed with another secret.
    let forger = StandardWebhook::new(&StandardWebhook::generate_secret()).unwrap();
    let forged = forger.headers("msg_1", SystemTime::now(), payload).unwrap();
    assert_refused(deliver(&url, &forged, payload).await, "signature_mismatch").await;

    // The id changed (it is signed too).
    let mut moved = headers.clone();
    moved[0].1 = "msg_other".to_owned();
    assert_refused(deliver(&url, &moved, payload).await, "signature_mismatch").await;

    // No signature at all, and no headers at all.
    assert_refused(
        deliver(&url, &headers[..2], payload).await,
        "missing_header",
    )
    .await;
    assert_refused(deliver(&url, &[], payload).await, "missing_header").await;

    // A signature header that is not text.
    let response = reqwest::Client::new()
        .post(format!("{url}/webhooks"))
        .header(&headers[0].0, &headers[0].1)
        .header(&headers[1].0, &headers[1].1)
        .header(
            "webhook-signature",
            reqwest::header::HeaderValue::from_bytes(b"v1,\xff\xfe").unwrap(),
        )
        .body(payload.to_vec())
        .send()
        .await
        .unwrap();
    assert_refused(response, "malformed_header").await;

    // A duplicated signature header.
    let mut doubled = headers.clone();
    doubled.push(headers[2].clone());
    assert_refused(deliver(&url, &doubled, payload).await, "invalid_request").await;

    assert!(inbox.deliveries().is_empty());
    // The genuine delivery still goes through.
    assert_eq!(deliver(&url, &headers, payload).await.status(), 204);
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    let Setup { url, inbox, signer } = setup().await;
    let payload = b"{}";
    let ten_minutes = Duration::from_secs(600);
    let stale = signer
        .headers("msg_old", SystemTime::now() - ten_minutes, payload)
        .unwrap();
    assert_refused(
        deliver(&url, &stale, payload).await,
        "request_time_too_skewed",
    )
    .await;
    let future = signer
        .headers("msg_new", SystemTime::now() + ten_minutes, payload)
        .unwrap();
    assert_refused(
        deliver(&url, &future, payload).await,
        "request_time_too_skewed",
    )
    .await;
    // Within the 5 minutes of tolerance.
    let recent = signer
        .headers(
            "msg_recent",
            SystemTime::now() - Duration::from_secs(120),
            payload,
        )
        .unwrap();
    assert_eq!(deliver(&url, &recent, payload).await.status(), 204);
    assert_eq!(inbox.deliveries().len(), 1);
}

#[tokio::test]
async fn the_published_example_verifies_at_its_time_and_is_stale_now() {
    let headers = [
        ("webhook-id".to_owned(), VECTOR_ID.to_owned()),
        ("webhook-timestamp".to_owned(), VECTOR_TS.to_string()),
        ("webhook-signature".to_owned(), VECTOR_SIGNATURE.to_owned()),
    ];

    let inbox = Inbox::new();
    let then = app_with_clock(
        StandardWebhook::new(VECTOR_SECRET).unwrap(),
        inbox.clone(),
        vector_time,
    );
    let url = start(then).await;
    assert_eq!(deliver(&url, &headers, VECTOR_PAYLOAD).await.status(), 204);
    assert_eq!(inbox.deliveries()[0].payload, VECTOR_PAYLOAD);
    assert_eq!(inbox.deliveries()[0].id, VECTOR_ID);

    let now = start(app(
        StandardWebhook::new(VECTOR_SECRET).unwrap(),
        Inbox::new(),
    ))
    .await;
    assert_refused(
        deliver(&now, &headers, VECTOR_PAYLOAD).await,
        "request_time_too_skewed",
    )
    .await;
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let Setup { url, inbox, signer } = setup().await;
    let payload = vec![b'x'; MAX_BODY + 1];
    let headers = signer
        .headers("msg_big", SystemTime::now(), &payload)
        .unwrap();
    let response = deliver(&url, &headers, &payload).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(inbox.deliveries().is_empty());
}

#[tokio::test]
async fn the_binary_verifies_with_the_secret_from_the_environment() {
    let secret = StandardWebhook::generate_secret();
    let running = Running::start(
        env!("CARGO_BIN_EXE_webhook_receiver"),
        &["--listen", "127.0.0.1:0"],
        &[("WEBHOOK_SECRET", &secret)],
        2,
    );
    let url = running.url();
    let signer = StandardWebhook::new(&secret).unwrap();
    let payload = br#"{"type":"ping"}"#;
    let headers = signer
        .headers("msg_bin", SystemTime::now(), payload)
        .unwrap();
    assert_eq!(deliver(&url, &headers, payload).await.status(), 204);
    assert_refused(deliver(&url, &headers, b"{}").await, "signature_mismatch").await;
}

#[test]
fn the_binary_needs_a_valid_secret() {
    let exe = env!("CARGO_BIN_EXE_webhook_receiver");
    let missing = std::process::Command::new(exe)
        .env_remove("WEBHOOK_SECRET")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(stderr.contains("WEBHOOK_SECRET=whsec_"), "{stderr}");

    let bad = std::process::Command::new(exe)
        .env("WEBHOOK_SECRET", "whsec_not!base64")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(
        stderr.contains("WEBHOOK_SECRET") && !stderr.contains("not!base64"),
        "{stderr}"
    );
}
