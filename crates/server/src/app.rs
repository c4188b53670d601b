//! The router: every path of the contract, with the layers in the order of the design
//! (request id, security headers, client, authentication, rate limit, abuse, scopes,
//! body).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::request::Parts;
use palisade_apikey::VerifiedKey;
use palisade_axum::{
    AbuseLayer, ApiKeyVerifier, AuthFailure, AuthMethod, AuthenticateLayer, BearerVerifier,
    ClientCertVerifier, ClientInfoLayer, CredentialRequest, HttpSignatureVerifier, Principal,
    ProblemResponse, RateLimitLayer, RequestIdLayer, RequireScopeLayer, SecurityHeadersLayer,
    SignatureVerifier, TrustedProxies, Verifier, VerifyFuture,
};
use palisade_headers::{Challenge, SecurityHeaders};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::credentials::Users;
use crate::state::{Limiter, Runtime, State as Shared};
use crate::webhooks::Webhooks;
use crate::{admin, metrics, oauth, openapi, orders, problems, webhooks};

/// Largest request body anywhere (the orders schema fits well inside).
pub(crate) const BODY_LIMIT: usize = 256 * 1024;

/// What handlers share.
pub(crate) struct Context {
    pub(crate) state: Arc<Shared>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) users: Users,
    pub(crate) webhooks: Webhooks,
}

/// The handlers' state.
pub(crate) type Ctx = Arc<Context>;

/// The whole API router.
pub(crate) fn router(ctx: &Ctx) -> Result<Router, String> {
    let config = &ctx.state.config;
    let authenticate = authenticate_layer(ctx);
    let abuse = AbuseLayer::new(Arc::clone(&ctx.runtime.abuse));
    let read = RequireScopeLayer::new(["orders:read"]);
    let write = RequireScopeLayer::new(["orders:write"]);

    let api = Router::new()
        .route(
            "/api/orders",
            get(orders::list)
                .route_layer(read.clone())
                .merge(post(orders::create).route_layer(write.clone())),
        )
        .route(
            "/api/orders/{id}",
            get(orders::get)
                .route_layer(read)
                .merge(delete(orders::delete).route_layer(write.clone())),
        )
        .route("/api/webhooks", post(webhooks::register).route_layer(write))
        .method_not_allowed_fallback(method_not_allowed)
        // JSON bodies: BODY_LIMIT whatever the credential (413 past it, as for signed
        // requests). They become typed structs that refuse unknown fields, so a
        // `__proto__` key cannot pollute anything: let it reach the schema, which refuses
        // it (in `metadata`, like `$where`) with a 422 naming the field.
        .layer(axum::Extension(
            palisade_validate::Limits::default()
                .max_body_bytes(BODY_LIMIT)
                .reject_proto_keys(false),
        ))
        .layer(
            ServiceBuilder::new()
                .layer(abuse.lockout_layer())
                .layer(authenticate.clone())
                .layer(RateLimitLayer::shared(Arc::clone(&ctx.runtime.api_limiter)))
                .layer(abuse.clone()),
        );

    let admin_scope = RequireScopeLayer::new(["admin"]).with_proof_of_possession();
    let admin = Router::new()
        .route("/admin/keys", post(admin::create_key).get(admin::list_keys))
        .route("/admin/keys/{key_id}", delete(admin::revoke_key))
        .route("/admin/keys/{key_id}/rotate", post(admin::rotate_key))
        .route("/admin/abuse", get(admin::list_abuse))
        .route("/admin/abuse/{identity}", delete(admin::clear_abuse))
        .route_layer(admin_scope)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(authenticate)
                .layer(RateLimitLayer::shared(Arc::clone(
                    &ctx.runtime.auth_limiter,
                )))
                .layer(AbuseLayer::new(Arc::clone(&ctx.runtime.abuse))),
        );

    let oauth = Router::new()
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/authorize", get(oauth::authorize))
        .route(
            "/oauth/device_authorization",
            post(oauth::device_authorization),
        )
        .route("/oauth/device", post(oauth::device))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/introspect", post(oauth::introspect))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RateLimitLayer::shared(Arc::clone(
            &ctx.runtime.auth_limiter,
        )));

    let public = Router::new()
        .route("/health", get(health))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/openapi.json", get(openapi::document))
        .method_not_allowed_fallback(method_not_allowed);

    let proxies = TrustedProxies::parse(config.trusted_proxies.iter().map(ToString::to_string))
        .map_err(|error| format!("trusted_proxies: {error}"))?;
    Ok(Router::new()
        .merge(public)
        .merge(oauth)
        .merge(api)
        .merge(admin)
        .fallback(not_found)
        .with_state(Arc::clone(ctx))
        .layer(
            ServiceBuilder::new()
                .layer(RequestIdLayer::new())
                .layer(SecurityHeadersLayer::new(SecurityHeaders::default()))
                .layer(axum::middleware::from_fn_with_state(
                    ctx.runtime.metrics.clone(),
                    metrics::track,
                ))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(30),
                ))
                .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(10)))
                .layer(ClientInfoLayer::new(proxies)),
        ))
}

fn authenticate_layer(ctx: &Ctx) -> AuthenticateLayer {
    let runtime = &ctx.runtime;
    let plans = Arc::new(PlanApplier {
        limiters: vec![
            Arc::clone(&runtime.api_limiter),
            Arc::clone(&runtime.auth_limiter),
        ],
        default_plan: ctx.state.config.ratelimit.default_plan.clone(),
        applied: Mutex::new(HashSet::new()),
    });
    let with_plan = |verifier| WithPlan {
        inner: verifier,
        plans: Arc::clone(&plans),
    };
    let mut layer = AuthenticateLayer::new()
        .body_limit(BODY_LIMIT)
        .verifier(with_plan(Box::new(
            ApiKeyVerifier::new(Arc::clone(&ctx.state.keys)).plan_name(key_plan),
        )))
        .verifier(with_plan(Box::new(BearerVerifier::new(Arc::clone(
            &ctx.state.oauth,
        )))))
        .verifier(with_plan(Box::new(
            SignatureVerifier::new(Arc::clone(&runtime.signatures))
                .palisade(runtime.palisade_profile.clone()),
        )))
        .verifier(with_plan(Box::new(HttpSignatureVerifier::new(
            Arc::clone(&runtime.signatures),
            runtime.rfc9421_policy.clone(),
        ))));
    if ctx
        .state
        .config
        .tls
        .as_ref()
        .is_some_and(|tls| tls.client.is_some())
    {
        layer = layer.verifier(with_plan(Box::new(ClientCertVerifier::new())));
    }
    if ctx.state.config.dev.basic_auth {
        layer = layer.verifier(with_plan(Box::new(BasicVerifier {
            users: ctx.users.clone(),
        })));
    }
    layer
}

/// Gives each authenticated identity its plan's limits. Unauthenticated requests get
/// the limiters' default policy (`ratelimit.anonymous_per_minute` per address); an
/// identity gets its plan (`free`, `pro`, `enterprise`, or `rpm:N` for a key's own
/// per-minute limit; `ratelimit.default_plan` when it names none) on first sight.
struct PlanApplier {
    limiters: Vec<Arc<Limiter>>,
    default_plan: String,
    /// `(identity, plan)` pairs already given to the limiters.
    applied: Mutex<HashSet<(String, String)>>,
}

impl PlanApplier {
    fn apply(&self, principal: &Principal) {
        let plan = principal
            .plan()
            .filter(|plan| Shared::policy_for_plan(plan).is_some())
            .unwrap_or(&self.default_plan);
        let entry = (principal.identity().to_owned(), plan.to_owned());
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        if applied.contains(&entry) {
            return;
        }
        if let Some(policy) = Shared::policy_for_plan(plan) {
            let key = format!("principal:{}", principal.identity());
            for limiter in &self.limiters {
                let mode = limiter.default_policy().failure_mode();
                limiter.set_override(&key, policy.clone().with_failure_mode(mode));
            }
        }
        // Bounded: forget everything rather than grow without limit (re-applying the
        // same override keeps the counters).
        if applied.len() > 100_000 {
            applied.clear();
        }
        applied.insert(entry);
    }
}

/// A verifier whose successes get their plan's limits.
struct WithPlan {
    inner: Box<dyn Verifier>,
    plans: Arc<PlanApplier>,
}

impl Verifier for WithPlan {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn is_present(&self, parts: &Parts) -> bool {
        self.inner.is_present(parts)
    }

    fn needs_body(&self) -> bool {
        self.inner.needs_body()
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        Box::pin(async move {
            let principal = self.inner.verify(request).await?;
            self.plans.apply(&principal);
            Ok(principal)
        })
    }
}

/// The rate-limit plan of a key: its own per-minute limit (`rpm:N`) when it has one,
/// else its plan's name (see [`Shared::policy_for_plan`]).
fn key_plan(key: &VerifiedKey) -> String {
    match key.rate_limit_per_minute() {
        Some(n) => format!("rpm:{n}"),
        None => key.plan().name.clone(),
    }
}

/// HTTP Basic on `/api/*`, for development only (`[dev] basic_auth = true`).
struct BasicVerifier {
    users: Users,
}

impl Verifier for BasicVerifier {
    fn kind(&self) -> &'static str {
        "basic"
    }

    fn is_present(&self, parts: &Parts) -> bool {
        parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")))
    }

    fn verify<'a>(&'a self, request: &'a CredentialRequest<'a>) -> VerifyFuture<'a> {
        Box::pin(async move {
            let refused = || {
                AuthFailure::unauthorized(
                    "invalid_credentials",
                    "unknown user or wrong password",
                    Challenge::new("Basic")
                        .unwrap_or_else(|_| Challenge::bearer())
                        .realm("palisade"),
                )
            };
            let header = request.parts.headers.get(http::header::AUTHORIZATION);
            let Some((user, password)) = header
                .and_then(|v| v.to_str().ok())
                .and_then(oauth::parse_basic)
            else {
                return Err(refused());
            };
            match self.users.verify(&user, &password).await {
                Ok(true) => Ok(Principal::new(
                    user.clone(),
                    user,
                    AuthMethod::Basic,
                    ["orders:read", "orders:write"],
                )),
                Ok(false) => Err(refused()),
                Err(_) => Err(AuthFailure::with_status(
                    503,
                    "store_unavailable",
                    "the user store is unavailable",
                )),
            }
        })
    }
}

/// `GET /health`: 200 when every backend answers, else 503 naming the failing check.
#[utoipa::path(get, path = "/health", tag = "public",
    responses((status = 200, description = "`{\"status\":\"ok\", ...}`"), (status = 503, description = "a backend is down; `checks` names it")))]
pub(crate) async fn health(State(ctx): State<Ctx>) -> Response {
    let database = tokio::time::timeout(Duration::from_secs(2), ctx.state.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = match &ctx.state.redis {
        None => None,
        Some(conn) => {
            let mut conn = conn.clone();
            let ping = tokio::time::timeout(
                Duration::from_secs(1),
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await;
            Some(matches!(ping, Ok(Ok(_))))
        }
    };
    let mut checks = serde_json::Map::new();
    checks.insert(
        "database".into(),
        json!(if database { "ok" } else { "unavailable" }),
    );
    if let Some(ok) = redis {
        checks.insert("redis".into(), json!(if ok { "ok" } else { "unavailable" }));
    }
    let healthy = database && redis.unwrap_or(true);
    let failing: Vec<&String> = checks
        .iter()
        .filter(|(_, v)| *v != "ok")
        .map(|(k, _)| k)
        .collect();
    let body = json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "version": env!("CARGO_PKG_VERSION"),
        "checks": checks,
        "failing": failing,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The public keys that sign access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "public",
    responses((status = 200, description = "a JWK set: `kid`, `alg`, `use` per key")))]
pub(crate) async fn jwks(State(ctx): State<Ctx>) -> Response {
    (
        [(http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(ctx.state.oauth.jwks()),
    )
        .into_response()
}

/// RFC 8414 authorization-server metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "public",
    responses((status = 200, description = "RFC 8414 metadata")))]
pub(crate) async fn metadata(State(ctx): State<Ctx>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(ctx.state.oauth.metadata()).unwrap_or_default())
}

async fn not_found() -> ProblemResponse {
    problems::not_found()
}

async fn method_not_allowed() -> ProblemResponse {
    problems::method_not_allowed()
}
