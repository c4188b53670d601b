//! The API-key service over real HTTP, and its binary.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use common::{Running, json, start};
use palisade_apikey::{ApiKeys, MemoryKeyStore, NewKey};
use palisade_examples::apikey_service::{DEMO_OWNER, SCOPE, app, create_demo_key};

async fn service() -> (String, Arc<ApiKeys<MemoryKeyStore>>, String, String) {
    let keys = Arc::new(ApiKeys::new(MemoryKeyStore::new()));
    let created = create_demo_key(&keys, SystemTime::now()).await.unwrap();
    let url = start(app(Arc::clone(&keys))).await;
    (
        url,
        keys,
        created.key.expose_secret().to_owned(),
        created.record.key_id.clone(),
    )
}

async fn hello(url: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{url}/hello"));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.unwrap()
}

fn assert_problem(response: &reqwest::Response, status: u16) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn the_demo_key_gets_hello_as_its_owner() {
    let (url, _, key, key_id) = service().await;
    let response = hello(&url, Some(&key)).await;
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["message"], format!("hello, {DEMO_OWNER}"));
    assert_eq!(body["key_id"], key_id);
    assert_eq!(body["scopes"], serde_json::json!([SCOPE]));
    assert!(!body.to_string().contains(&key), "the key is never echoed");
}

#[tokio::test]
async fn missing_mistyped_and_revoked_keys_get_401_problems() {
    let (url, keys, key, key_id) = service().await;

    let missing = hello(&url, None).await;
    assert_problem(&missing, 401);
    assert!(missing.headers().contains_key("www-authenticate"));
    assert_eq!(
        json(missing).await["type"],
        "https://palisade.dev/problems/unauthenticated"
    );

    let mut mistyped = key.clone();
    let last = mistyped.pop().unwrap();
    mistyped.push(if last == 'A' { 'B' } else { 'A' });
    let response = hello(&url, Some(&mistyped)).await;
    assert_problem(&response, 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("ApiKey")
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains(&mistyped), "the key is never echoed: {text}");

    // The key works until it is revoked, and not on the next request after.
    assert_eq!(hello(&url, Some(&key)).await.status(), 200);
    assert!(keys.revoke(&key_id, SystemTime::now()).await.unwrap());
    assert_problem(&hello(&url, Some(&key)).await, 401);

    // Garbage that is not even text, and two keys at once.
    let response = reqwest::Client::new()
        .get(format!("{url}/hello"))
        .header(
            "x-api-key",
            reqwest::header::HeaderValue::from_bytes(b"pk_live_\xff").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_problem(&response, 401);
    let response = reqwest::Client::new()
        .get(format!("{url}/hello"))
        .header("x-api-key", &key)
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_problem(&response, 401);
}

#[tokio::test]
async fn a_genuine_key_without_the_scope_gets_403() {
    let (url, keys, _, _) = service().await;
    let other = keys
        .create(
            NewKey::new("other").scopes(["orders:read"]),
            SystemTime::now(),
        )
        .await
        .unwrap();
    let response = hello(&url, Some(other.key.expose_secret())).await;
    assert_problem(&response, 403);
    let body = json(response).await;
    assert_eq!(
        body["type"],
        "https://palisade.dev/problems/insufficient_scope"
    );
    assert!(body["detail"].as_str().unwrap().contains(SCOPE));
}

#[tokio::test]
async fn unknown_paths_are_404_not_401() {
    let (url, _, _, _) = service().await;
    let response = reqwest::get(format!("{url}/nope")).await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_binary_prints_a_key_that_works() {
    let running = Running::start(
        env!("CARGO_BIN_EXE_apikey_service"),
        &["--listen", "127.0.0.1:0"],
        &[],
        3,
    );
    let url = running.url();
    let key = running.after("(shown once): ");
    assert!(key.starts_with("pk_live_"), "{:?}", running.lines);
    assert!(running.lines[2].contains(&format!("{url}/hello")));

    let response = hello(&url, Some(&key)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["message"], "hello, demo");
    assert_problem(&hello(&url, None).await, 401);
}

#[test]
fn the_binary_refuses_unknown_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_apikey_service"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "no key is created for a bad start"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("--bogus") && stderr.contains("--listen"),
        "{stderr}"
    );
}
