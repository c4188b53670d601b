//! Webhooks: registration behind the SSRF guard, and delivery by a background worker
//! with retries and exponential backoff, signed per Standard Webhooks.
//!
//! A delivery re-resolves and re-checks the address right before sending and connects
//! to exactly the addresses it checked (no second DNS lookup that a rebinding attacker
//! could answer differently), never follows redirects, and gives up after
//! [`MAX_ATTEMPTS`]. Deliveries live in the database, so a restart loses none, and every
//! instance may run the worker: a delivery is claimed with a conditional update.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use palisade_axum::{Principal, ProblemResponse, ValidatedJson};
use palisade_headers::FieldError;
use palisade_signing::{MasterKey, SealedSecret, Secret, StandardWebhook};
use palisade_validate::{TokioResolver, UrlPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::app::Ctx;
use crate::clock;
use crate::config::WebhookConfig;
use crate::db::{Db, sql, sql_as};
use crate::problems;

/// Events a webhook may subscribe to.
pub(crate) const EVENTS: &[&str] = &["order.created", "order.deleted"];
/// Attempts before a delivery is marked failed.
pub(crate) const MAX_ATTEMPTS: i64 = 8;
/// Webhooks per owner.
const MAX_WEBHOOKS_PER_OWNER: i64 = 20;

fn known_events(events: &[String]) -> Result<(), ValidationError> {
    if events.iter().all(|e| EVENTS.contains(&e.as_str())) {
        Ok(())
    } else {
        Err(ValidationError::new("unknown_event")
            .with_message("events must be among order.created, order.deleted".into()))
    }
}

/// The body of `POST /api/webhooks`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterWebhook {
    /// An `https` URL that resolves only to public addresses.
    #[validate(length(min = 1, max = 2048))]
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = "^[Hh][Tt][Tt][Pp][Ss]://"
    )]
    url: String,
    /// `order.created`, `order.deleted`.
    #[validate(length(min = 1, max = 2), custom(function = known_events))]
    #[schema(schema_with = crate::openapi::fields::events)]
    events: Vec<String>,
}

/// A registered webhook; `secret` (the `whsec_` signing secret) is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegisteredWebhook {
    id: String,
    url: String,
    events: Vec<String>,
    secret: String,
}

/// Webhook registration and the delivery queue.
#[derive(Clone)]
pub(crate) struct Webhooks {
    db: Db,
    master: Arc<MasterKey>,
    policy: UrlPolicy,
    roots: Vec<reqwest::Certificate>,
    wake: Arc<Notify>,
}

impl Webhooks {
    pub(crate) fn new(db: Db, master: MasterKey, config: &WebhookConfig) -> Result<Self, String> {
        let mut policy = UrlPolicy::default().ports(config.ports.iter().copied());
        for net in &config.allow_networks {
            policy = policy.allow_network(*net);
        }
        let mut roots = Vec::new();
        for path in &config.ca {
            let pem = std::fs::read(path)
                .map_err(|error| format!("webhooks.ca: cannot read {}: {error}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| format!("webhooks.ca: {} holds no PEM certificate", path.display()))?;
            roots.extend(certs);
        }
        Ok(Self {
            db,
            master: Arc::new(master),
            policy,
            roots,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Queues `event` for every webhook of `owner` subscribed to it. Failures are logged,
    /// never turned into an error for the request that caused the event.
    pub(crate) async fn enqueue(&self, owner: &str, event: &str, data: &serde_json::Value) {
        if let Err(error) = self.try_enqueue(owner, event, data).await {
            tracing::warn!(event, %error, "could not queue a webhook delivery");
        }
        self.wake.notify_one();
    }

    async fn try_enqueue(
        &self,
        owner: &str,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<(), String> {
        let hooks: Vec<(String, String)> = sql_as!(
            &self.db,
            (String, String),
            fetch_all,
            "SELECT id, events FROM server_webhooks WHERE owner = $1",
            owner
        )
        .map_err(|e| e.to_string())?;
        let now = clock::now();
        for (webhook_id, events) in hooks {
            if !events.split(' ').any(|e| e == event) {
                continue;
            }
            let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
            let payload = serde_json::json!({
                "type": event,
                "timestamp": crate::orders::rfc3339(now),
                "data": data,
            });
            sql!(
                &self.db,
                execute,
                "INSERT INTO server_deliveries (id, webhook_id, event_type, payload, attempts, next_attempt_at, status, created_at) VALUES ($1, $2, $3, $4, 0, $5, 'pending', $5)",
                id.as_str(),
                webhook_id.as_str(),
                event,
                payload.to_string(),
                clock::unix(now)
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Runs deliveries until the process ends.
    pub(crate) async fn run_worker(self) {
        loop {
            match self.deliver_due().await {
                Ok(0) => {
                    // Wait for new work or the next retry.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "webhook worker: database unavailable");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Delivers what is due; returns how many were attempted.
    async fn deliver_due(&self) -> Result<usize, String> {
        let now = clock::unix_now();
        let due: Vec<(String, String, String, String, i64, i64)> = sql_as!(
            &self.db,
            (String, String, String, String, i64, i64),
            fetch_all,
            "SELECT id, webhook_id, event_type, payload, attempts, next_attempt_at FROM server_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 16",
            now
        )
        .map_err(|e| e.to_string())?;
        let mut attempted = 0;
        for (id, webhook_id, _event, payload, attempts, next_at) in due {
            // Claim it: push the next attempt out so no other worker takes it meanwhile.
            let claimed = sql!(
                &self.db,
                execute,
                "UPDATE server_deliveries SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 AND status = 'pending'",
                now + 120,
                id.as_str(),
                next_at
            )
            .map_err(|e| e.to_string())?;
            if claimed == 0 {
                continue;
            }
            attempted += 1;
            let outcome = self.deliver_one(&id, &webhook_id, &payload).await;
            let attempts = attempts + 1;
            match outcome {
                Ok(()) => {
                    sql!(
                        &self.db,
                        execute,
                        "UPDATE server_deliveries SET status = 'delivered', attempts = $1, last_error = NULL WHERE id = $2",
                        attempts,
                        id.as_str()
                    )
                    .map_err(|e| e.to_string())?;
                    tracing::info!(delivery = %id, webhook = %webhook_id, attempts, "webhook delivered");
                }
                Err(reason) => {
                    let (status, next) = if attempts >= MAX_ATTEMPTS {
                        ("failed", now)
                    } else {
                        ("pending", clock::unix_now() + backoff_secs(attempts))
                    };
                    sql!(
                        &self.db,
                        execute,
                        "UPDATE server_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $5",
                        status,
                        attempts,
                        next,
                        reason.as_str(),
                        id.as_str()
                    )
                    .map_err(|e| e.to_string())?;
                    tracing::warn!(delivery = %id, webhook = %webhook_id, attempts, status, %reason, "webhook delivery failed");
                }
            }
        }
        Ok(attempted)
    }

    async fn deliver_one(&self, id: &str, webhook_id: &str, payload: &str) -> Result<(), String> {
        let row: Option<(String, Vec<u8>)> = sql_as!(
            &self.db,
            (String, Vec<u8>),
            fetch_optional,
            "SELECT url, sealed_secret FROM server_webhooks WHERE id = $1",
            webhook_id
        )
        .map_err(|e| e.to_string())?;
        let Some((url, sealed)) = row else {
            return Err("the webhook was removed".into());
        };
        // Re-check now: the name may resolve elsewhere than at registration.
        let vetted = self
            .policy
            .vet(&url, &TokioResolver)
            .await
            .map_err(|error| format!("address refused at delivery: {}", error.code()))?;
        let secret = self
            .master
            .open(webhook_id, &SealedSecret::from_bytes(sealed))
            .map_err(|_| "cannot open the webhook secret".to_owned())?;
        let secret =
            String::from_utf8(secret.expose().to_vec()).map_err(|_| "bad secret".to_owned())?;
        let signer = StandardWebhook::new(&secret).map_err(|_| "bad secret".to_owned())?;
        let headers = signer
            .headers(id, clock::now(), payload.as_bytes())
            .map_err(|_| "cannot sign".to_owned())?;
        let host = vetted.host().to_owned();
        let (target, addrs) = vetted.into_parts();
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("palisade-webhooks/", env!("CARGO_PKG_VERSION")))
            .resolve_to_addrs(&host, &addrs);
        for root in &self.roots {
            client = client.add_root_certificate(root.clone());
        }
        let client = client
            .build()
            .map_err(|_| "cannot build the HTTP client".to_owned())?;
        let mut request = client
            .post(target)
            .header("content-type", "application/json")
            .body(payload.to_owned());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| format!("send failed: {}", short_reqwest_error(&error)))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("receiver answered {}", response.status().as_u16()))
        }
    }
}

fn short_reqwest_error(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// 5 s, 10 s, 20 s, ... capped at one hour, plus up to 20% jitter so that retries of
/// many deliveries do not arrive together.
fn backoff_secs(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let base = 5_i64.saturating_mul(1_i64 << exponent.min(12)).min(3600);
    base + rand::random_range(0..=base / 5)
}

/// Registers a webhook for the caller's order events.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = RegisterWebhook,
    responses(
        (status = 201, body = RegisteredWebhook, description = "the `whsec_` secret is shown this once"),
        (status = 401), (status = 403), (status = 413), (status = 415),
        (status = 422, description = "not https, or resolves to a non-public address"), (status = 429),
    ),
    security(("api_key" = ["orders:write"]), ("bearer" = ["orders:write"]), ("signature" = ["orders:write"])))]
pub(crate) async fn register(
    State(ctx): State<Ctx>,
    principal: Principal,
    ValidatedJson(body): ValidatedJson<RegisterWebhook>,
) -> Result<(StatusCode, Json<RegisteredWebhook>), ProblemResponse> {
    let hooks = &ctx.webhooks;
    let vetted = hooks
        .policy
        .vet(&body.url, &TokioResolver)
        .await
        .map_err(|error| {
            problems::validation(vec![FieldError::new(
                "url",
                error.code(),
                "the URL must be https on an allowed port and resolve only to public addresses",
            )])
        })?;
    let (count,): (i64,) = sql_as!(
        &hooks.db,
        (i64,),
        fetch_one,
        "SELECT COUNT(*) FROM server_webhooks WHERE owner = $1",
        principal.owner()
    )
    .map_err(|_| problems::unavailable())?;
    if count >= MAX_WEBHOOKS_PER_OWNER {
        return Err(ProblemResponse::coded(
            409,
            "too-many-webhooks",
            "at most 20 webhooks per owner",
        ));
    }
    let id = format!("wh_{}", uuid::Uuid::now_v7().simple());
    let secret = StandardWebhook::generate_secret();
    let sealed = hooks
        .master
        .seal(&id, &Secret::new(secret.as_bytes().to_vec()))
        .map_err(|_| problems::unavailable())?;
    let mut events = body.events.clone();
    events.sort();
    events.dedup();
    let url = vetted.url().to_string();
    sql!(
        &hooks.db,
        execute,
        "INSERT INTO server_webhooks (id, owner, url, events, sealed_secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        id.as_str(),
        principal.owner(),
        url.as_str(),
        events.join(" "),
        sealed.as_bytes().to_vec(),
        clock::unix_now()
    )
    .map_err(|_| problems::unavailable())?;
    tracing::info!(webhook = %id, owner = %principal.owner(), "webhook registered");
    Ok((
        StatusCode::CREATED,
        Json(RegisteredWebhook {
            id,
            url,
            events,
            secret,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff_secs(1);
        assert!((5..=6).contains(&first), "{first}");
        let third = backoff_secs(3);
        assert!((20..=24).contains(&third), "{third}");
        for attempts in [12, 20, 1000] {
            let late = backoff_secs(attempts);
            assert!((3600..=4320).contains(&late), "{late}");
        }
    }

    #[test]
    fn only_known_events() {
        assert!(known_events(&["order.created".into()]).is_ok());
        assert!(known_events(&["order.created".into(), "user.deleted".into()]).is_err());
    }
}
