//! A JSON pass that refuses duplicate member names, used for every header and claims
//! object (jsonwebtoken keeps the last value of a repeated unregistered claim, so two
//! parsers could disagree about what a token says).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};

const DUPLICATE_MARKER: &str = "palisade-duplicate-json-key";

fn map_json_error(error: &serde_json::Error) -> Error {
    if error.to_string().contains(DUPLICATE_MARKER) {
        Error::new(ErrorKind::DuplicateJsonKey)
    } else {
        Error::new(ErrorKind::Malformed)
    }
}

/// A member name, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A `serde_json::Value` whose objects, at every depth, have unique member names.
pub(crate) struct StrictValue(pub(crate) Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StrictValueVisitor)
            .map(StrictValue)
    }
}

struct StrictValueVisitor;

impl<'de> Visitor<'de> for StrictValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        Ok(Value::Object(strict_map(&mut map)?))
    }
}

fn strict_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Map<String, Value>, A::Error> {
    let mut out = Map::new();
    while let Some(key) = map.next_key::<String>()? {
        let StrictValue(value) = map.next_value()?;
        if out.insert(key, value).is_some() {
            return Err(de::Error::custom(DUPLICATE_MARKER));
        }
    }
    Ok(out)
}

/// Validates structure and uniqueness of a value we do not keep.
struct StrictIgnored;

impl<'de> de::Deserialize<'de> for StrictIgnored {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictIgnored;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<StrictIgnored, E> {
                Ok(StrictIgnored)
            }
            fn visit_i64<E>(self, _: i64) -> Result<StrictIgnored, E> {
                Ok(StrictIgnored)
            }
            fn visit_u64<E>(self, _: u64) -> Result<StrictIgnored, E> {
                Ok(StrictIgnored)
            }
            fn visit_f64<E>(self, _: f64) -> Result<StrictIgnored, E> {
                Ok(StrictIgnored)
            }
            fn visit_str<E>(self, _: &str) -> Result<StrictIgnored, E> {
                Ok(StrictIgnored)
            }
            fn visit_unit<E>(self) -> Result<StrictIgnored, E> {
                Ok(StrictIgnored)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictIgnored, A::Error> {
                while seq.next_element::<StrictIgnored>()?.is_some() {}
                Ok(StrictIgnored)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictIgnored, A::Error> {
                let mut seen = BTreeSet::new();
                while let Some(Key(key)) = map.next_key()? {
                    map.next_value::<StrictIgnored>()?;
                    if !seen.insert(key) {
                        return Err(de::Error::custom(DUPLICATE_MARKER));
                    }
                }
                Ok(StrictIgnored)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The JOSE header members this crate acts on. Everything else is checked for
/// well-formedness and uniqueness, then ignored.
#[derive(Debug, Default)]
pub(crate) struct Header<'a> {
    pub(crate) alg: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
    pub(crate) kid: Option<Cow<'a, str>>,
    /// `jku`, `x5u`, `jwk` or `x5c`: the first one seen.
    pub(crate) forbidden: Option<&'static str>,
    pub(crate) has_crit: bool,
}

impl<'de> de::Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Header<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
                let mut header = Header::default();
                let mut seen: BTreeSet<Cow<'de, str>> = BTreeSet::new();
                while let Some(Key(key)) = map.next_key()? {
                    match key.as_ref() {
                        "alg" => header.alg = Some(map.next_value::<Key<'de>>()?.0),
                        "typ" => header.typ = Some(map.next_value::<Key<'de>>()?.0),
                        "kid" => header.kid = Some(map.next_value::<Key<'de>>()?.0),
                        other => {
                            map.next_value::<StrictIgnored>()?;
                            match other {
                                "jku" => header.forbidden = header.forbidden.or(Some("jku")),
                                "x5u" => header.forbidden = header.forbidden.or(Some("x5u")),
                                "jwk" => header.forbidden = header.forbidden.or(Some("jwk")),
                                "x5c" => header.forbidden = header.forbidden.or(Some("x5c")),
                                "crit" => header.has_crit = true,
                                _ => {}
                            }
                        }
                    }
                    if !seen.insert(key) {
                        return Err(de::Error::custom(DUPLICATE_MARKER));
                    }
                }
                Ok(header)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Parses a header object strictly.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header<'_>, Error> {
    serde_json::from_slice(bytes).map_err(|e| map_json_error(&e))
}

/// Parses a claims object strictly, at every depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    struct Seed;
    impl<'de> DeserializeSeed<'de> for Seed {
        type Value = Map<String, Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Map<String, Value>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    strict_map(&mut map)
                }
            }
            d.deserialize_map(V)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let map = Seed
        .deserialize(&mut deserializer)
        .map_err(|e| map_json_error(&e))?;
    deserializer.end().map_err(|e| map_json_error(&e))?;
    Ok(map)
}

/// Whether the bytes are one JSON value with unique member names at every depth.
#[cfg(test)]
pub(crate) fn check_unique(bytes: &[u8]) -> Result<(), Error> {
    serde_json::from_slice::<StrictIgnored>(bytes)
        .map(|_| ())
        .map_err(|e| map_json_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_every_depth() {
        assert_eq!(
            parse_object(br#"{"a":1,"a":2}"#).unwrap_err().kind(),
            ErrorKind::DuplicateJsonKey
        );
        assert_eq!(
            parse_object(br#"{"a":{"b":1,"b":1}}"#).unwrap_err().kind(),
            ErrorKind::DuplicateJsonKey
        );
        assert_eq!(
            parse_header(br#"{"alg":"ES256","x":[{"y":1,"y":2}]}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::DuplicateJsonKey
        );
        assert_eq!(
            parse_header(br#"{"alg":"ES256","alg":"none"}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::DuplicateJsonKey
        );
        // An escaped spelling of the same name is the same name.
        assert_eq!(
            parse_header(br#"{"alg":"ES256","\u0061lg":"none"}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::DuplicateJsonKey
        );
        assert!(check_unique(br#"{"a":[1,{"b":2}],"c":null}"#).is_ok());
    }

    #[test]
    fn non_objects_and_trailing_data_are_malformed() {
        assert_eq!(
            parse_object(b"[1]").unwrap_err().kind(),
            ErrorKind::Malformed
        );
        assert_eq!(
            parse_object(b"{} x").unwrap_err().kind(),
            ErrorKind::Malformed
        );
        assert_eq!(
            parse_header(b"\"x\"").unwrap_err().kind(),
            ErrorKind::Malformed
        );
        assert_eq!(
            parse_header(br#"{"alg":1}"#).unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }
}
