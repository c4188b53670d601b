use std::sync::Arc;

use palisade_headers::SecurityHeaders;
use tower::Layer;

use super::SecurityHeadersService;

/// Adds the policy's security headers to every response (see the module docs).
#[derive(Debug, Clone)]
pub struct SecurityHeadersLayer {
    policy: Arc<SecurityHeaders>,
}

impl SecurityHeadersLayer {
    /// Applies `policy` (usually `SecurityHeaders::default()`).
    pub fn new(policy: SecurityHeaders) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeadersService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeadersService {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}
