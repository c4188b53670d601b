//! Starts the real `palisade` binary on a free loopback port and talks HTTP to it.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with every inherited `PALISADE_*` variable removed: the server reads them
/// as configuration (and refuses unknown ones), so the test's environment must not leak in.
fn palisade() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PALISADE_") {
            command.env_remove(&name);
        }
    }
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `palisade serve` and waits for the line announcing its URL.
fn start(data_dir: &std::path::Path) -> (Server, String) {
    let port = free_port();
    let mut child = palisade()
        .args(["--data-dir"])
        .arg(data_dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        // Never the default 9464: a developer's running server or a parallel test has it.
        .env("PALISADE_METRICS_LISTEN", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains("palisade is serving") {
            return (server, format!("http://127.0.0.1:{port}"));
        }
        assert!(Instant::now() < deadline, "server did not start");
    }
    panic!("server exited before it was ready");
}

#[tokio::test]
async fn health_answers_ok_on_embedded_defaults() {
    let data = tempfile::tempdir().unwrap();
    let (_server, url) = start(data.path());
    let response = reqwest::get(format!("{url}/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(data.path().is_dir());
}

#[test]
fn plain_http_on_a_public_address_is_refused_with_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let output = palisade()
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen:"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_bad_configuration_key_stops_start_up_naming_the_key() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("palisade.toml");
    std::fs::write(&config, "lissten = \"127.0.0.1:1\"\n").unwrap();
    let output = palisade()
        .arg("--config")
        .arg(&config)
        .args(["serve"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("lissten"), "{stderr}");
}
