use std::sync::Arc;

use tower::Layer;

use super::{AuthenticateService, Verifier};

/// Default bound on a body read for signature verification: 1 MiB.
pub(super) const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Runs the configured [`Verifier`]s on each request (see the module docs).
#[derive(Clone)]
pub struct AuthenticateLayer {
    pub(super) verifiers: Arc<[Arc<dyn Verifier>]>,
    pub(super) body_limit: usize,
}

impl std::fmt::Debug for AuthenticateLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.verifiers.iter().map(|v| v.kind()).collect();
        f.debug_struct("AuthenticateLayer")
            .field("verifiers", &kinds)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl AuthenticateLayer {
    /// A layer with no verifier yet (every request is anonymous).
    pub fn new() -> Self {
        Self {
            verifiers: Arc::from(Vec::new()),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Adds a verifier.
    #[must_use]
    pub fn verifier(self, verifier: impl Verifier) -> Self {
        let mut verifiers: Vec<Arc<dyn Verifier>> = self.verifiers.iter().cloned().collect();
        verifiers.push(Arc::new(verifier));
        Self {
            verifiers: Arc::from(verifiers),
            body_limit: self.body_limit,
        }
    }

    /// The largest body read for a signature check (413 beyond it).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

impl Default for AuthenticateLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = AuthenticateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthenticateService {
            inner,
            verifiers: Arc::clone(&self.verifiers),
            body_limit: self.body_limit,
        }
    }
}
