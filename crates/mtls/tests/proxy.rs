//! Proxy mode with certificates from the development CA.

mod common;

use std::net::IpAddr;

use common::{Pki, SVC_A};
use palisade_mtls::{
    ErrorKind, ForwardedCertStyle, IdentityRule, Matcher, ProxyIdentifier, ProxyOutcome,
    ProxySettings, UntrustedHeaders, parse_xfcc,
};
use sha2::{Digest, Sha256};

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn envoy(rules: Vec<IdentityRule>) -> ProxyIdentifier {
    ProxyIdentifier::new(ProxySettings {
        trusted_proxies: vec!["127.0.0.0/8".parse().expect("net")],
        style: ForwardedCertStyle::Envoy,
        untrusted: UntrustedHeaders::Refuse,
        identities: rules,
    })
    .expect("settings")
}

const PROXY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[test]
fn xfcc_with_the_certificate_gives_the_full_picture() {
    let pki = Pki::new();
    let cert = pki.client("svc-a", Some(SVC_A));
    let hash = hex::encode(Sha256::digest(cert.der()));
    let value = format!(
        "By=spiffe://example.org/envoy;Hash={hash};Cert=\"{}\";Subject=\"CN=svc-a\";URI={SVC_A}",
        url_encode(cert.cert_pem())
    );
    let id = envoy(vec![IdentityRule::new(SVC_A, ["orders:read"])]);
    let ProxyOutcome::Identified(peer) = id
        .identify(PROXY, [("X-Forwarded-Client-Cert", value.as_bytes())])
        .expect("identified")
    else {
        panic!("not identified");
    };
    assert_eq!(peer.id(), SVC_A);
    assert_eq!(peer.scopes(), ["orders:read"]);
    assert_eq!(peer.certificate().serial(), Some(cert.serial()));
    assert_eq!(
        peer.certificate().fingerprint_hex().as_deref(),
        Some(hash.as_str())
    );

    // A hash that does not match the certificate is refused.
    let wrong = value.replace(&hash, &"0".repeat(64));
    let err = id
        .identify(PROXY, [("X-Forwarded-Client-Cert", wrong.as_bytes())])
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::MalformedForwardedCertificate);
}

#[test]
fn a_pinned_fingerprint_maps_a_hash_only_element() {
    let pki = Pki::new();
    let cert = pki.client("laptop", None);
    let hash = hex::encode(Sha256::digest(cert.der()));
    let id = envoy(vec![
        IdentityRule::new("ops-laptop", ["admin"])
            .matching(Matcher::Fingerprint(hash.to_uppercase())),
    ]);
    let value = format!("Hash={hash};Subject=\"CN=laptop\"");
    let ProxyOutcome::Identified(peer) = id
        .identify(PROXY, [("x-forwarded-client-cert", value.as_bytes())])
        .expect("identified")
    else {
        panic!("not identified");
    };
    assert_eq!(
        (peer.id(), peer.scopes()),
        ("ops-laptop", &["admin".to_owned()][..])
    );
    assert_eq!(parse_xfcc(&value).expect("parse").len(), 1);
}
