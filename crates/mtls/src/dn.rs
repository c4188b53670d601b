//! Distinguished names as RFC 4514 strings: formatting from X.509 and strict parsing of
//! the strings proxies forward.

use std::fmt::{self, Write as _};

use x509_parser::asn1_rs::Tag;
use x509_parser::x509::X509Name;

use crate::error::{Error, ErrorKind};

/// Longest distinguished-name string accepted from a header.
const MAX_DN_LEN: usize = 4096;
/// Most attributes accepted in one name.
const MAX_ATTRIBUTES: usize = 64;

/// Attribute types with a short name: (dotted OID, canonical name, accepted aliases).
/// The RFC 4514 table, plus the names OpenSSL's RFC 2253 output uses (and so nginx and
/// Envoy) for a few common others.
const NAMES: &[(&str, &str, &[&str])] = &[
    ("2.5.4.3", "CN", &["commonName"]),
    ("2.5.4.7", "L", &["localityName"]),
    ("2.5.4.8", "ST", &["stateOrProvinceName", "S"]),
    ("2.5.4.10", "O", &["organizationName"]),
    ("2.5.4.11", "OU", &["organizationalUnitName"]),
    ("2.5.4.6", "C", &["countryName"]),
    ("2.5.4.9", "STREET", &["streetAddress"]),
    ("0.9.2342.19200300.100.1.25", "DC", &["domainComponent"]),
    ("0.9.2342.19200300.100.1.1", "UID", &["userId"]),
    ("1.2.840.113549.1.9.1", "emailAddress", &["E", "email"]),
    ("2.5.4.5", "serialNumber", &[]),
    ("2.5.4.12", "title", &[]),
    ("2.5.4.4", "SN", &["surname"]),
    ("2.5.4.42", "GN", &["givenName"]),
];

const CN_OID: &str = "2.5.4.3";

/// One attribute value: text, or the hex form (`#...`) for values that are not strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Value {
    Text(String),
    Der(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Attribute {
    /// Dotted OID, or the canonical short name's OID when it has one.
    oid: String,
    value: Value,
}

/// A distinguished name (a certificate subject or issuer).
///
/// Its [`Display`](fmt::Display) is the RFC 4514 string (most specific RDN first, as
/// nginx's `$ssl_client_s_dn` and Envoy's `Subject` write it), and two names compare equal
/// when their RFC 4514 forms do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DistinguishedName {
    /// RDNs in RFC 4514 order: the last RDN of the encoded name first.
    rdns: Vec<Vec<Attribute>>,
}

impl DistinguishedName {
    /// Builds the name from a parsed X.509 name.
    pub(crate) fn from_x509(name: &X509Name<'_>) -> Self {
        let mut rdns: Vec<Vec<Attribute>> = name
            .iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| Attribute {
                        oid: atv.attr_type().to_id_string(),
                        value: x509_value(atv.attr_value()),
                    })
                    .collect()
            })
            .collect();
        rdns.reverse();
        Self { rdns }
    }

    /// Parses an RFC 4514 (or RFC 2253) string strictly: no stray spaces, every special
    /// character escaped, attribute types known by name or given as dotted OIDs.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when the string is not a valid distinguished name.
    pub fn parse(input: &str) -> Result<Self, Error> {
        Parser::new(input).parse().map_err(|why| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("distinguished name: {why}"),
            )
        })
    }

    /// The values of the common-name (CN) attributes, most specific first.
    pub fn common_names(&self) -> impl Iterator<Item = &str> {
        self.rdns
            .iter()
            .flatten()
            .filter_map(|attr| match &attr.value {
                Value::Text(text) if attr.oid == CN_OID => Some(text.as_str()),
                _ => None,
            })
    }

    /// Whether the name has no attributes at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            for (j, attr) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_char('+')?;
                }
                f.write_str(type_name(&attr.oid))?;
                f.write_char('=')?;
                match &attr.value {
                    Value::Text(text) => write_escaped(f, text)?,
                    Value::Der(der) => write!(f, "#{}", hex::encode(der))?,
                }
            }
        }
        Ok(())
    }
}

fn type_name(oid: &str) -> &str {
    NAMES
        .iter()
        .find(|(o, _, _)| *o == oid)
        .map_or(oid, |(_, name, _)| name)
}

fn type_oid(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(_, canonical, aliases)| {
            canonical.eq_ignore_ascii_case(name)
                || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
        .map(|(oid, _, _)| *oid)
}

/// Converts an attribute value to text when it is a string type, else keeps its DER
/// encoding for the `#hex` form (RFC 4514 section 2.4).
fn x509_value(any: &x509_parser::asn1_rs::Any<'_>) -> Value {
    let tag = any.tag();
    let text = match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(any.data).ok().map(str::to_owned),
        Tag::BmpString => decode_bmp(any.data),
        _ => None,
    };
    match text {
        Some(text) => Value::Text(text),
        None => Value::Der(encode_der(any)),
    }
}

fn decode_bmp(data: &[u8]) -> Option<String> {
    if !data.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => 0,
        })
        .collect();
    String::from_utf16(&units).ok()
}

/// Re-encodes an ASN.1 value (identifier, length, contents) for the `#hex` form.
fn encode_der(any: &x509_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    let class = any.class() as u8;
    let constructed = u8::from(any.header.is_constructed());
    let tag = any.tag().0;
    let mut out = Vec::with_capacity(any.data.len().saturating_add(8));
    let first = (class << 6) | (constructed << 5);
    if tag < 31 {
        out.push(first | u8::try_from(tag).unwrap_or(31));
    } else {
        out.push(first | 31);
        let mut groups = Vec::new();
        let mut rest = tag;
        loop {
            groups.push(u8::try_from(rest & 0x7f).unwrap_or(0));
            rest >>= 7;
            if rest == 0 {
                break;
            }
        }
        groups.reverse();
        let last = groups.len().saturating_sub(1);
        for (i, group) in groups.into_iter().enumerate() {
            out.push(if i < last { group | 0x80 } else { group });
        }
    }
    let len = any.data.len();
    if len < 128 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(any.data);
    out
}

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ');
        if special {
            f.write_char('\\')?;
            f.write_char(c)?;
        } else if c.is_control() {
            let mut buf = [0_u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                write!(f, "\\{byte:02X}")?;
            }
        } else {
            f.write_char(c)?;
        }
    }
    Ok(())
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Self {
            bytes: input.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos = self.pos.saturating_add(1);
        Some(b)
    }

    fn parse(mut self) -> Result<DistinguishedName, &'static str> {
        if self.bytes.len() > MAX_DN_LEN {
            return Err("too long");
        }
        let mut rdns = Vec::new();
        let mut count = 0_usize;
        if self.bytes.is_empty() {
            return Ok(DistinguishedName { rdns });
        }
        loop {
            let mut rdn = Vec::new();
            loop {
                count = count.saturating_add(1);
                if count > MAX_ATTRIBUTES {
                    return Err("too many attributes");
                }
                rdn.push(self.attribute()?);
                if self.peek() == Some(b'+') {
                    self.pos = self.pos.saturating_add(1);
                } else {
                    break;
                }
            }
            rdns.push(rdn);
            match self.bump() {
                None => break,
                Some(b',') => {}
                Some(_) => return Err("unexpected character after a value"),
            }
        }
        Ok(DistinguishedName { rdns })
    }

    fn attribute(&mut self) -> Result<Attribute, &'static str> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b'=' {
                break;
            }
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                return Err("invalid attribute type");
            }
            self.pos = self.pos.saturating_add(1);
        }
        let name = self
            .bytes
            .get(start..self.pos)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or("invalid attribute type")?;
        if self.bump() != Some(b'=') {
            return Err("missing '='");
        }
        let oid = attribute_oid(name)?;
        let value = if self.peek() == Some(b'#') {
            self.pos = self.pos.saturating_add(1);
            Value::Der(self.hex_value()?)
        } else {
            Value::Text(self.string_value()?)
        };
        Ok(Attribute { oid, value })
    }

    fn hex_value(&mut self) -> Result<Vec<u8>, &'static str> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
            self.pos = self.pos.saturating_add(1);
        }
        let digits = self.bytes.get(start..self.pos).ok_or("invalid hex value")?;
        if digits.is_empty() {
            return Err("empty hex value");
        }
        hex::decode(digits).map_err(|_| "invalid hex value")
    }

    fn string_value(&mut self) -> Result<String, &'static str> {
        let mut out: Vec<u8> = Vec::new();
        // Whether the last byte of `out` came from an escape (a trailing space may only
        // appear escaped).
        let mut last_escaped = false;
        while let Some(b) = self.peek() {
            match b {
                b',' | b'+' => break,
                b'\\' => {
                    self.pos = self.pos.saturating_add(1);
                    let next = self.bump().ok_or("dangling escape")?;
                    if matches!(
                        next,
                        b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\'
                    ) {
                        out.push(next);
                    } else {
                        let low = self.bump().ok_or("bad escape")?;
                        let byte = hex_pair(next, low).ok_or("bad escape")?;
                        out.push(byte);
                    }
                    last_escaped = true;
                }
                b'"' | b';' | b'<' | b'>' | 0 => return Err("unescaped special character"),
                b' ' if out.is_empty() => return Err("unescaped leading space"),
                _ => {
                    out.push(b);
                    last_escaped = false;
                    self.pos = self.pos.saturating_add(1);
                }
            }
        }
        if out.last() == Some(&b' ') && !last_escaped {
            return Err("unescaped trailing space");
        }
        let text = String::from_utf8(out).map_err(|_| "value is not UTF-8")?;
        if text.chars().any(char::is_control) {
            // Allowed escaped in RFC 4514, but no legitimate identity needs them and they
            // hide in logs.
            return Err("control character in value");
        }
        Ok(text)
    }
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let hi = char::from(hi).to_digit(16)?;
    let lo = char::from(lo).to_digit(16)?;
    u8::try_from(hi.checked_mul(16)?.checked_add(lo)?).ok()
}

fn attribute_oid(name: &str) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("empty attribute type");
    }
    if name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let valid = name.split('.').count() >= 2
            && name.split('.').all(|arc| {
                !arc.is_empty()
                    && arc.bytes().all(|b| b.is_ascii_digit())
                    && (arc == "0" || !arc.starts_with('0'))
            });
        return if valid {
            Ok(name.to_owned())
        } else {
            Err("invalid numeric OID")
        };
    }
    type_oid(name)
        .map(str::to_owned)
        .ok_or("unknown attribute type")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) -> String {
        DistinguishedName::parse(s).expect("valid").to_string()
    }

    #[test]
    fn rfc4514_examples_round_trip() {
        // The examples of RFC 4514 section 4.
        assert_eq!(
            round("UID=jsmith,DC=example,DC=net"),
            "UID=jsmith,DC=example,DC=net"
        );
        assert_eq!(
            round("OU=Sales+CN=J.  Smith,DC=example,DC=net"),
            "OU=Sales+CN=J.  Smith,DC=example,DC=net"
        );
        assert_eq!(
            round("CN=James \\\"Jim\\\" Smith\\, III,DC=example,DC=net"),
            "CN=James \\\"Jim\\\" Smith\\, III,DC=example,DC=net"
        );
        // Control characters are refused even escaped (see `string_value`).
        assert!(DistinguishedName::parse("CN=Before\\0dAfter,DC=example,DC=net").is_err());
        assert_eq!(
            round("1.3.6.1.4.1.1466.0=#04024869"),
            "1.3.6.1.4.1.1466.0=#04024869"
        );
        assert_eq!(round("CN=Lu\\C4\\8Di\\C4\\87"), "CN=Lučić");
    }

    #[test]
    fn names_are_case_insensitive_and_canonicalised() {
        assert_eq!(round("cn=svc,o=Example,c=US"), "CN=svc,O=Example,C=US");
        assert_eq!(round("commonName=svc"), "CN=svc");
        assert_eq!(round("2.5.4.3=svc"), "CN=svc");
    }

    #[test]
    fn sloppy_strings_are_refused() {
        for bad in [
            "CN=a, O=b",
            "CN =a",
            "CN=a;O=b",
            "CN=a,",
            "=a",
            "XX=a",
            "CN=a\\",
            "CN=a\\zz",
            "CN= a",
            "CN=a ",
            "CN=#zz",
            "CN=a\"b",
            "01.2=a",
            "CN=\\00",
        ] {
            assert!(DistinguishedName::parse(bad).is_err(), "{bad}");
        }
        assert!(DistinguishedName::parse("CN=a\\ ").is_ok());
        assert!(DistinguishedName::parse("").expect("empty").is_empty());
    }

    #[test]
    fn common_names() {
        let dn = DistinguishedName::parse("CN=svc-a,OU=x+CN=other,O=Example").expect("valid");
        assert_eq!(dn.common_names().collect::<Vec<_>>(), ["svc-a", "other"]);
    }
}
