//! A small harness for the TLS, backend and signing integration tests: runs the real
//! `palisade` binary (CLI commands and `serve`) with a clean environment, and builds
//! HTTP clients bound to a random loopback source address.
//!
//! Every test uses its own source address in 127.0.0.0/8, so that per-address state the
//! server keeps (anonymous rate limits, failed-authentication counters) never leaks
//! between tests, nor between test runs sharing one Redis.

// Each test binary uses a different subset of the helpers; a panic here is a failing test.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

/// How long a server may take to announce that it is serving.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `palisade` binary built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

/// A random loopback address other than 127.0.0.1 to connect from.
pub fn loopback_source() -> IpAddr {
    let mut rng = rand::rng();
    IpAddr::V4(Ipv4Addr::new(
        127,
        rng.random_range(1..=254),
        rng.random_range(0..=255),
        rng.random_range(1..=254),
    ))
}

/// How to run `palisade`: configuration file, data directory and environment.
#[derive(Debug, Clone)]
pub struct Palisade {
    data_dir: PathBuf,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Palisade {
    /// Commands on this data directory, no configuration file.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            config: None,
            env: Vec::new(),
        }
    }

    /// Adds `--config FILE`.
    #[must_use]
    pub fn config(mut self, file: impl Into<PathBuf>) -> Self {
        self.config = Some(file.into());
        self
    }

    /// Sets an environment variable for every command.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// A command with the global options and a clean `PALISADE_*` environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(binary());
        for (name, _) in std::env::vars() {
            if name.starts_with("PALISADE_") {
                command.env_remove(name);
            }
        }
        command.env("NO_COLOR", "1");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command.arg("--data-dir").arg(&self.data_dir);
        command
    }

    /// Runs `palisade --json ARGS...` and parses its output; panics when it fails.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        self.json_stdin(args, None)
    }

    /// [`Palisade::json`] with `stdin` written to standard input.
    pub fn json_stdin(&self, args: &[&str], stdin: Option<&str>) -> serde_json::Value {
        let output = self.run(args, stdin, true);
        assert!(
            output.status.success(),
            "palisade {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "palisade {args:?} printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs `palisade [--json] ARGS...` and returns its output, whatever the status.
    pub fn run(&self, args: &[&str], stdin: Option<&str>, json: bool) -> std::process::Output {
        let mut command = self.command();
        if json {
            command.arg("--json");
        }
        command
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// `keys create --owner OWNER --scopes SCOPES [extra...]`: the raw key and its id.
    pub fn create_key(&self, owner: &str, scopes: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["keys", "create", "--owner", owner, "--scopes", scopes];
        args.extend_from_slice(extra);
        let created = self.json(&args);
        (
            created["key"].as_str().unwrap().to_owned(),
            created["key_id"].as_str().unwrap().to_owned(),
        )
    }

    /// `clients create` for the client-credentials grant: client id and secret.
    pub fn create_client(&self, scopes: &str) -> (String, String) {
        let created = self.json(&[
            "clients",
            "create",
            "--name",
            "integration-test",
            "--scopes",
            scopes,
            "--grant",
            "client_credentials",
        ]);
        (
            created["client_id"].as_str().unwrap().to_owned(),
            created["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// `credentials create`: access key id and secret.
    pub fn create_credential(&self, owner: &str, scopes: &str) -> (String, String) {
        let created = self.json(&[
            "credentials",
            "create",
            "--owner",
            owner,
            "--scopes",
            scopes,
        ]);
        (
            created["access_key_id"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// `credentials create --public-key FILE`, with `pem` written beside the data
    /// directory: the command's output, or its failure.
    pub fn create_public_key_credential(
        &self,
        owner: &str,
        scopes: &str,
        pem: &str,
    ) -> std::process::Output {
        let path = self
            .data_dir
            .with_extension(format!("{}.pem", rand::rng().random::<u32>()));
        std::fs::write(&path, pem).unwrap();
        let args = [
            "credentials",
            "create",
            "--owner",
            owner,
            "--scopes",
            scopes,
            "--public-key",
            path.to_str().unwrap(),
        ];
        self.run(&args, None, true)
    }

    /// [`Palisade::create_public_key_credential`], which must succeed: its JSON output.
    pub fn public_key_credential(&self, owner: &str, scopes: &str, pem: &str) -> serde_json::Value {
        let output = self.create_public_key_credential(owner, scopes, pem);
        assert!(
            output.status.success(),
            "credentials create --public-key failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Starts `palisade serve` on a free loopback port with JSON logs and a free metrics
    /// port, and waits for the `palisade is serving` line.
    pub fn serve(&self) -> Server {
        let mut command = self.command();
        command
            .env("PALISADE_METRICS_LISTEN", "127.0.0.1:0")
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (ready, announced) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stdout_logs = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let announced = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .filter(|value| value["fields"]["message"] == "palisade is serving");
                // Logged before announced, so that the line is there once serve() returns.
                stdout_logs.lock().unwrap().push(line);
                if let Some(value) = announced {
                    let _ = ready.send(value["fields"].clone());
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let stderr_logs = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            if !text.is_empty() {
                stderr_logs.lock().unwrap().push(format!("stderr: {text}"));
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            metrics: String::new(),
            logs,
        };
        match announced.recv_timeout(START_TIMEOUT) {
            Ok(fields) => {
                server.url = fields["url"].as_str().unwrap().to_owned();
                server.metrics = fields["metrics"].as_str().unwrap_or_default().to_owned();
                server
            }
            Err(_) => {
                // Let the stderr reader finish if the process exited.
                std::thread::sleep(Duration::from_millis(200));
                panic!("the server did not start:\n{}", server.logs());
            }
        }
    }
}

/// A running `palisade serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http(s)://127.0.0.1:PORT` as the server announced it.
    pub url: String,
    /// The metrics URL it announced.
    pub metrics: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The `host:port` of the URL.
    pub fn authority(&self) -> &str {
        self.url.split_once("://").unwrap().1
    }

    /// Waits up to `timeout` for a JSON log line whose fields match `predicate`.
    pub fn wait_for_log(
        &self,
        timeout: Duration,
        predicate: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let found = self.logs.lock().unwrap().iter().find_map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                predicate(&value["fields"]).then(|| value["fields"].clone())
            });
            if found.is_some() || std::time::Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- server log ({}) ---\n{}", self.url, self.logs());
        }
    }
}

/// A plain-HTTP client connecting from `source`.
pub fn http_client(source: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The body of a valid `POST /api/orders`.
pub fn order_body() -> serde_json::Value {
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

/// RFC 9421 B.1.4 (`test-key-ed25519`) and B.1.3 (`test-key-ecc-p256`): the public keys
/// as PEM files for `credentials create --public-key`, the private keys to sign with.
pub const ED25519_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
";
pub const ED25519_SEED: &str = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU";
pub const P256_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----
";
pub const P256_SCALAR: &str = "UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs";

/// RFC 9421 headers for a request to `url`, signed now with `key` as `keyid`, covering
/// what the server's policy asks for.
pub fn rfc9421_headers(
    keyid: &str,
    key: palisade_signing::Rfc9421Key,
    method: &str,
    url: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    rfc9421_headers_with(keyid, key, method, url, body, true)
}

/// [`rfc9421_headers`], with or without the `alg` parameter.
pub fn rfc9421_headers_with(
    keyid: &str,
    key: palisade_signing::Rfc9421Key,
    method: &str,
    url: &str,
    body: &[u8],
    include_alg: bool,
) -> Vec<(String, String)> {
    use palisade_signing::{Request, Rfc9421Signer, content_digest};
    let parsed = reqwest::Url::parse(url).unwrap();
    let target = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let host = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap());
    let mut headers = vec![];
    if !body.is_empty() {
        headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        headers.push(("Content-Digest".to_owned(), content_digest(body)));
    }
    let mut request = Request::new(method, &target).scheme("http").body(body);
    request.push_header("host", &host);
    for (name, value) in &headers {
        request.push_header(name, value);
    }
    let mut signer = Rfc9421Signer::new(keyid, key)
        .include_alg(include_alg)
        .cover("@method")
        .cover("@authority")
        .cover("@path");
    if parsed.query().is_some() {
        signer = signer.cover("@query");
    }
    if !body.is_empty() {
        signer = signer.cover("content-digest");
    }
    let added = signer
        .sign_request(&request, std::time::SystemTime::now())
        .unwrap();
    headers.extend(added);
    headers
}
