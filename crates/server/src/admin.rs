//! `/admin/*`: key management and abuse review. The router requires the `admin` scope
//! and proof of possession (a signature or a client certificate); the operations are
//! shared with the CLI.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use ipnet::IpNet;
use palisade_abuse::{Identity, IdentityKind};
use palisade_apikey::{ApiKeys, CreatedKey, KeyRecord, NewKey, Plan};
use palisade_axum::{Principal, ProblemResponse, ValidatedJson};
use palisade_headers::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::app::Ctx;
use crate::backends::AnyKeyStore;
use crate::clock;
use crate::config::parse_plan;
use crate::orders::rfc3339;
use crate::problems;

/// What creating a key takes (the CLI's `keys create` options, as JSON).
#[derive(Debug, Clone, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeySpec {
    /// Whose data the key reaches.
    #[validate(length(min = 1, max = 128), custom(function = palisade_validate::single_line))]
    #[schema(schema_with = crate::openapi::fields::owner)]
    pub(crate) owner: String,
    /// Scopes, e.g. `orders:read`: 1 to 64 of `A-Z a-z 0-9 : . _ - *`.
    #[validate(length(min = 1, max = 32))]
    #[schema(schema_with = crate::openapi::fields::scopes)]
    pub(crate) scopes: Vec<String>,
    /// `free`, `pro` or `enterprise`.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::fields::plan)]
    pub(crate) plan: Option<String>,
    /// Requests per minute for this key (overrides the plan's per-minute limit).
    #[serde(default)]
    #[validate(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub(crate) rate_limit: Option<u32>,
    /// RFC 3339 expiry.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub(crate) expires: Option<String>,
    /// Networks (CIDR) the key may be used from.
    #[serde(default)]
    #[validate(length(max = 32))]
    #[schema(max_items = 32)]
    pub(crate) allowed_ips: Vec<String>,
}

/// A key as listings show it: never the raw key, never its hash.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyView {
    key_id: String,
    owner: String,
    hint: String,
    scopes: Vec<String>,
    plan: String,
    rate_limit: Option<u32>,
    allowed_ips: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    rotated_from: Option<String>,
    rotated_to: Option<String>,
    grace_until: Option<String>,
}

impl From<&KeyRecord> for KeyView {
    fn from(record: &KeyRecord) -> Self {
        let time = |t: Option<SystemTime>| t.map(rfc3339);
        Self {
            key_id: record.key_id.clone(),
            owner: record.owner.clone(),
            hint: record.hint.clone(),
            scopes: record.scopes.clone(),
            plan: record.plan.name.clone(),
            rate_limit: record.rate_limit_per_minute.map(NonZeroU32::get),
            allowed_ips: record
                .allowed_networks
                .iter()
                .map(ToString::to_string)
                .collect(),
            created_at: rfc3339(record.created_at),
            expires_at: time(record.expires_at),
            last_used_at: time(record.last_used_at),
            revoked_at: time(record.revoked_at),
            rotated_from: record.rotated_from.clone(),
            rotated_to: record.rotated_to.clone(),
            grace_until: time(record.grace_until),
        }
    }
}

/// A new key: the raw key shown this once, with its record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewKeyView {
    /// The raw key. Only its hash is stored.
    pub(crate) key: String,
    pub(crate) key_id: String,
    #[serde(flatten)]
    pub(crate) record: KeyView,
}

impl From<&CreatedKey> for NewKeyView {
    fn from(created: &CreatedKey) -> Self {
        Self {
            key: created.key.expose_secret().to_owned(),
            key_id: created.record.key_id.clone(),
            record: KeyView::from(&created.record),
        }
    }
}

/// Checks a spec and turns it into the crate's value; errors name the field.
pub(crate) fn new_key(spec: &KeySpec) -> Result<NewKey, FieldError> {
    let mut key = NewKey::new(spec.owner.clone()).scopes(spec.scopes.iter().cloned());
    for scope in &spec.scopes {
        if scope.is_empty()
            || scope.len() > 64
            || !scope
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":._-*".contains(&b))
        {
            return Err(FieldError::new(
                "scopes",
                "invalid_scope",
                "scopes are 1 to 64 of A-Z a-z 0-9 : . _ - *",
            ));
        }
    }
    if let Some(name) = &spec.plan {
        let plan = parse_plan(name).ok_or_else(|| {
            FieldError::new(
                "plan",
                "unknown_plan",
                "plan must be free, pro or enterprise",
            )
        })?;
        let (per_minute, per_day, burst) = plan.limits();
        let mut record = Plan::new(plan.name());
        record.per_minute = u32::try_from(per_minute).ok();
        record.per_day = u32::try_from(per_day).ok();
        record.burst = u32::try_from(burst).ok();
        key = key.plan(record);
    }
    if let Some(limit) = spec.rate_limit {
        let limit = NonZeroU32::new(limit).ok_or_else(|| {
            FieldError::new("rate_limit", "range", "rate_limit must be at least 1")
        })?;
        key = key.rate_limit_per_minute(Some(limit));
    }
    if let Some(expires) = &spec.expires {
        let at =
            time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    FieldError::new(
                        "expires",
                        "invalid_time",
                        "expires must be an RFC 3339 time",
                    )
                })?;
        key = key.expires_at(Some(SystemTime::from(at)));
    }
    let mut networks = Vec::new();
    for raw in &spec.allowed_ips {
        let net = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                FieldError::new(
                    "allowed_ips",
                    "invalid_cidr",
                    "allowed_ips must be CIDR networks",
                )
            })?;
        networks.push(net);
    }
    if !networks.is_empty() {
        key = key.allowed_networks(networks);
    }
    Ok(key)
}

/// Creates a key; `Err` is a message naming the field.
pub(crate) async fn create(
    keys: &ApiKeys<AnyKeyStore>,
    spec: &KeySpec,
) -> Result<CreatedKey, String> {
    let key = new_key(spec).map_err(|error| format!("{}: {}", error.field, error.message))?;
    let created = keys
        .create(key, clock::now())
        .await
        .map_err(|error| format!("cannot create the key: {error}"))?;
    tracing::info!(event = "key_created", key_id = %created.record.key_id, owner = %created.record.owner);
    Ok(created)
}

/// Parses `30s`, `15m`, `24h`, `7d`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// Creates an API key.
#[utoipa::path(post, path = "/admin/keys", tag = "admin", request_body = KeySpec,
    responses((status = 201, body = NewKeyView, description = "the raw key, shown this once"), (status = 401), (status = 403, description = "no `admin` scope, or a bearer credential"), (status = 422)),
    security(("signature" = ["admin"]), ("client_certificate" = ["admin"])))]
pub(crate) async fn create_key(
    State(ctx): State<Ctx>,
    principal: Principal,
    ValidatedJson(spec): ValidatedJson<KeySpec>,
) -> Result<(StatusCode, Json<NewKeyView>), ProblemResponse> {
    let key = new_key(&spec).map_err(|error| problems::validation(vec![error]))?;
    let created = ctx
        .state
        .keys
        .create(key, clock::now())
        .await
        .map_err(|_| problems::unavailable())?;
    tracing::info!(event = "key_created", key_id = %created.record.key_id, owner = %created.record.owner, by = %principal.identity());
    Ok((StatusCode::CREATED, Json(NewKeyView::from(&created))))
}

/// Lists API keys (`?owner=` to filter).
#[utoipa::path(get, path = "/admin/keys", tag = "admin",
    params(("owner" = Option<String>, Query)),
    responses((status = 200, body = Vec<KeyView>), (status = 401), (status = 403)),
    security(("signature" = ["admin"]), ("client_certificate" = ["admin"])))]
pub(crate) async fn list_keys(
    State(ctx): State<Ctx>,
    uri: Uri,
) -> Result<Json<Vec<KeyView>>, ProblemResponse> {
    let owner = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(name, _)| name == "owner")
        .map(|(_, value)| value.into_owned());
    let records = ctx
        .state
        .keys
        .list(owner.as_deref())
        .await
        .map_err(|_| problems::unavailable())?;
    Ok(Json(records.iter().map(KeyView::from).collect()))
}

/// Revokes a key, on every instance by the next request.
#[utoipa::path(delete, path = "/admin/keys/{key_id}", tag = "admin",
    params(("key_id" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("signature" = ["admin"]), ("client_certificate" = ["admin"])))]
pub(crate) async fn revoke_key(
    State(ctx): State<Ctx>,
    principal: Principal,
    Path(key_id): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    match ctx.state.keys.revoke(&key_id, clock::now()).await {
        Ok(true) => {
            tracing::info!(event = "revocation", key_id = %key_id, by = %principal.identity());
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(problems::not_found()),
        Err(error) if error.kind() == palisade_apikey::ErrorKind::Storage => {
            Err(problems::unavailable())
        }
        Err(_) => Err(problems::not_found()),
    }
}

/// The body of a rotation.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSpec {
    /// How long the old key keeps working (`30s`, `15m`, `24h`, `7d`); default `24h`.
    #[serde(default)]
    #[validate(length(max = 16))]
    grace: Option<String>,
}

/// Rotates a key: a successor, the old one working through the grace period.
#[utoipa::path(post, path = "/admin/keys/{key_id}/rotate", tag = "admin",
    params(("key_id" = String, Path)), request_body(content = RotateSpec, description = "optional"),
    responses((status = 201, body = NewKeyView), (status = 401), (status = 403), (status = 404), (status = 409, description = "revoked or already rotated")),
    security(("signature" = ["admin"]), ("client_certificate" = ["admin"])))]
pub(crate) async fn rotate_key(
    State(ctx): State<Ctx>,
    principal: Principal,
    Path(key_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<NewKeyView>), ProblemResponse> {
    let spec: RotateSpec = if body.iter().all(u8::is_ascii_whitespace) {
        RotateSpec::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            problems::bad_request("malformed-body", "expected {\"grace\": \"24h\"} or no body")
        })?
    };
    let grace = match spec.grace.as_deref() {
        None => Duration::from_secs(86_400),
        Some(text) => parse_duration(text).ok_or_else(|| {
            problems::validation(vec![FieldError::new(
                "grace",
                "invalid_duration",
                "grace is like 30s, 15m, 24h or 7d",
            )])
        })?,
    };
    let created = rotate(&ctx.state.keys, &key_id, grace)
        .await
        .map_err(|error| match error {
            RotateError::NotFound => problems::not_found(),
            RotateError::Conflict => ProblemResponse::coded(
                409,
                "not-rotatable",
                "the key is revoked, expired or already rotated",
            ),
            RotateError::Unavailable => problems::unavailable(),
        })?;
    tracing::info!(event = "key_rotated", old = %key_id, new = %created.record.key_id, by = %principal.identity());
    Ok((StatusCode::CREATED, Json(NewKeyView::from(&created))))
}

/// Why a rotation failed.
pub(crate) enum RotateError {
    NotFound,
    Conflict,
    Unavailable,
}

/// Rotates `key_id` with `grace`.
pub(crate) async fn rotate(
    keys: &ApiKeys<AnyKeyStore>,
    key_id: &str,
    grace: Duration,
) -> Result<CreatedKey, RotateError> {
    keys.rotate(key_id, grace, clock::now())
        .await
        .map_err(|error| {
            use palisade_apikey::ErrorKind as K;
            match error.kind() {
                K::Storage => RotateError::Unavailable,
                K::NotFound | K::Malformed => RotateError::NotFound,
                _ => RotateError::Conflict,
            }
        })
}

/// One flagged identity.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlagView {
    identity: String,
    action: String,
    reason: String,
    detail: String,
    since: String,
    until: String,
}

/// Identities throttled or blocked, with the reason.
#[utoipa::path(get, path = "/admin/abuse", tag = "admin",
    responses((status = 200, body = Vec<FlagView>), (status = 401), (status = 403)),
    security(("signature" = ["admin"]), ("client_certificate" = ["admin"])))]
pub(crate) async fn list_abuse(State(ctx): State<Ctx>) -> Json<Vec<FlagView>> {
    let flags = ctx.runtime.abuse.list_flagged(clock::now()).await;
    Json(
        flags
            .iter()
            .map(|flag| FlagView {
                identity: flag.identity.as_str().to_owned(),
                action: format!("{:?}", flag.action).to_ascii_lowercase(),
                reason: flag.reason.code().to_owned(),
                detail: flag.detail.clone(),
                since: rfc3339(flag.since),
                until: rfc3339(flag.until),
            })
            .collect(),
    )
}

/// `apikey:<id>`, `client:<id>`, `user:<id>` or `address:<ip>`.
fn parse_identity(text: &str) -> Option<Identity> {
    let (kind, value) = text.split_once(':')?;
    let kind = [
        IdentityKind::ApiKey,
        IdentityKind::Client,
        IdentityKind::User,
        IdentityKind::Address,
    ]
    .into_iter()
    .find(|k| k.as_str() == kind)?;
    if kind == IdentityKind::Address {
        return value.parse::<IpAddr>().ok().map(Identity::address);
    }
    (!value.is_empty()).then(|| Identity::new(kind, value))
}

/// Lifts a throttle or block (and an address's failed-login lockout).
#[utoipa::path(delete, path = "/admin/abuse/{identity}", tag = "admin",
    params(("identity" = String, Path, description = "`apikey:<key_id>`, `client:<id>`, `user:<id>` or `address:<ip>`")),
    responses((status = 204), (status = 401), (status = 403), (status = 422)),
    security(("signature" = ["admin"]), ("client_certificate" = ["admin"])))]
pub(crate) async fn clear_abuse(
    State(ctx): State<Ctx>,
    principal: Principal,
    Path(identity): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    let parsed = parse_identity(&identity).ok_or_else(|| {
        problems::validation(vec![FieldError::new(
            "identity",
            "invalid_identity",
            "identity is apikey:<key_id>, client:<id>, user:<id> or address:<ip>",
        )])
    })?;
    ctx.runtime.abuse.clear(&parsed, clock::now()).await;
    tracing::info!(event = "abuse_cleared", identity = %parsed.as_str(), by = %principal.identity());
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        for bad in ["", "h", "10", "10w", "-1s", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn specs_are_checked_field_by_field() {
        let spec = KeySpec {
            owner: "alice".into(),
            scopes: vec!["orders:read".into()],
            ..KeySpec::default()
        };
        assert!(new_key(&spec).is_ok());
        let bad_plan = KeySpec {
            plan: Some("gold".into()),
            ..spec.clone()
        };
        assert_eq!(new_key(&bad_plan).unwrap_err().field, "plan");
        let bad_ip = KeySpec {
            allowed_ips: vec!["10.0.0.0/33".into()],
            ..spec.clone()
        };
        assert_eq!(new_key(&bad_ip).unwrap_err().field, "allowed_ips");
        let bad_time = KeySpec {
            expires: Some("tomorrow".into()),
            ..spec.clone()
        };
        assert_eq!(new_key(&bad_time).unwrap_err().field, "expires");
        let bad_scope = KeySpec {
            scopes: vec!["orders read".into()],
            ..spec
        };
        assert_eq!(new_key(&bad_scope).unwrap_err().field, "scopes");
    }

    #[test]
    fn identities_parse() {
        assert_eq!(
            parse_identity("address:10.0.0.1").unwrap().as_str(),
            "address:10.0.0.1"
        );
        assert_eq!(
            parse_identity("apikey:key_1").unwrap().as_str(),
            "apikey:key_1"
        );
        assert!(parse_identity("address:nope").is_none());
        assert!(parse_identity("robot:1").is_none());
        assert!(parse_identity("nothing").is_none());
    }
}
