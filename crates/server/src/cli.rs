//! The management commands: they work on the same data directory or database as the
//! server, without a running server. Output is text, or JSON with `--json`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use palisade_jwt::{ClientRegistration, GrantType};
use serde_json::json;

use crate::admin::{self, KeySpec, KeyView, NewKeyView, RotateError};
use crate::config::Config;
use crate::credentials::Users;
use crate::sign;
use crate::state::State;

/// `palisade keys ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create an API key; the raw key is shown this once.
    Create(KeyCreateArgs),
    /// List keys (never a raw key or a hash).
    List {
        /// Only this owner's keys.
        #[arg(long, value_name = "ID")]
        owner: Option<String>,
    },
    /// Revoke a key (effective on every running server within a second).
    Revoke {
        /// The key id.
        key_id: String,
    },
    /// Rotate a key: a successor now, the old key working through the grace period.
    Rotate {
        /// The key id.
        key_id: String,
        /// How long the old key keeps working (`30s`, `15m`, `24h`, `7d`).
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        grace: String,
    },
}

/// Options of `palisade keys create`.
#[derive(Debug, Args)]
pub(crate) struct KeyCreateArgs {
    /// Whose data the key reaches.
    #[arg(long, value_name = "ID")]
    owner: String,
    /// Comma-separated scopes, e.g. `orders:read,orders:write`.
    #[arg(long, value_name = "SCOPES", value_delimiter = ',', required = true)]
    scopes: Vec<String>,
    /// Plan: free, pro or enterprise.
    #[arg(long, value_name = "PLAN")]
    plan: Option<String>,
    /// Requests per minute for this key.
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Expiry (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    expires: Option<String>,
    /// A network the key may be used from (repeatable).
    #[arg(long = "allowed-ip", value_name = "CIDR")]
    allowed_ips: Vec<String>,
}

/// `palisade clients ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ClientsCommand {
    /// Register an OAuth client; the secret is shown this once.
    Create(ClientCreateArgs),
}

/// Options of `palisade clients create`.
#[derive(Debug, Args)]
pub(crate) struct ClientCreateArgs {
    /// A display name.
    #[arg(long)]
    name: String,
    /// Comma-separated scopes the client may ask for.
    #[arg(long, value_delimiter = ',', required = true)]
    scopes: Vec<String>,
    /// Grant types (repeatable or comma-separated): client_credentials,
    /// authorization_code, device_code. `refresh_token` comes with the last two.
    #[arg(long = "grant", value_delimiter = ',', required = true)]
    grants: Vec<String>,
    /// A redirect URI, matched exactly (repeatable; required for authorization_code).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
}

/// `palisade users ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Create a user (or set its password), the password read from standard input.
    Create {
        /// The username.
        user: String,
        /// Read the password from standard input (one trailing newline is dropped).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// `palisade credentials ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CredentialsCommand {
    /// Create a request-signing credential; the secret is shown this once. With
    /// `--public-key`, no secret: RFC 9421 signatures made with the private key.
    Create {
        /// Whose data the credential reaches.
        #[arg(long, value_name = "ID")]
        owner: String,
        /// Comma-separated scopes.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// A PEM public key (`-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout`
        /// writes it), Ed25519 or P-256: the credential then verifies RFC 9421
        /// `ed25519` or `ecdsa-p256-sha256` signatures, and the server holds no secret.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// List credentials (never a secret).
    List {
        /// Only this owner's credentials.
        #[arg(long, value_name = "ID")]
        owner: Option<String>,
    },
    /// Revoke a credential.
    Revoke {
        /// The access key id.
        access_key_id: String,
    },
}

/// `palisade certs ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Write a development CA, server and client certificates, and a CRL.
    Dev {
        /// Where to write them.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `palisade config ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Show the effective configuration, secrets redacted.
    Print,
}

/// `println!` that ignores a closed pipe (`palisade keys create | head -1`) instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
}

fn print_json(value: &serde_json::Value) {
    out!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// `keys ...`.
pub(crate) fn keys(config: Config, command: KeysCommand, json: bool) -> Result<(), String> {
    runtime()?.block_on(async move {
        let state = State::open(config).await?;
        match command {
            KeysCommand::Create(args) => {
                let spec = KeySpec {
                    owner: args.owner,
                    scopes: args.scopes,
                    plan: args.plan,
                    rate_limit: args.rate_limit,
                    expires: args.expires,
                    allowed_ips: args.allowed_ips,
                };
                if spec.owner.is_empty() || spec.owner.len() > 128 {
                    return Err("--owner: 1 to 128 characters".into());
                }
                let created = admin::create(&state.keys, &spec).await?;
                let view = NewKeyView::from(&created);
                if json {
                    print_json(&serde_json::to_value(&view).unwrap_or_default());
                } else {
                    out!("{}", view.key);
                    out!("key_id: {}  (the key is shown only this once)", view.key_id);
                }
            }
            KeysCommand::List { owner } => {
                let records = state
                    .keys
                    .list(owner.as_deref())
                    .await
                    .map_err(|error| format!("cannot list keys: {error}"))?;
                let views: Vec<KeyView> = records.iter().map(KeyView::from).collect();
                if json {
                    print_json(&serde_json::to_value(&views).unwrap_or_default());
                } else {
                    for record in &records {
                        let status = if record.revoked_at.is_some() {
                            "revoked"
                        } else if record.rotated_to.is_some() {
                            "rotated"
                        } else {
                            "active"
                        };
                        out!(
                            "{}  owner={}  scopes={}  plan={}  {}  {}",
                            record.key_id,
                            record.owner,
                            record.scopes.join(","),
                            record.plan.name,
                            record.hint,
                            status
                        );
                    }
                }
            }
            KeysCommand::Revoke { key_id } => {
                let revoked = state
                    .keys
                    .revoke(&key_id, crate::clock::now())
                    .await
                    .map_err(|error| format!("cannot revoke {key_id}: {error}"))?;
                if !revoked {
                    return Err(format!("KEY_ID: no active key {key_id}"));
                }
                tracing::info!(event = "revocation", key_id = %key_id, "key revoked from the CLI");
                if json {
                    print_json(&json!({ "key_id": key_id, "revoked": true }));
                } else {
                    out!("revoked {key_id}");
                }
            }
            KeysCommand::Rotate { key_id, grace } => {
                let grace = admin::parse_duration(&grace)
                    .ok_or("--grace: expected a duration like 30s, 15m, 24h or 7d")?;
                let created = admin::rotate(&state.keys, &key_id, grace).await.map_err(
                    |error| match error {
                        RotateError::NotFound => format!("KEY_ID: no key {key_id}"),
                        RotateError::Conflict => {
                            format!("KEY_ID: {key_id} is revoked, expired or already rotated")
                        }
                        RotateError::Unavailable => "the database is unavailable".to_owned(),
                    },
                )?;
                let view = NewKeyView::from(&created);
                if json {
                    print_json(&serde_json::to_value(&view).unwrap_or_default());
                } else {
                    out!("{}", view.key);
                    out!(
                        "key_id: {}  (replaces {key_id}; the key is shown only this once)",
                        view.key_id
                    );
                }
            }
        }
        Ok(())
    })
}

/// `clients create`.
pub(crate) fn clients(config: Config, command: ClientsCommand, json: bool) -> Result<(), String> {
    let ClientsCommand::Create(args) = command;
    let mut grants = Vec::new();
    for name in &args.grants {
        let grant = match name.as_str() {
            "client_credentials" => GrantType::ClientCredentials,
            "authorization_code" => GrantType::AuthorizationCode,
            "device_code" | "urn:ietf:params:oauth:grant-type:device_code" => GrantType::DeviceCode,
            "refresh_token" => GrantType::RefreshToken,
            other => return Err(format!("--grant: unknown grant type {other:?}")),
        };
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    // Refresh tokens come with the grants that issue them.
    if grants
        .iter()
        .any(|g| matches!(g, GrantType::AuthorizationCode | GrantType::DeviceCode))
        && !grants.contains(&GrantType::RefreshToken)
    {
        grants.push(GrantType::RefreshToken);
    }
    for uri in &args.redirect_uris {
        let parsed = url::Url::parse(uri)
            .map_err(|_| format!("--redirect-uri {uri:?}: not an absolute URI"))?;
        if parsed.fragment().is_some() {
            return Err(format!("--redirect-uri {uri:?}: must not have a fragment"));
        }
    }
    runtime()?.block_on(async move {
        let state = State::open(config).await?;
        let registration =
            ClientRegistration::new(args.name.clone(), grants.clone(), args.scopes.clone())
                .with_redirect_uris(args.redirect_uris.clone());
        let client = state
            .oauth
            .register_client(registration, crate::clock::now())
            .await
            .map_err(|error| format!("cannot register the client: {error}"))?;
        let secret = client.client_secret.as_ref().map(|s| s.as_str().to_owned());
        if json {
            print_json(&json!({
                "client_id": client.client_id,
                "client_secret": secret,
                "name": args.name,
                "scopes": args.scopes,
                "grant_types": grants.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                "redirect_uris": args.redirect_uris,
            }));
        } else {
            out!("client_id: {}", client.client_id);
            if let Some(secret) = secret {
                out!("client_secret: {secret}  (shown only this once)");
            }
        }
        Ok(())
    })
}

/// `users create`.
pub(crate) fn users(config: Config, command: UsersCommand, json: bool) -> Result<(), String> {
    let UsersCommand::Create { user, .. } = command;
    let password = sign::read_secret_stdin()?;
    runtime()?.block_on(async move {
        let state = State::open(config).await?;
        Users::new(state.db.clone())
            .create(&user, &password)
            .await?;
        if json {
            print_json(&json!({ "user": user, "created": true }));
        } else {
            out!("user {user} saved");
        }
        Ok(())
    })
}

/// The public key of `credentials create --public-key`: a PEM file of at most 16 KiB.
fn read_public_key(path: &Path) -> Result<palisade_signing::KeyMaterial, String> {
    let shown = path.display();
    let pem = sign::read_pem_file("--public-key", path)?;
    palisade_signing::KeyMaterial::from_public_key_pem(&pem).map_err(|_| {
        format!(
            "--public-key {shown}: expected a PEM public key (-----BEGIN PUBLIC KEY-----), Ed25519 or P-256"
        )
    })
}

/// `credentials ...`.
pub(crate) fn credentials(
    config: Config,
    command: CredentialsCommand,
    json: bool,
) -> Result<(), String> {
    runtime()?.block_on(async move {
        let state = State::open(config).await?;
        match command {
            CredentialsCommand::Create { owner, .. } if owner.is_empty() || owner.len() > 128 => {
                return Err("--owner: 1 to 128 characters".into());
            }
            CredentialsCommand::Create {
                owner,
                scopes,
                public_key: Some(path),
            } => {
                let key = read_public_key(&path)?;
                let algorithm = palisade_signing::Rfc9421Algorithm::for_key(&key).name();
                let access_key_id = state
                    .credentials
                    .create_with_public_key(&owner, &scopes, &key)
                    .await
                    .map_err(|error| format!("cannot create the credential: {error}"))?;
                if json {
                    print_json(&json!({
                        "access_key_id": access_key_id,
                        "algorithm": algorithm,
                        "owner": owner,
                        "scopes": scopes,
                    }));
                } else {
                    out!("access_key_id: {access_key_id}");
                    out!("algorithm: {algorithm} (RFC 9421; sign with the private key)");
                }
            }
            CredentialsCommand::Create {
                owner,
                scopes,
                public_key: None,
            } => {
                let created = state
                    .credentials
                    .create(&owner, &scopes)
                    .await
                    .map_err(|error| format!("cannot create the credential: {error}"))?;
                if json {
                    print_json(&json!({
                        "access_key_id": created.access_key_id,
                        "secret": created.secret.as_str(),
                        "owner": owner,
                        "scopes": scopes,
                    }));
                } else {
                    out!("access_key_id: {}", created.access_key_id);
                    out!(
                        "secret: {}  (shown only this once)",
                        created.secret.as_str()
                    );
                }
            }
            CredentialsCommand::List { owner } => {
                let list = state
                    .credentials
                    .list(owner.as_deref())
                    .await
                    .map_err(|error| format!("cannot list credentials: {error}"))?;
                if json {
                    print_json(&serde_json::to_value(&list).unwrap_or_default());
                } else {
                    for credential in list {
                        out!(
                            "{}  owner={}  scopes={}  algorithm={}",
                            credential.access_key_id,
                            credential.owner,
                            credential.scopes.join(","),
                            credential.algorithm
                        );
                    }
                }
            }
            CredentialsCommand::Revoke { access_key_id } => {
                let revoked = state
                    .credentials
                    .revoke(&access_key_id)
                    .await
                    .map_err(|error| format!("cannot revoke: {error}"))?;
                if !revoked {
                    return Err(format!(
                        "ACCESS_KEY_ID: no active credential {access_key_id}"
                    ));
                }
                if json {
                    print_json(&json!({ "access_key_id": access_key_id, "revoked": true }));
                } else {
                    out!("revoked {access_key_id}");
                }
            }
        }
        Ok(())
    })
}

/// `sign`.
pub(crate) fn sign(args: &sign::SignArgs, json: bool) -> Result<(), String> {
    let key = sign::read_key(args)?;
    let headers = sign::run(args, key)?;
    if json {
        let map: serde_json::Map<String, serde_json::Value> = headers
            .into_iter()
            .map(|(name, value)| (name, serde_json::Value::String(value)))
            .collect();
        print_json(&serde_json::Value::Object(map));
    } else {
        for (name, value) in headers {
            out!("{name}: {value}");
        }
    }
    Ok(())
}

/// `certs dev`.
pub(crate) fn certs(command: CertsCommand, json: bool) -> Result<(), String> {
    let CertsCommand::Dev { out } = command;
    let now = crate::clock::now();
    let ca = palisade_mtls::DevCa::generate(now)
        .map_err(|error| format!("cannot make the CA: {error}"))?;
    let files = ca
        .write_to_dir(&out, now)
        .map_err(|error| format!("--out {}: {error}", out.display()))?;
    if json {
        print_json(&files_json(&files));
    } else {
        out!(
            "wrote a development CA and certificates to {}",
            out.display()
        );
        for (name, path) in files_json(&files).as_object().into_iter().flatten() {
            out!("  {name}: {}", path.as_str().unwrap_or_default());
        }
        out!("development only: the CA key is in the same directory");
    }
    Ok(())
}

fn files_json(files: &palisade_mtls::DevCaFiles) -> serde_json::Value {
    json!({
        "ca_cert": files.ca_cert,
        "ca_key": files.ca_key,
        "server_cert": files.server_cert,
        "server_key": files.server_key,
        "client_cert": files.client_cert,
        "client_key": files.client_key,
        "crl": files.crl,
        "client_identity": files.client_identity,
    })
}

/// `config print`.
pub(crate) fn config(config: &Config, command: ConfigCommand, json: bool) -> Result<(), String> {
    let ConfigCommand::Print = command;
    if json {
        print_json(&config.redacted_json());
    } else {
        let text = config.redacted_toml()?;
        out!("{}", text.trim_end());
    }
    Ok(())
}
