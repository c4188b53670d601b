//! The bad-input table: every hostile case, the guard that must stop it, and the code it
//! must answer with. Removing any guard makes a row fail.

mod common;

use common::CreateOrder;
use palisade_validate::{
    FileType, Limits, Rejection, UploadPolicy, UrlPolicy, from_slice, safe_join,
};

enum Input {
    /// A JSON body for `POST /api/orders`.
    Body(&'static str),
    /// A valid order with this JSON pointer replaced by this JSON value.
    Field(&'static str, &'static str),
    /// A URL the server is asked to fetch.
    Url(&'static str),
    /// A client path under an upload directory.
    Path(&'static str),
    /// An uploaded avatar (PNG or JPEG allowed, 1 KiB) with a declared type.
    Upload(&'static [u8], Option<&'static str>),
}

use Input::{Body, Field, Path, Upload, Url};

/// (name, input, expected code, expected field for JSON cases).
const CASES: &[(&str, Input, &str, Option<&str>)] = &[
    // NoSQL operator injection.
    (
        "nosql $gt object in scalar",
        Field("/items/0/product_id", r#"{"$gt": ""}"#),
        "invalid_type",
        Some("items.0.product_id"),
    ),
    (
        "nosql $ne null in scalar",
        Field("/shipping_address/city", r#"{"$ne": null}"#),
        "invalid_type",
        Some("shipping_address.city"),
    ),
    (
        "nosql $where in scalar",
        Field("/notes", r#"{"$where": "sleep(5000)"}"#),
        "invalid_type",
        Some("notes"),
    ),
    (
        "nosql $regex in scalar",
        Field("/shipping_address/country", r#"{"$regex": ".*"}"#),
        "invalid_type",
        Some("shipping_address.country"),
    ),
    (
        "nosql $in array in scalar",
        Field("/items/0/product_id", r#"["prod_1", "prod_2"]"#),
        "invalid_type",
        Some("items.0.product_id"),
    ),
    (
        "nosql operator key in metadata",
        Field("/metadata", r#"{"$where": "this.a > 1"}"#),
        "forbidden_key",
        Some("metadata.$where"),
    ),
    (
        "nosql $gt key in metadata",
        Field("/metadata", r#"{"$gt": "x"}"#),
        "forbidden_key",
        Some("metadata.$gt"),
    ),
    (
        "nosql operator object in metadata value",
        Field("/metadata", r#"{"a": {"$gt": ""}}"#),
        "invalid_type",
        Some("metadata.a"),
    ),
    (
        "nosql operator in quantity",
        Field("/items/0/quantity", r#"{"$gt": 0}"#),
        "invalid_type",
        Some("items.0.quantity"),
    ),
    // Prototype pollution.
    (
        "__proto__ at top level",
        Body(r#"{"__proto__": {"admin": true}}"#),
        "forbidden_key",
        Some("__proto__"),
    ),
    (
        "__proto__ nested",
        Field("/shipping_address", r#"{"__proto__": {}}"#),
        "forbidden_key",
        Some("shipping_address.__proto__"),
    ),
    (
        "__proto__ escaped",
        Body(r#"{"__pr\u006fto__": 1}"#),
        "forbidden_key",
        Some("__proto__"),
    ),
    (
        "__proto__ in metadata",
        Field("/metadata", r#"{"__proto__": "x"}"#),
        "forbidden_key",
        Some("metadata.__proto__"),
    ),
    (
        "constructor in metadata",
        Field("/metadata", r#"{"constructor": "x"}"#),
        "forbidden_key",
        Some("metadata.constructor"),
    ),
    (
        "prototype in metadata",
        Field("/metadata", r#"{"prototype": "x"}"#),
        "forbidden_key",
        Some("metadata.prototype"),
    ),
    (
        "constructor.prototype as unknown field",
        Body(r#"{"constructor": {"prototype": {"admin": true}}}"#),
        "unknown_field",
        Some("constructor"),
    ),
    // Mass assignment and type confusion.
    (
        "unknown field owner_id",
        Field("/shipping_address/owner_id", "1"),
        "unknown_field",
        Some("shipping_address.owner_id"),
    ),
    (
        "string for integer",
        Field("/items/0/quantity", r#""2""#),
        "invalid_type",
        Some("items.0.quantity"),
    ),
    (
        "float for integer",
        Field("/items/0/quantity", "1.5"),
        "invalid_type",
        Some("items.0.quantity"),
    ),
    (
        "exponent for integer",
        Field("/items/0/quantity", "1e2"),
        "invalid_type",
        Some("items.0.quantity"),
    ),
    (
        "negative quantity",
        Field("/items/0/quantity", "-5"),
        "invalid_value",
        Some("items.0.quantity"),
    ),
    (
        "huge quantity",
        Field("/items/0/quantity", "99999999999999999999"),
        "invalid_type",
        Some("items.0.quantity"),
    ),
    (
        "bool for string",
        Field("/notes", "true"),
        "invalid_type",
        Some("notes"),
    ),
    (
        "object for array",
        Field("/items", r#"{"length": 1}"#),
        "invalid_type",
        Some("items"),
    ),
    // Parser differentials and malformed JSON.
    (
        "duplicate key (last-wins smuggling)",
        Body(r#"{"items": [], "items": [{"product_id": "prod_1", "quantity": 1}]}"#),
        "duplicate_key",
        Some("items"),
    ),
    (
        "duplicate key by escape",
        Body(r#"{"notes": "a", "n\u006ftes": "b"}"#),
        "duplicate_key",
        Some("notes"),
    ),
    (
        "lone surrogate",
        Body(r#"{"notes": "\ud800"}"#),
        "invalid_json",
        Some("notes"),
    ),
    (
        "trailing comma",
        Body(r#"{"items": [1,]}"#),
        "invalid_json",
        None,
    ),
    ("single quotes", Body("{'items': []}"), "invalid_json", None),
    (
        "comment",
        Body(r#"{"items": [] /* x */}"#),
        "invalid_json",
        None,
    ),
    ("NaN", Body(r#"{"items": NaN}"#), "invalid_json", None),
    ("byte order mark", Body("\u{feff}{}"), "invalid_json", None),
    ("trailing garbage", Body("{} {}"), "invalid_json", None),
    (
        "raw control char in string",
        Body("{\"notes\": \"a\u{1}b\"}"),
        "invalid_json",
        None,
    ),
    (
        "deep nesting bomb",
        Body(
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ),
        "depth_exceeded",
        None,
    ),
    (
        "long number",
        Body("1111111111111111111111111111111111111111111111111111111111111111111111111111"),
        "string_too_long",
        None,
    ),
    // Injection strings in text: control characters, terminal escapes, bidi overrides.
    (
        "NUL in street",
        Field("/shipping_address/street", r#""Main St\u0000.php""#),
        "control_character",
        Some("shipping_address.street"),
    ),
    (
        "CRLF header injection in city",
        Field("/shipping_address/city", r#""x\r\nSet-Cookie: a=b""#),
        "control_character",
        Some("shipping_address.city"),
    ),
    (
        "ANSI escape in notes",
        Field("/notes", r#""\u001b[2J""#),
        "control_character",
        Some("notes"),
    ),
    (
        "bidi override in street",
        Field("/shipping_address/street", r#""abc\u202edcba""#),
        "control_character",
        Some("shipping_address.street"),
    ),
    (
        "SQL injection in product id",
        Field("/items/0/product_id", r#""prod_1' OR '1'='1""#),
        "invalid_format",
        Some("items.0.product_id"),
    ),
    (
        "XSS in product id",
        Field("/items/0/product_id", r#""prod_<script>""#),
        "invalid_format",
        Some("items.0.product_id"),
    ),
    (
        "command injection in product id",
        Field("/items/0/product_id", r#""prod_1;rm -rf /""#),
        "invalid_format",
        Some("items.0.product_id"),
    ),
    (
        "homoglyph product id",
        Field("/items/0/product_id", r#""prod_аbc""#),
        "invalid_format",
        Some("items.0.product_id"),
    ),
    (
        "fake country code",
        Field("/shipping_address/country", r#""ZZ""#),
        "invalid_country",
        Some("shipping_address.country"),
    ),
    (
        "lower-case country code",
        Field("/shipping_address/country", r#""us""#),
        "invalid_country",
        Some("shipping_address.country"),
    ),
    // SSRF: every spelling of loopback and metadata, and the structural tricks.
    (
        "ssrf loopback",
        Url("https://127.0.0.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf decimal",
        Url("https://2130706433/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf octal",
        Url("https://0177.0.0.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf hex",
        Url("https://0x7f.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf hex dotted",
        Url("https://0x7f.0x0.0x0.0x1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf short",
        Url("https://127.1/"),
        "forbidden_address",
        None,
    ),
    ("ssrf zero", Url("https://0/"), "forbidden_address", None),
    (
        "ssrf trailing dot",
        Url("https://127.0.0.1./"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf percent-encoded host",
        Url("https://%31%32%37.0.0.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf ideographic dots",
        Url("https://127\u{3002}0\u{3002}0\u{3002}1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf fullwidth digits",
        Url("https://\u{ff11}\u{ff12}\u{ff17}.0.0.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf metadata",
        Url("https://169.254.169.254/latest/meta-data/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf metadata decimal",
        Url("https://2852039166/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf ipv6 loopback",
        Url("https://[::1]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf ipv4-mapped",
        Url("https://[::ffff:127.0.0.1]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf ipv4-mapped hex",
        Url("https://[::ffff:7f00:1]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf ipv4-mapped metadata",
        Url("https://[::ffff:a9fe:a9fe]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf nat64 loopback",
        Url("https://[64:ff9b::7f00:1]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf 6to4 private",
        Url("https://[2002:c0a8:101::1]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf teredo loopback",
        Url("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf ula metadata",
        Url("https://[fd00:ec2::254]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf link-local v6",
        Url("https://[fe80::1]/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf private 10/8",
        Url("https://10.0.0.5/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf private 192.168",
        Url("https://192.168.0.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf cgnat",
        Url("https://100.64.0.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf unspecified",
        Url("https://0.0.0.0/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf multicast",
        Url("https://224.0.0.1/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf documentation",
        Url("https://192.0.2.10/"),
        "forbidden_address",
        None,
    ),
    (
        "ssrf localhost name",
        Url("https://localhost/"),
        "host_not_allowed",
        None,
    ),
    (
        "ssrf localhost trailing dot",
        Url("https://LOCALHOST./"),
        "host_not_allowed",
        None,
    ),
    (
        "ssrf internal name",
        Url("https://metadata.google.internal/"),
        "host_not_allowed",
        None,
    ),
    (
        "ssrf userinfo",
        Url("https://user:pass@example.com/"),
        "userinfo_not_allowed",
        None,
    ),
    (
        "ssrf userinfo confusion",
        Url("https://example.com@127.0.0.1/"),
        "userinfo_not_allowed",
        None,
    ),
    (
        "ssrf empty userinfo",
        Url("https://@example.com/"),
        "userinfo_not_allowed",
        None,
    ),
    (
        "ssrf http scheme",
        Url("http://example.com/"),
        "scheme_not_allowed",
        None,
    ),
    (
        "ssrf file scheme",
        Url("file:///etc/passwd"),
        "scheme_not_allowed",
        None,
    ),
    (
        "ssrf gopher scheme",
        Url("gopher://127.0.0.1:6379/_FLUSHALL"),
        "scheme_not_allowed",
        None,
    ),
    (
        "ssrf port to redis",
        Url("https://example.com:6379/"),
        "port_not_allowed",
        None,
    ),
    ("ssrf not a url", Url("not a url"), "invalid_url", None),
    // Path traversal.
    (
        "path dotdot",
        Path("../../etc/passwd"),
        "path_traversal",
        None,
    ),
    (
        "path backslash dotdot",
        Path("..\\..\\windows\\win.ini"),
        "path_traversal",
        None,
    ),
    (
        "path nested dotdot",
        Path("a/b/../../../x"),
        "path_traversal",
        None,
    ),
    ("path absolute", Path("/etc/passwd"), "absolute_path", None),
    (
        "path drive",
        Path("C:\\Windows\\win.ini"),
        "absolute_path",
        None,
    ),
    ("path unc", Path("\\\\evil\\share"), "absolute_path", None),
    (
        "path NUL truncation",
        Path("avatar.png\u{0}.php"),
        "control_character",
        None,
    ),
    (
        "path encoded",
        Path("%2e%2e%2fetc%2fpasswd"),
        "encoded_traversal",
        None,
    ),
    (
        "path double encoded",
        Path("%252e%252e%252f"),
        "encoded_traversal",
        None,
    ),
    (
        "path overlong utf-8",
        Path("%c0%ae%c0%ae/etc"),
        "encoded_traversal",
        None,
    ),
    (
        "path fullwidth dots",
        Path("\u{ff0e}\u{ff0e}/etc"),
        "encoded_traversal",
        None,
    ),
    (
        "path windows trailing dot",
        Path("a/.. ./b"),
        "path_traversal",
        None,
    ),
    // Uploads.
    (
        "upload svg as png",
        Upload(
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
            Some("image/png"),
        ),
        "file_type_not_allowed",
        None,
    ),
    (
        "upload html",
        Upload(b"<!DOCTYPE html><script>alert(1)</script>", None),
        "file_type_not_allowed",
        None,
    ),
    (
        "upload php polyglot name",
        Upload(b"<?php system($_GET['c']); ?>", Some("image/jpeg")),
        "file_type_not_allowed",
        None,
    ),
    (
        "upload pdf not allowed",
        Upload(b"%PDF-1.7\n", Some("application/pdf")),
        "file_type_not_allowed",
        None,
    ),
    (
        "upload declared type lies",
        Upload(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("image/gif")),
        "file_type_mismatch",
        None,
    ),
    (
        "upload empty",
        Upload(b"", None),
        "file_type_not_allowed",
        None,
    ),
];

fn body_for(pointer: &str, value: &str) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(value).expect("case value is JSON");
    let mut body = common::valid_body();
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let target = if parent.is_empty() {
        &mut body
    } else {
        body.pointer_mut(parent).expect("parent exists")
    };
    target[key] = value;
    serde_json::to_vec(&body).expect("serialises")
}

#[test]
fn hostile_table() {
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
    let dir = tempfile::tempdir().unwrap();
    let policy = UrlPolicy::default();
    let uploads = UploadPolicy::new(1024, [FileType::Png, FileType::Jpeg]);
    let limits = Limits::default().max_depth(32);
    let mut failures = Vec::new();
    for (name, input, code, field) in CASES {
        let (got_code, got_field): (String, Option<String>) = match input {
            Body(_) | Field(..) => {
                let body = match input {
                    Body(b) => b.as_bytes().to_vec(),
                    Field(p, v) => body_for(p, v),
                    _ => unreachable!(),
                };
                match from_slice::<CreateOrder>(&body, &limits) {
                    Ok(_) => ("accepted".into(), None),
                    Err(Rejection::Invalid(e)) => {
                        let first = &e.as_slice()[0];
                        (first.code().into(), Some(first.field().into()))
                    }
                    Err(Rejection::Malformed(e)) => (e.code().into(), e.field().map(Into::into)),
                    Err(other) => (other.code().into(), None),
                }
            }
            Url(u) => match policy.check_url(u) {
                Ok(_) => ("accepted".into(), None),
                Err(e) => (e.code().into(), None),
            },
            Path(p) => match safe_join(dir.path(), p) {
                Ok(_) => ("accepted".into(), None),
                Err(e) => (e.code().into(), None),
            },
            Upload(bytes, declared) => match uploads.check(bytes, *declared) {
                Ok(_) => ("accepted".into(), None),
                Err(e) => (e.code().into(), None),
            },
        };
        let field_ok = field.is_none_or(|f| got_field.as_deref() == Some(f));
        if got_code != *code || !field_ok {
            failures.push(format!(
                "{name}: expected {code} at {field:?}, got {got_code} at {got_field:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn benign_look_alikes_are_accepted() {
    // The guards must not be so broad that ordinary input fails.
    let policy = UrlPolicy::default();
    for url in [
        "https://example.com/hook",
        "https://api.example.com:443/a?b=c#d",
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
    ] {
        assert!(policy.check_url(url).is_ok(), "{url}");
    }
    let dir = tempfile::tempdir().unwrap();
    for path in ["a.png", "dir/sub/file.txt", "100%.txt", "..hidden", "a..b"] {
        assert!(safe_join(dir.path(), path).is_ok(), "{path}");
    }
    for notes in [
        r#""O'Brien; DROP TABLE""#,
        r#""<b>bold</b>""#,
        r#""$5 off""#,
        r#""línea 1\nlínea 2""#,
    ] {
        assert!(
            from_slice::<CreateOrder>(&body_for("/notes", notes), &Limits::default()).is_ok(),
            "{notes}"
        );
    }
}
