//! `cargo xtask check-deps` run against a scratch workspace: it passes while the core
//! crates are web-free and fails, naming the crate and the path, once one of them pulls
//! in `axum` (here a local stand-in crate of that name, so the test needs no network).

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command;

const CORE: [&str; 8] = [
    "apikey",
    "jwt",
    "signing",
    "ratelimit",
    "validate",
    "abuse",
    "headers",
    "mtls",
];

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn package(dir: &Path, name: &str, dependencies: &str, features: &str) {
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[features]\n{features}\n\n[dependencies]\n{dependencies}\n"
        ),
    );
    write(&dir.join("src/lib.rs"), "");
}

/// A workspace with the eight core crates; `apikey_deps`/`apikey_features` go into
/// palisade-apikey's manifest.
fn scratch_workspace(apikey_deps: &str, apikey_features: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    write(
        &root.path().join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"crates/*\", \"shim\", \"axum\"]\n",
    );
    for name in CORE {
        let (deps, features) = if name == "apikey" {
            (apikey_deps, apikey_features)
        } else {
            ("", "")
        };
        package(
            &root.path().join("crates").join(name),
            &format!("palisade-{name}"),
            deps,
            features,
        );
    }
    package(&root.path().join("axum"), "axum", "", "");
    package(
        &root.path().join("shim"),
        "shim",
        "axum = { path = \"../axum\" }",
        "",
    );
    root
}

fn check_deps(root: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["check-deps", "--workspace"])
        .arg(root)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn web_free_core_crates_pass() {
    let root = scratch_workspace("", "");
    let (ok, stderr) = check_deps(root.path());
    assert!(ok, "check-deps failed on a clean workspace: {stderr}");
}

#[test]
fn a_default_feature_pulling_in_axum_through_another_crate_fails() {
    let root = scratch_workspace(
        "shim = { path = \"../../shim\", optional = true }",
        "default = [\"http\"]\nhttp = [\"dep:shim\"]",
    );
    let (ok, stderr) = check_deps(root.path());
    assert!(
        !ok,
        "check-deps passed although palisade-apikey pulls in axum"
    );
    assert!(
        stderr.contains("palisade-apikey -> shim -> axum"),
        "the message must name the crate and the path, got: {stderr}"
    );
}

#[test]
fn a_dev_dependency_on_axum_is_allowed() {
    let root = scratch_workspace("", "");
    let manifest = root.path().join("crates/apikey/Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap()
        + "\n[dev-dependencies]\naxum = { path = \"../../axum\" }\n";
    fs::write(&manifest, text).unwrap();
    let (ok, stderr) = check_deps(root.path());
    assert!(ok, "a dev-dependency must not count: {stderr}");
}
