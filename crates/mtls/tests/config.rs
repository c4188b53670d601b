//! The configuration value types read from the server's TOML (feature `serde`).
#![cfg(feature = "serde")]

use std::path::PathBuf;

use palisade_mtls::{
    ClientAuthMode, ForwardedCertStyle, IdentityRule, Matcher, ProxySettings, RevocationScope,
    StaleCrl, TlsSettings, UnknownStatus, UntrustedHeaders,
};

#[derive(serde::Deserialize)]
struct Config {
    tls: TlsSettings,
    proxy: ProxySettings,
}

#[test]
fn the_contract_tls_sections_deserialize() {
    let config: Config = toml::from_str(
        r#"
        [tls]
        cert = "server.pem"
        key = "server.key"

        [tls.client]
        ca = "ca.pem"
        crl = ["crl.pem", "intermediate.crl"]
        mode = "optional"
        revocation = { scope = "end_entity", unknown_status = "allow", stale_crl = "accept" }

        [[tls.client.identities]]
        id = "spiffe://example.org/svc-a"
        scopes = ["orders:read"]

        [[tls.client.identities]]
        id = "ops-laptop"
        scopes = ["admin"]
        match = { fingerprint = "ab:cd" }

        [proxy]
        trusted_proxies = ["10.0.0.0/8"]
        style = "envoy"
        untrusted = "strip"
        "#,
    )
    .expect("toml");
    assert_eq!(config.tls.cert, PathBuf::from("server.pem"));
    let client = config.tls.client.expect("client");
    assert_eq!(client.mode, ClientAuthMode::Optional);
    assert_eq!(client.crl.len(), 2);
    assert_eq!(client.revocation.scope, RevocationScope::EndEntity);
    assert_eq!(client.revocation.unknown_status, UnknownStatus::Allow);
    assert_eq!(client.revocation.stale_crl, StaleCrl::Accept);
    assert_eq!(
        client.identities,
        [
            IdentityRule::new("spiffe://example.org/svc-a", ["orders:read"]),
            IdentityRule::new("ops-laptop", ["admin"])
                .matching(Matcher::Fingerprint("ab:cd".into())),
        ]
    );
    assert_eq!(config.proxy.style, ForwardedCertStyle::Envoy);
    assert_eq!(config.proxy.untrusted, UntrustedHeaders::Strip);
}

#[test]
fn defaults_are_strict_and_unknown_keys_are_refused() {
    let tls: TlsSettings = toml::from_str(
        r#"
        cert = "server.pem"
        key = "server.key"
        client = { ca = "ca.pem" }
        "#,
    )
    .expect("toml");
    let client = tls.client.expect("client");
    assert_eq!(client.mode, ClientAuthMode::Required);
    assert_eq!(client.revocation.unknown_status, UnknownStatus::Deny);
    assert_eq!(client.revocation.stale_crl, StaleCrl::Refuse);
    assert!(toml::from_str::<TlsSettings>("cert = \"a\"\nkey = \"b\"\ncerts = \"c\"").is_err());
}
