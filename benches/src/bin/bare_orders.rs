//! `bare_orders`: the reference server's `GET /api/orders` without Palisade, the baseline
//! of `cargo xtask bench e2e`.
//!
//! It does the work the reference server's handler does, and nothing of the security
//! stack: it parses `limit` and `cursor` from the query, reads the caller's orders from
//! SQLite with the same query on the same schema (`seq, id, owner, body, created_at`,
//! indexed by `(owner, seq)`), parses each stored body into the same typed `Order`, and
//! answers `{"orders":[...],"next_cursor":...}` through axum's `Json`. The caller is fixed
//! (`--owner`) since nothing authenticates; the cursor is the position in plain base64
//! (no HMAC). The HTTP stack is the server's: hyper-util's auto (HTTP/1.1 and HTTP/2)
//! connection builder with `TCP_NODELAY`, on a multi-threaded tokio runtime, and with
//! `--tls-cert`/`--tls-key` a rustls (aws-lc-rs) acceptor offering TLS 1.3 and 1.2.
//!
//! The rows come from `--seed FILE`, a page exactly as the reference server returned it
//! for the benchmark's caller: each order is stored as the server stores it
//! (`serde_json::to_string` of the typed order), in the same order, in a fresh database
//! at `--database PATH`. So both services read the same rows and answer the same bytes,
//! which `cargo xtask bench e2e` checks before it measures.
//!
//! ```text
//! bare_orders --listen 127.0.0.1:0 --database bare.db --seed page.json --owner bench
//!             [--tls-cert server.pem --tls-key server.key]
//! ```
//!
//! When ready it prints one line, `bare_orders is serving http://ADDR` (or `https://`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Page size bounds, as in the reference server.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// One line of an order (the reference server's `OrderItem`).
#[derive(Debug, Deserialize, Serialize)]
struct OrderItem {
    product_id: String,
    quantity: u32,
}

/// A shipping address (the reference server's `Address`).
#[derive(Debug, Deserialize, Serialize)]
struct Address {
    street: String,
    city: String,
    country: String,
    postal_code: String,
}

/// An order, with the reference server's field order and optional fields.
#[derive(Debug, Deserialize, Serialize)]
struct Order {
    id: String,
    status: String,
    items: Vec<OrderItem>,
    shipping_address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<HashMap<String, String>>,
    created_at: String,
}

/// A page of orders.
#[derive(Debug, Deserialize, Serialize)]
struct OrderPage {
    orders: Vec<Order>,
    next_cursor: Option<String>,
}

/// What the handler shares.
struct App {
    db: SqlitePool,
    owner: String,
}

/// The command line.
struct Options {
    listen: SocketAddr,
    database: PathBuf,
    seed: PathBuf,
    owner: String,
    tls: Option<(PathBuf, PathBuf)>,
}

const USAGE: &str = "usage: bare_orders --listen ADDR --database PATH --seed FILE --owner ID [--tls-cert PEM --tls-key PEM]";

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut listen = None;
    let mut database = None;
    let mut seed = None;
    let mut owner = None;
    let mut cert = None;
    let mut key = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?
            .clone();
        match flag.as_str() {
            "--listen" => {
                listen = Some(
                    value
                        .parse::<SocketAddr>()
                        .map_err(|error| format!("--listen {value}: {error}"))?,
                );
            }
            "--database" => database = Some(PathBuf::from(value)),
            "--seed" => seed = Some(PathBuf::from(value)),
            "--owner" => owner = Some(value),
            "--tls-cert" => cert = Some(PathBuf::from(value)),
            "--tls-key" => key = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Options {
        listen: listen.ok_or(USAGE)?,
        database: database.ok_or(USAGE)?,
        seed: seed.ok_or(USAGE)?,
        owner: owner.ok_or(USAGE)?,
        tls,
    })
}

#[allow(
    clippy::print_stderr,
    reason = "a benchmark tool reports its start-up failure on stderr"
)]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_options(&args).and_then(|options| {
        tokio::runtime::Runtime::new()
            .map_err(|error| format!("cannot start the runtime: {error}"))?
            .block_on(serve(options))
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bare_orders: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[allow(
    clippy::print_stdout,
    reason = "the ready line on stdout is how `cargo xtask bench e2e` learns the address"
)]
async fn serve(options: Options) -> Result<(), String> {
    let acceptor = match &options.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let db = open_database(&options.database).await?;
    seed(&db, &options.seed, &options.owner).await?;
    let app = Arc::new(App {
        db,
        owner: options.owner,
    });
    let router = Router::new()
        .route("/api/orders", get(list))
        .with_state(app);

    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|error| format!("cannot bind {}: {error}", options.listen))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("listen: {error}"))?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!("bare_orders is serving {scheme}://{address}");

    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    loop {
        let (tcp, _peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            }
        });
    }
}

/// The caller's orders, oldest first: the reference server's handler minus the
/// principal and the cursor's MAC.
async fn list(
    State(app): State<Arc<App>>,
    uri: Uri,
) -> Result<Json<OrderPage>, (StatusCode, &'static str)> {
    let (limit, cursor) = page_params(uri.query().unwrap_or(""))
        .ok_or((StatusCode::UNPROCESSABLE_ENTITY, "bad limit or cursor"))?;
    let after = match cursor {
        None => 0,
        Some(cursor) => open_cursor(&cursor).ok_or((StatusCode::BAD_REQUEST, "bad cursor"))?,
    };
    let unavailable = |_| (StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, id, body FROM server_orders WHERE owner = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(app.owner.as_str())
    .bind(after)
    .bind(limit + 1)
    .fetch_all(&app.db)
    .await
    .map_err(unavailable)?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    let mut orders = Vec::with_capacity(rows.len());
    let mut last_seq = None;
    for (seq, _id, body) in rows.into_iter().take(usize::try_from(limit).unwrap_or(0)) {
        let order: Order = serde_json::from_str(&body)
            .map_err(|_| (StatusCode::SERVICE_UNAVAILABLE, "unreadable order"))?;
        orders.push(order);
        last_seq = Some(seq);
    }
    let next_cursor = match (more, last_seq) {
        (true, Some(seq)) => Some(URL_SAFE_NO_PAD.encode(seq.to_be_bytes())),
        _ => None,
    };
    Ok(Json(OrderPage {
        orders,
        next_cursor,
    }))
}

/// `limit` (1 to 100, default 20) and `cursor`, each at most once.
fn page_params(query: &str) -> Option<(i64, Option<String>)> {
    let mut limit = None;
    let mut cursor = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "limit" => &mut limit,
            "cursor" => &mut cursor,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return None;
        }
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))?,
    };
    Some((limit, cursor))
}

fn open_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

/// A fresh database with the reference server's `server_orders` table, opened the way
/// the server opens its own (WAL, synchronous FULL, a pool of 8).
async fn open_database(path: &Path) -> Result<SqlitePool, String> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(|error| format!("--database: {error}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|error| format!("--database: {error}"))?;
    for statement in [
        "CREATE TABLE server_orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, owner TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE INDEX server_orders_owner ON server_orders (owner, seq)",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .map_err(|error| format!("creating the schema: {error}"))?;
    }
    Ok(pool)
}

/// Stores the orders of `seed` (a page as the reference server returned it) for `owner`,
/// each body serialized as the server serializes it.
async fn seed(db: &SqlitePool, seed: &Path, owner: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(seed)
        .map_err(|error| format!("--seed {}: {error}", seed.display()))?;
    let page: OrderPage = serde_json::from_str(&text)
        .map_err(|error| format!("--seed {}: not a page of orders: {error}", seed.display()))?;
    for order in &page.orders {
        let body = serde_json::to_string(order).map_err(|error| format!("seed: {error}"))?;
        sqlx::query(
            "INSERT INTO server_orders (id, owner, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(order.id.as_str())
        .bind(owner)
        .bind(body)
        .bind(0_i64)
        .execute(db)
        .await
        .map_err(|error| format!("seed: {error}"))?;
    }
    Ok(())
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| format!("--tls-cert {}: {error}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|error| format!("--tls-key {}: {error}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| format!("TLS versions: {error}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| format!("TLS: {error}"))?;
    // As the reference server: HTTP/2 and HTTP/1.1 offered.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn page_parameters_match_the_server_bounds() {
        assert_eq!(page_params(""), Some((20, None)));
        assert_eq!(page_params("limit=100&x=1"), Some((100, None)));
        assert_eq!(page_params("cursor=abc"), Some((20, Some("abc".into()))));
        assert_eq!(page_params("limit=101"), None);
        assert_eq!(page_params("limit=0"), None);
        assert_eq!(page_params("limit=1&limit=2"), None);
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = URL_SAFE_NO_PAD.encode(42_i64.to_be_bytes());
        assert_eq!(open_cursor(&cursor), Some(42));
        assert_eq!(open_cursor("not base64!"), None);
        assert_eq!(open_cursor("AAAA"), None);
    }

    #[test]
    fn orders_serialize_in_the_server_field_order() {
        let json = r#"{"id":"ord_1","status":"created","items":[{"product_id":"prod_a","quantity":2}],"shipping_address":{"street":"s","city":"c","country":"DE","postal_code":"10115"},"notes":"n","created_at":"2026-01-01T00:00:00Z"}"#;
        let order: Order = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&order).unwrap(), json);
    }
}
