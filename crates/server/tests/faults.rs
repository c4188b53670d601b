//! Fault injection (issue 12), against the real services: Redis killed and restarted
//! under load, PostgreSQL cut off behind a proxy, the server killed with SIGKILL in the
//! middle of key creation, and clock jumps as far as the running server shows them.
//!
//! Redis and PostgreSQL come from `palisade-testkit`: a test skips with a printed reason
//! when its service is absent, unless `PALISADE_REQUIRE_SERVICES=1`, when it fails. The
//! Redis test runs a private `redis-server` (on a free port, no persistence) so that it
//! can kill it without disturbing anyone else.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{
    ApiKey, Credential, OAuthClient, Profile, Resp, Server, order_body, sign_request, signed,
    with_headers,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Skips (printing why) or, when the services are required, fails.
fn skip(reason: &str) {
    assert!(
        !palisade_testkit::services_required(),
        "required (PALISADE_REQUIRE_SERVICES=1) but {reason}"
    );
    eprintln!("skipping: {reason}; set PALISADE_REQUIRE_SERVICES=1 to fail instead");
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

static NEXT_ADDRESS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A client on a loopback address of its own (127.30.x.y): the abuse layer locks an
/// address out after five failed authentications, and some checks here fail on purpose.
fn fresh_client() -> reqwest::Client {
    let n = NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed);
    let octet = |value: u32| u8::try_from(value % 250 + 1).unwrap();
    let address = std::net::Ipv4Addr::new(127, 30, octet(n / 250), octet(n));
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::V4(address))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

fn rw_key(server: &Server, owner: &str) -> ApiKey {
    server
        .cli()
        .create_key(owner, "orders:read,orders:write", &["--plan", "enterprise"])
}

/// A kind of request sent under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    /// `GET /api/orders` with an API key (fail open while Redis is down).
    Api,
    /// `GET /api/orders` with a bearer token (its revocation is checked in Redis).
    ApiBearer,
    /// A signed `GET /admin/keys` (fail closed).
    Admin,
    /// `POST /oauth/token` (fail closed).
    Token,
    /// `GET /health`.
    Health,
}

const ROUTES: [Route; 5] = [
    Route::Api,
    Route::ApiBearer,
    Route::Admin,
    Route::Token,
    Route::Health,
];

/// What one request got.
#[derive(Debug, Clone)]
struct Sample {
    route: Route,
    /// When it was sent and answered, from the start of the run.
    start: Duration,
    end: Duration,
    /// `None`: no HTTP answer at all (connection refused or reset, timeout).
    status: Option<u16>,
    content_type: String,
    retry_after: bool,
    body: String,
}

impl Sample {
    fn is_problem(&self) -> bool {
        self.content_type.starts_with("application/problem+json")
    }
}

type Samples = Arc<Mutex<Vec<Sample>>>;

/// The credentials the load uses.
#[derive(Clone)]
struct Load {
    base: String,
    key: ApiKey,
    token: String,
    admin: Credential,
    client: OAuthClient,
}

impl Load {
    fn request(&self, http: &reqwest::Client, route: Route) -> reqwest::RequestBuilder {
        let base = &self.base;
        match route {
            Route::Api => http
                .get(format!("{base}/api/orders"))
                .header("x-api-key", &self.key.key),
            Route::ApiBearer => http
                .get(format!("{base}/api/orders"))
                .bearer_auth(&self.token),
            Route::Admin => signed(
                http,
                Profile::Palisade,
                &self.admin,
                Method::GET,
                &format!("{base}/admin/keys?owner=nobody"),
                None,
            ),
            Route::Token => http
                .post(format!("{base}/oauth/token"))
                .basic_auth(&self.client.client_id, Some(&self.client.client_secret))
                .form(&[("grant_type", "client_credentials")]),
            Route::Health => http.get(format!("{base}/health")),
        }
    }
}

/// Sends requests for `route` one after the other until `stop`, recording every answer.
fn spawn_load(
    route: Route,
    load: Load,
    samples: Samples,
    stop: Arc<AtomicBool>,
    t0: Instant,
) -> tokio::task::JoinHandle<()> {
    let http = common::http_client();
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let request = load.request(&http, route);
            let start = t0.elapsed();
            let sample = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let header = |name: &str| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let content_type = header("content-type").unwrap_or_default();
                    let retry_after = header("retry-after").is_some();
                    let body = response.text().await.unwrap_or_default();
                    Sample {
                        route,
                        start,
                        end: t0.elapsed(),
                        status: Some(status),
                        content_type,
                        retry_after,
                        body,
                    }
                }
                Err(error) => Sample {
                    route,
                    start,
                    end: t0.elapsed(),
                    status: None,
                    content_type: String::new(),
                    retry_after: false,
                    body: error.to_string(),
                },
            };
            samples.lock().unwrap().push(sample);
            tokio::time::sleep(Duration::from_millis(if route == Route::Token {
                100
            } else {
                20
            }))
            .await;
        }
    })
}

/// Status counts per route among the samples sent and answered within `[from, to)`.
fn histogram(
    samples: &[Sample],
    from: Duration,
    to: Duration,
) -> BTreeMap<(Route, Option<u16>), usize> {
    let mut counts = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.start >= from && s.end < to) {
        *counts.entry((sample.route, sample.status)).or_insert(0) += 1;
    }
    counts
}

/// When `route` was back: the start of the earliest sample sent after `after` from which
/// on every answer was 200.
fn recovered_at(samples: &[Sample], route: Route, after: Duration) -> Option<Duration> {
    let mut of_route: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.route == route && s.start >= after)
        .collect();
    of_route.sort_by_key(|s| s.start);
    let first_good = match of_route.iter().rposition(|s| s.status != Some(200)) {
        Some(last_bad) => of_route.get(last_bad + 1),
        None => of_route.first(),
    }?;
    Some(first_good.start)
}

// ---------------------------------------------------------------------------------------
// Redis killed and restarted under load
// ---------------------------------------------------------------------------------------

/// A `redis-server` of this test's own, without persistence, killed on drop.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one on a free port; `Err` when the binary is missing or it does not answer.
    fn start() -> Result<Self, String> {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.spawn()?;
        Ok(redis)
    }

    /// Starts `redis-server` on the port and waits until it answers `PING`.
    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("redis-server cannot be started ({error})"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.answers() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!(
            "redis-server on port {} did not answer PING",
            self.port
        ))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = StdTcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// SIGKILL (what `Child::kill` sends on Unix).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// While Redis is down each route follows its policy: `/api/*` with an API key fails
/// open (200); the admin and OAuth endpoints fail closed; a bearer token, whose
/// revocation lives in Redis, is refused with a 503; `/health` is 503 naming redis.
/// Never a 500, never a dropped connection; everything is back within a second of
/// Redis returning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load() {
    let mut redis = match PrivateRedis::start() {
        Ok(redis) => redis,
        Err(reason) => {
            skip(&reason);
            return;
        }
    };
    let server = Server::builder()
        .env("PALISADE_REDIS_URL", &redis.url())
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .start();
    let cli = server.cli();
    let client = cli.create_client("load", "orders:read", &["client_credentials"], &[]);
    let load = Load {
        base: server.url.clone(),
        key: rw_key(&server, "load"),
        token: server.client_credentials(&client, None).await,
        admin: cli.create_credential("ops", "admin"),
        client,
    };

    let samples = Samples::default();
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for route in [
        Route::Api,
        Route::Api,
        Route::ApiBearer,
        Route::ApiBearer,
        Route::Admin,
        Route::Token,
        Route::Health,
    ] {
        tasks.push(spawn_load(
            route,
            load.clone(),
            Arc::clone(&samples),
            Arc::clone(&stop),
            t0,
        ));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = t0.elapsed();
    redis.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.spawn().unwrap();
    let returned = t0.elapsed();
    // Keep the load on until every route answered 200 for a second in a row (10 s at
    // most).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = t0.elapsed();
        let all = samples.lock().unwrap().clone();
        let steady = ROUTES.iter().all(|route| {
            recovered_at(&all, *route, returned).is_some_and(|at| now > at + Duration::from_secs(1))
        });
        if steady || Instant::now() > deadline {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let all = samples.lock().unwrap().clone();

    eprintln!(
        "before the kill: {:?}",
        histogram(&all, Duration::ZERO, killed)
    );
    eprintln!("while down: {:?}", histogram(&all, killed, returned));
    eprintln!(
        "after its return: {:?}",
        histogram(&all, returned, Duration::MAX)
    );
    let latency = |route: Route| {
        all.iter()
            .filter(|s| s.route == route && s.start >= killed && s.end < returned)
            .map(|s| s.end - s.start)
            .max()
    };
    for route in ROUTES {
        eprintln!(
            "{route:?}: slowest answer while down {:?}; back {:?} after Redis returned",
            latency(route),
            recovered_at(&all, route, returned).map(|at| at.saturating_sub(returned))
        );
    }

    // Never a 500, nor a dropped connection.
    for sample in &all {
        assert!(
            matches!(sample.status, Some(status) if status < 500 || status == 503),
            "{sample:?}"
        );
    }
    // Before the kill, everything works.
    for sample in all.iter().filter(|s| s.end < killed) {
        assert_eq!(sample.status, Some(200), "{sample:?}");
    }
    // While it is down (requests sent and answered in that time).
    let down: Vec<&Sample> = all
        .iter()
        .filter(|s| s.start >= killed && s.end < returned)
        .collect();
    for route in ROUTES {
        // A bearer request takes about 1.6 s while Redis is down (three Redis calls that
        // each wait out the 500 ms response timeout), so one or two fit in the window.
        assert!(
            down.iter().any(|s| s.route == route),
            "{route:?}: no request sent and answered while Redis was down"
        );
    }
    for sample in &down {
        match sample.route {
            // Fail open.
            Route::Api => assert_eq!(sample.status, Some(200), "{sample:?}"),
            // Revocation cannot be checked: fail closed with a 503.
            Route::ApiBearer => {
                assert_eq!(sample.status, Some(503), "{sample:?}");
                assert!(sample.is_problem(), "{sample:?}");
            }
            // Fail closed: the limiter cannot decide, a 503 (not the caller's quota).
            Route::Admin | Route::Token => {
                assert_eq!(sample.status, Some(503), "{sample:?}");
                assert!(sample.is_problem(), "{sample:?}");
                assert!(sample.retry_after, "{sample:?}");
            }
            Route::Health => {
                assert_eq!(sample.status, Some(503), "{sample:?}");
                let body: Value = serde_json::from_str(&sample.body).unwrap();
                assert_eq!(body["checks"]["redis"], "unavailable", "{body}");
                assert_eq!(body["checks"]["database"], "ok", "{body}");
                assert!(
                    body["failing"]
                        .as_array()
                        .is_some_and(|f| f.iter().any(|c| c == "redis")),
                    "{body}"
                );
            }
        }
    }
    // Back within a second of Redis answering again, and steady from then on.
    for route in ROUTES {
        let back = recovered_at(&all, route, returned)
            .unwrap_or_else(|| panic!("{route:?} never recovered"))
            .saturating_sub(returned);
        assert!(
            back <= Duration::from_secs(1),
            "{route:?} recovered {back:?} after Redis returned"
        );
    }
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// PostgreSQL unreachable
// ---------------------------------------------------------------------------------------

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forwards both ways.
    Open,
    /// Holds every byte (a black hole: connections stay up, nothing arrives).
    Paused,
    /// Drops every connection and refuses new ones.
    Cut,
}

/// A TCP proxy in front of PostgreSQL that the test can pause or cut.
struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Open);
        let modes = mode.subscribe();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut modes = modes.clone();
                tokio::spawn(async move {
                    // A new connection waits out a pause, and is dropped when cut.
                    let Ok(mode) = modes.wait_for(|m| *m != Mode::Paused).await.map(|m| *m) else {
                        return;
                    };
                    if mode == Mode::Cut {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = pump(client_read, server_write, modes.clone()) => {}
                        () = pump(server_read, client_write, modes) => {}
                    }
                });
            }
        });
        Self { addr, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// Copies `from` to `to`, holding bytes while paused, until either side closes or the
/// proxy is cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut modes: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = modes.wait_for(|m| *m == Mode::Cut) => return,
        };
        let Ok(n) = read else { return };
        if n == 0 {
            return;
        }
        match modes.wait_for(|m| *m != Mode::Paused).await.map(|m| *m) {
            Ok(Mode::Open) => {}
            _ => return,
        }
        if to.write_all(buffer.get(..n).unwrap()).await.is_err() {
            return;
        }
    }
}

/// Health turns 503 naming the database; requests get 503 problem documents (the OAuth
/// endpoints their `temporarily_unavailable`), promptly, never a 500; both come back
/// when PostgreSQL does. Once with every connection cut, once with traffic held (a
/// black hole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_then_back() {
    let Some(url) = palisade_testkit::fresh_postgres_database("faults").await else {
        return;
    };
    let mut proxied = url::Url::parse(&url).unwrap();
    let upstream = proxied
        .socket_addrs(|| Some(5432))
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    proxied.set_ip_host(proxy.addr.ip()).unwrap();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let server = Server::builder()
        .env("PALISADE_DATABASE_URL", proxied.as_str())
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .start();
    let cli = server.cli();
    let key = rw_key(&server, "pg");
    let admin = cli.create_credential("ops", "admin");
    let client = cli.create_client("pg", "orders:read", &["client_credentials"], &[]);
    let token = server.client_credentials(&client, None).await;
    let orders = server.url("/api/orders");

    let everything = |expect_up: bool| {
        let server = &server;
        let key = &key;
        let admin = &admin;
        let client = &client;
        let token = &token;
        let orders = &orders;
        async move {
            let mut answers: Vec<(&str, Resp, Duration)> = Vec::new();
            let mut timed = |name, started: Instant, resp: Resp| {
                answers.push((name, resp, started.elapsed()));
            };
            let started = Instant::now();
            timed("health", started, server.get("/health").await);
            let started = Instant::now();
            timed(
                "list",
                started,
                server
                    .send(server.http().get(orders).header("x-api-key", &key.key))
                    .await,
            );
            let started = Instant::now();
            timed(
                "create",
                started,
                server
                    .send(
                        server
                            .http()
                            .post(orders)
                            .header("x-api-key", &key.key)
                            .json(&order_body()),
                    )
                    .await,
            );
            let started = Instant::now();
            timed(
                "bearer",
                started,
                server
                    .send(server.http().get(orders).bearer_auth(token))
                    .await,
            );
            let started = Instant::now();
            timed(
                "admin",
                started,
                server
                    .send(signed(
                        server.http(),
                        Profile::Rfc9421,
                        admin,
                        Method::GET,
                        &server.url("/admin/keys"),
                        None,
                    ))
                    .await,
            );
            let started = Instant::now();
            let issued = server
                .send(
                    server
                        .http()
                        .post(server.url("/oauth/token"))
                        .basic_auth(&client.client_id, Some(&client.client_secret))
                        .form(&[("grant_type", "client_credentials")]),
                )
                .await;
            server.remember_tokens(&issued);
            timed("token", started, issued);
            for (name, answer, took) in &answers {
                eprintln!("{name}: {} in {took:?}", answer.status);
                assert!(*took < Duration::from_secs(5), "{name} took {took:?}");
                if expect_up {
                    let expected = if *name == "create" { 201 } else { 200 };
                    assert_eq!(answer.status, expected, "{name}: {}", answer.body);
                    continue;
                }
                match *name {
                    "health" => {
                        answer.expect(503);
                        let body = answer.json();
                        assert_eq!(body["checks"]["database"], "unavailable", "{body}");
                        assert!(
                            body["failing"]
                                .as_array()
                                .is_some_and(|f| f.iter().any(|c| c == "database")),
                            "{body}"
                        );
                    }
                    "token" => {
                        answer.oauth_error(503, "temporarily_unavailable");
                        assert!(answer.header("retry-after").is_some());
                    }
                    _ => {
                        answer.problem(503);
                    }
                }
            }
        }
    };

    everything(true).await;
    for mode in [Mode::Cut, Mode::Paused] {
        eprintln!("PostgreSQL {mode:?}");
        proxy.set(mode);
        everything(false).await;
        proxy.set(Mode::Open);
        let back = Instant::now();
        let recovered = common::eventually(Duration::from_secs(10), || async {
            server.get("/health").await.status == 200
                && server
                    .send(server.http().get(&orders).header("x-api-key", &key.key))
                    .await
                    .status
                    == 200
        })
        .await;
        eprintln!("PostgreSQL back: recovered after {:?}", back.elapsed());
        assert!(recovered, "not recovered 10 s after PostgreSQL returned");
        assert!(
            back.elapsed() < Duration::from_secs(3),
            "{:?}",
            back.elapsed()
        );
        everything(true).await;
    }
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// SIGKILL in the middle of key creation
// ---------------------------------------------------------------------------------------

/// Keys created through `POST /admin/keys` by several clients at once, the server killed
/// with SIGKILL mid-way: after a restart on the same data directory (SQLite, WAL), every
/// key whose 201 reached its client is listed and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_key_creation_loses_no_acknowledged_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::builder()
        .data_dir(&data)
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .start();
    let admin = server.cli().create_credential("ops", "admin");
    let url = server.url("/admin/keys");
    let acknowledged: Arc<Mutex<Vec<ApiKey>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (admin, url, acknowledged, stop) = (
            admin.clone(),
            url.clone(),
            Arc::clone(&acknowledged),
            Arc::clone(&stop),
        );
        writers.push(tokio::spawn(async move {
            let http = common::http_client();
            let mut failures = 0;
            for n in 0.. {
                if stop.load(Ordering::Relaxed) && failures > 0 {
                    break;
                }
                let body = json!({
                    "owner": format!("writer{writer}-{n}"),
                    "scopes": ["orders:read"],
                    "plan": "enterprise"
                });
                let answer = signed(
                    &http,
                    Profile::Palisade,
                    &admin,
                    Method::POST,
                    &url,
                    Some(&body),
                )
                .send()
                .await;
                let Ok(answer) = answer else {
                    failures += 1;
                    if failures > 20 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let status = answer.status().as_u16();
                // Only a whole 201 body is an acknowledgement.
                let Ok(text) = answer.text().await else {
                    continue;
                };
                if status == 201 {
                    let created: Value = serde_json::from_str(&text).unwrap();
                    acknowledged.lock().unwrap().push(ApiKey {
                        key: created["key"].as_str().unwrap().to_owned(),
                        key_id: created["key_id"].as_str().unwrap().to_owned(),
                    });
                } else {
                    assert!(status < 500, "{status}: {text}");
                }
            }
        }));
    }
    // Let some keys through, then kill the server mid-stream.
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 40 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!("{} keys acknowledged before SIGKILL", acknowledged.len());
    assert!(acknowledged.len() >= 40, "{}", acknowledged.len());
    drop(server);

    // The same data directory, a new process.
    let server = Server::builder()
        .data_dir(&data)
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .start();
    let listed = server.cli().json(&["keys", "list"], None);
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["key_id"].as_str())
        .collect();
    eprintln!("{} keys listed after the restart", listed.len());
    for key in &acknowledged {
        assert!(
            listed.contains(&key.key_id.as_str()),
            "{} was lost",
            key.key_id
        );
    }
    let over_http = server
        .send(signed(
            server.http(),
            Profile::Palisade,
            &admin,
            Method::GET,
            &server.url("/admin/keys"),
            None,
        ))
        .await;
    over_http.expect(200);
    let over_http = over_http.json();
    for key in &acknowledged {
        assert!(
            over_http
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["key_id"] == key.key_id.as_str()),
            "{} not in GET /admin/keys",
            key.key_id
        );
        server.secret(&key.key);
        server
            .send(
                server
                    .http()
                    .get(server.url("/api/orders"))
                    .header("x-api-key", &key.key),
            )
            .await
            .expect(200);
    }
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Clock jumps
// ---------------------------------------------------------------------------------------

/// The server reads the clock once per request; the core crates take it as an argument
/// and their own tests move it (`palisade-jwt` tests/oauth.rs: access tokens at
/// T0+900+31, codes at T0+61, refresh tokens; `palisade-signing` tests/verify.rs
/// `clock_skew_is_rejected`, presigned expiry; `palisade-apikey` expiry and grace). What
/// the running server shows of it: a signature dated 5 min 30 s away from its clock is
/// refused and one 4 min 30 s away is not; an RFC 9421 `expires` in the past is
/// refused; access tokens whose `exp`, `nbf` or `iat` lie past the 30 s leeway are
/// refused and within it accepted; an API key is refused once its expiry passes, and a
/// rotated key once its grace period ends.
#[tokio::test]
async fn every_time_limit_holds_at_the_running_server() {
    let server = Server::builder()
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .start();
    let cli = server.cli();
    let orders = server.url("/api/orders");
    // Keys that expire in three seconds, or whose rotation grace ends then.
    let in_three = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let expires = in_three
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let expiring = cli.create_key(
        "clock",
        "orders:read",
        &["--plan", "enterprise", "--expires", &expires],
    );
    let rotating = cli.create_key("clock", "orders:read", &["--plan", "enterprise"]);
    let successor = cli.json(&["keys", "rotate", &rotating.key_id, "--grace", "3s"], None);
    server.secret(successor["key"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(3);
    for key in [&expiring, &rotating] {
        server
            .send(server.http().get(&orders).header("x-api-key", &key.key))
            .await
            .expect(200);
    }

    // Signatures: the client's clock (or the server's) off by 5 min 30 s, or 4 min 30 s.
    let credential = cli.create_credential("clock", "orders:read");
    for profile in [Profile::Palisade, Profile::Rfc9421] {
        for (offset, expected) in [(-330_i64, 401), (330, 401), (-270, 200), (270, 200)] {
            let when = if offset < 0 {
                SystemTime::now() - Duration::from_secs(offset.unsigned_abs())
            } else {
                SystemTime::now() + Duration::from_secs(offset.unsigned_abs())
            };
            let headers = sign_request(profile, &credential, "GET", &orders, None, b"", when);
            let answer = server
                .send(with_headers(fresh_client().get(&orders), &headers))
                .await;
            assert_eq!(
                answer.status, expected,
                "{profile:?} {offset:+} s: {}",
                answer.body
            );
            if expected == 401 {
                assert!(
                    answer.problem(401)["type"]
                        .as_str()
                        .is_some_and(|t| t.contains("skew")),
                    "{}",
                    answer.body
                );
            }
        }
    }
    // RFC 9421 `expires`: past (refused) and future (accepted), `created` two minutes ago.
    let host = server.addr.to_string();
    for (lifetime, expected) in [(60, 401), (600, 200)] {
        let mut request = palisade_signing::Request::new("GET", "/api/orders").scheme("http");
        request.push_header("host", &host);
        let headers = palisade_signing::Rfc9421Signer::new(
            &credential.access_key_id,
            palisade_signing::Rfc9421Key::HmacSha256(palisade_signing::Secret::new(
                credential.secret.as_bytes().to_vec(),
            )),
        )
        .cover("@method")
        .cover("@authority")
        .cover("@path")
        .expires_in(Duration::from_secs(lifetime))
        .nonce(uuid::Uuid::new_v4().simple().to_string())
        .sign_request(&request, SystemTime::now() - Duration::from_secs(120))
        .unwrap();
        let answer = server
            .send(with_headers(fresh_client().get(&orders), &headers))
            .await;
        assert_eq!(
            answer.status, expected,
            "expires in {lifetime} s: {}",
            answer.body
        );
    }

    // Access tokens, re-signed with the server's own key with their time claims moved.
    let client = cli.create_client("clock", "orders:read", &["client_credentials"], &[]);
    let genuine = server.client_credentials(&client, None).await;
    let mut segments = genuine.split('.');
    let header_b64 = segments.next().unwrap();
    let claims_b64 = segments.next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header_b64)
            .unwrap(),
    )
    .unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims_b64)
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap();
    let pem =
        std::fs::read_to_string(server.data_dir().join("keys").join(format!("{kid}.pem"))).unwrap();
    let key = palisade_jwt::SigningKey::from_pkcs8_pem(kid, palisade_jwt::Algorithm::ES256, &pem)
        .unwrap();
    let now = unix_now();
    for (claim, value, expected) in [
        ("exp", now - 40, 401),
        ("exp", now - 15, 200),
        ("nbf", now + 40, 401),
        ("nbf", now + 15, 200),
        ("iat", now + 40, 401),
        ("iat", now + 15, 200),
    ] {
        let mut moved = claims.clone();
        moved[claim] = json!(value);
        if claim == "iat" {
            moved["nbf"] = json!(now - 60);
        }
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!("{header_b64}.{}", engine.encode(moved.to_string()));
        let signature = engine.encode(key.sign(input.as_bytes()).unwrap());
        let token = format!("{input}.{signature}");
        server.secret(&token);
        let answer = server
            .send(fresh_client().get(&orders).bearer_auth(&token))
            .await;
        assert_eq!(
            answer.status,
            expected,
            "{claim} = now{:+}: {}",
            value - now,
            answer.body
        );
    }

    // The expiring and the rotated key, once their time has passed.
    tokio::time::sleep(
        deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1200),
    )
    .await;
    for (name, key) in [("expired", &expiring), ("past its grace", &rotating)] {
        let answer = server
            .send(fresh_client().get(&orders).header("x-api-key", &key.key))
            .await;
        assert_eq!(answer.status, 401, "a key {name}: {}", answer.body);
    }
    server.assert_no_secret_leaks();
}
