//! Inputs found by the fuzz targets in `fuzz/` (see docs/SECURITY.md, "Fuzzing record"),
//! replayed byte for byte against the real binary.

// Helpers outside #[test] functions unwrap too: a panic here is a failing test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// `palisade config print` with `file` as the configuration and no `PALISADE_*`
/// overrides from the test's own environment.
fn config_print(data: &Path, file: &Path) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
    for (name, _) in std::env::vars() {
        if name.starts_with("PALISADE_") {
            command.env_remove(name);
        }
    }
    let output = command
        .arg("--data-dir")
        .arg(data)
        .arg("--config")
        .arg(file)
        .args(["config", "print"])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// fuzz/seeds/server_config/issuer_only: with `issuer` set, `config print` wrote the key
/// twice (once for the effective issuer, once from the configuration itself), which is
/// not TOML.
#[test]
fn config_print_with_an_issuer_is_valid_toml_and_loads_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("palisade.toml");
    std::fs::write(&file, b"issuer = \"https://auth.example.com\"\n").unwrap();

    let (ok, printed, stderr) = config_print(&data, &file);
    assert!(ok, "{stderr}");
    let table: toml::Table = printed
        .parse()
        .unwrap_or_else(|error| panic!("not TOML: {error}\n{printed}"));
    assert_eq!(table["issuer"].as_str(), Some("https://auth.example.com"));

    // What `config print` shows is itself a configuration that loads to the same thing.
    let again = dir.path().join("printed.toml");
    std::fs::write(&again, &printed).unwrap();
    let (ok, reprinted, stderr) = config_print(&data, &again);
    assert!(ok, "{stderr}");
    assert_eq!(reprinted, printed);
}
