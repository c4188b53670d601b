//! Helpers shared by the example tests: an app on a free port, and an example binary
//! run as a child process.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// How long a binary may take to print what a test waits for.
const STARTUP: Duration = Duration::from_secs(60);

/// Serves `app` on a free port of 127.0.0.1 (as the binaries do) and returns its URL.
pub async fn start(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(palisade_examples::serve(
        listener,
        app,
        std::future::pending(),
    ));
    url
}

/// The JSON body of a response.
pub async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}

/// An example binary running as a child process; killed when dropped.
pub struct Running {
    child: Child,
    /// The first lines it printed on standard output.
    pub lines: Vec<String>,
}

impl Running {
    /// Starts `exe` with `args` and `envs`, and waits until it has printed `lines` lines.
    pub fn start(exe: &str, args: &[&str], envs: &[(&str, &str)], lines: usize) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        // A thread reads, so that the wait below can time out.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Self {
            child,
            lines: Vec::new(),
        };
        while running.lines.len() < lines {
            match receiver.recv_timeout(STARTUP) {
                Ok(line) => running.lines.push(line),
                Err(_) => panic!(
                    "{exe} printed {:?} and then nothing for {STARTUP:?} (or exited)",
                    running.lines
                ),
            }
        }
        running
    }

    /// The first word after `prefix` in the printed lines.
    pub fn after(&self, prefix: &str) -> String {
        self.lines
            .iter()
            .find_map(|line| line.split_once(prefix))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no `{prefix}` in {:?}", self.lines))
            .to_owned()
    }

    /// The URL after `listening on `.
    pub fn url(&self) -> String {
        self.after("listening on ")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only this child, which the test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
