//! The server's TOML configuration, through the real loader: `crates/server/src/config.rs`
//! is compiled into this target as it is (the server is a binary crate, so there is no
//! library to link against).
//!
//! Input: the bytes are the configuration file. Leading lines of the form
//! `#env KEY=VALUE` (TOML comments, so the file still parses without them) also become
//! `PALISADE_KEY=VALUE` environment overrides for that one load, which exercises the
//! override parser as well.
//!
//! Properties: `Config::load` never panics; a loaded configuration renders for
//! `palisade config print` (TOML and JSON), and it survives a round trip: serialized to
//! TOML and read again, it serializes to the same text.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize as _;

// Only part of the module is used here; the rest serves the server.
#[allow(dead_code)]
#[path = "../../crates/server/src/config.rs"]
mod config;

use config::Config;

/// One scratch file per process (libFuzzer runs one input at a time in a process).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("palisade-fuzz-config-{}.toml", std::process::id()))
    })
}

/// `#env KEY=VALUE` lines at the top of the input, as (PALISADE_KEY, VALUE) pairs that
/// `std::env::set_var` accepts.
fn overrides(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map_while(|line| line.strip_prefix("#env "))
        .filter_map(|line| line.split_once('='))
        .filter(|(key, value)| {
            !key.is_empty() && !key.contains(['=', '\0']) && !value.contains('\0')
        })
        .map(|(key, value)| (format!("PALISADE_{key}"), value.to_owned()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch configuration");
    let env = overrides(&String::from_utf8_lossy(data));
    for (key, value) in &env {
        // SAFETY: libFuzzer runs the target on one thread and nothing else in this
        // process reads or writes the environment concurrently.
        unsafe { std::env::set_var(key, value) };
    }
    let loaded = Config::load(Some(path), None);
    for (key, _) in &env {
        // SAFETY: as above.
        unsafe { std::env::remove_var(key) };
    }
    let Ok(config) = loaded else {
        return;
    };

    let printed = config
        .redacted_toml()
        .expect("a loaded configuration renders");
    printed
        .parse::<toml::Table>()
        .expect("`config print` output is valid TOML");
    let _ = config.redacted_json();
    let _ = config.issuer();

    let first = toml::to_string(&config).expect("a loaded configuration serializes");
    let table: toml::Table = first.parse().expect("serialized configuration parses");
    let again = Config::deserialize(toml::Value::Table(table))
        .expect("serialized configuration deserializes");
    let second = toml::to_string(&again).expect("serializes again");
    assert_eq!(first, second);
});
