//! The rate-limit service over real HTTP, and its binary.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use common::{Running, json, start};
use palisade_examples::ratelimit_service::{app, limiter};

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(format!("{url}/hello")).send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

#[tokio::test]
async fn every_answer_announces_the_limit_and_the_excess_gets_429() {
    let url = start(app(limiter(3).unwrap())).await;
    let client = reqwest::Client::new();
    for remaining in ["2", "1", "0"] {
        let response = get(&client, &url).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit"), "3");
        assert_eq!(header(&response, "x-ratelimit-remaining"), remaining);
        let reset: u64 = header(&response, "x-ratelimit-reset").parse().unwrap();
        assert!(reset > 1_700_000_000, "Unix seconds: {reset}");
        assert!(
            header(&response, "ratelimit-policy").contains(";q=3;w=60"),
            "{}",
            header(&response, "ratelimit-policy")
        );
        assert!(response.headers().contains_key("ratelimit"));
        assert!(!response.headers().contains_key("retry-after"));
        assert_eq!(json(response).await["counted_as"], "127.0.0.1");
    }

    let denied = get(&client, &url).await;
    assert_eq!(denied.status(), 429);
    assert_eq!(header(&denied, "content-type"), "application/problem+json");
    assert_eq!(header(&denied, "x-ratelimit-remaining"), "0");
    let retry: u64 = header(&denied, "retry-after").parse().unwrap();
    assert!((1..=90).contains(&retry), "retry-after {retry}");
    let body = json(denied).await;
    assert_eq!(
        body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(body["status"], 429);
}

#[tokio::test]
async fn a_client_cannot_pick_another_bucket_with_forwarded_headers() {
    let url = start(app(limiter(1).unwrap())).await;
    let client = reqwest::Client::new();
    assert_eq!(get(&client, &url).await.status(), 200);
    let response = client
        .get(format!("{url}/hello"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        429,
        "X-Forwarded-For from a client is ignored"
    );
}

#[tokio::test]
async fn each_client_address_has_its_own_bucket() {
    let url = start(app(limiter(1).unwrap())).await;
    let first = reqwest::Client::new();
    assert_eq!(get(&first, &url).await.status(), 200);
    assert_eq!(get(&first, &url).await.status(), 429);

    // Another loopback source address is another client.
    let second = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = get(&second, &url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["counted_as"], "127.0.0.2");
    assert_eq!(get(&second, &url).await.status(), 429);
}

#[test]
fn a_limit_of_zero_is_refused() {
    assert!(limiter(0).is_err());
}

#[tokio::test]
async fn the_binary_limits_per_minute() {
    let running = Running::start(
        env!("CARGO_BIN_EXE_ratelimit_service"),
        &["--listen", "127.0.0.1:0", "--per-minute", "2"],
        &[],
        3,
    );
    assert!(
        running.lines[1].contains("2 requests per minute"),
        "{:?}",
        running.lines
    );
    let url = running.url();
    let client = reqwest::Client::new();
    assert_eq!(get(&client, &url).await.status(), 200);
    assert_eq!(get(&client, &url).await.status(), 200);
    let denied = get(&client, &url).await;
    assert_eq!(denied.status(), 429);
    assert!(denied.headers().contains_key("retry-after"));
}

#[test]
fn the_binary_refuses_a_bad_limit() {
    for bad in ["0", "many"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ratelimit_service"))
            .args(["--listen", "127.0.0.1:0", "--per-minute", bad])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "--per-minute {bad}");
        assert!(
            String::from_utf8(output.stderr)
                .unwrap()
                .contains("--per-minute")
        );
    }
}
