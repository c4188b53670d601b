use std::sync::Arc;

use palisade_ratelimit::RateLimiter;
use tower::Layer;

use super::RateLimitService;

/// Limits requests per principal or client address (see the module docs).
#[derive(Debug)]
pub struct RateLimitLayer<S> {
    limiter: Arc<RateLimiter<S>>,
}

impl<S> Clone for RateLimitLayer<S> {
    fn clone(&self) -> Self {
        Self {
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<S> RateLimitLayer<S> {
    /// Limits with `limiter`.
    pub fn new(limiter: RateLimiter<S>) -> Self {
        Self::shared(Arc::new(limiter))
    }

    /// Limits with a limiter shared with other parts of the server (which may change
    /// per-key overrides at run time).
    pub fn shared(limiter: Arc<RateLimiter<S>>) -> Self {
        Self { limiter }
    }
}

impl<S, I> Layer<I> for RateLimitLayer<S> {
    type Service = RateLimitService<S, I>;

    fn layer(&self, inner: I) -> Self::Service {
        RateLimitService {
            inner,
            limiter: Arc::clone(&self.limiter),
        }
    }
}
