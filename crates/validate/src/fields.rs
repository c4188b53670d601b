//! Validation errors in the shape clients receive: `[{field, code, message}]`, with the
//! field names the client sent (after `#[serde(rename)]` / `rename_all`), not Rust's.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde_json::Value;
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

/// The parameter a map validator sets to name the offending key, which is then appended to
/// the field path (`metadata.$where`).
pub(crate) const KEY_PARAM: &str = "palisade_key";

/// One problem with one field: serialises as `{"field", "code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    field: String,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
}

impl FieldError {
    /// A field error: `field` is the dotted path in the body (`items.0.quantity`, empty for
    /// the whole body), `code` a stable snake_case code, `message` a human sentence.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The dotted path of the field in the body, with array indices as numbers.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The stable snake_case code (`too_long`, `invalid_type`, `unknown_field`, ...).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// A human-readable message; it never repeats the refused value.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Every field error found in one body, sorted by field path; serialises as a JSON array,
/// ready to be the `errors` member of an RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// The errors, in order.
    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
    }

    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors as a vector.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// The first error for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }

    /// Converts `validator`'s errors, mapping Rust field names to the names in `input`
    /// (the JSON the value was read from) where it is given.
    pub(crate) fn from_validation(errors: &ValidationErrors, input: Option<&Value>) -> Self {
        let mut out = Vec::new();
        let mut path = Vec::new();
        collect(errors, input, &mut path, &mut out);
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.code.cmp(&b.1.code)));
        Self(out.into_iter().map(|(_, e)| e).collect())
    }
}

impl From<Vec<FieldError>> for FieldErrors {
    fn from(errors: Vec<FieldError>) -> Self {
        Self(errors)
    }
}

/// Rust field names are kept as they are: without the JSON a value came from there is
/// nothing to map them to. Prefer [`from_slice`](crate::from_slice), which maps them.
impl From<&ValidationErrors> for FieldErrors {
    fn from(errors: &ValidationErrors) -> Self {
        Self::from_validation(errors, None)
    }
}

impl<'a> IntoIterator for &'a FieldErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {} ({})", e.field, e.message, e.code)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Index(usize),
    Key(String),
}

fn join(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() {
            out.push('.');
        }
        match seg {
            Seg::Index(i) => out.push_str(&i.to_string()),
            Seg::Key(k) => out.push_str(k),
        }
    }
    out
}

fn collect(
    errors: &ValidationErrors,
    node: Option<&Value>,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, FieldError)>,
) {
    for (name, kind) in errors.errors() {
        if name == "__all__" {
            if let ValidationErrorsKind::Field(list) = kind {
                for e in list {
                    out.push((path.clone(), convert(join(path), e)));
                }
            }
            continue;
        }
        let (client, child) = resolve(name, node);
        // `#[serde(flatten)]`: the nested struct's fields sit in this very object.
        if child.is_none()
            && let (ValidationErrorsKind::Struct(inner), Some(Value::Object(obj))) = (kind, node)
            && inner.errors().keys().any(|k| lookup(k, obj).is_some())
        {
            collect(inner, node, path, out);
            continue;
        }
        path.push(Seg::Key(client));
        match kind {
            ValidationErrorsKind::Field(list) => {
                for e in list {
                    let mut field_path = path.clone();
                    if let Some(Value::String(key)) = e.params.get(KEY_PARAM) {
                        field_path.push(Seg::Key(key.clone()));
                    }
                    let error = convert(join(&field_path), e);
                    out.push((field_path, error));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect(inner, child, path, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    path.push(Seg::Index(*index));
                    let element = match child {
                        Some(Value::Array(a)) => a.get(*index),
                        _ => None,
                    };
                    collect(inner, element, path, out);
                    path.pop();
                }
            }
        }
        path.pop();
    }
}

/// The spellings serde's `rename_all` can give a snake_case Rust field name, most likely
/// first.
fn spellings(rust: &str) -> [String; 8] {
    let words: Vec<&str> = rust.split('_').filter(|w| !w.is_empty()).collect();
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect::<String>())
            .unwrap_or_default()
    };
    let pascal: String = words.iter().map(|w| cap(w)).collect();
    let camel = words
        .split_first()
        .map(|(first, rest)| {
            let mut s = (*first).to_owned();
            s.extend(rest.iter().map(|w| cap(w)));
            s
        })
        .unwrap_or_default();
    [
        rust.to_owned(),
        camel,
        pascal,
        rust.replace('_', "-"),
        rust.to_uppercase(),
        rust.to_uppercase().replace('_', "-"),
        rust.replace('_', ""),
        rust.replace('_', "").to_uppercase(),
    ]
}

fn lookup<'v>(rust: &str, obj: &'v serde_json::Map<String, Value>) -> Option<(String, &'v Value)> {
    spellings(rust)
        .into_iter()
        .find_map(|s| obj.get(&s).map(|v| (s, v)))
}

/// The name the client used for Rust field `rust` in `node`, and the value found there.
/// A field the client did not send takes the spelling its siblings use.
fn resolve<'v>(rust: &str, node: Option<&'v Value>) -> (String, Option<&'v Value>) {
    let Some(Value::Object(obj)) = node else {
        return (rust.to_owned(), None);
    };
    if let Some((name, value)) = lookup(rust, obj) {
        return (name, Some(value));
    }
    let [snake, camel, pascal, kebab, screaming, screaming_kebab, ..] = spellings(rust);
    let style = obj.keys().find_map(|k| {
        let upper = k.chars().any(char::is_uppercase);
        let lower = k.chars().any(char::is_lowercase);
        let first_upper = k.chars().next().is_some_and(char::is_uppercase);
        if k.contains('-') {
            Some(if lower {
                kebab.clone()
            } else {
                screaming_kebab.clone()
            })
        } else if upper && !lower {
            Some(screaming.clone())
        } else if first_upper {
            Some(pascal.clone())
        } else if upper {
            Some(camel.clone())
        } else if k.contains('_') {
            Some(snake.clone())
        } else {
            None
        }
    });
    (style.unwrap_or(snake), None)
}

fn unit(value: Option<&Value>) -> (&'static str, Option<usize>) {
    match value {
        Some(Value::String(s)) => ("characters", Some(s.chars().count())),
        Some(Value::Array(a)) => ("items", Some(a.len())),
        Some(Value::Object(o)) => ("entries", Some(o.len())),
        _ => ("characters", None),
    }
}

fn convert(field: String, e: &ValidationError) -> FieldError {
    let param = |name: &str| e.params.get(name);
    let num = |name: &str| param(name).map(ToString::to_string);
    let (code, default_message): (Cow<'static, str>, Cow<'static, str>) = match e.code.as_ref() {
        "length" => {
            let (unit, actual) = unit(param("value"));
            let min = param("min").and_then(Value::as_u64);
            let max = param("max").and_then(Value::as_u64);
            let equal = param("equal").and_then(Value::as_u64);
            let actual = actual.map(|a| a as u64);
            match (equal, min, max, actual) {
                (Some(n), ..) => (
                    "invalid_length".into(),
                    format!("must be exactly {n} {unit}").into(),
                ),
                (_, Some(min), _, Some(a)) if a < min => (
                    "too_short".into(),
                    format!("must be at least {min} {unit}").into(),
                ),
                (_, _, Some(max), _) => (
                    "too_long".into(),
                    format!("must be at most {max} {unit}").into(),
                ),
                (_, Some(min), None, _) => (
                    "too_short".into(),
                    format!("must be at least {min} {unit}").into(),
                ),
                _ => ("invalid_length".into(), "has an invalid length".into()),
            }
        }
        "range" => {
            let value = param("value").and_then(Value::as_f64);
            let min = param("min").and_then(Value::as_f64);
            let below = matches!((value, min), (Some(v), Some(m)) if v < m);
            match (below, num("min"), num("max")) {
                (true, Some(min), _) => {
                    ("too_small".into(), format!("must be at least {min}").into())
                }
                (false, _, Some(max)) => {
                    ("too_large".into(), format!("must be at most {max}").into())
                }
                (_, Some(min), None) => {
                    ("too_small".into(), format!("must be at least {min}").into())
                }
                _ => ("out_of_range".into(), "is out of range".into()),
            }
        }
        "regex" => ("invalid_format".into(), "has an invalid format".into()),
        "required" => ("required".into(), "is required".into()),
        "email" => ("invalid_email".into(), "must be an email address".into()),
        "url" => ("invalid_url".into(), "must be a URL".into()),
        "non_control_character" => (
            "control_character".into(),
            "must not contain control characters".into(),
        ),
        other => (Cow::Owned(other.to_owned()), "is invalid".into()),
    };
    FieldError {
        field,
        code,
        message: e.message.clone().unwrap_or(default_message),
    }
}

/// Maps a serde data error (type mismatch, unknown or missing field, ...) to a field
/// error, without repeating the client's value.
pub(crate) fn from_serde(
    path: Option<&serde_path_to_error::Path>,
    error: &serde_json::Error,
) -> FieldError {
    let mut segments: Vec<String> = Vec::new();
    for seg in path.into_iter().flat_map(serde_path_to_error::Path::iter) {
        match seg {
            serde_path_to_error::Segment::Seq { index } => segments.push(index.to_string()),
            serde_path_to_error::Segment::Map { key } => segments.push(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => segments.push(variant.clone()),
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    let full = error.to_string();
    let msg = full
        .rfind(" at line ")
        .and_then(|at| full.get(..at))
        .unwrap_or(&full);
    let quoted = |s: &str| s.split('`').nth(1).map(str::to_owned);
    // serde_path_to_error already ends the path with an unknown key; a missing one is not
    // in the input, so it is added here.
    let push_name = |segments: &mut Vec<String>, name: Option<String>| {
        if let Some(name) = name
            && segments.last() != Some(&name)
        {
            segments.push(name);
        }
    };
    let expected = |s: &str| {
        s.rsplit_once(", expected ")
            .map(|(_, e)| describe_expected(e))
            .unwrap_or_else(|| "a different value".to_owned())
    };
    let (code, message): (&'static str, String) =
        if let Some(rest) = msg.strip_prefix("unknown field ") {
            push_name(&mut segments, quoted(rest));
            let allowed = rest
                .split_once(", expected ")
                .map(|(_, e)| format!("unknown field; expected {e}"))
                .unwrap_or_else(|| "unknown field; no fields are accepted here".to_owned());
            ("unknown_field", allowed)
        } else if let Some(rest) = msg.strip_prefix("missing field ") {
            push_name(&mut segments, quoted(rest));
            ("required", "is required".to_owned())
        } else if let Some(rest) = msg.strip_prefix("duplicate field ") {
            push_name(&mut segments, quoted(rest));
            ("duplicate_key", "appears more than once".to_owned())
        } else if msg.starts_with("invalid type: ") {
            ("invalid_type", format!("must be {}", expected(msg)))
        } else if msg.starts_with("invalid value: ") {
            ("invalid_value", format!("must be {}", expected(msg)))
        } else if msg.starts_with("invalid length ") {
            ("invalid_length", format!("must be {}", expected(msg)))
        } else if msg.starts_with("unknown variant ") {
            ("unknown_variant", format!("must be {}", expected(msg)))
        } else {
            // A type's own `Deserialize` message: written by the type's author, bounded here.
            ("invalid_value", msg.chars().take(200).collect())
        };
    FieldError::new(segments.join("."), code, message)
}

fn describe_expected(e: &str) -> String {
    match e {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a borrowed string" | "a string" => "a string".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        "unit" => "null".to_owned(),
        _ if e.starts_with("struct ") => "an object".to_owned(),
        _ if e.starts_with("tuple") => "an array".to_owned(),
        _ => e.chars().take(200).collect(),
    }
}
