//! Property tests: the XFCC, DN and proxy-header parsers never panic on arbitrary input
//! (the same property as the fuzz target `mtls_xfcc`), and well-formed values round-trip.

use std::net::{IpAddr, Ipv4Addr};

use palisade_mtls::{
    DistinguishedName, ForwardedCertStyle, ProxyIdentifier, ProxySettings, UntrustedHeaders,
    parse_xfcc,
};
use proptest::prelude::*;

fn proxy(style: ForwardedCertStyle) -> ProxyIdentifier {
    ProxyIdentifier::new(ProxySettings {
        trusted_proxies: vec!["10.0.0.0/8".parse().expect("net")],
        style,
        untrusted: UntrustedHeaders::Refuse,
        identities: vec![],
    })
    .expect("settings")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn xfcc_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_xfcc(&text);
        let _ = DistinguishedName::parse(&text);
        let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let _ = proxy(ForwardedCertStyle::Envoy).identify(peer, [("x-forwarded-client-cert", bytes.as_slice())]);
        let _ = proxy(ForwardedCertStyle::Nginx).identify(peer, [("x-client-cert-dn", bytes.as_slice()), ("x-client-cert-serial", bytes.as_slice())]);
    }

    #[test]
    fn xfcc_like_input_never_panics(text in r#"([A-Za-z]{1,7}=("([^"\\]|\\["\\x])*"|[^,;="\\ ]*)[;, ]{0,2}){0,6}"#) {
        let _ = parse_xfcc(&text);
    }

    #[test]
    fn well_formed_elements_parse(
        uri in "spiffe://[a-z0-9]{1,10}\\.org(/[A-Za-z0-9_-]{1,8}){0,3}",
        dns in proptest::collection::vec("[a-z0-9-]{1,12}(\\.[a-z]{2,5}){1,2}", 0..4),
        cn in "[A-Za-z0-9 ,+;=<>#\"\\\\]{1,20}",
        hash in proptest::array::uniform32(any::<u8>()),
    ) {
        let subject_text = {
            let dn = DistinguishedName::parse(&format!("CN={}", escape_dn(&cn))).expect("escaped DN parses");
            dn.to_string()
        };
        let mut value = format!(
            "Hash={};Subject=\"{}\";URI={uri}",
            hex::encode(hash),
            subject_text.replace('\\', "\\\\").replace('"', "\\\""),
        );
        for name in &dns {
            value.push_str(";DNS=");
            value.push_str(name);
        }
        let elements = parse_xfcc(&value).expect("well-formed");
        let element = elements.first().expect("one element");
        prop_assert_eq!(element.uris(), [uri.clone()]);
        prop_assert_eq!(element.dns(), dns.as_slice());
        prop_assert_eq!(element.hash(), Some(&hash));
        prop_assert_eq!(element.subject().map(ToString::to_string), Some(subject_text));
    }
}

fn escape_dn(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    value
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
                || (i == 0 && matches!(c, ' ' | '#'))
                || (i == last && c == ' ')
            {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}
