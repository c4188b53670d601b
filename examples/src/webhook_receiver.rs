//! A webhook receiver: `palisade-signing`'s [`StandardWebhook`] verifying Standard
//! Webhooks signatures (<https://www.standardwebhooks.com>) on `POST /webhooks`.
//!
//! ```text
//! export WEBHOOK_SECRET=whsec_...      # the secret the sender gave you
//! cargo run -p palisade-examples --bin webhook_receiver [-- --listen 127.0.0.1:8080]
//! ```
//!
//! A delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. To send
//! one by hand:
//!
//! ```text
//! id=msg_1; ts=$(date +%s); body='{"type":"ping"}'
//! key=$(printf %s "${WEBHOOK_SECRET#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
//! sig=$(printf '%s.%s.%s' "$id" "$ts" "$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
//! curl -i http://127.0.0.1:8080/webhooks -H "webhook-id: $id" -H "webhook-timestamp: $ts" \
//!      -H "webhook-signature: v1,$sig" -H 'content-type: application/json' -d "$body"
//! ```
//!
//! | delivery | answer |
//! |---|---|
//! | a valid signature, timestamp within 5 minutes | 204, the delivery is recorded in the [`Inbox`] |
//! | the same `webhook-id` again (a retry) | 204, not recorded twice |
//! | a bad or missing signature, a stale or future timestamp, a missing header | 401 problem document with the error's code (`signature_mismatch`, `request_time_too_skewed`, `missing_header`, ...) |
//! | a body over [`MAX_BODY`] | 413 problem document |
//!
//! The signature covers the raw body bytes, so the handler takes the body as bytes and
//! parses it (if at all) only after the signature checked out. Replays are bounded by
//! the timestamp tolerance and, inside it, made harmless by recording each id once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use palisade_axum::ProblemResponse;
use palisade_signing::StandardWebhook;

/// The largest delivery accepted, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

/// How many delivery ids the [`Inbox`] remembers to recognise a retry.
pub const REMEMBERED_IDS: usize = 1024;

/// The headers a Standard Webhooks delivery is verified with.
const WEBHOOK_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// A verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The sender's message id (`webhook-id`).
    pub id: String,
    /// The body, exactly as signed.
    pub payload: Vec<u8>,
}

/// Where verified deliveries go: the stand-in for real processing. Each `webhook-id` is
/// recorded once, so a sender's retry of a delivery already handled changes nothing.
#[derive(Debug, Clone, Default)]
pub struct Inbox {
    deliveries: Arc<Mutex<VecDeque<Delivery>>>,
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// The deliveries recorded, oldest first (at most [`REMEMBERED_IDS`]).
    pub fn deliveries(&self) -> Vec<Delivery> {
        let deliveries = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        deliveries.iter().cloned().collect()
    }

    /// Records `delivery` unless its id was seen; returns whether it was new.
    fn record(&self, delivery: Delivery) -> bool {
        let mut deliveries = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if deliveries.iter().any(|seen| seen.id == delivery.id) {
            return false;
        }
        if deliveries.len() >= REMEMBERED_IDS {
            deliveries.pop_front();
        }
        deliveries.push_back(delivery);
        true
    }
}

#[derive(Clone)]
struct Receiver {
    webhook: Arc<StandardWebhook>,
    inbox: Inbox,
    clock: fn() -> SystemTime,
}

/// The receiver: `POST /webhooks`, verified with `webhook` against the system clock,
/// recording deliveries in `inbox`.
pub fn app(webhook: StandardWebhook, inbox: Inbox) -> Router {
    app_with_clock(webhook, inbox, SystemTime::now)
}

/// [`app`] with another clock, read once per request (tests replay published vectors at
/// their own time).
pub fn app_with_clock(webhook: StandardWebhook, inbox: Inbox, clock: fn() -> SystemTime) -> Router {
    Router::new()
        .route("/webhooks", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Receiver {
            webhook: Arc::new(webhook),
            inbox,
            clock,
        })
}

/// `POST /webhooks`: 204 for a genuine delivery, a problem document otherwise.
async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let now = (receiver.clock)();
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ProblemResponse::coded(
                413,
                "body_too_large",
                &format!("a delivery may be at most {MAX_BODY} bytes"),
            )
            .into_response();
        }
        Err(_) => {
            return ProblemResponse::coded(400, "body_unreadable", "the body could not be read")
                .into_response();
        }
    };

    // Only the three webhook headers matter; one that is not text cannot be genuine.
    let mut webhook_headers = Vec::with_capacity(WEBHOOK_HEADERS.len());
    for name in WEBHOOK_HEADERS {
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else {
                return refuse("malformed_header", "a webhook header is not visible ASCII");
            };
            webhook_headers.push((name, value));
        }
    }
    if let Err(error) = receiver.webhook.verify(&webhook_headers, &body, now) {
        tracing::warn!(event = "webhook_refused", code = error.code());
        return refuse(error.code(), error.detail());
    }

    // `verify` succeeded, so there is exactly one webhook-id.
    let id = webhook_headers
        .iter()
        .find(|(name, _)| *name == "webhook-id")
        .map(|(_, id)| id.trim().to_owned())
        .unwrap_or_default();
    let delivery = Delivery {
        id: id.clone(),
        payload: body.to_vec(),
    };
    if receiver.inbox.record(delivery) {
        tracing::info!(event = "webhook_received", id, bytes = body.len());
    } else {
        tracing::info!(event = "webhook_retry_ignored", id);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// 401 with the verification error's stable code and fixed description (never request
/// data or the secret).
fn refuse(code: &str, detail: &str) -> Response {
    ProblemResponse::coded(401, code, detail)
        .with_header("www-authenticate", "StandardWebhooks realm=\"webhooks\"")
        .into_response()
}
