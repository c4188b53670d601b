//! `palisade serve`: the listeners (HTTP or HTTPS with optional client certificates,
//! and the metrics listener), background work, and graceful shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::{Args, ValueEnum};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use palisade_axum::Connection;
use palisade_mtls::{MtlsAcceptor, ReloadableConfig};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceBuilder;
use tower_http::add_extension::AddExtensionLayer;

use crate::app::{self, Context};
use crate::clock;
use crate::config::Config;
use crate::credentials::Users;
use crate::metrics;
use crate::state::State;
use crate::webhooks::Webhooks;

/// Open connections allowed from one client address (many-connection floods).
const MAX_CONNECTIONS_PER_ADDRESS: usize = 512;
/// Time a client has to send its request headers (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
    let loopback = config.listen.ip().is_loopback();
    if !loopback && config.trusted_proxies.is_empty() && config.tls.is_none() {
        return Err(format!(
            "listen: refusing plain HTTP on non-loopback address {}; configure [tls] or trusted_proxies",
            config.listen
        ));
    }
    if config.dev.basic_auth {
        if !loopback && config.tls.is_none() {
            return Err(
                "dev.basic_auth: HTTP Basic is allowed only on loopback or over TLS".into(),
            );
        }
        tracing::warn!(
            "dev.basic_auth is on: /api/* accepts HTTP Basic passwords; development only"
        );
    }
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

async fn serve(mut config: Config) -> Result<(), String> {
    // Bind first: with port 0 the issuer (derived from `listen` when not configured)
    // and the metadata URLs must name the port actually bound.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| format!("listen: cannot bind {}: {error}", config.listen))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("listen: {error}"))?;
    config.listen = address;
    let acceptor = match &config.tls {
        None => None,
        Some(settings) => {
            let reloadable = ReloadableConfig::load(settings.clone(), clock::now())
                .map_err(|error| format!("tls: {error}"))?;
            Some(MtlsAcceptor::new(Arc::new(reloadable)))
        }
    };
    let state = Arc::new(State::open(config).await?);
    let runtime = Arc::new(state.runtime().await?);
    let webhooks = Webhooks::new(
        state.db.clone(),
        crate::state::load_master_key(&state.config)?,
        &state.config.webhooks,
    )?;
    let ctx = Arc::new(Context {
        users: Users::new(state.db.clone()),
        webhooks: webhooks.clone(),
        runtime: Arc::clone(&runtime),
        state: Arc::clone(&state),
    });
    let router = app::router(&ctx)?;

    let metrics_listener = TcpListener::bind(state.config.metrics_listen)
        .await
        .map_err(|error| {
            format!(
                "metrics_listen: cannot bind {}: {error}",
                state.config.metrics_listen
            )
        })?;
    let metrics_address = metrics_listener
        .local_addr()
        .map_err(|error| format!("metrics_listen: {error}"))?;

    let background = spawn_background(&ctx, webhooks);
    let metrics_router = Router::new()
        .route("/metrics", get(metrics::serve_metrics))
        .with_state(runtime.metrics.clone());
    let metrics_task = tokio::spawn(async move {
        let _ = axum::serve(metrics_listener, metrics_router).await;
    });

    let scheme = if acceptor.is_some() { "https" } else { "http" };
    tracing::info!(
        url = %format!("{scheme}://{address}"),
        metrics = %format!("http://{metrics_address}/metrics"),
        data_dir = %state.config.data_dir.display(),
        database = if state.config.database_url.is_some() { "postgres" } else { "sqlite" },
        redis = state.config.redis_url.is_some(),
        "palisade is serving"
    );

    accept_loop(listener, router, acceptor).await;

    tracing::info!("flushing batched writes");
    if let Err(error) = state.keys.flush().await {
        tracing::warn!(%error, "could not flush last-used times");
    }
    // The abuse sums of the last interval (batched Redis mode), before the periodic
    // flush is stopped; were that one mid-flight, this finds nothing to take and the
    // sums since it started are lost: at most one interval of one instance's counts.
    runtime.abuse.store().flush(clock::now()).await;
    for task in background {
        task.abort();
    }
    metrics_task.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Periodic work: webhook deliveries, OAuth housekeeping, key-ring rotation, and
/// flushing API-key last-used times and batched abuse observations.
fn spawn_background(ctx: &Arc<Context>, webhooks: Webhooks) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(webhooks.run_worker())];
    let state = Arc::clone(&ctx.state);
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let now = clock::now();
            let unix = u64::try_from(clock::unix(now)).unwrap_or(0);
            if let Err(error) =
                palisade_jwt::OAuthStore::purge_expired(state.oauth.store(), unix).await
            {
                tracing::warn!(%error, "could not purge expired OAuth records");
            }
            if let Err(error) = state.keyring.maintain(now) {
                tracing::warn!(%error, "could not maintain the JWT key ring");
            }
        }
    }));
    let state = Arc::clone(&ctx.state);
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Err(error) = state.keys.flush().await {
                tracing::debug!(%error, "could not flush last-used times");
            }
        }
    }));
    let runtime = Arc::clone(&ctx.runtime);
    let flush_ms = ctx.state.config.abuse.redis_flush_ms;
    if flush_ms > 0 && ctx.state.redis.is_some() {
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(flush_ms));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                runtime.abuse.store().flush(clock::now()).await;
            }
        }));
    }
    tasks
}

/// Counts open connections per client address.
#[derive(Clone, Default)]
struct ConnectionCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct ConnectionSlot {
    counts: ConnectionCounts,
    address: IpAddr,
}

impl ConnectionCounts {
    fn acquire(&self, address: IpAddr) -> Option<ConnectionSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(address).or_insert(0);
        if *count >= MAX_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            counts: self.clone(),
            address,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

fn http_builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(256);
    builder
}

async fn accept_loop(listener: TcpListener, router: Router, acceptor: Option<MtlsAcceptor>) {
    let graceful = GracefulShutdown::new();
    let counts = ConnectionCounts::default();
    let builder = http_builder();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = counts.acquire(peer.ip()) else {
                    tracing::warn!(client = %peer.ip(), "too many connections from one address; closing");
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let router = router.clone();
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                let builder = builder.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    serve_connection(tcp, peer, router, acceptor, builder, watcher).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("drain timed out; closing the remaining connections"),
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    acceptor: Option<MtlsAcceptor>,
    builder: Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    match acceptor {
        None => {
            let service = ServiceBuilder::new()
                .layer(AddExtensionLayer::new(Connection { peer, tls: false }))
                .service(router);
            let connection =
                builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
            let _ = watcher.watch(connection).await;
        }
        Some(acceptor) => {
            let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            let (stream, identity) = match accepted {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => {
                    tracing::info!(client = %peer.ip(), code = error.code(), "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(client = %peer.ip(), "TLS handshake timed out");
                    return;
                }
            };
            let service = ServiceBuilder::new()
                .layer(AddExtensionLayer::new(Connection { peer, tls: true }))
                .option_layer(identity.map(AddExtensionLayer::new))
                .service(router);
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let _ = watcher.watch(connection).await;
        }
    }
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
