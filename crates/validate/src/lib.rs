//! Strict input at the boundary: bounded typed JSON, validation errors with the field
//! names clients sent, injection, path-traversal, upload and SSRF guards.
//!
//! Everything a client sends is checked before it reaches business logic:
//!
//! - [`from_slice`] reads a JSON body in one call: size, UTF-8, grammar, nesting depth,
//!   keys per object, array and string lengths, duplicate keys and `__proto__` are checked
//!   in one pass over the bytes ([`Limits`]); then strict typed deserialization (serde's
//!   own rules: `"2"` is not `2`, `1.5` is not an integer, unknown fields refused with
//!   `#[serde(deny_unknown_fields)]`); then the type's [`validator`] rules. A refusal is a
//!   [`Rejection`]: too large (413), malformed (400) or invalid (422) with
//!   [`FieldErrors`] shaped `[{"field": "items.0.quantity", "code", "message"}]`, where the
//!   paths use the names of `#[serde(rename)]` / `rename_all`.
//! - Ready validators: [`country_code`] (the real ISO 3166-1 list), [`prefixed_id`]
//!   (`^prod_[a-zA-Z0-9]+$`), [`single_line`] and [`multiline_text`] (control characters,
//!   bidi overrides), [`metadata`] / [`check_map`] (bounded string maps without operator or
//!   prototype keys), [`safe_json`] and [`scalar`] for free-form values.
//! - [`escape_html`] for output; [`safe_join`] for client paths; [`UploadPolicy`] for
//!   files typed by content; [`UrlPolicy`] for URLs the server will fetch.
//!
//! # Example
//! ```
//! use std::collections::HashMap;
//! use palisade_validate::{from_slice, Limits, Rejection};
//! use serde::{Deserialize, Serialize};
//! use validator::{Validate, ValidationError};
//!
//! fn product_id(id: &str) -> Result<(), ValidationError> {
//!     palisade_validate::prefixed_id(id, "prod_", 64)
//! }
//!
//! #[derive(Deserialize, Serialize, Validate)] // validator's `length` on a Vec needs Serialize
//! #[serde(deny_unknown_fields, rename_all = "camelCase")]
//! struct Item {
//!     #[validate(custom(function = product_id))]
//!     product_id: String,
//!     #[validate(range(min = 1, max = 999))]
//!     quantity: u32,
//! }
//!
//! #[derive(Deserialize, Validate)]
//! #[serde(deny_unknown_fields)]
//! struct Order {
//!     #[validate(length(min = 1, max = 100), nested)]
//!     items: Vec<Item>,
//!     #[validate(custom(function = palisade_validate::metadata))]
//!     metadata: Option<HashMap<String, String>>,
//! }
//!
//! let limits = Limits::default();
//! let ok = br#"{"items": [{"productId": "prod_1", "quantity": 2}]}"#;
//! assert_eq!(from_slice::<Order>(ok, &limits).unwrap().items[0].quantity, 2);
//!
//! let bad = br#"{"items": [{"productId": "prod_1", "quantity": 1000}],
//!                "metadata": {"$where": "sleep(100)"}}"#;
//! let Err(Rejection::Invalid(errors)) = from_slice::<Order>(bad, &limits) else { panic!() };
//! let json = serde_json::to_value(&errors).unwrap();
//! assert_eq!(json[0]["field"], "items.0.quantity"); // the client's spelling, not Rust's
//! assert_eq!(json[0]["code"], "too_large");
//! assert_eq!(json[1]["field"], "metadata.$where");
//! assert_eq!(json[1]["code"], "forbidden_key");
//!
//! // A string where an integer belongs is a 422 on that field, not a silent coercion.
//! let Err(Rejection::Invalid(errors)) =
//!     from_slice::<Order>(br#"{"items": [{"productId": "prod_1", "quantity": "2"}]}"#, &limits)
//! else { panic!() };
//! assert_eq!(errors.as_slice()[0].field(), "items.0.quantity");
//! assert_eq!(errors.as_slice()[0].code(), "invalid_type");
//! ```
//!
//! # Security
//! Handled: resource exhaustion by JSON shape (size, depth, width, long strings, long
//! numbers; the scan is iterative, so depth cannot overflow the stack); parser
//! differentials through duplicate keys and lone surrogates; type confusion; NoSQL operator
//! injection (`$gt`, `$where`) in maps and free-form values, and operator objects where a
//! scalar belongs (a typed field refuses them by type); prototype pollution keys for
//! JavaScript consumers; control characters and bidi overrides in text; path traversal in
//! all its usual encodings; uploads typed by content; server-side request forgery through
//! every IP spelling the `url` crate accepts, IPv6 forms that carry IPv4, DNS answers that
//! point inside, DNS rebinding (the vetted addresses are returned for the connection) and
//! redirects.
//!
//! Not handled here: SQL injection is prevented only by parameterized queries (values
//! travel apart from the SQL text), never by filtering input: a validator that refused
//! `'` or `--` would refuse `O'Brien` and still miss encodings. A value such as
//! `1' OR '1'='1` is valid data for a free-text field and passes unchanged; the
//! `sql-lint` feature's `find_dynamic_sql` lets a test assert that no query text is built
//! by interpolation. Output encoding beyond HTML text and attributes (JavaScript, CSS, URL
//! contexts) is the template engine's job. The path check and a later `open` are two
//! steps (see [`safe_join`]).

mod error;
mod fields;
mod ip;
mod json;
mod limits;
mod path;
mod scan;
#[cfg(feature = "sql-lint")]
mod sql_lint;
mod ssrf;
mod swar;
mod text;
mod upload;

pub use crate::error::{Error, ErrorKind};
pub use crate::fields::{FieldError, FieldErrors};
pub use crate::ip::{AddressClass, classify_ip};
pub use crate::json::{Rejection, from_slice, parse, validate};
pub use crate::limits::Limits;
pub use crate::path::safe_join;
#[cfg(feature = "sql-lint")]
pub use crate::sql_lint::{SqlFinding, find_dynamic_sql, find_dynamic_sql_in_dir};
#[cfg(feature = "resolve")]
pub use crate::ssrf::TokioResolver;
pub use crate::ssrf::{Resolve, UrlPolicy, VettedUrl};
pub use crate::text::{
    MULTILINE_PATTERN, MapRules, SINGLE_LINE_PATTERN, check_map, country_code, country_codes,
    escape_html, has_control_chars, is_country_code, is_operator_key, is_prototype_key, metadata,
    multiline_text, prefixed_id, safe_json, scalar, single_line,
};
pub use crate::upload::{FileType, UploadPolicy, detect_file_type};
