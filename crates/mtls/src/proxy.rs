//! Proxy mode: TLS terminated by nginx or Envoy in front of Palisade, which forwards the
//! verified client certificate's details in headers. Trusted only from configured proxy
//! networks.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::dn::DistinguishedName;
use crate::error::{Error, ErrorKind};
use crate::identity::{
    CertificateInfo, IdentityMap, IdentityRule, IdentitySource, PeerIdentity, normalize_serial,
};
use crate::xfcc::{MAX_XFCC_LEN, parse_xfcc};

/// nginx: the client certificate's subject DN (`$ssl_client_s_dn`, RFC 2253).
pub const HEADER_CLIENT_CERT_DN: &str = "x-client-cert-dn";
/// nginx: the client certificate's serial number in hex (`$ssl_client_serial`).
pub const HEADER_CLIENT_CERT_SERIAL: &str = "x-client-cert-serial";
/// nginx: the verification result (`$ssl_client_verify`: `SUCCESS`, `NONE`, `FAILED:...`).
pub const HEADER_CLIENT_VERIFY: &str = "x-client-verify";
/// Envoy: `X-Forwarded-Client-Cert`.
pub const HEADER_XFCC: &str = "x-forwarded-client-cert";

/// Every header that can carry a forwarded client certificate, lower case. The HTTP
/// adapter removes them all from the request once [`ProxyIdentifier::identify`] has run,
/// so nothing downstream can read an identity from them.
pub const FORWARDED_CERT_HEADERS: [&str; 4] = [
    HEADER_CLIENT_CERT_DN,
    HEADER_CLIENT_CERT_SERIAL,
    HEADER_CLIENT_VERIFY,
    HEADER_XFCC,
];

/// Whether `name` is one of [`FORWARDED_CERT_HEADERS`] (ASCII case-insensitive).
#[must_use]
pub fn is_forwarded_cert_header(name: &str) -> bool {
    FORWARDED_CERT_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Which headers the trusted proxy sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ForwardedCertStyle {
    /// nginx: `X-Client-Cert-DN`, `X-Client-Cert-Serial`, optionally `X-Client-Verify`.
    Nginx,
    /// Envoy: `X-Forwarded-Client-Cert`; the last element (the nearest proxy's) is used.
    Envoy,
}

/// What forwarded-certificate headers from an untrusted address get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum UntrustedHeaders {
    /// The request is refused ([`ErrorKind::UntrustedForwardedCertificate`]).
    #[default]
    Refuse,
    /// The headers are ignored ([`ProxyOutcome::Ignored`]) and the adapter removes them;
    /// the request goes on anonymous.
    Strip,
}

/// Proxy-mode settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ProxySettings {
    /// Networks the proxies connect from. Only a direct peer in one of them is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Which headers the proxies set.
    pub style: ForwardedCertStyle,
    /// What the headers get from anyone else.
    #[cfg_attr(feature = "serde", serde(default))]
    pub untrusted: UntrustedHeaders,
    /// The identity rules, as for directly verified certificates.
    #[cfg_attr(feature = "serde", serde(default))]
    pub identities: Vec<IdentityRule>,
}

/// The result of reading forwarded-certificate headers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyOutcome {
    /// A trusted proxy forwarded a verified certificate.
    Identified(Box<PeerIdentity>),
    /// No certificate: no forwarded-certificate headers, or the proxy reports none.
    Anonymous,
    /// Forwarded-certificate headers came from an untrusted address and, by policy, are
    /// ignored: the request is anonymous and the adapter must remove the headers.
    Ignored,
}

/// Reads client identities forwarded by trusted proxies.
#[derive(Debug, Clone)]
pub struct ProxyIdentifier {
    trusted: Vec<IpNet>,
    style: ForwardedCertStyle,
    untrusted: UntrustedHeaders,
    identities: Arc<IdentityMap>,
}

impl ProxyIdentifier {
    /// Validates the settings.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] for an invalid identity rule, or no trusted network.
    pub fn new(settings: ProxySettings) -> Result<Self, Error> {
        if settings.trusted_proxies.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "proxy mode needs at least one trusted proxy network",
            ));
        }
        Ok(Self {
            trusted: settings.trusted_proxies,
            style: settings.style,
            untrusted: settings.untrusted,
            identities: Arc::new(IdentityMap::new(settings.identities)?),
        })
    }

    /// Whether `peer` (the address of the TCP peer, never a forwarded address) is a
    /// trusted proxy.
    #[must_use]
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.trusted.iter().any(|net| net.contains(&peer))
    }

    /// Reads the forwarded-certificate headers of one request that arrived from `peer`.
    /// `headers` are (name, value) pairs, every header line of the request (the adapter
    /// passes `(name.as_str(), value.as_bytes())`).
    ///
    /// # Errors
    /// [`ErrorKind::UntrustedForwardedCertificate`] when headers arrive from an untrusted
    /// address under [`UntrustedHeaders::Refuse`];
    /// [`ErrorKind::MalformedForwardedCertificate`] for a malformed, repeated or non-UTF-8
    /// header from a trusted proxy; [`ErrorKind::ForwardedVerificationFailed`] when nginx
    /// reports a failed verification; [`ErrorKind::NoIdentity`] /
    /// [`ErrorKind::InvalidSpiffeId`] when the certificate names no identity.
    pub fn identify<'a, I>(&self, peer: IpAddr, headers: I) -> Result<ProxyOutcome, Error>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let mut found = Found::default();
        for (name, value) in headers {
            let slot = if name.eq_ignore_ascii_case(HEADER_CLIENT_CERT_DN) {
                &mut found.dn
            } else if name.eq_ignore_ascii_case(HEADER_CLIENT_CERT_SERIAL) {
                &mut found.serial
            } else if name.eq_ignore_ascii_case(HEADER_CLIENT_VERIFY) {
                &mut found.verify
            } else if name.eq_ignore_ascii_case(HEADER_XFCC) {
                &mut found.xfcc
            } else {
                continue;
            };
            found.any = true;
            slot.push(value);
        }
        if !found.any {
            return Ok(ProxyOutcome::Anonymous);
        }
        if !self.is_trusted(peer) {
            return match self.untrusted {
                UntrustedHeaders::Refuse => Err(Error::new(
                    ErrorKind::UntrustedForwardedCertificate,
                    "forwarded client-certificate headers from an address that is not a trusted proxy",
                )),
                UntrustedHeaders::Strip => Ok(ProxyOutcome::Ignored),
            };
        }
        let info = match self.style {
            ForwardedCertStyle::Nginx => nginx(&found)?,
            ForwardedCertStyle::Envoy => envoy(&found)?,
        };
        match info {
            None => Ok(ProxyOutcome::Anonymous),
            Some(info) => self
                .identities
                .identify(info, IdentitySource::Proxy)
                .map(|peer| ProxyOutcome::Identified(Box::new(peer))),
        }
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:10.0.0.1` on a dual-stack socket) match IPv4 networks.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[derive(Default)]
struct Found<'a> {
    any: bool,
    dn: Vec<&'a [u8]>,
    serial: Vec<&'a [u8]>,
    verify: Vec<&'a [u8]>,
    xfcc: Vec<&'a [u8]>,
}

fn malformed(why: &str) -> Error {
    Error::new(ErrorKind::MalformedForwardedCertificate, why.to_owned())
}

/// At most one line of a header, as visible text.
fn single<'a>(values: &[&'a [u8]], name: &str, max: usize) -> Result<Option<&'a str>, Error> {
    match values {
        [] => Ok(None),
        [value] => {
            if value.len() > max {
                return Err(malformed(&format!("{name} is too long")));
            }
            let text = std::str::from_utf8(value)
                .map_err(|_| malformed(&format!("{name} is not UTF-8")))?;
            if text.is_empty() {
                return Err(malformed(&format!("{name} is empty")));
            }
            Ok(Some(text))
        }
        _ => Err(malformed(&format!("{name} appears more than once"))),
    }
}

fn nginx(found: &Found<'_>) -> Result<Option<CertificateInfo>, Error> {
    let verify = single(&found.verify, "X-Client-Verify", 256)?;
    let dn = single(&found.dn, "X-Client-Cert-DN", 4096)?;
    let serial = single(&found.serial, "X-Client-Cert-Serial", 128)?;
    match verify {
        None | Some("SUCCESS") => {}
        Some("NONE") => {
            return if dn.is_none() && serial.is_none() {
                Ok(None)
            } else {
                Err(malformed(
                    "X-Client-Verify is NONE but certificate headers are present",
                ))
            };
        }
        Some(v) if v.starts_with("FAILED") => {
            return Err(Error::new(
                ErrorKind::ForwardedVerificationFailed,
                "the proxy reports that the client certificate failed verification",
            ));
        }
        Some(_) => return Err(malformed("X-Client-Verify is not SUCCESS, NONE or FAILED")),
    }
    let Some(dn) = dn else {
        return if serial.is_some() || verify.is_some() {
            Err(malformed("X-Client-Cert-DN is missing"))
        } else {
            Ok(None)
        };
    };
    let subject = DistinguishedName::parse(dn)
        .map_err(|_| malformed("X-Client-Cert-DN is not an RFC 4514 name"))?;
    let serial = serial
        .map(|s| normalize_serial(s).ok_or_else(|| malformed("X-Client-Cert-Serial is not hex")))
        .transpose()?;
    Ok(Some(CertificateInfo::forwarded(
        Some(subject),
        Vec::new(),
        serial,
        None,
    )))
}

fn envoy(found: &Found<'_>) -> Result<Option<CertificateInfo>, Error> {
    let Some(value) = single(&found.xfcc, "X-Forwarded-Client-Cert", MAX_XFCC_LEN)? else {
        return Ok(None);
    };
    let elements = parse_xfcc(value)?;
    let nearest = elements
        .last()
        .ok_or_else(|| malformed("empty X-Forwarded-Client-Cert"))?;
    nearest.certificate_info().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Matcher;

    fn identifier(style: ForwardedCertStyle, untrusted: UntrustedHeaders) -> ProxyIdentifier {
        ProxyIdentifier::new(ProxySettings {
            trusted_proxies: vec![
                "10.0.0.0/8".parse().expect("net"),
                "::1/128".parse().expect("net"),
            ],
            style,
            untrusted,
            identities: vec![
                IdentityRule::new("spiffe://example.org/svc-a", ["orders:read"]),
                IdentityRule::new("billing", ["orders:write"])
                    .matching(Matcher::Subject("CN=billing,O=Example".into())),
            ],
        })
        .expect("settings")
    }

    const PROXY: &str = "10.1.2.3";
    const CLIENT: &str = "203.0.113.9";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn nginx_headers_from_a_trusted_proxy_identify() {
        let id = identifier(ForwardedCertStyle::Nginx, UntrustedHeaders::Refuse);
        let headers: [(&str, &[u8]); 4] = [
            ("Host", b"api"),
            ("X-Client-Cert-DN", b"CN=billing,O=Example"),
            ("X-Client-Cert-Serial", b"0A1B"),
            ("X-Client-Verify", b"SUCCESS"),
        ];
        let ProxyOutcome::Identified(peer) = id.identify(ip(PROXY), headers).expect("ok") else {
            panic!("not identified");
        };
        assert_eq!(peer.id(), "billing");
        assert_eq!(peer.scopes(), ["orders:write"]);
        assert_eq!(peer.source(), IdentitySource::Proxy);
        assert_eq!(peer.certificate().serial(), Some("0a1b"));
        // A CN without a rule: its own identity, no scopes.
        let headers: [(&str, &[u8]); 1] = [("x-client-cert-dn", b"CN=other")];
        let ProxyOutcome::Identified(peer) = id.identify(ip(PROXY), headers).expect("ok") else {
            panic!("not identified");
        };
        assert_eq!((peer.id(), peer.scopes().len()), ("other", 0));
        // IPv4-mapped IPv6 peers match IPv4 networks.
        assert!(id.is_trusted(ip("::ffff:10.9.9.9")));
    }

    #[test]
    fn forwarded_headers_from_anyone_else_are_refused_or_stripped() {
        let headers: [(&str, &[u8]); 1] = [("X-Client-Cert-DN", b"CN=billing,O=Example")];
        let refuse = identifier(ForwardedCertStyle::Nginx, UntrustedHeaders::Refuse);
        let err = refuse.identify(ip(CLIENT), headers).expect_err("refused");
        assert_eq!(err.code(), "untrusted_forwarded_certificate");
        let strip = identifier(ForwardedCertStyle::Nginx, UntrustedHeaders::Strip);
        assert_eq!(
            strip.identify(ip(CLIENT), headers).expect("ok"),
            ProxyOutcome::Ignored
        );
        let xfcc: [(&str, &[u8]); 1] =
            [("X-Forwarded-Client-Cert", b"URI=spiffe://example.org/svc-a")];
        let envoy = identifier(ForwardedCertStyle::Envoy, UntrustedHeaders::Refuse);
        assert!(envoy.identify(ip(CLIENT), xfcc).is_err());
        // No headers at all: anonymous, from anyone.
        let none: [(&str, &[u8]); 1] = [("Host", b"api")];
        assert_eq!(
            refuse.identify(ip(CLIENT), none).expect("ok"),
            ProxyOutcome::Anonymous
        );
        assert!(is_forwarded_cert_header("X-Forwarded-Client-Cert"));
        assert!(!is_forwarded_cert_header("X-Forwarded-For"));
    }

    #[test]
    fn malformed_nginx_headers_are_refused() {
        let id = identifier(ForwardedCertStyle::Nginx, UntrustedHeaders::Refuse);
        let cases: [&[(&str, &[u8])]; 7] = [
            &[("X-Client-Cert-DN", b"CN=a, O=b")],
            &[("X-Client-Cert-DN", b"CN=a"), ("X-Client-Cert-DN", b"CN=b")],
            &[("X-Client-Cert-DN", b"")],
            &[
                ("X-Client-Cert-DN", b"CN=a"),
                ("X-Client-Cert-Serial", b"xyz"),
            ],
            &[("X-Client-Cert-Serial", b"01")],
            &[("X-Client-Verify", b"NONE"), ("X-Client-Cert-DN", b"CN=a")],
            &[("X-Client-Cert-DN", b"CN=\xff")],
        ];
        for headers in cases {
            let err = id
                .identify(ip(PROXY), headers.iter().copied())
                .expect_err("refused");
            assert_eq!(
                err.kind(),
                ErrorKind::MalformedForwardedCertificate,
                "{headers:?}"
            );
        }
        let failed: [(&str, &[u8]); 1] = [("X-Client-Verify", b"FAILED:certificate revoked")];
        assert_eq!(
            id.identify(ip(PROXY), failed).expect_err("failed").kind(),
            ErrorKind::ForwardedVerificationFailed
        );
        let none: [(&str, &[u8]); 1] = [("X-Client-Verify", b"NONE")];
        assert_eq!(
            id.identify(ip(PROXY), none).expect("ok"),
            ProxyOutcome::Anonymous
        );
    }

    #[test]
    fn envoy_uses_the_nearest_element_and_refuses_two_uris() {
        let id = identifier(ForwardedCertStyle::Envoy, UntrustedHeaders::Refuse);
        let value = "By=spiffe://example.org/edge;URI=spiffe://example.org/evil,By=spiffe://example.org/mesh;URI=spiffe://example.org/svc-a";
        let headers = [("x-forwarded-client-cert", value.as_bytes())];
        let ProxyOutcome::Identified(peer) = id.identify(ip(PROXY), headers).expect("ok") else {
            panic!("not identified");
        };
        assert_eq!(peer.id(), "spiffe://example.org/svc-a");
        let two = "URI=spiffe://example.org/svc-a;URI=spiffe://example.org/admin";
        let err = id
            .identify(ip(PROXY), [("x-forwarded-client-cert", two.as_bytes())])
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidSpiffeId);
        let dup = [
            (
                "x-forwarded-client-cert",
                b"URI=spiffe://example.org/svc-a".as_slice(),
            ),
            (
                "x-forwarded-client-cert",
                b"URI=spiffe://example.org/svc-b".as_slice(),
            ),
        ];
        assert_eq!(
            id.identify(ip(PROXY), dup).expect_err("dup").kind(),
            ErrorKind::MalformedForwardedCertificate
        );
    }

    #[test]
    fn proxy_mode_needs_a_network() {
        let err = ProxyIdentifier::new(ProxySettings {
            trusted_proxies: vec![],
            style: ForwardedCertStyle::Nginx,
            untrusted: UntrustedHeaders::Refuse,
            identities: vec![],
        })
        .expect_err("no network");
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }
}
