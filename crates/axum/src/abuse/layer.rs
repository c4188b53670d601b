use std::sync::Arc;

use palisade_abuse::AbuseMonitor;
use tower::Layer;

use super::{AbuseService, AuthLockoutService};

/// Throttles and blocks abusive identities and records what each request did (see the
/// module docs). Place it inside [`AuthenticateLayer`](crate::AuthenticateLayer).
#[derive(Debug)]
pub struct AbuseLayer<S> {
    pub(super) monitor: Arc<AbuseMonitor<S>>,
    pub(super) background: bool,
    pub(super) auth_endpoints: Arc<[String]>,
}

impl<S> Clone for AbuseLayer<S> {
    fn clone(&self) -> Self {
        Self {
            monitor: Arc::clone(&self.monitor),
            background: self.background,
            auth_endpoints: Arc::clone(&self.auth_endpoints),
        }
    }
}

impl<S> AbuseLayer<S> {
    /// Decides and records with `monitor` (shared with the administration endpoints that
    /// list and clear flags).
    pub fn new(monitor: Arc<AbuseMonitor<S>>) -> Self {
        Self {
            monitor,
            background: true,
            auth_endpoints: Arc::from(Vec::new()),
        }
    }

    /// Whether request events are recorded on a spawned tokio task (default: yes, when
    /// a tokio runtime is running). Off, the response waits for the record; tests use
    /// this to observe the monitor deterministically.
    #[must_use]
    pub fn record_in_background(mut self, background: bool) -> Self {
        self.background = background;
        self
    }

    /// Path prefixes of authentication endpoints (`/oauth/`, say), whose share of an
    /// identity's traffic the monitor watches. None by default: a client that only
    /// fetches tokens would otherwise look like an attacker.
    #[must_use]
    pub fn auth_endpoints<I, P>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.auth_endpoints = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// The matching lockout check to place outside `AuthenticateLayer`.
    pub fn lockout_layer(&self) -> AuthLockoutLayer<S> {
        AuthLockoutLayer::new(Arc::clone(&self.monitor))
    }
}

impl<S, I> Layer<I> for AbuseLayer<S> {
    type Service = AbuseService<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        AbuseService {
            inner,
            monitor: Arc::clone(&self.monitor),
            background: self.background,
            auth_endpoints: Arc::clone(&self.auth_endpoints),
        }
    }
}

/// Refuses client addresses locked out for failed authentication, before any credential
/// is verified (see the module docs). Place it outside
/// [`AuthenticateLayer`](crate::AuthenticateLayer) and inside
/// [`ClientInfoLayer`](crate::ClientInfoLayer).
#[derive(Debug)]
pub struct AuthLockoutLayer<S> {
    pub(super) monitor: Arc<AbuseMonitor<S>>,
}

impl<S> Clone for AuthLockoutLayer<S> {
    fn clone(&self) -> Self {
        Self {
            monitor: Arc::clone(&self.monitor),
        }
    }
}

impl<S> AuthLockoutLayer<S> {
    /// Checks lockouts in `monitor`.
    pub fn new(monitor: Arc<AbuseMonitor<S>>) -> Self {
        Self { monitor }
    }
}

impl<S, I> Layer<I> for AuthLockoutLayer<S> {
    type Service = AuthLockoutService<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        AuthLockoutService {
            inner,
            monitor: Arc::clone(&self.monitor),
        }
    }
}
