//! The protected example API: `/api/orders`, with object-level authorization (a caller
//! sees and deletes only its own orders; another owner's order is a 404, exactly like a
//! missing one).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use palisade_axum::{Principal, ProblemResponse, ValidatedJson};
use palisade_headers::FieldError;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::app::Ctx;
use crate::clock;
use crate::db::{sql, sql_as};
use crate::problems;

/// Longest order id a path may name (ours are 30 characters).
const MAX_ID_LEN: usize = 64;
/// Page size bounds of `GET /api/orders`.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

fn product_id(id: &str) -> Result<(), ValidationError> {
    palisade_validate::prefixed_id(id, "prod_", 64)
}

/// The body of `POST /api/orders` (the seed design's `CreateOrderSchema`).
#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrder {
    /// 1 to 100 items.
    #[validate(length(min = 1, max = 100), nested)]
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<OrderItem>,
    /// Where to ship.
    #[validate(nested)]
    shipping_address: Address,
    /// Up to 500 characters.
    #[validate(length(max = 500), custom(function = palisade_validate::multiline_text))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::fields::notes)]
    notes: Option<String>,
    /// Up to 10 string pairs; keys starting with `$` and `__proto__`, `constructor`,
    /// `prototype` are refused.
    #[validate(custom(function = palisade_validate::metadata))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::openapi::fields::metadata)]
    metadata: Option<HashMap<String, String>>,
}

/// One line of an order.
#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrderItem {
    /// `prod_` followed by letters and digits.
    #[validate(custom(function = product_id))]
    #[schema(pattern = "^prod_[a-zA-Z0-9]+$", max_length = 64)]
    product_id: String,
    /// 1 to 999.
    #[validate(range(min = 1, max = 999))]
    #[schema(minimum = 1, maximum = 999)]
    quantity: u32,
}

/// A shipping address.
#[derive(Debug, Deserialize, Serialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Address {
    #[validate(length(min = 1, max = 200), custom(function = palisade_validate::single_line))]
    #[schema(schema_with = crate::openapi::fields::street)]
    street: String,
    #[validate(length(min = 1, max = 100), custom(function = palisade_validate::single_line))]
    #[schema(schema_with = crate::openapi::fields::city)]
    city: String,
    /// ISO 3166-1 alpha-2, upper case.
    #[validate(custom(function = palisade_validate::country_code))]
    #[schema(schema_with = crate::openapi::fields::country)]
    country: String,
    #[validate(length(min = 3, max = 20), custom(function = palisade_validate::single_line))]
    #[schema(schema_with = crate::openapi::fields::postal_code)]
    postal_code: String,
}

/// An order as the API returns it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub(crate) struct Order {
    /// `ord_...`.
    pub(crate) id: String,
    /// `created`.
    pub(crate) status: String,
    items: Vec<OrderItem>,
    shipping_address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<HashMap<String, String>>,
    /// RFC 3339.
    created_at: String,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderPage {
    orders: Vec<Order>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The caller's own orders, oldest first.
#[utoipa::path(get, path = "/api/orders", tag = "orders",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, body = OrderPage),
        (status = 400, description = "a cursor the server did not issue"),
        (status = 401), (status = 403), (status = 422, description = "limit out of range"), (status = 429),
    ),
    security(("api_key" = ["orders:read"]), ("bearer" = ["orders:read"]), ("signature" = ["orders:read"])))]
pub(crate) async fn list(
    State(ctx): State<Ctx>,
    principal: Principal,
    uri: Uri,
) -> Result<Json<OrderPage>, ProblemResponse> {
    let (limit, cursor) = page_params(uri.query().unwrap_or(""))?;
    let after = match cursor {
        None => 0,
        Some(cursor) => open_cursor(&ctx.runtime.cursor_key, principal.owner(), &cursor)
            .ok_or_else(|| {
                ProblemResponse::coded(
                    400,
                    "invalid-cursor",
                    "the cursor was not issued by this server for this caller",
                )
            })?,
    };
    let rows: Vec<(i64, String, String)> = sql_as!(
        &ctx.state.db,
        (i64, String, String),
        fetch_all,
        "SELECT seq, id, body FROM server_orders WHERE owner = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        principal.owner(),
        after,
        limit + 1
    )
    .map_err(|_| problems::unavailable())?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    let mut orders = Vec::with_capacity(rows.len());
    let mut last_seq = None;
    for (seq, _id, body) in rows.into_iter().take(usize::try_from(limit).unwrap_or(0)) {
        let order: Order = serde_json::from_str(&body).map_err(|_| problems::unavailable())?;
        orders.push(order);
        last_seq = Some(seq);
    }
    let next_cursor = match (more, last_seq) {
        (true, Some(seq)) => Some(seal_cursor(&ctx.runtime.cursor_key, principal.owner(), seq)),
        _ => None,
    };
    Ok(Json(OrderPage {
        orders,
        next_cursor,
    }))
}

/// `limit` and `cursor` from the query string, each at most once.
#[allow(clippy::result_large_err, reason = "built once per rejected request")]
fn page_params(query: &str) -> Result<(i64, Option<String>), ProblemResponse> {
    let mut limit = None;
    let mut cursor = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "limit" => &mut limit,
            "cursor" => &mut cursor,
            _ => continue,
        };
        if slot.is_some() {
            return Err(ProblemResponse::coded(
                400,
                "malformed-query",
                &format!("`{name}` is given more than once"),
            ));
        }
        *slot = Some(value.into_owned());
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(problems::validation(vec![FieldError::new(
                    "limit",
                    "range",
                    "limit must be an integer from 1 to 100",
                )]));
            }
        },
    };
    if cursor.as_ref().is_some_and(|c| c.len() > 128) {
        return Err(ProblemResponse::coded(
            400,
            "invalid-cursor",
            "the cursor was not issued by this server for this caller",
        ));
    }
    Ok((limit, cursor))
}

type HmacSha256 = Hmac<Sha256>;

fn cursor_mac(key: &[u8], owner: &str, seq: i64) -> HmacSha256 {
    // new_from_slice accepts any key length for HMAC.
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(owner.as_bytes());
    mac.update(&[0]);
    mac.update(&seq.to_be_bytes());
    mac
}

/// An opaque cursor: the position, authenticated for this owner.
fn seal_cursor(key: &[u8], owner: &str, seq: i64) -> String {
    let tag = cursor_mac(key, owner, seq).finalize().into_bytes();
    let mut bytes = seq.to_be_bytes().to_vec();
    bytes.extend_from_slice(&tag[..16]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position in a cursor, if this server issued it to this owner.
fn open_cursor(key: &[u8], owner: &str, cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    if bytes.len() != 24 {
        return None;
    }
    let (position, tag) = bytes.split_at(8);
    let seq = i64::from_be_bytes(position.try_into().ok()?);
    // verify_truncated_left compares in constant time.
    cursor_mac(key, owner, seq)
        .verify_truncated_left(tag)
        .ok()?;
    Some(seq)
}

/// Creates an order for the caller.
#[utoipa::path(post, path = "/api/orders", tag = "orders", request_body = CreateOrder,
    responses(
        (status = 201, body = Order),
        (status = 400), (status = 401), (status = 403), (status = 413), (status = 415),
        (status = 422, description = "validation errors: `errors: [{field, code, message}]`"), (status = 429),
    ),
    security(("api_key" = ["orders:write"]), ("bearer" = ["orders:write"]), ("signature" = ["orders:write"])))]
pub(crate) async fn create(
    State(ctx): State<Ctx>,
    principal: Principal,
    ValidatedJson(body): ValidatedJson<CreateOrder>,
) -> Result<Response, ProblemResponse> {
    let now = clock::now();
    let id = format!("ord_{}", uuid::Uuid::now_v7().simple());
    let order = Order {
        id: id.clone(),
        status: "created".into(),
        items: body.items,
        shipping_address: body.shipping_address,
        notes: body.notes,
        metadata: body.metadata,
        created_at: rfc3339(now),
    };
    let json = serde_json::to_string(&order).map_err(|_| problems::unavailable())?;
    sql!(
        &ctx.state.db,
        execute,
        "INSERT INTO server_orders (id, owner, body, created_at) VALUES ($1, $2, $3, $4)",
        id.as_str(),
        principal.owner(),
        json.as_str(),
        clock::unix(now)
    )
    .map_err(|_| problems::unavailable())?;
    ctx.webhooks
        .enqueue(
            principal.owner(),
            "order.created",
            &serde_json::json!({ "order": &order }),
        )
        .await;
    let location = format!("/api/orders/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(order),
    )
        .into_response())
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "the order id")),
    responses((status = 200, body = Order), (status = 401), (status = 403), (status = 404, description = "missing, or another caller's"), (status = 429)),
    security(("api_key" = ["orders:read"]), ("bearer" = ["orders:read"]), ("signature" = ["orders:read"])))]
pub(crate) async fn get(
    State(ctx): State<Ctx>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Order>, ProblemResponse> {
    if id.len() > MAX_ID_LEN {
        return Err(problems::not_found());
    }
    let row: Option<(String,)> = sql_as!(
        &ctx.state.db,
        (String,),
        fetch_optional,
        "SELECT body FROM server_orders WHERE id = $1 AND owner = $2",
        id.as_str(),
        principal.owner()
    )
    .map_err(|_| problems::unavailable())?;
    let (body,) = row.ok_or_else(problems::not_found)?;
    let order = serde_json::from_str(&body).map_err(|_| problems::unavailable())?;
    Ok(Json(order))
}

/// Deletes one of the caller's orders.
#[utoipa::path(delete, path = "/api/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "the order id")),
    responses((status = 204), (status = 401), (status = 403), (status = 404, description = "missing, or another caller's"), (status = 429)),
    security(("api_key" = ["orders:write"]), ("bearer" = ["orders:write"]), ("signature" = ["orders:write"])))]
pub(crate) async fn delete(
    State(ctx): State<Ctx>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ProblemResponse> {
    if id.len() > MAX_ID_LEN {
        return Err(problems::not_found());
    }
    let deleted = sql!(
        &ctx.state.db,
        execute,
        "DELETE FROM server_orders WHERE id = $1 AND owner = $2",
        id.as_str(),
        principal.owner()
    )
    .map_err(|_| problems::unavailable())?;
    if deleted == 0 {
        return Err(problems::not_found());
    }
    ctx.webhooks
        .enqueue(
            principal.owner(),
            "order.deleted",
            &serde_json::json!({ "order": { "id": id } }),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// RFC 3339 in UTC with seconds.
pub(crate) fn rfc3339(time: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_only_for_their_owner() {
        let key = [7u8; 32];
        let cursor = seal_cursor(&key, "alice", 42);
        assert_eq!(open_cursor(&key, "alice", &cursor), Some(42));
        assert_eq!(open_cursor(&key, "bob", &cursor), None);
        assert_eq!(open_cursor(&[8u8; 32], "alice", &cursor), None);
        assert_eq!(open_cursor(&key, "alice", "AAAAAAAAAAA"), None);
        assert_eq!(open_cursor(&key, "alice", "not base64!"), None);
        let mut forged = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        forged[7] ^= 1;
        assert_eq!(
            open_cursor(&key, "alice", &URL_SAFE_NO_PAD.encode(forged)),
            None
        );
    }

    #[test]
    fn page_parameters_are_bounded() {
        assert_eq!(page_params("").unwrap(), (20, None));
        assert_eq!(
            page_params("limit=100&cursor=abc").unwrap(),
            (100, Some("abc".into()))
        );
        assert_eq!(
            page_params("limit=101").unwrap_err().problem().status(),
            422
        );
        assert_eq!(page_params("limit=0").unwrap_err().problem().status(), 422);
        assert_eq!(page_params("limit=x").unwrap_err().problem().status(), 422);
        assert_eq!(
            page_params("limit=1&limit=2")
                .unwrap_err()
                .problem()
                .status(),
            400
        );
    }
}
