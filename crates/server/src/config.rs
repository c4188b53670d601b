//! The server's configuration: one TOML file, each key overridable from the environment
//! (`PALISADE_LISTEN` for a top-level key, `PALISADE_TLS__CERT` for a key in a section).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The effective configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Address the API listens on.
    #[serde(default = "default_listen")]
    pub(crate) listen: SocketAddr,
    /// Where the SQLite database and the generated signing key live.
    #[serde(default = "default_data_dir")]
    pub(crate) data_dir: PathBuf,
    /// Networks of proxies that terminate TLS in front of the server.
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("palisade-data")
}

impl Config {
    /// Reads the file (if any), applies `PALISADE_*` overrides and the command line's
    /// `--data-dir`. Errors name the offending key.
    pub(crate) fn load(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Self, String> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
                text.parse::<toml::Table>()
                    .map_err(|error| format!("{}: {}", path.display(), error.message()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in std::env::vars() {
            let Some(key) = name.strip_prefix("PALISADE_") else {
                continue;
            };
            // Variables that configure tooling rather than the server.
            if key.starts_with("TEST_") || key == "REQUIRE_SERVICES" || key == "LOG" {
                continue;
            }
            insert_override(&mut table, key, &value);
        }
        if let Some(dir) = data_dir {
            table.insert(
                "data_dir".into(),
                toml::Value::String(dir.to_string_lossy().into_owned()),
            );
        }
        Config::deserialize(toml::Value::Table(table))
            .map_err(|error| format!("configuration: {}", error.message()))
    }
}

/// `TLS__CERT=x` becomes `[tls] cert = "x"`. Values that parse as TOML (numbers, arrays,
/// booleans) keep their type; anything else is a string.
fn insert_override(table: &mut toml::Table, key: &str, value: &str) {
    let path: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let mut current = table;
    let Some((last, sections)) = path.split_last() else {
        return;
    };
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        current = next;
    }
    current.insert(last.clone(), parsed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_reach_sections_and_keep_types() {
        let mut table = toml::Table::new();
        insert_override(&mut table, "TLS__CERT", "server.pem");
        insert_override(&mut table, "LISTEN", "127.0.0.1:9000");
        insert_override(&mut table, "TRUSTED_PROXIES", "[\"10.0.0.0/8\"]");
        assert_eq!(table["tls"]["cert"].as_str(), Some("server.pem"));
        assert_eq!(table["listen"].as_str(), Some("127.0.0.1:9000"));
        assert_eq!(table["trusted_proxies"][0].as_str(), Some("10.0.0.0/8"));
    }

    #[test]
    fn defaults_are_loopback_and_local_data() {
        let config = Config::deserialize(toml::Value::Table(toml::Table::new())).unwrap();
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.data_dir, PathBuf::from("palisade-data"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let table: toml::Table = "lisen = \"x\"".parse().unwrap();
        let error = Config::deserialize(toml::Value::Table(table)).unwrap_err();
        assert!(error.message().contains("lisen"), "{}", error.message());
    }
}
