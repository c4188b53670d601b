//! Bad input at start-up: each a clear error naming the file.

mod common;

use std::path::Path;

use common::{DAY, Pki};
use palisade_mtls::{
    ClientAuthMode, ClientAuthSettings, DevCa, Error, ErrorKind, IdentityRule, Matcher,
    ReloadableConfig, RevocationPolicy, StaleCrl, TlsSettings,
};

fn load_err(settings: TlsSettings, pki: &Pki) -> Error {
    ReloadableConfig::load(settings, pki.now).expect_err("start-up must fail")
}

fn assert_names(err: &Error, kind: ErrorKind, path: &Path) {
    assert_eq!(err.kind(), kind, "{err}");
    assert_eq!(err.path(), Some(path), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn the_reference_setup_loads() {
    let pki = Pki::new();
    let config =
        ReloadableConfig::load(pki.settings(ClientAuthMode::Required), pki.now).expect("load");
    assert_eq!(
        config.current().alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    // Server-only TLS needs no CA.
    ReloadableConfig::load(TlsSettings::new(&pki.server_cert, &pki.server_key), pki.now)
        .expect("server only");
}

#[test]
fn garbage_pem_names_the_file() {
    let pki = Pki::new();
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "this is not PEM at all").expect("write");
    let err = load_err(TlsSettings::new(&garbage, &pki.server_key), &pki);
    assert_names(&err, ErrorKind::InvalidPem, &garbage);

    let broken = pki.path("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let err = load_err(TlsSettings::new(&broken, &pki.server_key), &pki);
    assert_names(&err, ErrorKind::InvalidPem, &broken);

    let err = load_err(TlsSettings::new(&pki.server_cert, &garbage), &pki);
    assert_names(&err, ErrorKind::InvalidPem, &garbage);

    let settings = TlsSettings::new(&pki.server_cert, &pki.server_key)
        .with_client_auth(ClientAuthSettings::new(&garbage));
    assert_names(&load_err(settings, &pki), ErrorKind::InvalidPem, &garbage);
}

#[test]
fn a_missing_file_names_the_file() {
    let pki = Pki::new();
    let missing = pki.path("missing.key");
    let err = load_err(TlsSettings::new(&pki.server_cert, &missing), &pki);
    assert_names(&err, ErrorKind::FileUnreadable, &missing);
    assert_eq!(err.code(), "file_unreadable");
}

#[test]
fn a_key_that_does_not_match_the_certificate_names_the_key() {
    let pki = Pki::new();
    let other = pki
        .ca
        .issue_server(&["localhost"], pki.now)
        .expect("server");
    let other_key = pki.path("other.key");
    std::fs::write(&other_key, other.key_pem()).expect("write");
    let err = load_err(TlsSettings::new(&pki.server_cert, &other_key), &pki);
    assert_names(&err, ErrorKind::KeyMismatch, &other_key);
    assert_eq!(err.code(), "key_mismatch");
}

#[test]
fn expired_and_not_yet_valid_server_certificates_name_the_file() {
    let pki = Pki::new();
    for (name, not_before, not_after, kind) in [
        (
            "expired.pem",
            pki.now - DAY * 30,
            pki.now - DAY,
            ErrorKind::Expired,
        ),
        (
            "future.pem",
            pki.now + DAY,
            pki.now + DAY * 30,
            ErrorKind::NotYetValid,
        ),
    ] {
        let cert = pki
            .ca
            .issue_server_with_validity(&["localhost"], not_before, not_after)
            .expect("cert");
        let (cert_path, key_path) = (pki.path(name), pki.path(&format!("{name}.key")));
        std::fs::write(&cert_path, cert.cert_pem()).expect("write");
        std::fs::write(&key_path, cert.key_pem()).expect("write");
        let err = load_err(TlsSettings::new(&cert_path, &key_path), &pki);
        assert_names(&err, kind, &cert_path);
    }
}

#[test]
fn unreadable_foreign_or_stale_crls_name_the_file() {
    let pki = Pki::new();
    let with_crl = |crl: &Path| {
        TlsSettings::new(&pki.server_cert, &pki.server_key)
            .with_client_auth(ClientAuthSettings::new(&pki.ca_path).crl(crl))
    };

    let missing = pki.path("missing-crl.pem");
    assert_names(
        &load_err(with_crl(&missing), &pki),
        ErrorKind::FileUnreadable,
        &missing,
    );

    let garbage = pki.path("garbage.crl");
    std::fs::write(&garbage, [0x30_u8, 0x82, 0xff, 0xff, 0x01]).expect("write");
    assert_names(
        &load_err(with_crl(&garbage), &pki),
        ErrorKind::InvalidCrl,
        &garbage,
    );

    let pem_garbage = pki.path("garbage-crl.pem");
    std::fs::write(
        &pem_garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    assert_names(
        &load_err(with_crl(&pem_garbage), &pki),
        ErrorKind::InvalidCrl,
        &pem_garbage,
    );

    let other = DevCa::generate(pki.now).expect("ca");
    let foreign = pki.path("foreign-crl.pem");
    std::fs::write(&foreign, other.crl(&[], pki.now, DAY).expect("crl")).expect("write");
    let err = load_err(with_crl(&foreign), &pki);
    assert_names(&err, ErrorKind::InvalidCrl, &foreign);
    assert!(
        err.to_string()
            .contains("not signed by one of the trusted CAs"),
        "{err}"
    );

    let stale = pki.path("stale-crl.pem");
    std::fs::write(
        &stale,
        pki.ca.crl(&[], pki.now - DAY * 3, DAY).expect("crl"),
    )
    .expect("write");
    assert_names(
        &load_err(with_crl(&stale), &pki),
        ErrorKind::InvalidCrl,
        &stale,
    );
    // Accepting stale lists is an explicit choice.
    let lenient = TlsSettings::new(&pki.server_cert, &pki.server_key).with_client_auth(
        ClientAuthSettings::new(&pki.ca_path)
            .crl(&stale)
            .revocation(RevocationPolicy {
                stale_crl: StaleCrl::Accept,
                ..RevocationPolicy::default()
            }),
    );
    ReloadableConfig::load(lenient, pki.now).expect("stale accepted by policy");
}

#[test]
fn der_crls_are_accepted() {
    let pki = Pki::new();
    let pem = pki.ca.crl(&[], pki.now, DAY).expect("crl");
    let der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
        .expect("pem");
    let path = pki.path("crl.der");
    std::fs::write(&path, der.as_ref()).expect("write");
    let settings = TlsSettings::new(&pki.server_cert, &pki.server_key)
        .with_client_auth(ClientAuthSettings::new(&pki.ca_path).crl(&path));
    ReloadableConfig::load(settings, pki.now).expect("DER CRL");
}

#[test]
fn an_invalid_identity_rule_stops_start_up() {
    let pki = Pki::new();
    let settings = TlsSettings::new(&pki.server_cert, &pki.server_key).with_client_auth(
        ClientAuthSettings::new(&pki.ca_path).identity(
            IdentityRule::new("pinned", ["admin"]).matching(Matcher::Fingerprint("not hex".into())),
        ),
    );
    let err = load_err(settings, &pki);
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        err.to_string().contains("tls.client.identities[0]"),
        "{err}"
    );
}

use rustls::pki_types::pem::PemObject as _;

#[test]
fn sec1_keys_load() {
    use base64::Engine as _;
    use x509_parser::asn1_rs::{Any, FromDer};

    let pki = Pki::new();
    let server = pki
        .ca
        .issue_server(&["localhost"], pki.now)
        .expect("server");
    let pkcs8 = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(server.key_pem().as_bytes())
        .expect("pkcs8");
    // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING (ECPrivateKey) }
    let (_, info) = Any::from_der(pkcs8.secret_pkcs8_der()).expect("der");
    let (rest, _version) = Any::from_der(info.data).expect("version");
    let (rest, _algorithm) = Any::from_der(rest).expect("algorithm");
    let (_, private_key) = Any::from_der(rest).expect("key");
    let body = base64::engine::general_purpose::STANDARD.encode(private_key.data);
    let sec1 = format!("-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n");
    let (cert_path, key_path) = (pki.path("sec1.pem"), pki.path("sec1.key"));
    std::fs::write(&cert_path, server.cert_pem()).expect("write");
    std::fs::write(&key_path, sec1).expect("write");
    ReloadableConfig::load(TlsSettings::new(&cert_path, &key_path), pki.now).expect("SEC1 key");
}
