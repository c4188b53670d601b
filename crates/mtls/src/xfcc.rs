//! A strict, bounded parser for Envoy's `X-Forwarded-Client-Cert` header.
//!
//! Grammar (Envoy's documentation): elements separated by `,`, one per proxy; each element
//! `Key=value` pairs separated by `;`; keys `By`, `Hash`, `Cert`, `Chain`, `Subject`,
//! `URI`, `DNS` (case-insensitive); a value containing `,`, `;` or `=` is double-quoted,
//! with `\"` for a quote inside. Anything else is refused rather than guessed at.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use crate::dn::DistinguishedName;
use crate::error::{Error, ErrorKind};
use crate::identity::{CertificateInfo, SubjectAltName};

/// Longest header value accepted (room for a URL-encoded certificate and a short chain).
pub const MAX_XFCC_LEN: usize = 32 * 1024;
/// Most elements (proxies) accepted in one header.
const MAX_ELEMENTS: usize = 16;
/// Most key-value pairs accepted in one element.
const MAX_PAIRS: usize = 64;
/// Most certificates accepted in a `Chain` value.
const MAX_CHAIN: usize = 8;

/// One element of an `X-Forwarded-Client-Cert` header: what one proxy says about the
/// client certificate it verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XfccElement {
    by: Option<String>,
    hash: Option<[u8; 32]>,
    cert: Option<Vec<u8>>,
    chain: Vec<Vec<u8>>,
    subject: Option<DistinguishedName>,
    uris: Vec<String>,
    dns: Vec<String>,
}

impl XfccElement {
    /// `By`: the URI SAN of the proxy's own certificate.
    #[must_use]
    pub fn by(&self) -> Option<&str> {
        self.by.as_deref()
    }

    /// `Hash`: the SHA-256 fingerprint of the client certificate.
    #[must_use]
    pub fn hash(&self) -> Option<&[u8; 32]> {
        self.hash.as_ref()
    }

    /// `Cert`: the client certificate, DER.
    #[must_use]
    pub fn cert_der(&self) -> Option<&[u8]> {
        self.cert.as_deref()
    }

    /// `Chain`: the client's chain, DER, leaf first.
    #[must_use]
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// `Subject`: the client certificate's subject (`None` when absent or empty).
    #[must_use]
    pub fn subject(&self) -> Option<&DistinguishedName> {
        self.subject.as_ref()
    }

    /// `URI`: the URI SANs.
    #[must_use]
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// `DNS`: the DNS SANs.
    #[must_use]
    pub fn dns(&self) -> &[String] {
        &self.dns
    }

    /// What this element says of the certificate: the full certificate when `Cert` is
    /// present, else the subject, SANs and hash.
    ///
    /// # Errors
    /// [`ErrorKind::MalformedForwardedCertificate`] when `Cert` cannot be read.
    pub fn certificate_info(&self) -> Result<CertificateInfo, Error> {
        if let Some(der) = &self.cert {
            return CertificateInfo::from_der(der).map_err(|e| malformed(&format!("Cert: {e}")));
        }
        let sans = self
            .uris
            .iter()
            .map(|u| SubjectAltName::Uri(u.clone()))
            .chain(self.dns.iter().map(|d| SubjectAltName::Dns(d.clone())))
            .collect();
        Ok(CertificateInfo::forwarded(
            self.subject.clone(),
            sans,
            None,
            self.hash,
        ))
    }
}

fn malformed(why: &str) -> Error {
    Error::new(
        ErrorKind::MalformedForwardedCertificate,
        format!("malformed X-Forwarded-Client-Cert header: {why}"),
    )
}

/// Parses an `X-Forwarded-Client-Cert` header value into its elements, oldest proxy
/// first (the last element is the one the nearest proxy added).
///
/// Strict: unknown keys, repeated single-valued keys, empty elements, stray whitespace
/// (other than around `,`), control characters, bad escapes, a `Hash` that is not 64 hex
/// digits, a `Cert` that is not one URL-encoded PEM certificate or that does not match
/// `Hash`, and values over [`MAX_XFCC_LEN`] are all refused.
///
/// # Errors
/// [`ErrorKind::MalformedForwardedCertificate`].
pub fn parse_xfcc(value: &str) -> Result<Vec<XfccElement>, Error> {
    if value.len() > MAX_XFCC_LEN {
        return Err(malformed("too long"));
    }
    let mut parser = Parser {
        bytes: value.as_bytes(),
        pos: 0,
    };
    let mut elements = Vec::new();
    loop {
        if elements.len() >= MAX_ELEMENTS {
            return Err(malformed("too many elements"));
        }
        elements.push(parser.element()?);
        parser.skip_ows();
        match parser.bump() {
            None => break,
            Some(b',') => parser.skip_ows(),
            Some(_) => return Err(malformed("unexpected character")),
        }
    }
    Ok(elements)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos = self.pos.saturating_add(1);
        Some(b)
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos = self.pos.saturating_add(1);
        }
    }

    fn element(&mut self) -> Result<XfccElement, Error> {
        let mut element = XfccElement::default();
        let mut pairs = 0_usize;
        loop {
            pairs = pairs.saturating_add(1);
            if pairs > MAX_PAIRS {
                return Err(malformed("too many pairs"));
            }
            let key = self.key()?;
            if self.bump() != Some(b'=') {
                return Err(malformed("expected '=' after a key"));
            }
            let value = self.value()?;
            apply(&mut element, &key, value)?;
            if self.peek() == Some(b';') {
                self.pos = self.pos.saturating_add(1);
            } else {
                break;
            }
        }
        Ok(element)
    }

    fn key(&mut self) -> Result<String, Error> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.pos = self.pos.saturating_add(1);
        }
        let key = self
            .bytes
            .get(start..self.pos)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| malformed("expected a key"))?;
        Ok(String::from_utf8_lossy(key).to_ascii_lowercase())
    }

    fn value(&mut self) -> Result<String, Error> {
        if self.peek() == Some(b'"') {
            self.pos = self.pos.saturating_add(1);
            let mut out = Vec::new();
            loop {
                match self.bump() {
                    None => return Err(malformed("unterminated quoted value")),
                    Some(b'"') => break,
                    Some(b'\\') => match self.bump() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err(malformed("invalid escape in a quoted value")),
                    },
                    Some(c) if c < 0x20 || c == 0x7f => return Err(malformed("control character")),
                    Some(c) => out.push(c),
                }
            }
            String::from_utf8(out).map_err(|_| malformed("value is not UTF-8"))
        } else {
            let start = self.pos;
            while self.peek().is_some_and(|b| {
                b.is_ascii_graphic() && !matches!(b, b',' | b';' | b'=' | b'"' | b'\\')
            }) {
                self.pos = self.pos.saturating_add(1);
            }
            match self.peek() {
                None | Some(b',' | b';' | b' ' | b'\t') => {}
                Some(_) => return Err(malformed("invalid character in an unquoted value")),
            }
            let raw = self.bytes.get(start..self.pos).unwrap_or_default();
            Ok(String::from_utf8_lossy(raw).into_owned())
        }
    }
}

fn apply(element: &mut XfccElement, key: &str, value: String) -> Result<(), Error> {
    fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), Error> {
        if slot.is_some() {
            return Err(malformed(&format!("{key} appears twice in one element")));
        }
        *slot = Some(value);
        Ok(())
    }
    match key {
        "by" => {
            if value.is_empty() {
                return Err(malformed("empty By"));
            }
            once(&mut element.by, "By", value)
        }
        "hash" => {
            let mut hash = [0_u8; 32];
            if value.len() != 64 || hex::decode_to_slice(&value, &mut hash).is_err() {
                return Err(malformed("Hash must be 64 hex digits"));
            }
            once(&mut element.hash, "Hash", hash)?;
            check_hash(element)
        }
        "cert" => {
            let certs = decode_pem_certs(&value)?;
            let [cert] = <[Vec<u8>; 1]>::try_from(certs)
                .map_err(|_| malformed("Cert must hold exactly one certificate"))?;
            once(&mut element.cert, "Cert", cert)?;
            check_hash(element)
        }
        "chain" => {
            if !element.chain.is_empty() {
                return Err(malformed("Chain appears twice in one element"));
            }
            element.chain = decode_pem_certs(&value)?;
            if element.chain.len() > MAX_CHAIN {
                return Err(malformed("Chain is too long"));
            }
            Ok(())
        }
        "subject" => {
            if element.subject.is_some() {
                return Err(malformed("Subject appears twice in one element"));
            }
            let dn = DistinguishedName::parse(&value)
                .map_err(|_| malformed("Subject is not an RFC 4514 name"))?;
            if !dn.is_empty() {
                element.subject = Some(dn);
            }
            Ok(())
        }
        "uri" => {
            if value.is_empty() {
                return Err(malformed("empty URI"));
            }
            element.uris.push(value);
            Ok(())
        }
        "dns" => {
            if value.is_empty() {
                return Err(malformed("empty DNS"));
            }
            element.dns.push(value);
            Ok(())
        }
        _ => Err(malformed("unknown key")),
    }
}

/// When both `Hash` and `Cert` are present they must agree.
fn check_hash(element: &XfccElement) -> Result<(), Error> {
    if let (Some(hash), Some(cert)) = (&element.hash, &element.cert) {
        let actual: [u8; 32] = Sha256::digest(cert).into();
        if actual != *hash {
            return Err(malformed("Hash does not match Cert"));
        }
    }
    Ok(())
}

/// Percent-decodes a value strictly (every `%` followed by two hex digits) and reads the
/// PEM certificates in it.
fn decode_pem_certs(value: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut decoded = Vec::with_capacity(value.len());
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|h| char::from(h).to_digit(16));
            let lo = bytes.next().and_then(|l| char::from(l).to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) => decoded.push(u8::try_from(hi * 16 + lo).unwrap_or(0)),
                _ => return Err(malformed("invalid percent-encoding")),
            }
        } else {
            decoded.push(b);
        }
    }
    let certs = CertificateDer::pem_slice_iter(&decoded)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| malformed("invalid PEM certificate"))?;
    if certs.is_empty() {
        return Err(malformed("no PEM certificate"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688";

    #[test]
    fn parses_envoy_style_elements() {
        let header = format!(
            "By=spiffe://example.org/proxy;Hash={HASH};Subject=\"CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US\";URI=spiffe://example.org/svc-a;DNS=a.internal;DNS=b.internal"
        );
        let elements = parse_xfcc(&header).expect("valid");
        assert_eq!(elements.len(), 1);
        let e = elements.first().expect("one");
        assert_eq!(e.by(), Some("spiffe://example.org/proxy"));
        assert_eq!(e.hash().map(hex::encode).as_deref(), Some(HASH));
        assert_eq!(
            e.subject().map(ToString::to_string).as_deref(),
            Some("CN=Test Client,OU=Lyft,L=San Francisco,ST=CA,C=US")
        );
        assert_eq!(e.uris(), ["spiffe://example.org/svc-a"]);
        assert_eq!(e.dns(), ["a.internal", "b.internal"]);
        let info = e.certificate_info().expect("info");
        assert_eq!(
            info.default_identity().expect("id"),
            "spiffe://example.org/svc-a"
        );
    }

    #[test]
    fn several_elements_and_case_insensitive_keys() {
        let elements =
            parse_xfcc("by=http://a;uri=http://x, By=http://b;URI=spiffe://d/e").expect("valid");
        assert_eq!(elements.len(), 2);
        assert_eq!(elements.last().and_then(XfccElement::by), Some("http://b"));
        let quoted = parse_xfcc(r#"Subject="CN=a\\, b,O=x=y";URI="urn:a;b""#).expect("valid");
        let first = quoted.first().expect("one");
        assert_eq!(
            first.subject().map(ToString::to_string).as_deref(),
            Some(r"CN=a\, b,O=x=y")
        );
        assert_eq!(first.uris(), ["urn:a;b"]);
        assert!(
            parse_xfcc("Subject=\"\"")
                .expect("empty")
                .first()
                .and_then(XfccElement::subject)
                .is_none()
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let long = "a".repeat(MAX_XFCC_LEN + 1);
        for bad in [
            "",
            ",",
            "By=a,",
            "By=a;",
            "By",
            "By=a;By=b",
            "Hash=abc",
            "Hash=zz8ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688",
            "Foo=bar",
            "By=a b",
            "By=\"unterminated",
            "By=\"bad\\escape\"",
            "By=\"ctl\u{1}\"",
            "Subject=\"/C=US/CN=x\"",
            "Subject=\"CN=a, O=b\"",
            "Cert=notpem",
            "Cert=%zz",
            "URI=",
            "By=a;;URI=b",
            "By=a=b",
            "By=a\"",
            long.as_str(),
        ] {
            let err = parse_xfcc(bad).expect_err(bad);
            assert_eq!(
                err.kind(),
                ErrorKind::MalformedForwardedCertificate,
                "{bad}"
            );
        }
        let many = vec!["By=a"; MAX_ELEMENTS + 1].join(",");
        assert!(parse_xfcc(&many).is_err());
    }
}
