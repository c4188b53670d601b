//! The seed's `CreateOrderSchema` body (about 1 KiB): Palisade's `from_slice` (limits scan,
//! duplicate keys, strict typed parse, every validator rule) side by side with a plain
//! `serde_json::from_slice` of the same body into the same struct, in the same run.
//! Target: at most 2x.
#![allow(missing_docs)] // `criterion_group!` with a config generates an undocumented pub fn.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_validate::{Limits, from_slice, parse};
use serde::{Deserialize, Serialize};
use validator::{Validate, ValidationError};

fn product_id(id: &str) -> Result<(), ValidationError> {
    palisade_validate::prefixed_id(id, "prod_", 64)
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
struct CreateOrder {
    #[validate(length(min = 1, max = 100), nested)]
    items: Vec<OrderItem>,
    #[validate(nested)]
    shipping_address: Address,
    #[validate(length(max = 500), custom(function = palisade_validate::multiline_text))]
    notes: Option<String>,
    #[validate(custom(function = palisade_validate::metadata))]
    metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
struct OrderItem {
    #[validate(custom(function = product_id))]
    product_id: String,
    #[validate(range(min = 1, max = 999))]
    quantity: u32,
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(deny_unknown_fields)]
struct Address {
    #[validate(length(min = 1, max = 200), custom(function = palisade_validate::single_line))]
    street: String,
    #[validate(length(min = 1, max = 100), custom(function = palisade_validate::single_line))]
    city: String,
    #[validate(custom(function = palisade_validate::country_code))]
    country: String,
    #[validate(length(min = 3, max = 20), custom(function = palisade_validate::single_line))]
    postal_code: String,
}

fn body() -> Vec<u8> {
    let items: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!({"product_id": format!("prod_A{i}x9"), "quantity": i + 1}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "items": items,
        "shipping_address": {
            "street": "221B Baker Street",
            "city": "London",
            "country": "GB",
            "postal_code": "NW1 6XE"
        },
        "notes": "Leave at the door.\nRing twice.",
        "metadata": {"order_ref": "A-1042", "channel": "web", "campaign": "spring"}
    }))
    .expect("serialises")
}

fn bench(c: &mut Criterion) {
    let body = body();
    let limits = Limits::default();
    assert!(from_slice::<CreateOrder>(&body, &limits).is_ok());
    let mut group = c.benchmark_group(format!("validate/create_order_{}B", body.len()));
    group.bench_function("serde_json::from_slice (peer)", |b| {
        b.iter(|| serde_json::from_slice::<CreateOrder>(black_box(&body)).expect("valid"));
    });
    group.bench_function("palisade parse (limits + typed)", |b| {
        b.iter(|| parse::<CreateOrder>(black_box(&body), &limits).expect("valid"));
    });
    group.bench_function("palisade from_slice (limits + typed + validate)", |b| {
        b.iter(|| from_slice::<CreateOrder>(black_box(&body), &limits).expect("valid"));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
