//! The server's configuration: one TOML file, each key overridable from the environment
//! (`PALISADE_LISTEN` for a top-level key, `PALISADE_TLS__CERT` for a key in a section).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use palisade_mtls::TlsSettings;
use serde::{Deserialize, Serialize};

/// The effective configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Address the API listens on.
    #[serde(default = "default_listen")]
    pub(crate) listen: SocketAddr,
    /// Where the SQLite database and the generated signing key live.
    #[serde(default = "default_data_dir")]
    pub(crate) data_dir: PathBuf,
    /// `postgres://...` to keep state in PostgreSQL (default: SQLite in `data_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) database_url: Option<String>,
    /// `redis://...` to share limits, revocations, nonces and abuse state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) redis_url: Option<String>,
    /// What requests get while Redis is down; unset: closed for admin and auth
    /// endpoints, open elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) redis_failure: Option<RedisFailure>,
    /// Networks of proxies that terminate TLS in front of the server.
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<IpNet>,
    /// The `iss` of access tokens and the base of the OAuth metadata URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) issuer: Option<String>,
    /// The `aud` of access tokens.
    #[serde(default = "default_audience")]
    pub(crate) audience: String,
    /// Address of the Prometheus `/metrics` listener.
    #[serde(default = "default_metrics_listen")]
    pub(crate) metrics_listen: SocketAddr,
    /// `[tls]`: serve HTTPS, optionally with client certificates.
    #[serde(default, skip_serializing)]
    pub(crate) tls: Option<TlsSettings>,
    /// `[ratelimit]`.
    #[serde(default)]
    pub(crate) ratelimit: RateLimitConfig,
    /// `[webhooks]`.
    #[serde(default)]
    pub(crate) webhooks: WebhookConfig,
    /// `[abuse]`.
    #[serde(default)]
    pub(crate) abuse: AbuseSettings,
    /// `[dev]`: development-only switches.
    #[serde(default)]
    pub(crate) dev: DevConfig,
}

/// Redis failure policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RedisFailure {
    /// Allow requests while the limiter cannot answer.
    Open,
    /// Refuse them (503) while the limiter cannot answer.
    Closed,
}

/// `[ratelimit]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitConfig {
    /// Requests per minute for each unauthenticated client address.
    #[serde(default = "default_anonymous_per_minute")]
    pub(crate) anonymous_per_minute: u64,
    /// Plan of credentials that do not name one (`free`, `pro`, `enterprise`).
    #[serde(default = "default_plan")]
    pub(crate) default_plan: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            anonymous_per_minute: default_anonymous_per_minute(),
            default_plan: default_plan(),
        }
    }
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookConfig {
    /// Ports webhook URLs may name (default: 443 only).
    #[serde(default = "default_webhook_ports")]
    pub(crate) ports: Vec<u16>,
    /// Networks that webhook URLs may resolve to although they are not public (for a
    /// receiver inside your own network). Empty by default: public addresses only.
    #[serde(default)]
    pub(crate) allow_networks: Vec<IpNet>,
    /// Extra PEM CA certificates trusted when delivering (besides the system roots).
    #[serde(default)]
    pub(crate) ca: Vec<PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            ports: default_webhook_ports(),
            allow_networks: Vec::new(),
            ca: Vec::new(),
        }
    }
}

fn default_webhook_ports() -> Vec<u16> {
    vec![443]
}

/// `[abuse]`: the behaviour rules (the brute-force lockout always applies).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AbuseSettings {
    /// Apply the behaviour rules (error rate, response volume, authentication share,
    /// riding the limit, user-agent and network rotation).
    #[serde(default = "default_true")]
    pub(crate) rules: bool,
    /// Response bytes per identity in the 10-minute window before it is throttled.
    #[serde(default = "default_max_response_bytes")]
    pub(crate) max_response_bytes: u64,
    /// With Redis: how often (milliseconds) this instance writes the behaviour it has
    /// summed to Redis, in one pipeline for every identity, and how long it reuses the
    /// flags and lockouts it read there. Other instances see this one's traffic, flags
    /// and lockouts that much later (this one sees its own at once). 0 writes every
    /// request as it happens and reads flags and lockouts on every request.
    #[serde(default = "default_redis_flush_ms")]
    pub(crate) redis_flush_ms: u64,
}

impl Default for AbuseSettings {
    fn default() -> Self {
        Self {
            rules: true,
            max_response_bytes: default_max_response_bytes(),
            redis_flush_ms: default_redis_flush_ms(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_max_response_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_redis_flush_ms() -> u64 {
    250
}

/// `[dev]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DevConfig {
    /// Accept HTTP Basic (users made by `palisade users create`) on `/api/*`. Development
    /// only: refused unless the server is on loopback or TLS.
    #[serde(default)]
    pub(crate) basic_auth: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("palisade-data")
}

fn default_audience() -> String {
    "palisade-api".to_owned()
}

fn default_anonymous_per_minute() -> u64 {
    60
}

fn default_plan() -> String {
    "free".to_owned()
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
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|error| describe_error(&error))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err("database_url: expected a postgres:// URL".to_owned());
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err("redis_url: expected a redis:// or rediss:// URL".to_owned());
        }
        if parse_plan(&self.ratelimit.default_plan).is_none() {
            return Err(
                "ratelimit.default_plan: expected \"free\", \"pro\" or \"enterprise\"".to_owned(),
            );
        }
        if self.ratelimit.anonymous_per_minute == 0 {
            return Err("ratelimit.anonymous_per_minute: must be at least 1".to_owned());
        }
        if let Some(issuer) = &self.issuer
            && url::Url::parse(issuer).is_err()
        {
            return Err("issuer: expected an absolute URL".to_owned());
        }
        Ok(())
    }

    /// The issuer: configured, else the URL the server listens on.
    pub(crate) fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.clone(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", self.listen)
            }
        }
    }

    /// The configuration as TOML with secrets (URL passwords) redacted.
    pub(crate) fn redacted_toml(&self) -> Result<String, String> {
        let mut copy = self.clone();
        copy.database_url = copy.database_url.as_deref().map(redact_url);
        copy.redis_url = copy.redis_url.as_deref().map(redact_url);
        let issuer = copy.issuer();
        // `RedactedConfig` carries the effective issuer; the flattened copy must not add
        // a second `issuer` key (duplicate keys are invalid TOML).
        copy.issuer = None;
        toml::to_string(&RedactedConfig {
            issuer,
            tls: copy.tls.as_ref().map(TlsView::of),
            config: copy,
        })
        .map_err(|error| format!("cannot render the configuration: {error}"))
    }

    /// The redacted configuration as JSON.
    pub(crate) fn redacted_json(&self) -> serde_json::Value {
        let mut copy = self.clone();
        copy.database_url = copy.database_url.as_deref().map(redact_url);
        copy.redis_url = copy.redis_url.as_deref().map(redact_url);
        let issuer = copy.issuer();
        let mut value = serde_json::to_value(&copy).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("issuer".into(), serde_json::Value::String(issuer));
            if let Some(tls) = &self.tls {
                object.insert(
                    "tls".into(),
                    serde_json::to_value(TlsView::of(tls)).unwrap_or_default(),
                );
            }
        }
        value
    }
}

#[derive(Serialize)]
struct RedactedConfig {
    issuer: String,
    #[serde(flatten)]
    config: Config,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<TlsView>,
}

/// What `config print` shows of `[tls]` (file names only).
#[derive(Serialize)]
struct TlsView {
    cert: PathBuf,
    key: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<ClientView>,
}

#[derive(Serialize)]
struct ClientView {
    ca: PathBuf,
    crl: Vec<PathBuf>,
    mode: String,
    identities: Vec<IdentityView>,
}

#[derive(Serialize)]
struct IdentityView {
    id: String,
    scopes: Vec<String>,
}

impl TlsView {
    fn of(settings: &TlsSettings) -> Self {
        Self {
            cert: settings.cert.clone(),
            key: settings.key.clone(),
            client: settings.client.as_ref().map(|client| ClientView {
                ca: client.ca.clone(),
                crl: client.crl.clone(),
                mode: format!("{:?}", client.mode).to_ascii_lowercase(),
                identities: client
                    .identities
                    .iter()
                    .map(|rule| IdentityView {
                        id: rule.id.clone(),
                        scopes: rule.scopes.clone(),
                    })
                    .collect(),
            }),
        }
    }
}

/// `free`, `pro` or `enterprise`.
pub(crate) fn parse_plan(name: &str) -> Option<palisade_ratelimit::Plan> {
    use palisade_ratelimit::Plan;
    [Plan::Free, Plan::Pro, Plan::Enterprise]
        .into_iter()
        .find(|plan| plan.name() == name)
}

/// `postgres://user:secret@host/db` becomes `postgres://user:***@host/db`.
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot have credentials, which this one has.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "***".to_owned(),
    }
}

/// serde's message on one line, after the path of the key it is about (`listen`,
/// `ratelimit.default_plan`): a type error's message alone does not name the key.
fn describe_error(error: &serde_path_to_error::Error<toml::de::Error>) -> String {
    let message = error.inner().message().replace('\n', " ");
    match error.path().to_string() {
        path if path.is_empty() || path == "." => format!("configuration: {message}"),
        path => format!("configuration: {path}: {message}"),
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
    #![allow(clippy::unwrap_used)]
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
        assert_eq!(config.metrics_listen, default_metrics_listen());
        assert_eq!(config.issuer(), "http://127.0.0.1:8080");
    }

    #[test]
    fn unknown_keys_are_named() {
        let table: toml::Table = "lisen = \"x\"".parse().unwrap();
        let error = Config::deserialize(toml::Value::Table(table)).unwrap_err();
        assert!(error.message().contains("lisen"), "{}", error.message());
    }

    #[test]
    fn tls_sections_parse() {
        let table: toml::Table = r#"
            [tls]
            cert = "server.pem"
            key = "server.key"
            [tls.client]
            ca = "ca.pem"
            crl = ["crl.pem"]
            mode = "optional"
            [[tls.client.identities]]
            id = "spiffe://example.org/svc-a"
            scopes = ["orders:read"]
        "#
        .parse()
        .unwrap();
        let config = Config::deserialize(toml::Value::Table(table)).unwrap();
        let tls = config.tls.unwrap();
        let client = tls.client.unwrap();
        assert_eq!(client.identities.len(), 1);
        assert_eq!(client.crl, vec![PathBuf::from("crl.pem")]);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.internal/palisade"),
            "postgres://app:***@db.internal/palisade"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        let config = Config {
            database_url: Some("postgres://app:hunter2@db/x".into()),
            ..Config::deserialize(toml::Value::Table(toml::Table::new())).unwrap()
        };
        let printed = config.redacted_toml().unwrap();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("database_url"), "{printed}");
        assert!(!config.redacted_json().to_string().contains("hunter2"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut config = Config::deserialize(toml::Value::Table(toml::Table::new())).unwrap();
        config.ratelimit.default_plan = "gold".into();
        assert!(
            config
                .check()
                .unwrap_err()
                .starts_with("ratelimit.default_plan")
        );
        config.ratelimit.default_plan = "free".into();
        config.database_url = Some("mysql://x".into());
        assert!(config.check().unwrap_err().starts_with("database_url"));
    }
}
