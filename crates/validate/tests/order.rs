//! The seed's order body end to end: limits, strict types, validation, error shape.

mod common;

use common::{CreateOrder, valid_body, with};
use palisade_validate::{ErrorKind, FieldErrors, Limits, Rejection, from_slice};
use serde::{Deserialize, Serialize};
use serde_json::json;
use validator::Validate;

fn invalid(body: &[u8]) -> FieldErrors {
    match from_slice::<CreateOrder>(body, &Limits::default()) {
        Err(Rejection::Invalid(errors)) => errors,
        other => panic!("expected a 422, got {other:?}"),
    }
}

fn first(body: &[u8]) -> (String, String) {
    let errors = invalid(body);
    let e = &errors.as_slice()[0];
    (e.field().to_owned(), e.code().to_owned())
}

fn malformed(body: &[u8]) -> palisade_validate::Error {
    match from_slice::<CreateOrder>(body, &Limits::default()) {
        Err(Rejection::Malformed(e)) => e,
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn valid_body_is_accepted_about_one_kib() {
    let body = serde_json::to_vec(&valid_body()).unwrap();
    assert!((900..1300).contains(&body.len()), "{}", body.len());
    let order = from_slice::<CreateOrder>(&body, &Limits::default()).unwrap();
    assert_eq!(order.items.len(), 20);
    assert_eq!(order.shipping_address.country, "GB");
}

#[test]
fn each_rule_reports_its_field_and_code() {
    let cases: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        ("/items", json!([]), "items", "too_short"),
        (
            "/items/0/product_id",
            json!("prod-1"),
            "items.0.product_id",
            "invalid_format",
        ),
        (
            "/items/3/product_id",
            json!("prod_"),
            "items.3.product_id",
            "invalid_format",
        ),
        (
            "/items/0/quantity",
            json!(0),
            "items.0.quantity",
            "too_small",
        ),
        (
            "/items/11/quantity",
            json!(1000),
            "items.11.quantity",
            "too_large",
        ),
        (
            "/shipping_address/street",
            json!(""),
            "shipping_address.street",
            "too_short",
        ),
        (
            "/shipping_address/street",
            json!("x".repeat(201)),
            "shipping_address.street",
            "too_long",
        ),
        (
            "/shipping_address/city",
            json!("a\tb"),
            "shipping_address.city",
            "control_character",
        ),
        (
            "/shipping_address/country",
            json!("gb"),
            "shipping_address.country",
            "invalid_country",
        ),
        (
            "/shipping_address/country",
            json!("XX"),
            "shipping_address.country",
            "invalid_country",
        ),
        (
            "/shipping_address/country",
            json!("GBR"),
            "shipping_address.country",
            "invalid_country",
        ),
        (
            "/shipping_address/postal_code",
            json!("12"),
            "shipping_address.postal_code",
            "too_short",
        ),
        ("/notes", json!("n".repeat(501)), "notes", "too_long"),
        ("/notes", json!("a\u{0}b"), "notes", "control_character"),
        (
            "/metadata/$where",
            json!("1"),
            "metadata.$where",
            "forbidden_key",
        ),
        (
            "/metadata/constructor",
            json!("x"),
            "metadata.constructor",
            "forbidden_key",
        ),
        (
            "/metadata/prototype",
            json!("x"),
            "metadata.prototype",
            "forbidden_key",
        ),
    ];
    for (pointer, value, field, code) in cases {
        let body = if pointer.starts_with("/metadata/") {
            let mut b = valid_body();
            let key = pointer.trim_start_matches("/metadata/");
            b["metadata"][key] = value;
            serde_json::to_vec(&b).unwrap()
        } else {
            with(pointer, value)
        };
        assert_eq!(
            first(&body),
            (field.to_owned(), code.to_owned()),
            "{pointer}"
        );
    }
}

#[test]
fn length_limits_count_characters_not_bytes() {
    // 500 characters of 4 bytes each: within `notes`' limit.
    let body = with("/notes", json!("🏠".repeat(500)));
    assert!(from_slice::<CreateOrder>(&body, &Limits::default()).is_ok());
}

#[test]
fn too_many_items_and_metadata_entries() {
    let items: Vec<_> = (0..101)
        .map(|_| json!({"product_id": "prod_1", "quantity": 1}))
        .collect();
    assert_eq!(
        first(&with("/items", json!(items))),
        ("items".into(), "too_long".into())
    );
    let meta: serde_json::Map<String, serde_json::Value> =
        (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        first(&with("/metadata", json!(meta))),
        ("metadata".into(), "too_many_entries".into())
    );
}

#[test]
fn all_errors_are_gathered_and_sorted() {
    let mut body = valid_body();
    body["items"][10]["quantity"] = json!(0);
    body["items"][2]["quantity"] = json!(0);
    body["shipping_address"]["country"] = json!("ZZ");
    let errors = invalid(&serde_json::to_vec(&body).unwrap());
    let fields: Vec<&str> = errors
        .iter()
        .map(palisade_validate::FieldError::field)
        .collect();
    assert_eq!(
        fields,
        [
            "items.2.quantity",
            "items.10.quantity",
            "shipping_address.country"
        ]
    );
    let doc = serde_json::to_value(&errors).unwrap();
    assert_eq!(
        doc[0],
        json!({"field": "items.2.quantity", "code": "too_small", "message": "must be at least 1"})
    );
}

#[test]
fn strict_types() {
    assert_eq!(
        first(&with("/items/0/quantity", json!("2"))),
        ("items.0.quantity".into(), "invalid_type".into())
    );
    assert_eq!(
        first(&with("/items/0/quantity", json!(1.5))),
        ("items.0.quantity".into(), "invalid_type".into())
    );
    assert_eq!(
        first(&with("/items/0/quantity", json!(2.0))),
        ("items.0.quantity".into(), "invalid_type".into())
    );
    assert_eq!(
        first(&with("/items/0/quantity", json!(-1))),
        ("items.0.quantity".into(), "invalid_value".into())
    );
    assert_eq!(
        first(&with("/items/0/quantity", json!(true))),
        ("items.0.quantity".into(), "invalid_type".into())
    );
    assert_eq!(
        first(&with("/items/0/quantity", json!(null))),
        ("items.0.quantity".into(), "invalid_type".into())
    );
    assert_eq!(
        first(&with("/items/0/product_id", json!(7))),
        ("items.0.product_id".into(), "invalid_type".into())
    );
    assert_eq!(
        first(&with("/items", json!({"0": {}}))),
        ("items".into(), "invalid_type".into())
    );
    // Integers beyond u32 are a type error on that field, not a wrap-around.
    assert_eq!(
        first(&with("/items/0/quantity", json!(4_294_967_297_u64))).0,
        "items.0.quantity"
    );
    let msg = invalid(&with("/items/0/quantity", json!("<script>"))).as_slice()[0]
        .message()
        .to_owned();
    assert_eq!(msg, "must be an integer");
}

#[test]
fn unknown_and_missing_fields_name_the_field() {
    let mut body = valid_body();
    body["shipping_address"]["admin"] = json!(true);
    assert_eq!(
        first(&serde_json::to_vec(&body).unwrap()),
        ("shipping_address.admin".into(), "unknown_field".into())
    );
    let mut body = valid_body();
    body["is_admin"] = json!(true);
    assert_eq!(
        first(&serde_json::to_vec(&body).unwrap()),
        ("is_admin".into(), "unknown_field".into())
    );
    let mut body = valid_body();
    body["items"][1].as_object_mut().unwrap().remove("quantity");
    assert_eq!(
        first(&serde_json::to_vec(&body).unwrap()),
        ("items.1.quantity".into(), "required".into())
    );
}

#[test]
fn operator_objects_in_scalar_fields_are_type_errors() {
    for op in [
        json!({"$gt": ""}),
        json!({"$ne": null}),
        json!({"$where": "1"}),
        json!(["a"]),
    ] {
        assert_eq!(
            first(&with("/items/0/product_id", op)),
            ("items.0.product_id".into(), "invalid_type".into())
        );
    }
}

#[test]
fn structural_refusals_are_malformed_or_too_large() {
    let body = serde_json::to_vec(&valid_body()).unwrap();
    let tight = Limits::default().max_body_bytes(100);
    assert_eq!(
        from_slice::<CreateOrder>(&body, &tight).unwrap_err(),
        Rejection::TooLarge { limit: 100 }
    );
    assert_eq!(
        from_slice::<CreateOrder>(&body, &tight).unwrap_err().code(),
        "body_too_large"
    );
    let dup = br#"{"items":[{"product_id":"prod_1","quantity":1,"quantity":999}],"shipping_address":{"street":"a","city":"b","country":"GB","postal_code":"123"}}"#;
    let e = malformed(dup);
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::DuplicateKey, Some("items.0.quantity"))
    );
    assert_eq!(
        malformed(b"{\"items\": [\xff]}").kind(),
        ErrorKind::InvalidUtf8
    );
    assert_eq!(malformed(b"{\"items\": [}").kind(), ErrorKind::Syntax);
    assert_eq!(
        malformed(br#"{"__proto__": {"isAdmin": true}}"#).kind(),
        ErrorKind::ForbiddenKey
    );
}

#[test]
fn sql_injection_is_data_not_the_validators_job() {
    // Parameterized queries make this harmless; refusing quotes would refuse O'Brien.
    for payload in [
        "1' OR '1'='1",
        "'; DROP TABLE orders; --",
        "O'Brien",
        "\" OR \"\"=\"",
    ] {
        let body = with("/notes", json!(payload));
        let order = from_slice::<CreateOrder>(&body, &Limits::default()).unwrap();
        assert_eq!(order.notes.as_deref(), Some(payload));
    }
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Renamed {
    #[validate(length(max = 3))]
    display_name: String,
    #[serde(rename = "zip")]
    #[validate(length(min = 5))]
    postal_code: String,
    #[validate(nested)]
    billing_address: Inner,
    #[validate(length(min = 1))]
    line_items: Vec<String>,
    #[serde(flatten)]
    #[validate(nested)]
    extra: Flat,
    #[validate(required)]
    coupon_code: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Inner {
    #[validate(range(max = 10))]
    house_number: u32,
}

#[derive(Debug, Deserialize, Serialize, Validate)]
#[serde(rename_all = "kebab-case")]
struct Flat {
    #[validate(length(max = 2))]
    gift_note: String,
}

#[test]
fn paths_follow_serde_renames() {
    let body =
        br#"{"displayName": "long name", "zip": "123", "billingAddress": {"HOUSE_NUMBER": 11},
                    "lineItems": [], "gift-note": "hello"}"#;
    let limits = Limits::default().reject_proto_keys(true);
    let Err(Rejection::Invalid(errors)) = from_slice::<Renamed>(body, &limits) else {
        panic!()
    };
    let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.field(), e.code())).collect();
    assert_eq!(
        got,
        [
            ("billingAddress.HOUSE_NUMBER", "too_large"),
            ("couponCode", "required"),
            ("displayName", "too_long"),
            ("gift-note", "too_long"),
            ("lineItems", "too_short"),
            // An explicit rename the client sent as `zip`: found by its value's position? No:
            // by the sent keys. `postal_code` has no spelling among them, so the sibling
            // style (camelCase) is used.
            ("postalCode", "too_short"),
        ]
    );
}

#[test]
fn serde_errors_use_the_sent_names_too() {
    let body = br#"{"displayName": "a", "zip": "12345", "billingAddress": {"HOUSE_NUMBER": "1"},
                    "lineItems": ["x"], "gift-note": "a", "couponCode": "c"}"#;
    let Err(Rejection::Invalid(errors)) = from_slice::<Renamed>(body, &Limits::default()) else {
        panic!()
    };
    assert_eq!(errors.as_slice()[0].field(), "billingAddress.HOUSE_NUMBER");
}

#[test]
fn validate_without_input_keeps_rust_names() {
    let value = common::OrderItem {
        product_id: "nope".into(),
        quantity: 0,
    };
    let errors = palisade_validate::validate(&value).unwrap_err();
    let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.field(), e.code())).collect();
    assert_eq!(
        got,
        [("product_id", "invalid_format"), ("quantity", "too_small")]
    );
}
