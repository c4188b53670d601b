//! The integration tests' harness: starts the real `palisade` binary, runs its command
//! line, signs requests, and watches what the server says (responses and log lines) so
//! that a test can check that no secret leaks.
//!
//! - [`Server::start`] / [`Server::builder`]: `palisade serve --listen 127.0.0.1:0
//!   --log-format json` on a fresh data directory, with `PALISADE_METRICS_LISTEN` on a
//!   free port; the URL comes from the `palisade is serving` log event. Extra
//!   environment variables, a TOML configuration file and a custom HTTP client (TLS) can
//!   be given. The process is killed when the [`Server`] is dropped.
//! - [`Cli`] / [`cli`]: the command line on the same data directory (and configuration),
//!   with helpers that create keys, OAuth clients, users and signing credentials with
//!   `--json` and remember the secrets they print.
//! - [`sign_request`] / [`signed`]: the `palisade` and `rfc9421` request-signing profiles,
//!   through `palisade_signing`, as a client would sign.
//! - [`Server::send`]: sends a request and records the answer; [`Server::secret`] marks a
//!   value that must never appear in a log line nor in any answer but the one that issued
//!   it; [`Server::assert_no_secret_leaks`] checks both.
//!
//! Each test file includes this module with `mod common;` and uses a part of it.

#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use palisade_signing::{
    Request, Rfc9421Key, Rfc9421Signer, Secret, SigV4Profile, SigningCredential, content_digest,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `palisade` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_palisade");

/// How long a server may take to announce that it is serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Values that must not leak, each with the answer that issued it (if any).
type Secrets = Arc<Mutex<Vec<(String, Option<usize>)>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A command for the binary with every inherited `PALISADE_*` variable removed, so that
/// the test's own environment cannot change the server's configuration.
fn base_command() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PALISADE_") {
            command.env_remove(&name);
        }
    }
    command.env("NO_COLOR", "1");
    command
}

// ---------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------

/// Runs `palisade --data-dir DATA_DIR ARGS...`, feeding `stdin`; returns the exit status,
/// standard output and standard error.
pub fn cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
    Cli::new(data_dir).run(args, stdin)
}

/// The command line on one data directory (and configuration file, and environment).
#[derive(Clone)]
pub struct Cli {
    data_dir: PathBuf,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
    secrets: Secrets,
}

/// An API key made by `palisade keys create`.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// The raw key (shown once).
    pub key: String,
    /// Its id.
    pub key_id: String,
}

/// An OAuth client made by `palisade clients create`.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
}

/// A request-signing credential made by `palisade credentials create`.
#[derive(Debug, Clone)]
pub struct Credential {
    pub access_key_id: String,
    pub secret: String,
}

impl Cli {
    /// The command line on `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            config: None,
            env: Vec::new(),
            secrets: Secrets::default(),
        }
    }

    /// Also passes `--config FILE`.
    #[must_use]
    pub fn config(mut self, file: &Path) -> Self {
        self.config = Some(file.to_path_buf());
        self
    }

    /// Also sets an environment variable.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs a command; returns the exit status, standard output and standard error.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (ExitStatus, String, String) {
        let mut command = base_command();
        command.arg("--data-dir").arg(&self.data_dir);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command.args(args);
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn run_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (status, stdout, stderr) = self.run(args, stdin);
        assert!(
            status.success(),
            "palisade {args:?} failed ({status}): {stderr}"
        );
        stdout
    }

    /// Runs a command with `--json`; returns the parsed output.
    pub fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let stdout = self.run_ok(&all, stdin);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("palisade {args:?} printed no JSON ({error}): {stdout}"))
    }

    /// Remembers a value that must never leak.
    pub fn secret(&self, value: &str) {
        lock(&self.secrets).push((value.to_owned(), None));
    }

    /// `keys create --owner OWNER --scopes SCOPES EXTRA... --json`.
    pub fn create_key(&self, owner: &str, scopes: &str, extra: &[&str]) -> ApiKey {
        let mut args = vec!["keys", "create", "--owner", owner, "--scopes", scopes];
        args.extend_from_slice(extra);
        let out = self.json(&args, None);
        let key = ApiKey {
            key: out["key"].as_str().unwrap().to_owned(),
            key_id: out["key_id"].as_str().unwrap().to_owned(),
        };
        self.secret(&key.key);
        key
    }

    /// `clients create --name NAME --scopes SCOPES --grant G... --redirect-uri U... --json`.
    pub fn create_client(
        &self,
        name: &str,
        scopes: &str,
        grants: &[&str],
        redirect_uris: &[&str],
    ) -> OAuthClient {
        let mut args = vec!["clients", "create", "--name", name, "--scopes", scopes];
        for grant in grants {
            args.extend(["--grant", grant]);
        }
        for uri in redirect_uris {
            args.extend(["--redirect-uri", uri]);
        }
        let out = self.json(&args, None);
        let client = OAuthClient {
            client_id: out["client_id"].as_str().unwrap().to_owned(),
            client_secret: out["client_secret"].as_str().unwrap().to_owned(),
        };
        self.secret(&client.client_secret);
        client
    }

    /// `users create USER --password-stdin`, the password given with a trailing newline
    /// (which the command drops).
    pub fn create_user(&self, user: &str, password: &str) {
        self.secret(password);
        let out = self.json(
            &["users", "create", user, "--password-stdin"],
            Some(&format!("{password}\n")),
        );
        assert_eq!(out["user"], user, "{out}");
    }

    /// `credentials create --owner OWNER --scopes SCOPES --json`.
    pub fn create_credential(&self, owner: &str, scopes: &str) -> Credential {
        let out = self.json(
            &[
                "credentials",
                "create",
                "--owner",
                owner,
                "--scopes",
                scopes,
            ],
            None,
        );
        let credential = Credential {
            access_key_id: out["access_key_id"].as_str().unwrap().to_owned(),
            secret: out["secret"].as_str().unwrap().to_owned(),
        };
        self.secret(&credential.secret);
        credential
    }
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// Options of a server to start.
pub struct ServerBuilder {
    data_dir: Option<PathBuf>,
    config: Option<String>,
    env: Vec<(String, String)>,
    listen: String,
    client: Option<reqwest::Client>,
}

/// A running `palisade serve`, killed on drop.
pub struct Server {
    child: Child,
    /// The URL it announced (`http://127.0.0.1:PORT` or `https://...`).
    pub url: String,
    /// The metrics URL it announced (`http://127.0.0.1:PORT/metrics`).
    pub metrics_url: String,
    /// The API listener's address.
    pub addr: SocketAddr,
    data_dir: PathBuf,
    config_path: Option<PathBuf>,
    env: Vec<(String, String)>,
    _temp: Option<tempfile::TempDir>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    secrets: Secrets,
    exchanges: Mutex<Vec<String>>,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that follows no redirect (the tests look at them).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

impl ServerBuilder {
    /// Uses this data directory (kept after the server stops) instead of a fresh
    /// temporary one.
    #[must_use]
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Writes this TOML to `palisade.toml` in the data directory and passes `--config`.
    #[must_use]
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// Sets an environment variable of the server (and of [`Server::cli`]).
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `--listen ADDR` (default `127.0.0.1:0`).
    #[must_use]
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = addr.to_owned();
        self
    }

    /// The client [`Server::http`] returns (e.g. one that trusts a test CA).
    #[must_use]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Starts the server; panics if it does not come up.
    pub fn start(self) -> Server {
        self.try_start().unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts the server; `Err` holds what it printed if it exited or did not announce
    /// itself in time.
    pub fn try_start(self) -> Result<Server, String> {
        let (temp, data_dir) = match self.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().unwrap();
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        std::fs::create_dir_all(&data_dir).unwrap();
        let config_path = self.config.map(|text| {
            let path = data_dir.join("palisade.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut env = vec![(
            "PALISADE_METRICS_LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        )];
        env.extend(self.env);

        let mut command = base_command();
        command.arg("--data-dir").arg(&data_dir);
        if let Some(path) = &config_path {
            command.arg("--config").arg(path);
        }
        command.args(["serve", "--listen", &self.listen, "--log-format", "json"]);
        for (name, value) in &env {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();

        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stderr_lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<(String, String)>();
        {
            let pipe = child.stdout.take().unwrap();
            let lines = Arc::clone(&stdout_lines);
            std::thread::spawn(move || {
                let mut ready = Some(ready_tx);
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tx) = &ready
                        && let Some(found) = serving_event(&line)
                    {
                        let _ = tx.send(found);
                        ready = None;
                    }
                    lock(&lines).push(line);
                }
            });
        }
        {
            let mut pipe = child.stderr.take().unwrap();
            let lines = Arc::clone(&stderr_lines);
            std::thread::spawn(move || {
                let mut text = String::new();
                let mut buffer = [0u8; 4096];
                loop {
                    match pipe.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            text.push_str(&String::from_utf8_lossy(&buffer[..n]));
                            while let Some(at) = text.find('\n') {
                                let line: String = text.drain(..=at).collect();
                                lock(&lines).push(line.trim_end().to_owned());
                            }
                        }
                    }
                }
                if !text.is_empty() {
                    lock(&lines).push(text);
                }
            });
        }

        let (url, metrics_url) = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(found) => found,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                // Let the reader threads collect the last words.
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "palisade serve did not start ({error}); stderr: {}; stdout: {}",
                    lock(&stderr_lines).join("\n"),
                    lock(&stdout_lines).join("\n")
                ));
            }
        };
        let addr = url::Url::parse(&url)
            .ok()
            .and_then(|u| u.socket_addrs(|| None).ok())
            .and_then(|a| a.into_iter().next())
            .unwrap();
        Ok(Server {
            child,
            url,
            metrics_url,
            addr,
            data_dir,
            config_path,
            env,
            _temp: temp,
            stdout: stdout_lines,
            stderr: stderr_lines,
            secrets: Secrets::default(),
            exchanges: Mutex::new(Vec::new()),
            client: self.client.unwrap_or_else(http_client),
        })
    }
}

/// `(url, metrics)` of the `palisade is serving` event, if `line` is it.
fn serving_event(line: &str) -> Option<(String, String)> {
    let event: Value = serde_json::from_str(line).ok()?;
    let fields = &event["fields"];
    if fields["message"] != "palisade is serving" {
        return None;
    }
    Some((
        fields["url"].as_str()?.to_owned(),
        fields["metrics"].as_str()?.to_owned(),
    ))
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Its index among the server's recorded answers.
    pub id: usize,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}), status {}: {:?}",
                self.status, self.body
            )
        })
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type (the `Content-Type` without parameters).
    pub fn content_type(&self) -> &str {
        self.header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
    }

    /// Asserts the status, printing the body otherwise.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }

    /// Asserts an RFC 9457 problem document with this status; returns it.
    #[track_caller]
    pub fn problem(&self, status: u16) -> Value {
        self.expect(status);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "body: {}",
            self.body
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        assert!(body["type"].is_string(), "{body}");
        assert!(body["title"].is_string(), "{body}");
        body
    }

    /// Asserts an RFC 6749 §5.2 error with this status and code (JSON, not a problem
    /// document).
    #[track_caller]
    pub fn oauth_error(&self, status: u16, code: &str) -> Value {
        self.expect(status);
        assert_eq!(self.content_type(), "application/json", "{}", self.body);
        let body = self.json();
        assert_eq!(body["error"], code, "{body}");
        assert!(body.get("type").is_none(), "{body}");
        body
    }
}

impl Server {
    /// A server on the embedded defaults (SQLite in a fresh data directory).
    pub fn start() -> Server {
        Server::builder().start()
    }

    /// A server to configure.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            data_dir: None,
            config: None,
            env: Vec::new(),
            listen: "127.0.0.1:0".to_owned(),
            client: None,
        }
    }

    /// The server's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The configuration file, if one was given.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    /// The command line on this server's data directory, configuration and environment;
    /// the secrets it creates are remembered for [`Server::assert_no_secret_leaks`].
    pub fn cli(&self) -> Cli {
        let mut cli = Cli::new(&self.data_dir);
        if let Some(path) = &self.config_path {
            cli = cli.config(path);
        }
        for (name, value) in &self.env {
            cli = cli.env(name, value);
        }
        cli.secrets = Arc::clone(&self.secrets);
        cli
    }

    /// The HTTP client (no redirects).
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request and records the answer (headers and body) for the leak check.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        let mut recorded = String::new();
        for (name, value) in &headers {
            recorded.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        recorded.push_str(&body);
        let mut exchanges = lock(&self.exchanges);
        exchanges.push(recorded);
        Resp {
            id: exchanges.len() - 1,
            status,
            headers,
            body,
        }
    }

    /// Records an exchange made outside [`Server::send`] (raw TCP, say) for the leak
    /// check; returns its index.
    pub fn record_raw(&self, exchange: &str) -> usize {
        let mut exchanges = lock(&self.exchanges);
        exchanges.push(exchange.to_owned());
        exchanges.len() - 1
    }

    /// `GET url+path` with no credential.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(self.url(path))).await
    }

    /// Remembers a value that must never appear in a log line nor in any answer.
    pub fn secret(&self, value: &str) {
        lock(&self.secrets).push((value.to_owned(), None));
    }

    /// Remembers a value that `issued_by` carried: it must appear in no log line and in
    /// no other answer.
    pub fn secret_from(&self, value: &str, issued_by: &Resp) {
        lock(&self.secrets).push((value.to_owned(), Some(issued_by.id)));
    }

    /// Every line the server wrote so far (standard output, then standard error).
    pub fn log_lines(&self) -> Vec<String> {
        let mut lines = lock(&self.stdout).clone();
        lines.extend(lock(&self.stderr).iter().cloned());
        lines
    }

    /// The JSON log events so far.
    pub fn log_events(&self) -> Vec<Value> {
        lock(&self.stdout)
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if lock(&self.stdout).iter().any(|line| line.contains(needle)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts that no remembered secret appears in a log line, nor in an answer other
    /// than the one that issued it. Returns how many secrets were checked.
    #[track_caller]
    pub fn assert_no_secret_leaks(&self) -> usize {
        // Give the logger a moment to write the last events.
        std::thread::sleep(Duration::from_millis(50));
        let secrets = lock(&self.secrets).clone();
        let logs = self.log_lines();
        let exchanges = lock(&self.exchanges).clone();
        for (secret, origin) in &secrets {
            assert!(secret.len() >= 6, "too short to check: {secret:?}");
            if let Some(line) = logs.iter().find(|line| line.contains(secret.as_str())) {
                panic!("a secret appears in a log line: {line}");
            }
            for (id, exchange) in exchanges.iter().enumerate() {
                if Some(id) != *origin {
                    assert!(
                        !exchange.contains(secret.as_str()),
                        "a secret appears in answer #{id}: {exchange}"
                    );
                }
            }
        }
        secrets.len()
    }
}

// ---------------------------------------------------------------------------------------
// Request signing
// ---------------------------------------------------------------------------------------

/// A request-signing profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `Authorization: PALISADE-HMAC-SHA256 ...` with `X-Palisade-Date`.
    Palisade,
    /// RFC 9421 `Signature-Input`/`Signature`, `hmac-sha256`.
    Rfc9421,
}

/// The headers a signed request carries besides `Host`: `Content-Type` (when given),
/// a random `X-Test-Nonce` (signed, so that two otherwise identical requests in the same
/// second differ), `Content-Digest` for RFC 9421 with a body, and the signature headers.
///
/// `palisade`: signs `host`, `x-palisade-date`, `x-test-nonce` and `content-type`.
/// `rfc9421`: covers `@method @authority @path` (+ `@query`, + `content-digest`), with
/// `created` = `now` and a random `nonce`.
pub fn sign_request(
    profile: Profile,
    credential: &Credential,
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Vec<(String, String)> {
    let parsed = url::Url::parse(url).unwrap();
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap()),
        None => parsed.host_str().unwrap().to_owned(),
    };
    let target = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(content_type) = content_type {
        headers.push(("Content-Type".into(), content_type.into()));
    }
    headers.push(("X-Test-Nonce".into(), nonce.clone()));
    let secret = || Secret::new(credential.secret.as_bytes().to_vec());
    match profile {
        Profile::Palisade => {
            let mut request = Request::new(method, &target)
                .scheme(parsed.scheme())
                .body(body);
            request.push_header("host", &host);
            for (name, value) in &headers {
                request.push_header(name, value);
            }
            let added = palisade_signing::sign(
                &SigV4Profile::palisade(),
                &SigningCredential::new(&credential.access_key_id, secret()),
                &request,
                now,
            )
            .unwrap();
            headers.extend(added);
        }
        Profile::Rfc9421 => {
            if !body.is_empty() {
                headers.push(("Content-Digest".into(), content_digest(body)));
            }
            let mut request = Request::new(method, &target)
                .scheme(parsed.scheme())
                .body(body);
            request.push_header("host", &host);
            for (name, value) in &headers {
                request.push_header(name, value);
            }
            let mut signer =
                Rfc9421Signer::new(&credential.access_key_id, Rfc9421Key::HmacSha256(secret()))
                    .cover("@method")
                    .cover("@authority")
                    .cover("@path");
            if parsed.query().is_some() {
                signer = signer.cover("@query");
            }
            if !body.is_empty() {
                signer = signer.cover("content-digest");
            }
            let added = signer.nonce(nonce).sign_request(&request, now).unwrap();
            headers.extend(added);
        }
    }
    headers
}

/// A request signed now under `profile`, with `body` (if any) as JSON.
pub fn signed(
    client: &reqwest::Client,
    profile: Profile,
    credential: &Credential,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
) -> reqwest::RequestBuilder {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let content_type = body.map(|_| "application/json");
    let headers = sign_request(
        profile,
        credential,
        method.as_str(),
        url,
        content_type,
        &bytes,
        SystemTime::now(),
    );
    with_headers(client.request(method, url), &headers).body(bytes)
}

/// Adds `headers` to a request.
pub fn with_headers(
    mut request: reqwest::RequestBuilder,
    headers: &[(String, String)],
) -> reqwest::RequestBuilder {
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request
}

// ---------------------------------------------------------------------------------------
// OAuth and other small helpers
// ---------------------------------------------------------------------------------------

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// A PKCE verifier and its `S256` challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A minimal valid order body.
pub fn order_body() -> Value {
    serde_json::json!({
        "items": [{"product_id": "prod_abc123", "quantity": 2}],
        "shipping_address": {
            "street": "1 Main Street",
            "city": "Springfield",
            "country": "US",
            "postal_code": "12345"
        }
    })
}

impl Server {
    /// `POST /oauth/token` with `form` and `client_secret_basic`; a returned access or
    /// refresh token is remembered as a secret issued by this answer.
    pub async fn token(&self, client: &OAuthClient, form: &[(&str, &str)]) -> Resp {
        let response = self
            .send(
                self.client
                    .post(self.url("/oauth/token"))
                    .basic_auth(&client.client_id, Some(&client.client_secret))
                    .form(form),
            )
            .await;
        self.remember_tokens(&response);
        response
    }

    /// Remembers the tokens of a token answer as secrets issued by it.
    pub fn remember_tokens(&self, response: &Resp) {
        if response.status == 200
            && let Ok(body) = serde_json::from_str::<Value>(&response.body)
        {
            for name in ["access_token", "refresh_token", "device_code"] {
                if let Some(token) = body[name].as_str() {
                    self.secret_from(token, response);
                }
            }
        }
    }

    /// A `client_credentials` access token.
    pub async fn client_credentials(&self, client: &OAuthClient, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self.token(client, &form).await;
        response.expect(200);
        response.json()["access_token"].as_str().unwrap().to_owned()
    }
}

/// Polls `check` every 50 ms until it is true or `timeout` passes; returns the last answer.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
