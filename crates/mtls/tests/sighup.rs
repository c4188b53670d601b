//! Reload on SIGHUP (its own test binary: the signal goes to the whole process).
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::Pki;
use palisade_mtls::ClientAuthMode;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::test]
async fn sighup_reloads() {
    let pki = Pki::new();
    let config = pki.load(ClientAuthMode::Required);
    // Registering a listener here first guarantees SIGHUP no longer terminates the
    // process, whenever the reload task gets to install its own.
    let mut ours = signal(SignalKind::hangup()).expect("listen");
    let now = pki.now;
    let task = tokio::spawn(config.clone().reload_on_hangup(move || now));
    tokio::task::yield_now().await;

    for _ in 0..100 {
        let status = std::process::Command::new("kill")
            .arg("-HUP")
            .arg(std::process::id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let _ = tokio::time::timeout(Duration::from_secs(5), ours.recv()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if config.generation() > 0 {
            break;
        }
    }
    task.abort();
    assert!(config.generation() >= 1);
}
