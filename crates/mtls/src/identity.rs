//! What a verified client certificate says, and the rules that turn it into an identity
//! with scopes.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

use crate::dn::DistinguishedName;
use crate::error::{Error, ErrorKind};

/// Longest SPIFFE ID accepted (the SPIFFE ID specification's limit).
const MAX_SPIFFE_ID_LEN: usize = 2048;

/// A subject alternative name of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectAltName {
    /// A DNS name (`dNSName`).
    Dns(String),
    /// An IP address (`iPAddress`).
    Ip(IpAddr),
    /// An e-mail address (`rfc822Name`).
    Email(String),
    /// A URI (`uniformResourceIdentifier`), SPIFFE IDs included.
    Uri(String),
}

/// A validated SPIFFE ID (`spiffe://trust-domain/path`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId(String);

impl SpiffeId {
    /// Parses a SPIFFE ID per the SPIFFE ID specification: lower-case `spiffe` scheme, a
    /// trust domain of `[a-z0-9._-]`, path segments of `[A-Za-z0-9._-]` that are neither
    /// empty, `.` nor `..`, no query, fragment, port or user info, at most 2048 bytes.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSpiffeId`] when the string is not a SPIFFE ID.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidSpiffeId,
                format!("invalid SPIFFE ID: {why}"),
            )
        };
        if input.len() > MAX_SPIFFE_ID_LEN {
            return Err(bad("too long"));
        }
        let rest = input
            .strip_prefix("spiffe://")
            .ok_or_else(|| bad("scheme must be spiffe://"))?;
        let (domain, path) = match rest.split_once('/') {
            Some((domain, path)) => (domain, Some(path)),
            None => (rest, None),
        };
        if domain.is_empty()
            || !domain.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
            })
        {
            return Err(bad("invalid trust domain"));
        }
        if let Some(path) = path {
            for segment in path.split('/') {
                if segment.is_empty() || segment == "." || segment == ".." {
                    return Err(bad("invalid path segment"));
                }
                if !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                {
                    return Err(bad("invalid character in path"));
                }
            }
        }
        Ok(Self(input.to_owned()))
    }

    /// The ID as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain (`example.org` in `spiffe://example.org/svc`).
    #[must_use]
    pub fn trust_domain(&self) -> &str {
        self.0
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is known of a client certificate: everything when it was verified in this
/// process's handshake, what the proxy forwarded otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    subject: Option<DistinguishedName>,
    issuer: Option<DistinguishedName>,
    sans: Vec<SubjectAltName>,
    serial: Option<String>,
    fingerprint: Option<[u8; 32]>,
    not_before: Option<SystemTime>,
    not_after: Option<SystemTime>,
}

impl CertificateInfo {
    /// Reads a DER certificate.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidCertificate`] when the bytes are not one X.509 certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let invalid = |why: String| Error::new(ErrorKind::InvalidCertificate, why);
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(invalid("trailing bytes after the certificate".to_owned()));
        }
        let mut sans = Vec::new();
        let ext = cert
            .subject_alternative_name()
            .map_err(|e| invalid(format!("bad subjectAltName extension: {e}")))?;
        if let Some(ext) = ext {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(v) => sans.push(SubjectAltName::Dns((*v).to_owned())),
                    GeneralName::RFC822Name(v) => sans.push(SubjectAltName::Email((*v).to_owned())),
                    GeneralName::URI(v) => sans.push(SubjectAltName::Uri((*v).to_owned())),
                    GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                            _ => None,
                        };
                        sans.push(SubjectAltName::Ip(
                            ip.ok_or_else(|| invalid("bad iPAddress SAN".to_owned()))?,
                        ));
                    }
                    _ => {}
                }
            }
        }
        let validity = cert.validity();
        Ok(Self {
            subject: Some(DistinguishedName::from_x509(cert.subject())),
            issuer: Some(DistinguishedName::from_x509(cert.issuer())),
            sans,
            serial: Some(serial_hex(cert.raw_serial())),
            fingerprint: Some(Sha256::digest(der).into()),
            not_before: Some(unix_to_system(validity.not_before.timestamp())),
            not_after: Some(unix_to_system(validity.not_after.timestamp())),
        })
    }

    pub(crate) fn forwarded(
        subject: Option<DistinguishedName>,
        sans: Vec<SubjectAltName>,
        serial: Option<String>,
        fingerprint: Option<[u8; 32]>,
    ) -> Self {
        Self {
            subject,
            issuer: None,
            sans,
            serial,
            fingerprint,
            not_before: None,
            not_after: None,
        }
    }

    /// The subject's distinguished name; its `to_string()` is the RFC 4514 form.
    #[must_use]
    pub fn subject(&self) -> Option<&DistinguishedName> {
        self.subject.as_ref()
    }

    /// The issuer's distinguished name (not known for forwarded certificates).
    #[must_use]
    pub fn issuer(&self) -> Option<&DistinguishedName> {
        self.issuer.as_ref()
    }

    /// The subject alternative names (DNS, IP, e-mail, URI), in certificate order.
    #[must_use]
    pub fn subject_alt_names(&self) -> &[SubjectAltName] {
        &self.sans
    }

    /// The serial number as lower-case hex without leading zero bytes.
    #[must_use]
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// The SHA-256 fingerprint of the DER certificate.
    #[must_use]
    pub fn fingerprint_sha256(&self) -> Option<&[u8; 32]> {
        self.fingerprint.as_ref()
    }

    /// The SHA-256 fingerprint as lower-case hex.
    #[must_use]
    pub fn fingerprint_hex(&self) -> Option<String> {
        self.fingerprint.map(hex::encode)
    }

    /// Start of validity (`notBefore`).
    #[must_use]
    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before
    }

    /// End of validity (`notAfter`).
    #[must_use]
    pub fn not_after(&self) -> Option<SystemTime> {
        self.not_after
    }

    /// The URI SANs.
    pub fn uris(&self) -> impl Iterator<Item = &str> {
        self.sans.iter().filter_map(|san| match san {
            SubjectAltName::Uri(uri) => Some(uri.as_str()),
            _ => None,
        })
    }

    /// The SPIFFE ID, if the certificate claims one.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSpiffeId`] when a URI SAN uses the `spiffe` scheme but the
    /// certificate is not a valid SPIFFE identity: it has more than one URI SAN (an X.509
    /// SVID has exactly one), or the ID is malformed.
    pub fn spiffe_id(&self) -> Result<Option<SpiffeId>, Error> {
        let Some(first) = self.uris().find(|u| has_spiffe_scheme(u)) else {
            return Ok(None);
        };
        if self.uris().nth(1).is_some() {
            return Err(Error::new(
                ErrorKind::InvalidSpiffeId,
                "a certificate with more than one URI SAN is not a SPIFFE identity",
            ));
        }
        SpiffeId::parse(first).map(Some)
    }

    /// The identity this certificate names on its own: its SPIFFE ID when it has one,
    /// else its single subject common name.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSpiffeId`] (see [`CertificateInfo::spiffe_id`]), or
    /// [`ErrorKind::NoIdentity`] when there is no SPIFFE ID and not exactly one CN.
    pub fn default_identity(&self) -> Result<String, Error> {
        if let Some(id) = self.spiffe_id()? {
            return Ok(id.0);
        }
        let mut cns = self
            .subject
            .iter()
            .flat_map(DistinguishedName::common_names);
        match (cns.next(), cns.next()) {
            (Some(cn), None) if !cn.is_empty() => Ok(cn.to_owned()),
            (Some(_), Some(_)) => Err(Error::new(
                ErrorKind::NoIdentity,
                "the certificate subject has more than one common name",
            )),
            _ => Err(Error::new(
                ErrorKind::NoIdentity,
                "the certificate has neither a SPIFFE ID nor a subject common name",
            )),
        }
    }
}

fn has_spiffe_scheme(uri: &str) -> bool {
    uri.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("spiffe:"))
}

fn unix_to_system(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(secs) => SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .unwrap_or(SystemTime::UNIX_EPOCH),
        Err(_) => SystemTime::UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// A serial number's bytes as lower-case hex without leading zero bytes.
pub(crate) fn serial_hex(bytes: &[u8]) -> String {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if trimmed.is_empty() {
        "00".to_owned()
    } else {
        hex::encode(trimmed)
    }
}

/// Normalizes a hex serial: lower case, no leading zero bytes, even length. `None` when
/// the input is not 1 to 42 hex digits.
pub(crate) fn normalize_serial(input: &str) -> Option<String> {
    if input.is_empty() || input.len() > 42 || !input.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let lower = input.to_ascii_lowercase();
    let trimmed = lower.trim_start_matches('0');
    let mut out = String::with_capacity(trimmed.len().saturating_add(1));
    if trimmed.len() % 2 == 1 {
        out.push('0');
    }
    out.push_str(trimmed);
    if out.is_empty() {
        out.push_str("00");
    }
    Some(out)
}

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentitySource {
    /// A client certificate verified in this process's own TLS handshake.
    Tls,
    /// A client certificate verified by a trusted proxy that forwarded its details.
    Proxy,
}

/// The identity of a verified client certificate, with its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    id: String,
    scopes: Vec<String>,
    source: IdentitySource,
    certificate: CertificateInfo,
}

impl PeerIdentity {
    /// The identity string (a SPIFFE ID, a CN, or the `id` of the rule that matched).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The scopes granted by the matching rule; empty when no rule matched.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// How the certificate was verified.
    #[must_use]
    pub fn source(&self) -> IdentitySource {
        self.source
    }

    /// What is known of the certificate.
    #[must_use]
    pub fn certificate(&self) -> &CertificateInfo {
        &self.certificate
    }
}

/// What an [`IdentityRule`] matches on.
///
/// With `serde`, written as a one-key table: `match = { fingerprint = "ab:cd:..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
#[non_exhaustive]
pub enum Matcher {
    /// The certificate's SPIFFE ID equals this one. Never matches a certificate with more
    /// than one URI SAN.
    SpiffeId(String),
    /// The certificate's SPIFFE ID is in this trust domain.
    TrustDomain(String),
    /// A DNS SAN equals this name (ASCII case-insensitive).
    Dns(String),
    /// A URI SAN equals this URI.
    Uri(String),
    /// An e-mail SAN equals this address (ASCII case-insensitive).
    Email(String),
    /// An IP SAN equals this address.
    Ip(IpAddr),
    /// The subject DN equals this RFC 4514 string (compared in canonical form).
    Subject(String),
    /// The certificate's SHA-256 fingerprint, in hex (colons allowed): a pinned
    /// certificate.
    Fingerprint(String),
}

/// A mapping rule: certificates that match get the identity `id` and `scopes`.
///
/// Without a `matcher`, the rule matches a certificate whose own identity
/// ([`CertificateInfo::default_identity`]: SPIFFE ID, else CN) equals `id`; this is the
/// `[[tls.client.identities]] id = "...", scopes = [...]` form of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct IdentityRule {
    /// The identity granted.
    pub id: String,
    /// What to match; `None` matches on the certificate's own identity equal to `id`.
    #[cfg_attr(feature = "serde", serde(default, rename = "match"))]
    pub matcher: Option<Matcher>,
    /// The scopes granted.
    #[cfg_attr(feature = "serde", serde(default))]
    pub scopes: Vec<String>,
}

impl IdentityRule {
    /// A rule for a certificate whose own identity (SPIFFE ID, else CN) is `id`.
    #[must_use]
    pub fn new(id: impl Into<String>, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            id: id.into(),
            matcher: None,
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// The same rule matching on `matcher` instead.
    #[must_use]
    pub fn matching(mut self, matcher: Matcher) -> Self {
        self.matcher = Some(matcher);
        self
    }
}

#[derive(Debug, Clone)]
enum Compiled {
    OwnIdentity,
    SpiffeId(String),
    TrustDomain(String),
    Dns(String),
    Uri(String),
    Email(String),
    Ip(IpAddr),
    Subject(DistinguishedName),
    Fingerprint([u8; 32]),
}

/// Validated identity rules, applied in order: the first rule that matches decides.
///
/// A verified certificate no rule matches keeps its own identity with no scopes.
#[derive(Debug, Clone, Default)]
pub struct IdentityMap {
    rules: Vec<(Compiled, IdentityRule)>,
}

impl IdentityMap {
    /// Validates the rules.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] naming the rule (by index and id) that is invalid: an
    /// empty id, a malformed SPIFFE ID, subject or fingerprint.
    pub fn new(rules: impl IntoIterator<Item = IdentityRule>) -> Result<Self, Error> {
        let mut compiled = Vec::new();
        for (index, rule) in rules.into_iter().enumerate() {
            let bad = |why: String| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("tls.client.identities[{index}] (id {:?}): {why}", rule.id),
                )
            };
            if rule.id.is_empty() {
                return Err(bad("id is empty".to_owned()));
            }
            let matcher = match &rule.matcher {
                None => Compiled::OwnIdentity,
                Some(Matcher::SpiffeId(id)) => {
                    Compiled::SpiffeId(SpiffeId::parse(id).map_err(|e| bad(e.to_string()))?.0)
                }
                Some(Matcher::TrustDomain(domain)) => {
                    SpiffeId::parse(&format!("spiffe://{domain}"))
                        .map_err(|e| bad(e.to_string()))?;
                    Compiled::TrustDomain(domain.clone())
                }
                Some(Matcher::Dns(name)) => Compiled::Dns(name.to_ascii_lowercase()),
                Some(Matcher::Uri(uri)) => Compiled::Uri(uri.clone()),
                Some(Matcher::Email(email)) => Compiled::Email(email.to_ascii_lowercase()),
                Some(Matcher::Ip(ip)) => Compiled::Ip(*ip),
                Some(Matcher::Subject(dn)) => {
                    Compiled::Subject(DistinguishedName::parse(dn).map_err(|e| bad(e.to_string()))?)
                }
                Some(Matcher::Fingerprint(hex)) => Compiled::Fingerprint(
                    parse_fingerprint(hex)
                        .ok_or_else(|| bad("fingerprint must be 64 hex digits".to_owned()))?,
                ),
            };
            compiled.push((matcher, rule));
        }
        Ok(Self { rules: compiled })
    }

    /// Maps a verified certificate to its identity.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSpiffeId`] or [`ErrorKind::NoIdentity`] when no rule matches and
    /// the certificate names no identity of its own.
    pub fn identify(
        &self,
        certificate: CertificateInfo,
        source: IdentitySource,
    ) -> Result<PeerIdentity, Error> {
        let own = certificate.default_identity();
        let spiffe = certificate.spiffe_id().ok().flatten();
        for (matcher, rule) in &self.rules {
            if matches(
                matcher,
                rule,
                &certificate,
                own.as_ref().ok(),
                spiffe.as_ref(),
            ) {
                return Ok(PeerIdentity {
                    id: rule.id.clone(),
                    scopes: rule.scopes.clone(),
                    source,
                    certificate,
                });
            }
        }
        Ok(PeerIdentity {
            id: own?,
            scopes: Vec::new(),
            source,
            certificate,
        })
    }

    /// Maps the peer certificate chain of a finished handshake (end-entity first, as
    /// rustls's `peer_certificates()` returns it). `None` or an empty chain is an
    /// anonymous client.
    ///
    /// # Errors
    /// As [`IdentityMap::identify`], or [`ErrorKind::InvalidCertificate`] when the
    /// end-entity certificate cannot be read.
    pub fn identify_chain(
        &self,
        chain: Option<&[CertificateDer<'_>]>,
    ) -> Result<Option<PeerIdentity>, Error> {
        let Some(leaf) = chain.and_then(<[_]>::first) else {
            return Ok(None);
        };
        let info = CertificateInfo::from_der(leaf)?;
        self.identify(info, IdentitySource::Tls).map(Some)
    }
}

fn matches(
    matcher: &Compiled,
    rule: &IdentityRule,
    cert: &CertificateInfo,
    own: Option<&String>,
    spiffe: Option<&SpiffeId>,
) -> bool {
    let sans = cert.subject_alt_names();
    match matcher {
        Compiled::OwnIdentity => own.is_some_and(|own| *own == rule.id),
        Compiled::SpiffeId(id) => spiffe.is_some_and(|s| s.as_str() == id),
        Compiled::TrustDomain(domain) => spiffe.is_some_and(|s| s.trust_domain() == domain),
        Compiled::Dns(name) => sans
            .iter()
            .any(|san| matches!(san, SubjectAltName::Dns(d) if d.eq_ignore_ascii_case(name))),
        Compiled::Uri(uri) => sans
            .iter()
            .any(|san| matches!(san, SubjectAltName::Uri(u) if u == uri)),
        Compiled::Email(email) => sans
            .iter()
            .any(|san| matches!(san, SubjectAltName::Email(e) if e.eq_ignore_ascii_case(email))),
        Compiled::Ip(ip) => sans
            .iter()
            .any(|san| matches!(san, SubjectAltName::Ip(i) if i == ip)),
        Compiled::Subject(dn) => cert.subject().is_some_and(|s| s == dn),
        Compiled::Fingerprint(pin) => cert.fingerprint_sha256().is_some_and(|f| f == pin),
    }
}

/// Parses a SHA-256 fingerprint written as 64 hex digits, optionally colon-separated.
pub(crate) fn parse_fingerprint(input: &str) -> Option<[u8; 32]> {
    let digits: String = input.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0_u8; 32];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(subject: &str, sans: Vec<SubjectAltName>) -> CertificateInfo {
        CertificateInfo::forwarded(
            Some(DistinguishedName::parse(subject).expect("dn")),
            sans,
            Some("01".to_owned()),
            Some([7; 32]),
        )
    }

    #[test]
    fn spiffe_ids_follow_the_specification() {
        for good in [
            "spiffe://example.org",
            "spiffe://example.org/ns/prod/sa/api",
            "spiffe://a-b_c.d/x.y",
        ] {
            assert!(SpiffeId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "spiffe://",
            "spiffe://Example.org/x",
            "SPIFFE://example.org/x",
            "spiffe://example.org/",
            "spiffe://example.org//x",
            "spiffe://example.org/./x",
            "spiffe://example.org/../x",
            "spiffe://example.org/x?y",
            "spiffe://example.org/x#y",
            "spiffe://user@example.org/x",
            "spiffe://example.org:443/x",
            "https://example.org/x",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
        let id = SpiffeId::parse("spiffe://example.org/svc").expect("valid");
        assert_eq!(id.trust_domain(), "example.org");
    }

    #[test]
    fn own_identity_prefers_spiffe_then_cn() {
        let cert = info(
            "CN=svc-a,O=Example",
            vec![SubjectAltName::Uri("spiffe://example.org/svc-a".into())],
        );
        assert_eq!(
            cert.default_identity().expect("id"),
            "spiffe://example.org/svc-a"
        );
        let cert = info(
            "CN=svc-a,O=Example",
            vec![SubjectAltName::Dns("svc-a.internal".into())],
        );
        assert_eq!(cert.default_identity().expect("id"), "svc-a");
        let cert = info("O=Example", vec![]);
        assert_eq!(
            cert.default_identity().expect_err("none").kind(),
            ErrorKind::NoIdentity
        );
        let cert = info("CN=a+CN=b", vec![]);
        assert_eq!(
            cert.default_identity().expect_err("two").kind(),
            ErrorKind::NoIdentity
        );
    }

    #[test]
    fn two_uri_sans_are_not_a_spiffe_identity() {
        let cert = info(
            "CN=svc-a",
            vec![
                SubjectAltName::Uri("spiffe://example.org/svc-a".into()),
                SubjectAltName::Uri("spiffe://example.org/admin".into()),
            ],
        );
        assert_eq!(
            cert.spiffe_id().expect_err("refused").kind(),
            ErrorKind::InvalidSpiffeId
        );
        assert_eq!(
            cert.default_identity().expect_err("refused").code(),
            "invalid_spiffe_id"
        );
        let map = IdentityMap::new([
            IdentityRule::new("admin", ["admin"])
                .matching(Matcher::SpiffeId("spiffe://example.org/admin".into())),
            IdentityRule::new("svc", ["x"]).matching(Matcher::TrustDomain("example.org".into())),
        ])
        .expect("rules");
        let err = map
            .identify(cert, IdentitySource::Tls)
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidSpiffeId);
        // Two non-SPIFFE URIs do not stop the CN from naming the certificate.
        let cert = info(
            "CN=svc-b",
            vec![
                SubjectAltName::Uri("https://a".into()),
                SubjectAltName::Uri("https://b".into()),
            ],
        );
        assert_eq!(cert.default_identity().expect("cn"), "svc-b");
    }

    #[test]
    fn rules_apply_in_order_and_unmatched_certificates_have_no_scopes() {
        let map = IdentityMap::new([
            IdentityRule::new("spiffe://example.org/svc-a", ["orders:read"]),
            IdentityRule::new("pinned", ["admin"])
                .matching(Matcher::Fingerprint(hex::encode([7_u8; 32]))),
            IdentityRule::new("by-dns", ["dns"]).matching(Matcher::Dns("SVC-C.internal".into())),
            IdentityRule::new("by-subject", ["dn"])
                .matching(Matcher::Subject("cn=svc-d,o=Example".into())),
            IdentityRule::new("by-ip", ["ip"])
                .matching(Matcher::Ip("10.0.0.1".parse().expect("ip"))),
            IdentityRule::new("by-email", ["mail"])
                .matching(Matcher::Email("Ops@Example.org".into())),
            IdentityRule::new("by-uri", ["uri"]).matching(Matcher::Uri("urn:svc:e".into())),
        ])
        .expect("rules");
        let a = info(
            "CN=x",
            vec![SubjectAltName::Uri("spiffe://example.org/svc-a".into())],
        );
        let id = map.identify(a, IdentitySource::Tls).expect("id");
        assert_eq!(
            (id.id(), id.scopes()),
            (
                "spiffe://example.org/svc-a",
                &["orders:read".to_owned()][..]
            )
        );

        let mut pinned = info("CN=whatever", vec![]);
        pinned.fingerprint = Some([7; 32]);
        assert_eq!(
            map.identify(pinned, IdentitySource::Proxy)
                .expect("id")
                .id(),
            "pinned"
        );

        let mut other = info(
            "CN=svc-c",
            vec![SubjectAltName::Dns("svc-c.INTERNAL".into())],
        );
        other.fingerprint = Some([1; 32]);
        assert_eq!(
            map.identify(other.clone(), IdentitySource::Tls)
                .expect("id")
                .id(),
            "by-dns"
        );
        other.sans = vec![];
        let id = map
            .identify(other.clone(), IdentitySource::Tls)
            .expect("id");
        assert_eq!((id.id(), id.scopes().len()), ("svc-c", 0));
        other.subject = Some(DistinguishedName::parse("CN=svc-d,O=Example").expect("dn"));
        assert_eq!(
            map.identify(other.clone(), IdentitySource::Tls)
                .expect("id")
                .id(),
            "by-subject"
        );
        other.subject = None;
        other.sans = vec![SubjectAltName::Ip("10.0.0.1".parse().expect("ip"))];
        assert_eq!(
            map.identify(other.clone(), IdentitySource::Tls)
                .expect("id")
                .id(),
            "by-ip"
        );
        other.sans = vec![SubjectAltName::Email("ops@example.ORG".into())];
        assert_eq!(
            map.identify(other.clone(), IdentitySource::Tls)
                .expect("id")
                .id(),
            "by-email"
        );
        other.sans = vec![SubjectAltName::Uri("urn:svc:e".into())];
        assert_eq!(
            map.identify(other, IdentitySource::Tls).expect("id").id(),
            "by-uri"
        );
    }

    #[test]
    fn invalid_rules_name_themselves() {
        let err = IdentityMap::new([
            IdentityRule::new("ok", ["a"]),
            IdentityRule::new("pin", ["a"]).matching(Matcher::Fingerprint("abcd".into())),
        ])
        .expect_err("bad");
        assert!(
            err.to_string().contains("tls.client.identities[1]"),
            "{err}"
        );
        assert!(IdentityMap::new([IdentityRule::new("", ["a"])]).is_err());
        assert!(
            IdentityMap::new([
                IdentityRule::new("x", ["a"]).matching(Matcher::SpiffeId("spiffe://A".into()))
            ])
            .is_err()
        );
        assert!(
            IdentityMap::new([
                IdentityRule::new("x", ["a"]).matching(Matcher::Subject("CN=a, O=b".into()))
            ])
            .is_err()
        );
    }

    #[test]
    fn serials_are_normalized() {
        assert_eq!(normalize_serial("00AB").as_deref(), Some("ab"));
        assert_eq!(normalize_serial("abc").as_deref(), Some("0abc"));
        assert_eq!(normalize_serial("0").as_deref(), Some("00"));
        assert_eq!(normalize_serial("xyz"), None);
        assert_eq!(normalize_serial(""), None);
    }

    #[test]
    fn fingerprints_accept_colons() {
        let colons = [0xab_u8; 32]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&colons), Some([0xab; 32]));
        assert_eq!(parse_fingerprint("ab"), None);
    }
}
