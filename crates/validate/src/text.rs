//! Ready validators for `#[validate(custom(function = ...))]` and plain checks.

use std::borrow::Cow;

use serde_json::Value;
use validator::ValidationError;

use crate::fields::KEY_PARAM;
use crate::swar;

/// ISO 3166-1 alpha-2 codes officially assigned, sorted (249 codes; from the Debian
/// `iso-codes` 4.15 data, which follows the ISO 3166 Maintenance Agency). Reserved and
/// user-assigned codes (`UK`, `EU`, `XK`, `ZZ`, ...) are deliberately absent.
const COUNTRIES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 code, in upper case.
///
/// ```
/// assert!(palisade_validate::is_country_code("DE"));
/// assert!(!palisade_validate::is_country_code("de"));
/// assert!(!palisade_validate::is_country_code("XX")); // two letters, but no country
/// ```
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.binary_search(&code).is_ok()
}

/// Validator: an ISO 3166-1 alpha-2 country code (upper case, officially assigned).
///
/// # Errors
/// Code `invalid_country`.
pub fn country_code(code: &str) -> Result<(), ValidationError> {
    if is_country_code(code) {
        Ok(())
    } else {
        Err(error(
            "invalid_country",
            "must be an ISO 3166-1 alpha-2 country code in upper case",
        ))
    }
}

/// Validator building block for identifiers like `^prod_[a-zA-Z0-9]+$`: `prefix`, then one
/// or more ASCII letters or digits, `max_len` bytes at most in all.
///
/// ```
/// use validator::ValidationError;
/// fn product_id(id: &str) -> Result<(), ValidationError> {
///     palisade_validate::prefixed_id(id, "prod_", 64)
/// }
/// assert!(product_id("prod_8xK2").is_ok());
/// assert!(product_id("prod_").is_err());
/// assert!(product_id("prod_1' OR '1'='1").is_err());
/// ```
///
/// # Errors
/// Code `invalid_format`.
pub fn prefixed_id(value: &str, prefix: &str, max_len: usize) -> Result<(), ValidationError> {
    let (id, head) = (value.as_bytes(), prefix.as_bytes());
    // Compared byte by byte: a prefix is a few bytes, and a `memcmp` call costs more.
    let ok = id.len() <= max_len
        && id.len() > head.len()
        && id.iter().zip(head).all(|(v, p)| v == p)
        && id.iter().skip(head.len()).all(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(error(
            "invalid_format",
            format!(
                "must be `{prefix}` followed by letters and digits, at most {max_len} characters"
            ),
        ))
    }
}

/// Characters that have no business in text a person typed on one line: C0 and C1
/// controls, DEL, line and paragraph separators, bidirectional overrides and isolates
/// ("Trojan Source", CVE-2021-42574) and the byte-order mark.
fn forbidden_char(c: char, multiline: bool) -> bool {
    match c {
        '\n' | '\r' | '\t' => !multiline,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{2028}' | '\u{2029}' => !multiline,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}' => true,
        _ => false,
    }
}

/// Whether `text` holds a character that [`forbidden_char`] refuses.
fn has_forbidden_char(text: &str, multiline: bool) -> bool {
    // Most text is printable ASCII: skip it eight bytes at a time. Then check bytes, where
    // only C0 controls and DEL can be forbidden, and decode characters only from the first
    // non-ASCII byte on (a character boundary).
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(word) = swar::word(bytes, start) {
        if swar::below(word, 0x20) | swar::equal(word, 0x7f) | swar::non_ascii(word) != 0 {
            break;
        }
        start += 8;
    }
    for (at, &b) in bytes.iter().enumerate().skip(start) {
        if !b.is_ascii() {
            return text
                .get(at..)
                .is_some_and(|rest| rest.chars().any(|c| forbidden_char(c, multiline)));
        }
        if (b < 0x20 || b == 0x7f) && forbidden_char(char::from(b), multiline) {
            return true;
        }
    }
    false
}

/// A JSON Schema `pattern` (ECMA-262, also valid syntax for Python's `re` and Rust's
/// `regex`) matching exactly the text [`single_line`] accepts, so that an OpenAPI document
/// can say what the validator will refuse. (In Python's `re`, `$` also matches before a
/// final newline, so a Python-based generator may still draw a trailing `\n`.)
pub const SINGLE_LINE_PATTERN: &str =
    r"^[^\x00-\x1F\x7F-\x9F\u2028\u2029\u202A-\u202E\u2066-\u2069\uFEFF]*$";

/// A JSON Schema `pattern` matching exactly the text [`multiline_text`] accepts.
pub const MULTILINE_PATTERN: &str =
    r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069\uFEFF]*$";

/// The ISO 3166-1 alpha-2 codes [`country_code`] accepts, sorted (for a schema's `enum`).
pub fn country_codes() -> &'static [&'static str] {
    &COUNTRIES
}

/// Whether `text` holds a character [`single_line`] refuses.
pub fn has_control_chars(text: &str) -> bool {
    has_forbidden_char(text, false)
}

/// Whether `text` has more than `max` characters, without counting them when its length in
/// bytes already settles it.
fn longer_than(text: &str, max: usize) -> bool {
    text.len() > max && text.chars().count() > max
}

/// Validator: single-line text with no control characters (including tab and newlines),
/// no bidirectional overrides and no byte-order mark.
///
/// # Errors
/// Code `control_character`.
pub fn single_line(text: &str) -> Result<(), ValidationError> {
    if has_forbidden_char(text, false) {
        Err(control_error())
    } else {
        Ok(())
    }
}

/// Validator: free text that may span lines (`\n`, `\r`, `\t` allowed) but holds no other
/// control character, no bidirectional override and no NUL.
///
/// # Errors
/// Code `control_character`.
pub fn multiline_text(text: &str) -> Result<(), ValidationError> {
    if has_forbidden_char(text, true) {
        Err(control_error())
    } else {
        Ok(())
    }
}

fn control_error() -> ValidationError {
    error("control_character", "must not contain control characters")
}

/// Whether `key` is a NoSQL query operator (`$gt`, `$where`, `$ne`, ...): MongoDB and its
/// relatives treat any key beginning with `$` as one.
pub fn is_operator_key(key: &str) -> bool {
    key.starts_with('$')
}

/// Whether `key` can reach a JavaScript object's prototype when a consumer merges the data
/// into an object (`__proto__`, `constructor`, `prototype`).
pub fn is_prototype_key(key: &str) -> bool {
    matches!(key, "__proto__" | "constructor" | "prototype")
}

/// Rules for a free-form map of strings, such as `metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRules {
    /// The most entries the map may hold.
    pub max_entries: usize,
    /// The longest key, in characters.
    pub max_key_chars: usize,
    /// The longest value, in characters.
    pub max_value_chars: usize,
}

impl MapRules {
    /// The seed's `metadata`: at most 10 entries, keys up to 40 characters, values up to
    /// 500 (Stripe's per-entry sizes).
    pub const METADATA: Self = Self {
        max_entries: 10,
        max_key_chars: 40,
        max_value_chars: 500,
    };
}

/// Validator building block for a string map: at most `rules.max_entries` entries; keys
/// non-empty, bounded, single-line, neither operators ([`is_operator_key`]) nor prototype
/// keys ([`is_prototype_key`]); values bounded and free of control characters.
///
/// A refused key is named in the field path (`metadata.$where`).
///
/// # Errors
/// Codes `too_many_entries`, `forbidden_key`, `invalid_key`, `too_long`, `control_character`.
pub fn check_map<'a, K, V, I>(map: I, rules: &MapRules) -> Result<(), ValidationError>
where
    I: IntoIterator<Item = (&'a K, &'a V)>,
    K: AsRef<str> + ?Sized + 'a,
    V: AsRef<str> + ?Sized + 'a,
{
    let mut count = 0usize;
    for (key, value) in map {
        count += 1;
        if count > rules.max_entries {
            return Err(error(
                "too_many_entries",
                format!("must have at most {} entries", rules.max_entries),
            ));
        }
        let (key, value) = (key.as_ref(), value.as_ref());
        let at = |mut e: ValidationError| {
            e.add_param(Cow::Borrowed(KEY_PARAM), &key);
            e
        };
        if is_operator_key(key) || is_prototype_key(key) {
            return Err(at(error(
                "forbidden_key",
                "keys may not start with `$` or be `__proto__`, `constructor` or `prototype`",
            )));
        }
        if key.is_empty() || longer_than(key, rules.max_key_chars) || has_control_chars(key) {
            return Err(at(error(
                "invalid_key",
                format!(
                    "keys must have 1 to {} characters and no control characters",
                    rules.max_key_chars
                ),
            )));
        }
        if longer_than(value, rules.max_value_chars) {
            return Err(at(error(
                "too_long",
                format!("must be at most {} characters", rules.max_value_chars),
            )));
        }
        if has_forbidden_char(value, true) {
            return Err(at(control_error()));
        }
    }
    Ok(())
}

/// Validator: the seed's `metadata` map ([`MapRules::METADATA`]).
///
/// # Errors
/// As [`check_map`].
pub fn metadata<S>(
    map: &std::collections::HashMap<String, String, S>,
) -> Result<(), ValidationError> {
    check_map(map, &MapRules::METADATA)
}

/// Validator for free-form JSON (`serde_json::Value` fields): refuses operator keys and
/// prototype keys at any depth, so that the value can be handed to a document database or
/// a JavaScript consumer as data.
///
/// # Errors
/// Code `forbidden_key`, with the key in the field path.
pub fn safe_json(value: &Value) -> Result<(), ValidationError> {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (key, inner) in map {
                    if is_operator_key(key) || is_prototype_key(key) {
                        let mut e = error(
                            "forbidden_key",
                            "keys may not start with `$` or be `__proto__`, `constructor` or `prototype`",
                        );
                        e.add_param(Cow::Borrowed(KEY_PARAM), key);
                        return Err(e);
                    }
                    stack.push(inner);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

/// Validator for a `serde_json::Value` field that must hold a scalar: refuses objects and
/// arrays, which is where operator objects (`{"$gt": ""}`) hide.
///
/// # Errors
/// Code `invalid_type`.
pub fn scalar(value: &Value) -> Result<(), ValidationError> {
    match value {
        Value::Object(_) | Value::Array(_) => Err(error(
            "invalid_type",
            "must be a string, number, boolean or null",
        )),
        _ => Ok(()),
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and quoted attribute values.
///
/// Validation keeps data as the client sent it; escaping happens at output, for the
/// context the data goes into. This covers HTML text and quoted attributes, not URLs,
/// JavaScript or CSS contexts.
///
/// ```
/// assert_eq!(
///     palisade_validate::escape_html("<img src=x onerror='alert(1)'>"),
///     "&lt;img src=x onerror=&#x27;alert(1)&#x27;&gt;"
/// );
/// ```
pub fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn error(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_patterns_accept_exactly_what_the_validators_accept() {
        let single = regex::Regex::new(SINGLE_LINE_PATTERN).unwrap();
        let multi = regex::Regex::new(MULTILINE_PATTERN).unwrap();
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            let text = format!("a{c}b");
            assert_eq!(single.is_match(&text), single_line(&text).is_ok(), "{c:?}");
            assert_eq!(
                multi.is_match(&text),
                multiline_text(&text).is_ok(),
                "{c:?}"
            );
        }
        assert!(single.is_match("") && multi.is_match("line 1\nline 2"));
        assert!(!single.is_match("line 1\nline 2"));
    }

    #[test]
    fn country_codes_are_the_accepted_ones() {
        assert_eq!(country_codes().len(), 249);
        assert!(country_codes().iter().all(|c| is_country_code(c)));
    }

    #[test]
    fn country_list_is_sorted_and_real() {
        assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]));
        for c in ["US", "DE", "FR", "GB", "JP", "SS", "CW", "AX", "ZW"] {
            assert!(is_country_code(c), "{c}");
        }
        for c in [
            "UK", "EU", "XK", "ZZ", "AA", "us", "Us", "USA", "", "U", "D\u{0}",
        ] {
            assert!(!is_country_code(c), "{c}");
        }
        assert!(country_code("XX").is_err());
    }

    #[test]
    fn prefixed_ids() {
        assert!(prefixed_id("prod_abc123XYZ", "prod_", 64).is_ok());
        for bad in [
            "prod_", "prod-1", "PROD_1", "prod_1 ", "prod_é", "prod_1\n", "xprod_1", "prod_a_b",
        ] {
            assert!(prefixed_id(bad, "prod_", 64).is_err(), "{bad:?}");
        }
        assert!(prefixed_id(&format!("prod_{}", "a".repeat(60)), "prod_", 64).is_err());
    }

    #[test]
    fn control_characters() {
        assert!(single_line("Main Street 1").is_ok());
        assert!(single_line("Zoë's café 🏠").is_ok());
        for bad in [
            "a\nb",
            "a\tb",
            "a\u{0}b",
            "a\u{7f}",
            "a\u{85}",
            "a\u{202e}b",
            "\u{2028}",
            "\u{feff}x",
        ] {
            assert!(single_line(bad).is_err(), "{bad:?}");
        }
        // Past the first eight bytes, where whole words of printable ASCII are skipped.
        for bad in [
            "Baker Street 221\u{0}",
            "Baker Street 22\u{7f}",
            "Baker Street 221B\u{202e}",
            "Baker Street\u{85}",
            "Baker St\tx",
        ] {
            assert!(single_line(bad).is_err(), "{bad:?}");
        }
        assert!(single_line("Baker Street 221B, Zoë's café").is_ok());
        assert!(multiline_text("Leave at the door.\nRing twice.\u{2028}").is_ok());
        assert!(multiline_text("Leave at the door.\nRing twice.\u{1b}").is_err());
        assert!(multiline_text("line 1\r\nline 2\tx").is_ok());
        assert!(multiline_text("a\u{0}").is_err());
        assert!(multiline_text("a\u{1b}[31m").is_err());
    }

    #[test]
    fn maps() {
        let mut m = std::collections::HashMap::new();
        m.insert("order_ref".to_owned(), "A-1".to_owned());
        assert!(metadata(&m).is_ok());
        for key in ["$where", "$gt", "__proto__", "constructor", "prototype"] {
            let mut bad = m.clone();
            bad.insert(key.to_owned(), "x".to_owned());
            let e = metadata(&bad).unwrap_err();
            assert_eq!(e.code, "forbidden_key");
            assert_eq!(
                e.params.get(KEY_PARAM),
                Some(&Value::String(key.to_owned()))
            );
        }
        let big: std::collections::HashMap<String, String> =
            (0..11).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(metadata(&big).unwrap_err().code, "too_many_entries");
        let mut long = m.clone();
        long.insert("k".into(), "v".repeat(501));
        assert_eq!(metadata(&long).unwrap_err().code, "too_long");
        let mut key = std::collections::BTreeMap::new();
        key.insert("k".repeat(41), "v".to_owned());
        assert_eq!(
            check_map(&key, &MapRules::METADATA).unwrap_err().code,
            "invalid_key"
        );
    }

    #[test]
    fn free_form_json() {
        assert!(safe_json(&serde_json::json!({"a": [{"b": 1}], "c": "$gt"})).is_ok());
        assert!(safe_json(&serde_json::json!({"a": [{"$where": "sleep(1)"}]})).is_err());
        assert!(safe_json(&serde_json::json!({"a": {"constructor": {"prototype": {}}}})).is_err());
        assert!(scalar(&serde_json::json!("x")).is_ok());
        assert!(scalar(&serde_json::json!({"$ne": null})).is_err());
        assert!(scalar(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn html() {
        assert_eq!(escape_html("plain"), Cow::Borrowed("plain"));
        assert_eq!(escape_html("a&b\"c"), "a&amp;b&quot;c");
    }
}
