//! `palisade serve`: the HTTP server.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::routing::get;
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::config::Config;

/// Options of `palisade serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) fn run(mut config: Config, args: ServeArgs) -> Result<(), String> {
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    init_logging(args.log_format);
    if !config.listen.ip().is_loopback() && config.trusted_proxies.is_empty() {
        return Err(format!(
            "listen: refusing plain HTTP on non-loopback address {}; configure [tls] or trusted_proxies",
            config.listen
        ));
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|error| {
        format!(
            "data_dir: cannot create {}: {error}",
            config.data_dir.display()
        )
    })?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?;
    runtime.block_on(serve(config))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| format!("listen: cannot bind {}: {error}", config.listen))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("listen: {error}"))?;
    tracing::info!(url = %format!("http://{address}"), data_dir = %config.data_dir.display(), "palisade is serving");
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|error| format!("server error: {error}"))
}

fn router() -> Router {
    Router::new().route("/health", get(health))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Resolves on SIGINT or SIGTERM: the server then stops accepting and drains.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
