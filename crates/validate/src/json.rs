use std::fmt;

use serde::de::DeserializeOwned;
use validator::Validate;

use crate::fields::{self, FieldErrors};
use crate::{Error, ErrorKind, Limits, scan};

/// Why a body was refused by [`from_slice`].
///
/// The variants map to distinct answers: [`TooLarge`](Rejection::TooLarge) is HTTP 413,
/// [`Malformed`](Rejection::Malformed) is 400 (the body is not acceptable JSON at all),
/// [`Invalid`](Rejection::Invalid) is 422 with the field errors in the problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The body is larger than the limit (bytes).
    TooLarge {
        /// The limit that was exceeded, in bytes.
        limit: usize,
    },
    /// The body is not UTF-8 JSON within the structural limits, or has a duplicate or
    /// forbidden key.
    Malformed(Error),
    /// The body is JSON but does not match the schema: wrong types, unknown or missing
    /// fields, or failed validation rules.
    Invalid(FieldErrors),
}

impl Rejection {
    /// A stable code: `body_too_large`, the [`Error::code`] of a malformed body, or
    /// `validation_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => ErrorKind::BodyTooLarge.code(),
            Self::Malformed(e) => e.code(),
            Self::Invalid(_) => "validation_failed",
        }
    }

    /// The field errors of an [`Invalid`](Rejection::Invalid) body.
    pub fn field_errors(&self) -> Option<&FieldErrors> {
        match self {
            Self::Invalid(errors) => Some(errors),
            _ => None,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { limit } => write!(f, "request body larger than {limit} bytes"),
            Self::Malformed(e) => e.fmt(f),
            Self::Invalid(errors) => write!(f, "validation failed: {errors}"),
        }
    }
}

impl std::error::Error for Rejection {}

/// Reads a `T` from a JSON body within `limits`, then runs its `validator` rules.
///
/// In order: the size limit; UTF-8; one pass over the bytes for the grammar, depth, key,
/// array and string limits, duplicate keys and `__proto__`; strict typed deserialization
/// (`"2"` is not `2`, `1.5` is not an integer; unknown fields refused when `T` says
/// `#[serde(deny_unknown_fields)]`); then [`Validate::validate`]. Field paths in the errors
/// use the names the client sent.
///
/// # Errors
/// A [`Rejection`] saying which of the three answers the client gets.
pub fn from_slice<T>(body: &[u8], limits: &Limits) -> Result<T, Rejection>
where
    T: DeserializeOwned + Validate,
{
    let (value, text) = read::<T>(body, limits)?;
    match value.validate() {
        Ok(()) => Ok(value),
        Err(errors) => {
            // Rare path: parse again, untyped, to learn the names the client used.
            let input: Option<serde_json::Value> = serde_json::from_str(text).ok();
            Err(Rejection::Invalid(FieldErrors::from_validation(
                &errors,
                input.as_ref(),
            )))
        }
    }
}

/// [`from_slice`] without the `validator` step, for types that carry no rules.
///
/// # Errors
/// As [`from_slice`].
pub fn parse<T: DeserializeOwned>(body: &[u8], limits: &Limits) -> Result<T, Rejection> {
    read::<T>(body, limits).map(|(value, _)| value)
}

/// Runs `value`'s `validator` rules and converts the errors. Field names are Rust's (there
/// is no input to learn the client's spelling from); prefer [`from_slice`] for bodies.
///
/// # Errors
/// The field errors, sorted by path.
pub fn validate<T: Validate>(value: &T) -> Result<(), FieldErrors> {
    value.validate().map_err(|e| FieldErrors::from(&e))
}

fn read<'b, T: DeserializeOwned>(
    body: &'b [u8],
    limits: &Limits,
) -> Result<(T, &'b str), Rejection> {
    if body.len() > limits.max_body_bytes {
        return Err(Rejection::TooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Rejection::Malformed(Error::new(ErrorKind::InvalidUtf8)))?;
    scan::scan(body, limits).map_err(Rejection::Malformed)?;
    match serde_json::from_str::<T>(text) {
        Ok(value) => Ok((value, text)),
        Err(e) => Err(classify::<T>(text, &e)),
    }
}

/// The fast path failed: run the deserializer again with path tracking, only now.
fn classify<T: DeserializeOwned>(text: &str, first: &serde_json::Error) -> Rejection {
    if first.classify() != serde_json::error::Category::Data {
        return Rejection::Malformed(Error::new(ErrorKind::Syntax));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let error = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => fields::from_serde(Some(e.path()), e.inner()),
        Ok(_) => fields::from_serde(None, first),
    };
    Rejection::Invalid(FieldErrors::from(vec![error]))
}
