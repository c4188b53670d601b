//! Real TLS handshakes on loopback.

mod common;

use std::time::Duration;

use common::{ClientOptions, DAY, Pki, SVC_A, attempt, connect, echo, next, serve};
use palisade_mtls::{ClientAuthMode, ClientCertSpec, DevCa, ErrorKind, IdentitySource};
use rustls::HandshakeKind;

#[tokio::test]
async fn a_valid_client_maps_to_its_identity_and_scopes() {
    let pki = Pki::new();
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Required)).await;
    let cert = pki.client("svc-a", Some(SVC_A));
    let mut stream = connect(
        addr,
        ClientOptions::new(pki.ca.cert_pem(), Some(&cert)).build(),
    )
    .await
    .expect("handshake");
    let identity = next(&mut rx).await.expect("accepted").expect("identified");
    assert_eq!(identity.id(), SVC_A);
    assert_eq!(identity.scopes(), ["orders:read", "orders:write"]);
    assert_eq!(identity.source(), IdentitySource::Tls);
    assert_eq!(identity.certificate().serial(), Some(cert.serial()));
    assert_eq!(
        identity
            .certificate()
            .subject()
            .map(ToString::to_string)
            .as_deref(),
        Some("CN=svc-a")
    );
    let (_, conn) = stream.get_ref();
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(echo(&mut stream, "hello").await.expect("echo"), "hello");
}

#[tokio::test]
async fn tls12_and_http11_work_and_unknown_cn_has_no_scopes() {
    let pki = Pki::new();
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Required)).await;
    let cert = pki.client("batch-job", None);
    let mut options = ClientOptions::new(pki.ca.cert_pem(), Some(&cert));
    options.tls12_only = true;
    options.alpn = vec![b"http/1.1".to_vec()];
    let stream = connect(addr, options.build()).await.expect("handshake");
    let identity = next(&mut rx).await.expect("accepted").expect("identified");
    assert_eq!(identity.id(), "batch-job");
    assert!(identity.scopes().is_empty());
    let (_, conn) = stream.get_ref();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn no_certificate_is_refused_in_required_mode() {
    let pki = Pki::new();
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Required)).await;
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), None).build(),
    )
    .await;
    assert_eq!(
        outcome.expect_err("refused").kind(),
        ErrorKind::CertificateRequired
    );
}

#[tokio::test]
async fn no_certificate_is_anonymous_in_optional_mode_but_a_bad_one_is_refused() {
    let pki = Pki::new();
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Optional)).await;
    let (outcome, client) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), None).build(),
    )
    .await;
    assert!(outcome.expect("accepted").is_none());
    assert_eq!(
        echo(&mut client.expect("connected"), "anon")
            .await
            .expect("echo"),
        "anon"
    );

    let cert = pki.client("svc-a", Some(SVC_A));
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&cert)).build(),
    )
    .await;
    assert_eq!(outcome.expect("accepted").expect("identified").id(), SVC_A);

    let other = DevCa::generate(pki.now).expect("ca");
    let foreign = other
        .issue_client(&ClientCertSpec::new("mallory", pki.now))
        .expect("cert");
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&foreign)).build(),
    )
    .await;
    assert_eq!(
        outcome.expect_err("refused").kind(),
        ErrorKind::UntrustedIssuer
    );
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let pki = Pki::new();
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Required)).await;
    let other = DevCa::generate(pki.now).expect("ca");
    // Same subject and SPIFFE ID as a legitimate client: the issuer is what counts.
    let forged = other
        .issue_client(&ClientCertSpec::new("svc-a", pki.now).uri(SVC_A))
        .expect("cert");
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&forged)).build(),
    )
    .await;
    let err = outcome.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::UntrustedIssuer);
    assert_eq!(err.code(), "untrusted_issuer");
}

#[tokio::test]
async fn expired_and_not_yet_valid_client_certificates_are_refused() {
    let pki = Pki::new();
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Required)).await;
    let expired = pki
        .ca
        .issue_client(
            &ClientCertSpec::new("old", pki.now)
                .uri(SVC_A)
                .validity(pki.now - DAY * 10, pki.now - DAY),
        )
        .expect("cert");
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&expired)).build(),
    )
    .await;
    assert_eq!(outcome.expect_err("refused").kind(), ErrorKind::Expired);

    let future = pki
        .ca
        .issue_client(
            &ClientCertSpec::new("new", pki.now).validity(pki.now + DAY, pki.now + DAY * 10),
        )
        .expect("cert");
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&future)).build(),
    )
    .await;
    assert_eq!(outcome.expect_err("refused").kind(), ErrorKind::NotYetValid);
}

#[tokio::test]
async fn a_revoked_certificate_is_refused() {
    let pki = Pki::new();
    let revoked = pki.client("svc-a", Some(SVC_A));
    let good = pki.client("svc-b", None);
    pki.write_crl(&[revoked.serial()]);
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Required)).await;
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&revoked)).build(),
    )
    .await;
    let err = outcome.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Revoked);
    assert_eq!(err.code(), "revoked");
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&good)).build(),
    )
    .await;
    assert_eq!(
        outcome.expect("accepted").expect("identified").id(),
        "svc-b"
    );
}

#[tokio::test]
async fn a_certificate_with_two_uri_sans_is_refused_as_a_spiffe_identity() {
    let pki = Pki::new();
    let (addr, mut rx) = serve(pki.load(ClientAuthMode::Required)).await;
    let two = pki
        .ca
        .issue_client(
            &ClientCertSpec::new("svc-a", pki.now)
                .uri(SVC_A)
                .uri("spiffe://example.org/admin"),
        )
        .expect("cert");
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&two)).build(),
    )
    .await;
    assert_eq!(
        outcome.expect_err("refused").kind(),
        ErrorKind::InvalidSpiffeId
    );
}

#[tokio::test]
async fn a_reload_picks_up_a_new_crl_without_dropping_open_connections() {
    let pki = Pki::new();
    let config = pki.load(ClientAuthMode::Required);
    let (addr, mut rx) = serve(config.clone()).await;
    let cert = pki.client("svc-a", Some(SVC_A));
    let options = ClientOptions::new(pki.ca.cert_pem(), Some(&cert));

    let (outcome, open) = attempt(addr, &mut rx, options.build()).await;
    assert_eq!(outcome.expect("accepted").expect("identified").id(), SVC_A);
    let mut open = open.expect("connected");
    assert_eq!(echo(&mut open, "before").await.expect("echo"), "before");

    pki.write_crl(&[cert.serial()]);
    config.reload(pki.now).expect("reload");
    assert_eq!(config.generation(), 1);

    let (outcome, _) = attempt(addr, &mut rx, options.build()).await;
    assert_eq!(outcome.expect_err("refused").kind(), ErrorKind::Revoked);
    // The connection accepted before the reload is untouched.
    assert_eq!(echo(&mut open, "after").await.expect("echo"), "after");
}

#[tokio::test]
async fn a_failed_reload_keeps_the_previous_configuration() {
    let pki = Pki::new();
    let config = pki.load(ClientAuthMode::Required);
    let (addr, mut rx) = serve(config.clone()).await;
    std::fs::write(
        &pki.crl,
        "-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n",
    )
    .expect("write");
    let err = config.reload(pki.now).expect_err("invalid CRL");
    assert_eq!(err.path(), Some(pki.crl.as_path()));
    assert_eq!(config.generation(), 0);
    let cert = pki.client("svc-a", Some(SVC_A));
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&cert)).build(),
    )
    .await;
    assert_eq!(outcome.expect("accepted").expect("identified").id(), SVC_A);
}

async fn resumption_stops_at_reload(tls12: bool) {
    let pki = Pki::new();
    let config = pki.load(ClientAuthMode::Required);
    let (addr, mut rx) = serve(config.clone()).await;
    let cert = pki.client("svc-a", Some(SVC_A));
    let mut options = ClientOptions::new(pki.ca.cert_pem(), Some(&cert));
    options.tls12_only = tls12;
    // One client configuration, so one client-side session cache, for every connection.
    let client = options.build();

    let mut first = connect(addr, client.clone()).await.expect("first");
    next(&mut rx).await.expect("accepted");
    assert_eq!(
        first.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Full)
    );
    echo(&mut first, "ticket please").await.expect("echo");

    let mut second = connect(addr, client.clone()).await.expect("second");
    let resumed = next(&mut rx).await.expect("accepted").expect("identified");
    assert_eq!(
        second.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
    // A resumed session still carries the identity of its certificate.
    assert_eq!(resumed.id(), SVC_A);
    echo(&mut second, "again").await.expect("echo");

    config.reload(pki.now).expect("reload");
    let third = connect(addr, client).await.expect("third");
    next(&mut rx).await.expect("accepted");
    assert_eq!(
        third.get_ref().1.handshake_kind(),
        Some(HandshakeKind::Full)
    );
}

#[tokio::test]
async fn a_reload_stops_resumption_of_earlier_tls13_sessions() {
    resumption_stops_at_reload(false).await;
}

#[tokio::test]
async fn a_reload_stops_resumption_of_earlier_tls12_sessions() {
    resumption_stops_at_reload(true).await;
}

#[tokio::test]
async fn the_file_watcher_reloads_when_the_crl_changes() {
    let pki = Pki::new();
    let config = pki.load(ClientAuthMode::Required);
    let (addr, mut rx) = serve(config.clone()).await;
    let cert = pki.client("svc-a", Some(SVC_A));
    assert!(!config.reload_if_changed(pki.now).expect("unchanged"));

    let now = pki.now;
    let watcher = tokio::spawn(
        config
            .clone()
            .watch_files(Duration::from_millis(20), move || now),
    );
    pki.write_crl(&[cert.serial()]);
    // Bounded wait for the watcher's next tick; the assertion is on the outcome.
    for _ in 0..500 {
        if config.generation() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    assert_eq!(config.generation(), 1);
    let (outcome, _) = attempt(
        addr,
        &mut rx,
        ClientOptions::new(pki.ca.cert_pem(), Some(&cert)).build(),
    )
    .await;
    assert_eq!(outcome.expect_err("refused").kind(), ErrorKind::Revoked);
}
