//! Mutual TLS, side by side with the same work done by hand in the same run:
//! - `mtls_handshake`: a full TLS 1.3 mutual handshake in memory (ECDSA P-256, CRL
//!   checked) with Palisade's `ServerConfig` plus identity mapping, against a rustls
//!   `ServerConfig` with the stock WebPKI client verifier and the same CRL and no identity
//!   step. Palisade should add no measurable cost to the handshake.
//! - `mtls_identity`: certificate to identity (`CertificateInfo::from_der` and rule
//!   matching: RFC 4514 subject, SANs, SPIFFE validation, SHA-256 fingerprint) against a
//!   bare `x509_parser::parse_x509_certificate` of the same certificate.
//! - `mtls_xfcc`: strict parsing of a typical Envoy `X-Forwarded-Client-Cert` header (no
//!   peer: the Rust XFCC parsers are not in the workspace).
// `criterion_group!` generates a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_mtls::{
    CertificateInfo, ClientAuthSettings, ClientCertSpec, DevCa, IdentityMap, IdentityRule,
    IdentitySource, ReloadableConfig, TlsSettings, parse_xfcc,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

const SVC: &str = "spiffe://example.org/svc-a";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Drives a client and a server connection to the end of the handshake in memory.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) {
    let mut buf = Vec::with_capacity(8192);
    while client.is_handshaking() || server.is_handshaking() {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).expect("client write");
        }
        let mut slice = buf.as_slice();
        while !slice.is_empty() {
            server.read_tls(&mut slice).expect("server read");
        }
        server.process_new_packets().expect("server process");
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).expect("server write");
        }
        let mut slice = buf.as_slice();
        while !slice.is_empty() {
            client.read_tls(&mut slice).expect("client read");
        }
        client.process_new_packets().expect("client process");
    }
}

fn benches(c: &mut Criterion) {
    let now = SystemTime::now();
    let dir = tempfile_dir();
    let ca = DevCa::generate(now).expect("ca");
    let server = ca.issue_server(&["localhost"], now).expect("server");
    let client_cert = ca
        .issue_client(&ClientCertSpec::new("svc-a", now).uri(SVC))
        .expect("client");
    let crl = ca
        .crl(&[], now, std::time::Duration::from_secs(86_400))
        .expect("crl");
    let write = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(&path, body).expect("write");
        path
    };
    let ca_path = write("ca.pem", ca.cert_pem());
    let cert_path = write("server.pem", server.cert_pem());
    let key_path = write("server.key", server.key_pem());
    let crl_path = write("crl.pem", &crl);

    let ours = ReloadableConfig::load(
        TlsSettings::new(&cert_path, &key_path).with_client_auth(
            ClientAuthSettings::new(&ca_path)
                .crl(&crl_path)
                .identity(IdentityRule::new(SVC, ["orders:read"])),
        ),
        now,
    )
    .expect("config");
    let ours_config = ours.current();
    let identities = ours.identities();

    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone()).expect("root");
    let roots = Arc::new(roots);
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .with_crls([CertificateRevocationListDer::from_pem_slice(crl.as_bytes()).expect("crl")])
            .build()
            .expect("verifier");
    let bare_config = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server.der().clone()],
                PrivateKeyDer::from_pem_slice(server.key_pem().as_bytes()).expect("key"),
            )
            .expect("bare"),
    );

    let mut client_config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![client_cert.der().clone()],
            PrivateKeyDer::from_pem_slice(client_cert.key_pem().as_bytes()).expect("key"),
        )
        .expect("client");
    client_config.resumption = rustls::client::Resumption::disabled();
    client_config.alpn_protocols = vec![b"h2".to_vec()];
    let client_config = Arc::new(client_config);
    let name = ServerName::try_from("localhost").expect("name");

    let mut group = c.benchmark_group("mtls_handshake");
    group.bench_function("palisade", |b| {
        b.iter(|| {
            let mut client =
                ClientConnection::new(client_config.clone(), name.clone()).expect("client");
            let mut server = ServerConnection::new(ours_config.clone()).expect("server");
            handshake(&mut client, &mut server);
            let identity = identities
                .identify_chain(server.peer_certificates())
                .expect("identity")
                .expect("certificate");
            black_box(identity);
        });
    });
    group.bench_function("rustls_webpki_bare", |b| {
        b.iter(|| {
            let mut client =
                ClientConnection::new(client_config.clone(), name.clone()).expect("client");
            let mut server = ServerConnection::new(bare_config.clone()).expect("server");
            handshake(&mut client, &mut server);
            black_box(server.peer_certificates().map(<[_]>::len));
        });
    });
    group.finish();

    let der: CertificateDer<'static> = client_cert.der().clone();
    let map = IdentityMap::new([IdentityRule::new(SVC, ["orders:read"])]).expect("rules");
    let mut group = c.benchmark_group("mtls_identity");
    group.bench_function("palisade", |b| {
        b.iter(|| {
            let info = CertificateInfo::from_der(black_box(&der)).expect("parse");
            black_box(map.identify(info, IdentitySource::Tls).expect("identity"));
        });
    });
    group.bench_function("x509_parser_bare", |b| {
        b.iter(|| {
            let (_, cert) = x509_parser::parse_x509_certificate(black_box(&der)).expect("parse");
            black_box(cert.subject().iter_common_name().count());
        });
    });
    group.finish();

    let header = "By=spiffe://example.org/envoy;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject=\"CN=svc-a,OU=payments,O=Example,C=US\";URI=spiffe://example.org/svc-a;DNS=svc-a.internal";
    let mut group = c.benchmark_group("mtls_xfcc");
    group.bench_function("palisade", |b| {
        b.iter(|| black_box(parse_xfcc(black_box(header)).expect("parse")));
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-mtls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

criterion_group! {
    name = mtls;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(mtls);
