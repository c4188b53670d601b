//! Arbitrary bytes into the X-Forwarded-Client-Cert parser, the RFC 4514 parser and the
//! proxy-header reader: none may panic (the proptest `xfcc_parser_never_panics` in
//! crates/mtls checks the same property in CI).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use palisade_mtls::{
    DistinguishedName, ForwardedCertStyle, ProxyIdentifier, ProxySettings, UntrustedHeaders,
    parse_xfcc,
};

fn proxy() -> &'static ProxyIdentifier {
    static PROXY: OnceLock<ProxyIdentifier> = OnceLock::new();
    PROXY.get_or_init(|| {
        ProxyIdentifier::new(ProxySettings {
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("net")],
            style: ForwardedCertStyle::Envoy,
            untrusted: UntrustedHeaders::Refuse,
            identities: vec![],
        })
        .expect("settings")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(elements) = parse_xfcc(text) {
            for element in &elements {
                let _ = element.certificate_info();
            }
        }
        let _ = DistinguishedName::parse(text);
    }
    let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let _ = proxy().identify(peer, [("x-forwarded-client-cert", data)]);
});
