//! The seed's `CreateOrderSchema` as the server declares it with this crate's helpers.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

pub fn product_id(id: &str) -> Result<(), ValidationError> {
    palisade_validate::prefixed_id(id, "prod_", 64)
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    #[validate(length(min = 1, max = 100), nested)]
    pub items: Vec<OrderItem>,
    #[validate(nested)]
    pub shipping_address: Address,
    #[validate(length(max = 500), custom(function = palisade_validate::multiline_text))]
    pub notes: Option<String>,
    #[validate(custom(function = palisade_validate::metadata))]
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    #[validate(custom(function = product_id))]
    pub product_id: String,
    #[validate(range(min = 1, max = 999))]
    pub quantity: u32,
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[validate(length(min = 1, max = 200), custom(function = palisade_validate::single_line))]
    pub street: String,
    #[validate(length(min = 1, max = 100), custom(function = palisade_validate::single_line))]
    pub city: String,
    #[validate(custom(function = palisade_validate::country_code))]
    pub country: String,
    #[validate(length(min = 3, max = 20), custom(function = palisade_validate::single_line))]
    pub postal_code: String,
}

/// A valid body of about 1 KiB.
pub fn valid_body() -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!({"product_id": format!("prod_A{i}x9"), "quantity": i + 1}))
        .collect();
    serde_json::json!({
        "items": items,
        "shipping_address": {
            "street": "221B Baker Street",
            "city": "London",
            "country": "GB",
            "postal_code": "NW1 6XE"
        },
        "notes": "Leave at the door.\nRing twice.",
        "metadata": {"order_ref": "A-1042", "channel": "web", "campaign": "spring"}
    })
}

/// `valid_body()` with the JSON pointer `pointer` set to `value`.
pub fn with(pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut body = valid_body();
    *body.pointer_mut(pointer).expect("pointer exists") = value;
    serde_json::to_vec(&body).expect("serialises")
}
