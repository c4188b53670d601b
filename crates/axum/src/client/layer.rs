use std::sync::Arc;

use tower::Layer;

use super::{ClientInfoService, TrustedProxies};

/// Resolves each request's [`ClientInfo`](super::ClientInfo) (see the module docs).
#[derive(Debug, Clone)]
pub struct ClientInfoLayer {
    proxies: Arc<TrustedProxies>,
}

impl ClientInfoLayer {
    /// Trusts `X-Forwarded-*` only from `proxies`.
    pub fn new(proxies: TrustedProxies) -> Self {
        Self {
            proxies: Arc::new(proxies),
        }
    }
}

impl<S> Layer<S> for ClientInfoLayer {
    type Service = ClientInfoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientInfoService::new(inner, Arc::clone(&self.proxies))
    }
}
