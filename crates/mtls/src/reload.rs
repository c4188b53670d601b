//! The reloadable configuration holder and the accept helper.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::error::{Error, ErrorKind};
use crate::identity::{IdentityMap, PeerIdentity};
use crate::server::{Built, TlsSettings, build};

/// What identifies a version of a file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamps(files: &[PathBuf]) -> Vec<Option<FileStamp>> {
    files
        .iter()
        .map(|path| {
            std::fs::metadata(path).ok().map(|meta| FileStamp {
                modified: meta.modified().ok(),
                len: meta.len(),
            })
        })
        .collect()
}

struct Current {
    config: Arc<ServerConfig>,
    identities: Arc<IdentityMap>,
}

/// A server TLS configuration that reloads its certificates, key, CA and CRLs from disk
/// without disturbing open connections.
///
/// Connections accepted before a reload keep the configuration they were accepted with;
/// new ones get the new one. Each generation has its own session cache and ticket key, so
/// sessions established before a reload cannot be resumed after it.
pub struct ReloadableConfig {
    settings: TlsSettings,
    files: Vec<PathBuf>,
    current: RwLock<Current>,
    stamps: Mutex<Vec<Option<FileStamp>>>,
    generation: AtomicU64,
}

impl std::fmt::Debug for ReloadableConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableConfig")
            .field("settings", &self.settings)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl ReloadableConfig {
    /// Loads the settings. Call at start-up: every problem is an error naming its file.
    ///
    /// # Errors
    /// Unreadable files, invalid PEM, a key that does not match the certificate, a server
    /// certificate outside its validity at `now`, an invalid or stale CRL, an invalid
    /// identity rule.
    pub fn load(settings: TlsSettings, now: SystemTime) -> Result<Self, Error> {
        let files = settings.files();
        let stamps = stamps(&files);
        let Built { config, identities } = build(&settings, now)?;
        Ok(Self {
            settings,
            files,
            current: RwLock::new(Current {
                config,
                identities: Arc::new(identities),
            }),
            stamps: Mutex::new(stamps),
            generation: AtomicU64::new(0),
        })
    }

    /// The configuration new connections use.
    #[must_use]
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .config
            .clone()
    }

    /// The identity rules of the current configuration.
    #[must_use]
    pub fn identities(&self) -> Arc<IdentityMap> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .identities
            .clone()
    }

    /// How many successful reloads happened since [`ReloadableConfig::load`].
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The settings this configuration was loaded from.
    #[must_use]
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Reads every file again and swaps the configuration in. On error the previous
    /// configuration stays in service.
    ///
    /// # Errors
    /// As [`ReloadableConfig::load`].
    pub fn reload(&self, now: SystemTime) -> Result<(), Error> {
        let new_stamps = stamps(&self.files);
        let result = self.swap(now);
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) = new_stamps;
        result
    }

    /// Reloads if any file changed (modification time or length) since the last load or
    /// reload attempt. Returns whether a reload happened.
    ///
    /// # Errors
    /// As [`ReloadableConfig::load`], when a changed file is invalid; the previous
    /// configuration stays in service and the same change is not retried.
    pub fn reload_if_changed(&self, now: SystemTime) -> Result<bool, Error> {
        let new_stamps = stamps(&self.files);
        {
            let mut old = self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
            if *old == new_stamps {
                return Ok(false);
            }
            *old = new_stamps;
        }
        self.swap(now).map(|()| true)
    }

    fn swap(&self, now: SystemTime) -> Result<(), Error> {
        let Built { config, identities } = build(&self.settings, now)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Current {
            config,
            identities: Arc::new(identities),
        };
        let generation = self
            .generation
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        tracing::info!(generation, "TLS configuration reloaded");
        Ok(())
    }

    /// Polls the files every `interval` and reloads when one changes. Runs until the task
    /// is dropped or aborted; the caller spawns it. Errors are logged, never fatal.
    /// `clock` supplies the time checked against certificate and CRL validity.
    pub async fn watch_files<C>(self: Arc<Self>, interval: Duration, clock: C)
    where
        C: Fn() -> SystemTime + Send,
    {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = self.reload_if_changed(clock()) {
                tracing::error!(code = err.code(), error = %err, "TLS reload failed; keeping the previous configuration");
            }
        }
    }

    /// Reloads on every `SIGHUP`. Runs until the task is dropped or aborted; the caller
    /// spawns it. Reload errors are logged, never fatal.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when the signal handler cannot be installed.
    #[cfg(unix)]
    pub async fn reload_on_hangup<C>(self: Arc<Self>, clock: C) -> Result<(), Error>
    where
        C: Fn() -> SystemTime + Send,
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("cannot listen for SIGHUP: {e}"),
            )
        })?;
        while hangups.recv().await.is_some() {
            if let Err(err) = self.reload(clock()) {
                tracing::error!(code = err.code(), error = %err, "TLS reload failed; keeping the previous configuration");
            }
        }
        Ok(())
    }
}

/// Accepts TLS connections with the current configuration and returns the peer's
/// identity alongside the stream: the identity travels with the connection, never in a
/// header.
#[derive(Debug, Clone)]
pub struct MtlsAcceptor {
    config: Arc<ReloadableConfig>,
}

impl MtlsAcceptor {
    /// An acceptor over a (shared, reloadable) configuration.
    #[must_use]
    pub fn new(config: Arc<ReloadableConfig>) -> Self {
        Self { config }
    }

    /// The configuration this acceptor uses.
    #[must_use]
    pub fn config(&self) -> &Arc<ReloadableConfig> {
        &self.config
    }

    /// Runs the TLS handshake on `io` (typically a `TcpStream`) and maps the client
    /// certificate, if any, to its identity. `None` is an anonymous client (optional mode
    /// or no `[tls.client]`). Bound the handshake with a timeout at the call site.
    ///
    /// # Errors
    /// A refused handshake, classified: [`ErrorKind::CertificateRequired`],
    /// [`ErrorKind::UntrustedIssuer`], [`ErrorKind::Expired`], [`ErrorKind::Revoked`],
    /// [`ErrorKind::RevocationStatusUnknown`], [`ErrorKind::BadCertificate`],
    /// [`ErrorKind::Handshake`]; or a verified certificate with no identity
    /// ([`ErrorKind::NoIdentity`], [`ErrorKind::InvalidSpiffeId`]).
    pub async fn accept<IO>(&self, io: IO) -> Result<(TlsStream<IO>, Option<PeerIdentity>), Error>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let identities = self.config.identities();
        let acceptor = TlsAcceptor::from(self.config.current());
        let stream = acceptor
            .accept(io)
            .await
            .map_err(|e| Error::from_handshake(&e))?;
        let identity = identities.identify_chain(stream.get_ref().1.peer_certificates())?;
        Ok((stream, identity))
    }

    /// The identity of a connection accepted elsewhere (for example by `axum-server`,
    /// which exposes the rustls connection).
    ///
    /// # Errors
    /// As the identity part of [`MtlsAcceptor::accept`].
    pub fn peer_identity(
        &self,
        connection: &rustls::ServerConnection,
    ) -> Result<Option<PeerIdentity>, Error> {
        self.config
            .identities()
            .identify_chain(connection.peer_certificates())
    }
}
