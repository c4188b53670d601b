//! `palisade_validate::from_slice` on arbitrary bytes: never panics, and whatever the
//! structural scan accepts, serde_json parses.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use palisade_validate::{Limits, from_slice, parse};
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

fn product_id(id: &str) -> Result<(), ValidationError> {
    palisade_validate::prefixed_id(id, "prod_", 64)
}

#[derive(Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
struct Item {
    #[validate(custom(function = product_id))]
    product_id: String,
    #[validate(range(min = 1, max = 999))]
    quantity: u32,
}

#[derive(Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Address {
    #[validate(length(min = 1, max = 200), custom(function = palisade_validate::single_line))]
    street: String,
    #[validate(custom(function = palisade_validate::country_code))]
    country: String,
}

#[derive(Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
struct Order {
    #[validate(length(min = 1, max = 100), nested)]
    items: Vec<Item>,
    #[validate(nested)]
    shipping_address: Option<Address>,
    #[validate(custom(function = palisade_validate::metadata))]
    metadata: Option<HashMap<String, String>>,
    #[validate(custom(function = palisade_validate::safe_json))]
    extra: Option<serde_json::Value>,
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = from_slice::<Order>(data, &limits);
    if parse::<serde_json::Value>(data, &limits).is_ok() {
        assert!(serde_json::from_slice::<serde_json::Value>(data).is_ok());
    }
});
