//! RFC 8941 structured fields: the subset RFC 9421 needs (dictionaries, inner lists,
//! items, parameters), parsed strictly with bounds, serialized canonically.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, ErrorKind, err};

const MAX_FIELD_LEN: usize = 8 * 1024;
const MAX_MEMBERS: usize = 32;
const MAX_INNER: usize = 64;
const MAX_PARAMS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BareItem {
    Integer(i64),
    /// Thousandths.
    Decimal(i64),
    String(String),
    Token(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

pub(crate) type Params = Vec<(String, BareItem)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) bare: BareItem,
    pub(crate) params: Params,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Member {
    Item(Item),
    InnerList(Vec<Item>, Params),
}

fn bad(detail: &'static str) -> Error {
    err(ErrorKind::MalformedSignatureInput, detail)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn key(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => {}
            _ => return Err(bad("a key must start with a lower-case letter or '*'")),
        }
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'_' | b'-' | b'.' | b'*')
            {
                self.i += 1;
            } else {
                break;
            }
        }
        let key = self.b.get(start..self.i).unwrap_or_default();
        if key.len() > 64 {
            return Err(bad("a key is too long"));
        }
        Ok(String::from_utf8_lossy(key).into_owned())
    }

    fn params(&mut self) -> Result<Params, Error> {
        let mut params: Params = Vec::new();
        while self.peek() == Some(b';') {
            self.i += 1;
            self.skip_sp();
            let key = self.key()?;
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.bare()?
            } else {
                BareItem::Boolean(true)
            };
            if params.iter().any(|(k, _)| *k == key) {
                return Err(bad("a parameter is duplicated"));
            }
            if params.len() >= MAX_PARAMS {
                return Err(bad("too many parameters"));
            }
            params.push((key, value));
        }
        Ok(params)
    }

    fn bare(&mut self) -> Result<BareItem, Error> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string(),
            Some(b':') => self.bytes(),
            Some(b'?') => {
                self.i += 1;
                let v = match self.peek() {
                    Some(b'1') => true,
                    Some(b'0') => false,
                    _ => return Err(bad("a boolean must be ?0 or ?1")),
                };
                self.i += 1;
                Ok(BareItem::Boolean(v))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => self.token(),
            _ => Err(bad("an item is malformed or truncated")),
        }
    }

    fn number(&mut self) -> Result<BareItem, Error> {
        let neg = self.peek() == Some(b'-');
        if neg {
            self.i += 1;
        }
        let mut int: i64 = 0;
        let mut digits = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            digits += 1;
            if digits > 15 {
                return Err(bad("an integer has too many digits"));
            }
            int = int * 10 + i64::from(c - b'0');
            self.i += 1;
        }
        if digits == 0 {
            return Err(bad("a number has no digits"));
        }
        if self.peek() == Some(b'.') {
            if digits > 12 {
                return Err(bad("a decimal has too many digits"));
            }
            self.i += 1;
            let mut frac = 0;
            let mut scale = 1000;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                frac += 1;
                if frac > 3 {
                    return Err(bad("a decimal has too many fraction digits"));
                }
                scale /= 10;
                int = int * 10 + i64::from(c - b'0');
                self.i += 1;
            }
            if frac == 0 {
                return Err(bad("a decimal ends with '.'"));
            }
            let v = int * scale;
            return Ok(BareItem::Decimal(if neg { -v } else { v }));
        }
        Ok(BareItem::Integer(if neg { -int } else { int }))
    }

    fn string(&mut self) -> Result<BareItem, Error> {
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(bad("a string is not terminated")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(BareItem::String(out));
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(char::from(c)),
                        _ => return Err(bad("a string has a bad escape")),
                    }
                    self.i += 1;
                }
                Some(c @ 0x20..=0x7e) => {
                    out.push(char::from(c));
                    self.i += 1;
                }
                Some(_) => return Err(bad("a string has a non-ASCII or control byte")),
            }
        }
    }

    fn token(&mut self) -> Result<BareItem, Error> {
        let start = self.i;
        while let Some(c) = self.peek() {
            // RFC 8941 sf-token: tchar, ':' and '/'.
            if crate::encode::is_token_byte(c) || matches!(c, b':' | b'/') {
                self.i += 1;
            } else {
                break;
            }
        }
        Ok(BareItem::Token(
            String::from_utf8_lossy(self.b.get(start..self.i).unwrap_or_default()).into_owned(),
        ))
    }

    fn bytes(&mut self) -> Result<BareItem, Error> {
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b':' {
                break;
            }
            if !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')) {
                return Err(bad("a byte sequence has a non-base64 byte"));
            }
            self.i += 1;
        }
        if self.peek() != Some(b':') {
            return Err(bad("a byte sequence is not terminated"));
        }
        let raw = self.b.get(start..self.i).unwrap_or_default();
        self.i += 1;
        let decoded = STANDARD
            .decode(raw)
            .map_err(|_| bad("a byte sequence is not valid base64"))?;
        Ok(BareItem::Bytes(decoded))
    }

    fn item(&mut self) -> Result<Item, Error> {
        let bare = self.bare()?;
        let params = self.params()?;
        Ok(Item { bare, params })
    }

    fn member(&mut self) -> Result<Member, Error> {
        if self.peek() != Some(b'(') {
            return Ok(Member::Item(self.item()?));
        }
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_sp();
            match self.peek() {
                Some(b')') => {
                    self.i += 1;
                    let params = self.params()?;
                    return Ok(Member::InnerList(items, params));
                }
                None => return Err(bad("an inner list is not terminated")),
                _ => {
                    if items.len() >= MAX_INNER {
                        return Err(bad("an inner list is too long"));
                    }
                    items.push(self.item()?);
                    if !matches!(self.peek(), Some(b' ' | b')')) {
                        return Err(bad("inner-list items must be separated by spaces"));
                    }
                }
            }
        }
    }
}

/// Parses a dictionary strictly: duplicate keys are refused (RFC 8941 would keep the last
/// one; for signatures an ambiguity is an error).
pub(crate) fn parse_dictionary(input: &str) -> Result<Vec<(String, Member)>, Error> {
    if input.len() > MAX_FIELD_LEN {
        return Err(bad("the structured field is too long"));
    }
    let mut p = Parser {
        b: input.as_bytes(),
        i: 0,
    };
    p.skip_sp();
    let mut out: Vec<(String, Member)> = Vec::new();
    if p.peek().is_none() {
        return Ok(out);
    }
    loop {
        let key = p.key()?;
        let member = if p.peek() == Some(b'=') {
            p.i += 1;
            p.member()?
        } else {
            Member::Item(Item {
                bare: BareItem::Boolean(true),
                params: p.params()?,
            })
        };
        if out.iter().any(|(k, _)| *k == key) {
            return Err(bad("a dictionary key is duplicated"));
        }
        if out.len() >= MAX_MEMBERS {
            return Err(bad("too many dictionary members"));
        }
        out.push((key, member));
        p.skip_ows();
        match p.peek() {
            None => return Ok(out),
            Some(b',') => {
                p.i += 1;
                p.skip_ows();
                if p.peek().is_none() {
                    return Err(bad("a dictionary ends with ','"));
                }
            }
            Some(_) => return Err(bad("dictionary members must be separated by ','")),
        }
    }
}

/// Parses a single item with parameters (a component identifier such as
/// `"@query-param";name="Pet"`).
pub(crate) fn parse_item(input: &str) -> Result<Item, Error> {
    if input.len() > MAX_FIELD_LEN {
        return Err(bad("the structured field is too long"));
    }
    let mut p = Parser {
        b: input.trim_matches(' ').as_bytes(),
        i: 0,
    };
    let item = p.item()?;
    if p.peek().is_some() {
        return Err(bad("trailing bytes after an item"));
    }
    Ok(item)
}

pub(crate) fn write_bare(out: &mut String, bare: &BareItem) {
    match bare {
        BareItem::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        BareItem::Decimal(t) => {
            let sign = if *t < 0 { "-" } else { "" };
            let a = t.unsigned_abs();
            let frac = a % 1000;
            let mut f = format!("{frac:03}");
            while f.len() > 1 && f.ends_with('0') {
                f.pop();
            }
            let _ = write!(out, "{sign}{}.{f}", a / 1000);
        }
        BareItem::String(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        BareItem::Token(t) => out.push_str(t),
        BareItem::Bytes(b) => {
            out.push(':');
            out.push_str(&STANDARD.encode(b));
            out.push(':');
        }
        BareItem::Boolean(b) => out.push_str(if *b { "?1" } else { "?0" }),
    }
}

pub(crate) fn write_params(out: &mut String, params: &Params) {
    for (k, v) in params {
        out.push(';');
        out.push_str(k);
        if *v != BareItem::Boolean(true) {
            out.push('=');
            write_bare(out, v);
        }
    }
}

pub(crate) fn write_item(out: &mut String, item: &Item) {
    write_bare(out, &item.bare);
    write_params(out, &item.params);
}

pub(crate) fn write_inner_list(out: &mut String, items: &[Item], params: &Params) {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_item(out, item);
    }
    out.push(')');
    write_params(out, params);
}

#[cfg(test)]
pub(crate) fn write_member(out: &mut String, member: &Member) {
    match member {
        Member::Item(item) => write_item(out, item),
        Member::InnerList(items, params) => write_inner_list(out, items, params),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_signature_input() {
        let s = r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#;
        let d = parse_dictionary(s).unwrap();
        let mut out = String::new();
        out.push_str(&d[0].0);
        out.push('=');
        write_member(&mut out, &d[0].1);
        assert_eq!(out, s);
    }

    #[test]
    fn values() {
        let d = parse_dictionary("a=1, b=-2.5, c=?0, d=:AQI=:, e=tok/x, f;p").unwrap();
        assert_eq!(d.len(), 6);
        let mut out = String::new();
        for (k, m) in &d {
            out.push_str(k);
            out.push('=');
            write_member(&mut out, m);
            out.push(',');
        }
        assert_eq!(out, "a=1,b=-2.5,c=?0,d=:AQI=:,e=tok/x,f=?1;p,");
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "A=1",
            "a=1,",
            "a=1 b=2",
            "a=(1 2",
            "a=\"x",
            "a=\"\\n\"",
            "a=:$$:",
            "a=1,a=2",
            "a=1;p;p",
            "a=1.",
            "a=1234567890123456",
            "a=?2",
            "a=(\"x\"\"y\")",
            "a=\"é\"",
        ] {
            assert_eq!(
                parse_dictionary(s).unwrap_err().kind(),
                ErrorKind::MalformedSignatureInput,
                "{s}"
            );
        }
        assert!(parse_dictionary(&"a".repeat(MAX_FIELD_LEN + 1)).is_err());
    }
}
