//! [`Palisade`]: every layer of this crate, stacked in the architecture's order by one
//! builder.

use palisade_headers::SecurityHeaders;
use tower::Layer;
use tower::layer::util::Identity;

use crate::authenticate::{AuthenticateLayer, AuthenticateService, Verifier};
use crate::client::{ClientInfoLayer, ClientInfoService, TrustedProxies};
use crate::rate_limit::RateLimitLayer;
use crate::request_id::{RequestIdLayer, RequestIdService};
use crate::security_headers::{SecurityHeadersLayer, SecurityHeadersService};

/// Builds the whole request path in one go, outermost first:
///
/// ```text
/// RequestIdLayer -> SecurityHeadersLayer -> ClientInfoLayer -> [AuthLockoutLayer]
///   -> AuthenticateLayer (the verifiers given) -> [RateLimitLayer] -> [AbuseLayer] -> routes
/// ```
///
/// The bracketed layers are there only when configured ([`Palisade::rate_limit`],
/// `Palisade::abuse`, the latter with the `abuse` feature). Scope checks stay per route
/// ([`RequireScopeLayer`](crate::RequireScopeLayer) with `route_layer`) and bodies are
/// validated by the [`ValidatedJson`](crate::ValidatedJson) extractor. Defaults: no
/// trusted proxy, [`SecurityHeaders::default`], no verifier (every request anonymous),
/// the [`AuthenticateLayer`] body limit of 1 MiB.
///
/// [`Palisade::layer`] returns a [`PalisadeLayer`] for `Router::layer` (or any tower
/// stack). Applied with `Router::layer`, it runs after routing, so that the abuse layer
/// records the matched route rather than the raw path.
///
/// ```
/// use std::net::SocketAddr;
///
/// use axum::{Router, routing::get};
/// use http::request::Parts;
/// use palisade_axum::{
///     AuthFailure, AuthMethod, Connection, FnVerifier, Palisade, Principal, RateLimitLayer,
///     RequireScopeLayer, TrustedProxies,
/// };
/// use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Any Verifier: ApiKeyVerifier, BearerVerifier, SignatureVerifier, ... with their features.
/// let demo_key = FnVerifier::new(
///     "api_key",
///     |parts: &Parts| parts.headers.contains_key("x-api-key"),
///     |_request| Ok::<_, AuthFailure>(Principal::new("key_1", "alice", AuthMethod::ApiKey, ["orders:read"])),
/// );
/// let limiter = RateLimiter::new(MemoryStore::new(), Policy::per_minute(60).unwrap());
/// let palisade = Palisade::new()
///     .trusted_proxies(TrustedProxies::parse(["10.0.0.0/8"]).unwrap())
///     .verifier(demo_key)
///     .rate_limit(RateLimitLayer::new(limiter));
///
/// let app = Router::new()
///     .route("/api/orders", get(|principal: Principal| async move { principal.owner().to_owned() }))
///     .route_layer(RequireScopeLayer::new(["orders:read"]))
///     .layer(palisade.layer());
///
/// let request = |key: Option<&str>| {
///     let mut builder = http::Request::get("/api/orders");
///     if let Some(key) = key {
///         builder = builder.header("x-api-key", key);
///     }
///     let mut request = builder.body(axum::body::Body::empty()).unwrap();
///     // The server's accept loop inserts this per connection.
///     request.extensions_mut().insert(Connection { peer: SocketAddr::from(([192, 0, 2, 1], 5000)), tls: true });
///     request
/// };
///
/// let anonymous = app.clone().oneshot(request(None)).await.unwrap();
/// assert_eq!(anonymous.status(), 401);
/// assert!(anonymous.headers().contains_key("x-request-id"));
/// assert!(anonymous.headers().contains_key("x-ratelimit-remaining"));
/// assert!(anonymous.headers().contains_key("strict-transport-security"));
///
/// let authenticated = app.oneshot(request(Some("anything"))).await.unwrap();
/// assert_eq!(authenticated.status(), 200);
/// assert_eq!(authenticated.headers()["cache-control"], "no-store");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Palisade<R = Identity, A = Identity, L = Identity> {
    proxies: TrustedProxies,
    security_headers: SecurityHeaders,
    authenticate: AuthenticateLayer,
    rate_limit: R,
    abuse: A,
    lockout: L,
}

impl Palisade {
    /// No proxy trusted, the default security headers, no verifier, no rate limit, no
    /// abuse monitor.
    pub fn new() -> Self {
        Self {
            proxies: TrustedProxies::none(),
            security_headers: SecurityHeaders::default(),
            authenticate: AuthenticateLayer::new(),
            rate_limit: Identity::new(),
            abuse: Identity::new(),
            lockout: Identity::new(),
        }
    }
}

impl Default for Palisade {
    fn default() -> Self {
        Self::new()
    }
}

impl<R, A, L> Palisade<R, A, L> {
    /// Believes `X-Forwarded-For`/`X-Forwarded-Proto` from these proxies only.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// The security-header policy.
    #[must_use]
    pub fn security_headers(mut self, policy: SecurityHeaders) -> Self {
        self.security_headers = policy;
        self
    }

    /// Adds an authentication method.
    #[must_use]
    pub fn verifier(mut self, verifier: impl Verifier) -> Self {
        self.authenticate = self.authenticate.verifier(verifier);
        self
    }

    /// The largest body read for a signature check (413 beyond it).
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.authenticate = self.authenticate.body_limit(bytes);
        self
    }

    /// Limits requests per principal, else per client address, after authentication.
    pub fn rate_limit<S>(self, layer: RateLimitLayer<S>) -> Palisade<RateLimitLayer<S>, A, L> {
        Palisade {
            proxies: self.proxies,
            security_headers: self.security_headers,
            authenticate: self.authenticate,
            rate_limit: layer,
            abuse: self.abuse,
            lockout: self.lockout,
        }
    }

    /// Adds the abuse monitor: its [`AuthLockoutLayer`](crate::AuthLockoutLayer) before
    /// authentication and the [`AbuseLayer`](crate::AbuseLayer) after the rate limit.
    #[cfg(feature = "abuse")]
    pub fn abuse<S>(
        self,
        layer: crate::AbuseLayer<S>,
    ) -> Palisade<R, crate::AbuseLayer<S>, crate::AuthLockoutLayer<S>> {
        Palisade {
            proxies: self.proxies,
            security_headers: self.security_headers,
            authenticate: self.authenticate,
            rate_limit: self.rate_limit,
            lockout: layer.lockout_layer(),
            abuse: layer,
        }
    }

    /// The stack, as one [`Layer`].
    pub fn layer(self) -> PalisadeLayer<R, A, L> {
        PalisadeLayer {
            request_id: RequestIdLayer::new(),
            security_headers: SecurityHeadersLayer::new(self.security_headers),
            client_info: ClientInfoLayer::new(self.proxies),
            lockout: self.lockout,
            authenticate: self.authenticate,
            rate_limit: self.rate_limit,
            abuse: self.abuse,
        }
    }
}

/// The layer [`Palisade::layer`] builds.
#[derive(Debug, Clone)]
pub struct PalisadeLayer<R, A, L> {
    request_id: RequestIdLayer,
    security_headers: SecurityHeadersLayer,
    client_info: ClientInfoLayer,
    lockout: L,
    authenticate: AuthenticateLayer,
    rate_limit: R,
    abuse: A,
}

impl<S, R, A, L> Layer<S> for PalisadeLayer<R, A, L>
where
    A: Layer<S>,
    R: Layer<A::Service>,
    L: Layer<AuthenticateService<R::Service>>,
{
    type Service = RequestIdService<SecurityHeadersService<ClientInfoService<L::Service>>>;

    fn layer(&self, inner: S) -> Self::Service {
        let inner = self.abuse.layer(inner);
        let inner = self.rate_limit.layer(inner);
        let inner = self.authenticate.layer(inner);
        let inner = self.lockout.layer(inner);
        let inner = self.client_info.layer(inner);
        let inner = self.security_headers.layer(inner);
        self.request_id.layer(inner)
    }
}
