//! Runnable examples of Palisade: each uses one core crate alone, with `palisade-axum`
//! where it wires the crate into an axum service.
//!
//! | example | core crate | what it shows | run it |
//! |---|---|---|---|
//! | [`apikey_service`] | `palisade-apikey` | an in-memory key store, one key created and printed once, `GET /hello` behind `X-API-Key` and a scope check | `cargo run -p palisade-examples --bin apikey_service` |
//! | [`ratelimit_service`] | `palisade-ratelimit` | a per-minute limit per client address, the limit announced on every response, 429 with `Retry-After` | `cargo run -p palisade-examples --bin ratelimit_service` |
//! | [`webhook_receiver`] | `palisade-signing` | `POST /webhooks` verifying Standard Webhooks signatures, refusing stale timestamps, idempotent per `webhook-id` | `WEBHOOK_SECRET=whsec_... cargo run -p palisade-examples --bin webhook_receiver` |
//! | [`signing_client`] | `palisade-signing` | a reqwest client signing requests with the `palisade` profile | `PALISADE_ACCESS_KEY_ID=... PALISADE_SECRET=... cargo run -p palisade-examples --bin signing_client -- URL` |
//!
//! Each example is a thin binary in `src/bin/` over the module of the same name here, so
//! that the tests in `tests/` drive exactly the code the binaries run, over real HTTP.
//! The services take `--listen ADDR` (default `127.0.0.1:8080`; port `0` picks a free
//! one) and print the URL they serve once they are ready.

// The modules are public, unlike in the library crates: each one is an example to read.
pub mod apikey_service;
pub mod ratelimit_service;
pub mod signing_client;
pub mod webhook_receiver;

use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// The address the services listen on without `--listen`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// Reads the options `names` (each `--name VALUE` or `--name=VALUE`) from the
/// command-line arguments that follow the program name. Anything else is an error that
/// says what is accepted; a repeated option keeps its last value.
///
/// ```
/// use palisade_examples::parse_options;
///
/// let args = ["--listen", "127.0.0.1:0", "--per-minute=3"].map(String::from);
/// let options = parse_options(args, &["--listen", "--per-minute"]).unwrap();
/// assert_eq!(options["--per-minute"], "3");
/// assert!(parse_options(["--listen".to_owned()], &["--listen"]).is_err());
/// assert!(parse_options(["-x".to_owned()], &["--listen"]).is_err());
/// ```
pub fn parse_options<I>(
    args: I,
    names: &[&'static str],
) -> Result<HashMap<&'static str, String>, String>
where
    I: IntoIterator<Item = String>,
{
    let usage = || {
        let options: Vec<String> = names.iter().map(|name| format!("[{name} VALUE]")).collect();
        format!("usage: {}", options.join(" "))
    };
    let mut args = args.into_iter();
    let mut options = HashMap::new();
    while let Some(arg) = args.next() {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let Some(&name) = names.iter().find(|known| **known == name) else {
            return Err(format!("unknown argument `{arg}`; {}", usage()));
        };
        let value = match value {
            Some(value) => value,
            None => args
                .next()
                .ok_or_else(|| format!("{name} needs a value; {}", usage()))?,
        };
        options.insert(name, value);
    }
    Ok(options)
}

/// The address in the `--listen` option, [`DEFAULT_LISTEN`] without one.
///
/// ```
/// use std::collections::HashMap;
/// use palisade_examples::{DEFAULT_LISTEN, listen_address};
///
/// assert_eq!(listen_address(&HashMap::new()), Ok(DEFAULT_LISTEN));
/// let options = HashMap::from([("--listen", "127.0.0.1:0".to_owned())]);
/// assert_eq!(listen_address(&options).unwrap().port(), 0);
/// ```
pub fn listen_address(options: &HashMap<&'static str, String>) -> Result<SocketAddr, String> {
    match options.get("--listen") {
        None => Ok(DEFAULT_LISTEN),
        Some(value) => value
            .parse()
            .map_err(|_| format!("--listen: `{value}` is not an address like 127.0.0.1:8080")),
    }
}

/// Binds the `--listen` address of `args` (the arguments after the program name, which
/// may hold only the options `names`, `--listen` among them) and returns the listener,
/// the URL it serves and the other options. Errors are one line for the user.
pub async fn bind(
    args: impl IntoIterator<Item = String>,
    names: &[&'static str],
) -> Result<(TcpListener, String, HashMap<&'static str, String>), String> {
    let options = parse_options(args, names)?;
    let listen = listen_address(&options)?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| format!("cannot listen on {listen}: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("cannot read the listening address: {error}"))?;
    Ok((listener, format!("http://{address}"), options))
}

/// Serves `app` on `listener` until `shutdown` completes, with each connection's peer
/// address available to the layers (`palisade_axum::ClientInfoLayer` reads axum's
/// `ConnectInfo<SocketAddr>`).
pub async fn serve<F>(listener: TcpListener, app: Router, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Completes on Ctrl-C. If the signal cannot be watched, it never completes (the
/// process then stops only when killed) and says so in the log.
pub async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        tracing::warn!("cannot watch for Ctrl-C; stop the service by killing it");
        std::future::pending::<()>().await;
    }
}

/// Logs to standard error (standard output carries what the examples print for their
/// user); `RUST_LOG` filters, `info` by default.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (in tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
