//! The real backends: `palisade serve` on PostgreSQL and Redis, alone and as two
//! instances sharing one database, one Redis and one data directory (the JWT key ring
//! and the signing master key).
//!
//! Without PostgreSQL or Redis the tests skip with a printed reason, unless
//! `PALISADE_REQUIRE_SERVICES=1` (CI), where they fail.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod harness;

use std::time::{Duration, Instant, SystemTime};

use harness::{Palisade, Server, http_client, loopback_source, order_body};
use palisade_signing::{Request, Secret, SigV4Profile, SigningCredential};

/// The PostgreSQL URL of a fresh database and the Redis URL, or `None` (skip).
async fn backends(prefix: &str) -> Option<(String, String)> {
    let redis = palisade_testkit::redis_url()?;
    let database = palisade_testkit::fresh_postgres_database(prefix).await?;
    Some((database, redis))
}

fn cli_on(data: &std::path::Path, database: &str, redis: &str) -> Palisade {
    Palisade::new(data)
        .env("PALISADE_DATABASE_URL", database)
        .env("PALISADE_REDIS_URL", redis)
}

/// The `palisade`-profile headers for a request to `host` (and its body, with
/// `application/json`).
fn palisade_signature(
    credential: &(String, String),
    method: &str,
    host: &str,
    target: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut request = Request::new(method, target).scheme("http").body(body);
    request.push_header("host", host);
    if !body.is_empty() {
        request.push_header("content-type", "application/json");
    }
    let signer = SigningCredential::new(
        credential.0.as_str(),
        Secret::new(credential.1.as_bytes().to_vec()),
    );
    palisade_signing::sign(
        &SigV4Profile::palisade(),
        &signer,
        &request,
        SystemTime::now(),
    )
    .unwrap()
}

/// Sends a signed request to `server`, with `host` as the Host header.
async fn send_signed(
    client: &reqwest::Client,
    server: &Server,
    method: reqwest::Method,
    host: &str,
    target: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> reqwest::Response {
    let mut request = client
        .request(method, format!("{}{target}", server.url))
        .header("host", host);
    if !body.is_empty() {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

async fn get_with_key(client: &reqwest::Client, server: &Server, key: &str) -> u16 {
    client
        .get(format!("{}/api/orders", server.url))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn get_with_bearer(client: &reqwest::Client, server: &Server, token: &str) -> u16 {
    client
        .get(format!("{}/api/orders", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A client-credentials access token from `server`.
async fn access_token(
    client: &reqwest::Client,
    server: &Server,
    oauth_client: &(String, String),
) -> String {
    let response = client
        .post(format!("{}/oauth/token", server.url))
        .basic_auth(&oauth_client.0, Some(&oauth_client.1))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 900, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_holds_on_postgres_and_redis() {
    let Some((database, redis)) = backends("server_core").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cli = cli_on(&data, &database, &redis);
    let (key, _) = cli.create_key("alice", "orders:read,orders:write", &[]);
    let oauth_client = cli.create_client("orders:read");
    let credential = cli.create_credential("alice", "orders:read,orders:write");
    let public_key_credential = cli.public_key_credential(
        "alice",
        "orders:read",
        harness::ED25519_PUBLIC_PEM,
    )["access_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = cli.serve();
    let announced = server
        .wait_for_log(Duration::ZERO, |f| f["message"] == "palisade is serving")
        .unwrap();
    assert_eq!(announced["database"], "postgres", "{announced}");
    assert_eq!(announced["redis"], true, "{announced}");
    assert!(
        !data.join("palisade.db").exists(),
        "a SQLite database was created although database_url is set"
    );
    let client = http_client(loopback_source());

    let health = client
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        !health.headers().contains_key("strict-transport-security"),
        "HSTS over plain HTTP"
    );
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["checks"]["database"], "ok", "{health}");
    assert_eq!(health["checks"]["redis"], "ok", "{health}");

    // API key: create and list.
    let response = client
        .post(format!("{}/api/orders", server.url))
        .header("x-api-key", &key)
        .json(&order_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let order: serde_json::Value = response.json().await.unwrap();
    let order_id = order["id"].as_str().unwrap().to_owned();
    let page: serde_json::Value = client
        .get(format!("{}/api/orders", server.url))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["orders"][0]["id"], order_id.as_str(), "{page}");

    // The order is in PostgreSQL.
    let mut pg = <sqlx::PgConnection as sqlx::Connection>::connect(&database)
        .await
        .unwrap();
    let (owner,): (String,) = sqlx::query_as("SELECT owner FROM server_orders WHERE id = $1")
        .bind(&order_id)
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!(owner, "alice");

    // OAuth client credentials, then the token on /api.
    let token = access_token(&client, &server, &oauth_client).await;
    assert_eq!(get_with_bearer(&client, &server, &token).await, 200);

    // A palisade-profile signature: a read and a write.
    let host = server.authority().to_owned();
    let headers = palisade_signature(&credential, "GET", &host, "/api/orders?limit=5", b"");
    let response = send_signed(
        &client,
        &server,
        reqwest::Method::GET,
        &host,
        "/api/orders?limit=5",
        b"",
        &headers,
    )
    .await;
    assert_eq!(response.status(), 200);
    let page: serde_json::Value = response.json().await.unwrap();
    assert_eq!(page["orders"][0]["id"], order_id.as_str(), "{page}");
    let body = serde_json::to_vec(&order_body()).unwrap();
    let headers = palisade_signature(&credential, "POST", &host, "/api/orders", &body);
    let response = send_signed(
        &client,
        &server,
        reqwest::Method::POST,
        &host,
        "/api/orders",
        &body,
        &headers,
    )
    .await;
    assert_eq!(response.status(), 201);

    // An RFC 9421 Ed25519 signature, its public key kept in PostgreSQL.
    use base64::Engine as _;
    let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(harness::ED25519_SEED)
        .unwrap();
    let url = format!("{}/api/orders?limit=5", server.url);
    let key = palisade_signing::Rfc9421Key::ed25519_from_seed(&seed).unwrap();
    let mut request = client.get(&url);
    for (name, value) in harness::rfc9421_headers(&public_key_credential, key, "GET", &url, b"") {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_revocations_limits_and_nonces() {
    let Some((database, redis)) = backends("server_pair").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Instances behind one name share its issuer (by default each would derive its own
    // from the address it listens on, and refuse the other's tokens).
    let cli = cli_on(&data, &database, &redis).env("PALISADE_ISSUER", "http://palisade.test");
    let admin = cli.create_credential("ops", "admin");
    let (revoked_by_admin, revoked_by_admin_id) =
        cli.create_key("alice", "orders:read,orders:write", &[]);
    let (revoked_by_cli, revoked_by_cli_id) = cli.create_key("alice", "orders:read", &[]);
    let (limited, _) = cli.create_key("bob", "orders:read", &["--rate-limit", "10"]);
    let oauth_client = cli.create_client("orders:read");
    let signer = cli.create_credential("carol", "orders:read");
    let a = cli.serve();
    let b = cli.serve();
    assert_ne!(a.url, b.url);

    // A key revoked through instance A's admin API is refused by B at its next request,
    // although B had just verified (and cached) it.
    let client = http_client(loopback_source());
    assert_eq!(get_with_key(&client, &a, &revoked_by_admin).await, 200);
    assert_eq!(get_with_key(&client, &b, &revoked_by_admin).await, 200);
    let target = format!("/admin/keys/{revoked_by_admin_id}");
    let host = a.authority().to_owned();
    let headers = palisade_signature(&admin, "DELETE", &host, &target, b"");
    let response = send_signed(
        &client,
        &a,
        reqwest::Method::DELETE,
        &host,
        &target,
        b"",
        &headers,
    )
    .await;
    assert_eq!(response.status(), 204, "{:?}", response.text().await);
    assert_eq!(
        get_with_key(&client, &b, &revoked_by_admin).await,
        401,
        "instance B still accepts a key revoked through instance A"
    );
    assert_eq!(get_with_key(&client, &a, &revoked_by_admin).await, 401);

    // A key revoked with the CLI is refused by both within one second.
    let client = http_client(loopback_source());
    assert_eq!(get_with_key(&client, &a, &revoked_by_cli).await, 200);
    assert_eq!(get_with_key(&client, &b, &revoked_by_cli).await, 200);
    let revoked = cli.json(&["keys", "revoke", &revoked_by_cli_id]);
    assert_eq!(revoked["revoked"], true, "{revoked}");
    let deadline = Instant::now() + Duration::from_secs(1);
    for server in [&a, &b] {
        loop {
            let status = get_with_key(&client, server, &revoked_by_cli).await;
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(
                Instant::now() < deadline,
                "{} still accepts a key revoked with the CLI after 1 s",
                server.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // A per-key limit of 10 a minute is one budget across both instances.
    let client = http_client(loopback_source());
    let mut statuses = Vec::new();
    for i in 0..14 {
        let server = if i % 2 == 0 { &a } else { &b };
        let response = client
            .get(format!("{}/api/orders", server.url))
            .header("x-api-key", &limited)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            assert!(
                response.headers().contains_key("retry-after"),
                "a 429 without Retry-After"
            );
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 429, 429, 429
        ],
        "alternating A and B"
    );

    // An access token revoked at A is refused by B.
    let client = http_client(loopback_source());
    let token = access_token(&client, &a, &oauth_client).await;
    assert_eq!(get_with_bearer(&client, &b, &token).await, 200);
    let response = client
        .post(format!("{}/oauth/revoke", a.url))
        .basic_auth(&oauth_client.0, Some(&oauth_client.1))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        get_with_bearer(&client, &b, &token).await,
        401,
        "instance B accepts an access token revoked at A"
    );
    assert_eq!(get_with_bearer(&client, &a, &token).await, 401);

    // A signature accepted by A is refused when replayed to B. Both are addressed by
    // the same name, so that only the replay protection tells the two requests apart.
    let client = http_client(loopback_source());
    let host = "palisade.test";
    let fresh = palisade_signature(&signer, "GET", host, "/api/orders?limit=6", b"");
    let response = send_signed(
        &client,
        &b,
        reqwest::Method::GET,
        host,
        "/api/orders?limit=6",
        b"",
        &fresh,
    )
    .await;
    assert_eq!(response.status(), 200, "B refuses a fresh signature");
    let signed = palisade_signature(&signer, "GET", host, "/api/orders?limit=5", b"");
    let response = send_signed(
        &client,
        &a,
        reqwest::Method::GET,
        host,
        "/api/orders?limit=5",
        b"",
        &signed,
    )
    .await;
    assert_eq!(response.status(), 200, "A refuses a fresh signature");
    let replayed = send_signed(
        &client,
        &b,
        reqwest::Method::GET,
        host,
        "/api/orders?limit=5",
        b"",
        &signed,
    )
    .await;
    assert_eq!(
        replayed.status(),
        401,
        "B accepted a signature A had already accepted"
    );
    let problem = replayed.text().await.unwrap();
    assert!(problem.contains("replay"), "{problem}");
}
