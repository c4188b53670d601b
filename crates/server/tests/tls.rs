//! HTTPS and mutual TLS against the real `palisade serve`: certificates from
//! `palisade certs dev` and from the development CA's API, client certificates as
//! credentials (with their scopes from `[[tls.client.identities]]`), refused handshakes
//! (missing, foreign and revoked certificates), protocol versions, an independent TLS
//! tool (`openssl s_client`), and webhook delivery to an HTTPS receiver.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod harness;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use harness::{Palisade, Server, loopback_source, order_body};
use palisade_mtls::{ClientCertSpec, DEV_CLIENT_SPIFFE_ID, DevCa};
use palisade_signing::StandardWebhook;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The files `palisade certs dev` writes.
struct DevCerts {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    crl: PathBuf,
}

/// Runs `palisade certs dev --out DIR` and checks what it reports.
fn certs_dev(cli: &Palisade, out: &Path) -> DevCerts {
    let files = cli.json(&["certs", "dev", "--out", out.to_str().unwrap()]);
    assert_eq!(files["client_identity"], DEV_CLIENT_SPIFFE_ID, "{files}");
    let certs = DevCerts {
        ca: out.join("ca.pem"),
        server_cert: out.join("server.pem"),
        server_key: out.join("server.key"),
        client_cert: out.join("client.pem"),
        client_key: out.join("client.key"),
        crl: out.join("crl.pem"),
    };
    for path in [
        &certs.ca,
        &certs.server_cert,
        &certs.server_key,
        &certs.client_cert,
        &certs.client_key,
        &certs.crl,
    ] {
        assert!(path.is_file(), "{} was not written", path.display());
    }
    certs
}

/// `[tls]` with `[tls.client]` in `mode`, the dev client's SPIFFE id granted every scope.
fn mtls_config(dir: &Path, ca: &Path, cert: &Path, key: &Path, crl: &Path, mode: &str) -> PathBuf {
    let path = dir.join("palisade.toml");
    let text = format!(
        r#"
[tls]
cert = {cert:?}
key = {key:?}

[tls.client]
ca = {ca:?}
crl = [{crl:?}]
mode = "{mode}"

[[tls.client.identities]]
id = "{DEV_CLIENT_SPIFFE_ID}"
scopes = ["orders:read", "orders:write", "admin"]
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// An HTTPS client trusting `ca` only, with an optional client identity (PEM certificate
/// followed by its PEM key), connecting from `source`.
fn https_client(ca: &Path, identity: Option<(&str, &str)>, source: IpAddr) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .local_address(source)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        let pem = format!("{cert}\n{key}");
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn hsts(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
}

/// Sends `request` and checks the status and the HSTS header.
async fn expect(request: reqwest::RequestBuilder, status: u16, what: &str) -> reqwest::Response {
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), status, "{what}");
    assert_eq!(hsts(&response), Some(HSTS), "HSTS on {what}");
    response
}

/// Waits for the server's log line about a refused handshake from `source`.
fn refused_handshake(server: &Server, source: IpAddr, code: &str) -> bool {
    let source = source.to_string();
    server
        .wait_for_log(Duration::from_secs(5), |fields| {
            fields["message"] == "TLS handshake refused"
                && fields["client"] == source.as_str()
                && fields["code"] == code
        })
        .is_some()
}

fn socket_addr(server: &Server) -> SocketAddr {
    server.authority().parse().unwrap()
}

async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn https_and_client_certificates_with_optional_mode() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Palisade::new(dir.path().join("data"));
    let certs = certs_dev(&cli, &dir.path().join("certs"));
    let config = mtls_config(
        dir.path(),
        &certs.ca,
        &certs.server_cert,
        &certs.server_key,
        &certs.crl,
        "optional",
    );
    let cli = cli.config(config);
    let (alice_key, alice_key_id) = cli.create_key("alice", "orders:read,orders:write", &[]);
    let (admin_key, _) = cli.create_key("root", "admin,orders:read", &[]);
    let server = cli.serve();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let url = &server.url;

    let source = loopback_source();
    let anonymous = https_client(&certs.ca, None, source);
    let client_pem = read(&certs.client_cert);
    let client_key = read(&certs.client_key);
    let mtls = https_client(&certs.ca, Some((&client_pem, &client_key)), source);

    // Plain HTTP to the HTTPS port gets nothing useful.
    let plain = harness::http_client(source)
        .get(format!("http://{}/health", server.authority()))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP was served on the TLS port"
    );

    // HTTPS works, and every response carries HSTS, whatever its status.
    expect(anonymous.get(format!("{url}/health")), 200, "health").await;
    expect(
        anonymous.get(format!("{url}/no/such/path")),
        404,
        "unknown path",
    )
    .await;
    expect(
        anonymous.delete(format!("{url}/health")),
        405,
        "wrong method",
    )
    .await;
    let unauthenticated = expect(
        anonymous.get(format!("{url}/api/orders")),
        401,
        "no credential",
    )
    .await;
    assert!(unauthenticated.headers().contains_key("www-authenticate"));
    expect(
        anonymous
            .get(format!("{url}/api/orders"))
            .header("x-api-key", &alice_key),
        200,
        "API key over TLS without a client certificate (optional mode)",
    )
    .await;

    // A client certificate alone authenticates /api, with the scopes of its identity
    // entry: reads and writes.
    let created: serde_json::Value = expect(
        mtls.post(format!("{url}/api/orders")).json(&order_body()),
        201,
        "create with a client certificate",
    )
    .await
    .json()
    .await
    .unwrap();
    let order_id = created["id"].as_str().unwrap().to_owned();
    let page: serde_json::Value = expect(
        mtls.get(format!("{url}/api/orders")),
        200,
        "list with a client certificate",
    )
    .await
    .json()
    .await
    .unwrap();
    let ids: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, [order_id.as_str()], "{page}");
    let response = expect(
        mtls.get(format!("{url}/api/orders/{order_id}")),
        200,
        "read one with a client certificate",
    )
    .await;
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "no-store",
        "authenticated responses are not cached"
    );
    // The certificate's orders belong to its identity, not to anyone else.
    expect(
        anonymous
            .get(format!("{url}/api/orders/{order_id}"))
            .header("x-api-key", &alice_key),
        404,
        "another owner's order",
    )
    .await;

    // A client certificate and an API key together are ambiguous.
    let ambiguous = expect(
        mtls.get(format!("{url}/api/orders"))
            .header("x-api-key", &alice_key),
        400,
        "client certificate and X-API-Key",
    )
    .await;
    assert!(
        ambiguous
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );

    // Administration: the certificate proves possession; a bearer API key with the admin
    // scope never does.
    expect(
        anonymous
            .get(format!("{url}/admin/keys"))
            .header("x-api-key", &admin_key),
        403,
        "admin with an API key",
    )
    .await;
    let keys: serde_json::Value = expect(
        mtls.get(format!("{url}/admin/keys")),
        200,
        "admin with a client certificate",
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(keys.to_string().contains(&alice_key_id), "{keys}");
    assert!(
        !keys.to_string().contains(&alice_key),
        "a raw key was listed"
    );
    expect(
        mtls.delete(format!("{url}/admin/keys/{alice_key_id}")),
        204,
        "revoke with a client certificate",
    )
    .await;
    expect(
        anonymous
            .get(format!("{url}/api/orders"))
            .header("x-api-key", &alice_key),
        401,
        "a key revoked by a certificate-authenticated admin",
    )
    .await;

    // A client certificate from another CA is refused, in optional mode too.
    let now = SystemTime::now();
    let foreign_ca = DevCa::generate(now).unwrap();
    let foreign = foreign_ca
        .issue_client(&ClientCertSpec::new("dev-client", now).uri(DEV_CLIENT_SPIFFE_ID))
        .unwrap();
    let foreign_source = loopback_source();
    let foreign_client = https_client(
        &certs.ca,
        Some((foreign.cert_pem(), foreign.key_pem())),
        foreign_source,
    );
    let refused = foreign_client.get(format!("{url}/api/orders")).send().await;
    assert!(
        refused.is_err(),
        "a foreign certificate was accepted: {refused:?}"
    );
    assert!(
        refused_handshake(&server, foreign_source, "untrusted_issuer"),
        "no untrusted_issuer refusal logged:\n{}",
        server.logs()
    );
}

#[tokio::test]
async fn required_mode_refuses_missing_foreign_and_revoked_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let ca = DevCa::generate(now).unwrap();
    let files = ca.write_to_dir(&dir.path().join("pki"), now).unwrap();
    let revoked = ca
        .issue_client(&ClientCertSpec::new("revoked", now).uri("spiffe://palisade.dev/revoked"))
        .unwrap();
    let stranger = ca
        .issue_client(&ClientCertSpec::new("stranger", now).uri("spiffe://palisade.dev/stranger"))
        .unwrap();
    // A CRL revoking one certificate, replacing the empty one.
    let crl = ca
        .crl(&[revoked.serial()], now, Duration::from_secs(86_400))
        .unwrap();
    std::fs::write(&files.crl, crl).unwrap();
    let config = mtls_config(
        dir.path(),
        &files.ca_cert,
        &files.server_cert,
        &files.server_key,
        &files.crl,
        "required",
    );
    let server = Palisade::new(dir.path().join("data"))
        .config(config)
        .serve();
    let url = &server.url;

    // The issued client certificate (not revoked) works: the CRL is in force and only
    // refuses what it lists.
    let source = loopback_source();
    let client = https_client(
        &files.ca_cert,
        Some((&read(&files.client_cert), &read(&files.client_key))),
        source,
    );
    expect(
        client.get(format!("{url}/api/orders")),
        200,
        "valid certificate",
    )
    .await;

    // No certificate: refused at the handshake.
    let bare_source = loopback_source();
    let bare = https_client(&files.ca_cert, None, bare_source);
    let refused = bare.get(format!("{url}/health")).send().await;
    assert!(
        refused.is_err(),
        "served without a certificate: {refused:?}"
    );
    assert!(
        refused_handshake(&server, bare_source, "certificate_required"),
        "{}",
        server.logs()
    );

    // A certificate from another CA, with the same SPIFFE id: refused.
    let foreign_ca = DevCa::generate(now).unwrap();
    let foreign = foreign_ca
        .issue_client(&ClientCertSpec::new("dev-client", now).uri(DEV_CLIENT_SPIFFE_ID))
        .unwrap();
    let foreign_source = loopback_source();
    let refused = https_client(
        &files.ca_cert,
        Some((foreign.cert_pem(), foreign.key_pem())),
        foreign_source,
    )
    .get(format!("{url}/health"))
    .send()
    .await;
    assert!(refused.is_err(), "foreign certificate served: {refused:?}");
    assert!(
        refused_handshake(&server, foreign_source, "untrusted_issuer"),
        "{}",
        server.logs()
    );

    // A revoked certificate: refused.
    let revoked_source = loopback_source();
    let refused = https_client(
        &files.ca_cert,
        Some((revoked.cert_pem(), revoked.key_pem())),
        revoked_source,
    )
    .get(format!("{url}/health"))
    .send()
    .await;
    assert!(refused.is_err(), "revoked certificate served: {refused:?}");
    assert!(
        refused_handshake(&server, revoked_source, "revoked"),
        "{}",
        server.logs()
    );

    // A verified certificate without an identities entry connects but has no scopes.
    let stranger_client = https_client(
        &files.ca_cert,
        Some((stranger.cert_pem(), stranger.key_pem())),
        loopback_source(),
    );
    expect(
        stranger_client.get(format!("{url}/health")),
        200,
        "public path",
    )
    .await;
    expect(
        stranger_client.get(format!("{url}/api/orders")),
        403,
        "no scopes: read",
    )
    .await;
    expect(
        stranger_client
            .post(format!("{url}/api/orders"))
            .json(&order_body()),
        403,
        "no scopes: write",
    )
    .await;
    expect(
        stranger_client.get(format!("{url}/admin/keys")),
        403,
        "no scopes: admin",
    )
    .await;
}

/// A rustls client that speaks only `version`, trusting `ca`.
fn rustls_connector(
    ca: &Path,
    version: &'static rustls::SupportedProtocolVersion,
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn push_u16(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&u16::try_from(value).unwrap().to_be_bytes());
}

fn push_extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    push_u16(out, body.len());
    out.extend_from_slice(body);
}

/// A hand-made ClientHello offering exactly `version` (no `supported_versions`), as a
/// TLS 1.0/1.1/1.2 client sends it, with suites every version knows.
fn client_hello(version: u16) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(0); // no session id
    // ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES128-SHA, ECDHE-RSA-AES128-SHA,
    // AES128-SHA.
    let suites: [u16; 4] = [0xc02b, 0xc009, 0xc013, 0x002f];
    push_u16(&mut body, suites.len() * 2);
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null only
    let mut extensions = Vec::new();
    push_extension(&mut extensions, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // groups
    push_extension(&mut extensions, 0x000b, &[1, 0]); // point formats: uncompressed
    push_extension(&mut extensions, 0x000d, &[0, 4, 0x04, 0x03, 0x02, 0x03]); // ecdsa sha256/sha1
    push_extension(&mut extensions, 0x0017, &[]); // extended master secret
    push_extension(&mut extensions, 0xff01, &[0]); // renegotiation info
    push_u16(&mut body, extensions.len());
    body.extend_from_slice(&extensions);
    let mut handshake = vec![1]; // ClientHello
    handshake.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    push_u16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

/// Sends a raw ClientHello for `version` and returns the first bytes of the answer.
async fn raw_hello(source: IpAddr, to: SocketAddr, version: u16) -> Vec<u8> {
    let mut tcp = connect_from(source, to).await;
    tcp.write_all(&client_hello(version)).await.unwrap();
    let mut answer = vec![0u8; 7];
    let mut filled = 0;
    while filled < answer.len() {
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut answer[filled..]))
            .await
            .expect("the server neither answered nor closed")
            .unwrap_or(0);
        if read == 0 {
            break;
        }
        filled += read;
    }
    answer.truncate(filled);
    answer
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_are_spoken() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Palisade::new(dir.path().join("data"));
    let certs = certs_dev(&cli, &dir.path().join("certs"));
    let config = mtls_config(
        dir.path(),
        &certs.ca,
        &certs.server_cert,
        &certs.server_key,
        &certs.crl,
        "optional",
    );
    let server = cli.config(config).serve();
    let address = socket_addr(&server);
    let source = loopback_source();

    for (version, expected) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let tcp = connect_from(source, address).await;
        let mut tls = rustls_connector(&certs.ca, version)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap_or_else(|error| panic!("{expected:?} handshake failed: {error}"));
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expected));
        tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{expected:?}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains(&format!(
                "strict-transport-security: {}",
                HSTS.to_ascii_lowercase()
            )),
            "{answer}"
        );
    }

    // The hand-made hello is good enough for TLS 1.2: the server answers ServerHello.
    let answer = raw_hello(source, address, 0x0303).await;
    assert_eq!(
        answer.first(),
        Some(&0x16),
        "not a handshake record: {answer:?}"
    );
    assert_eq!(answer.get(5), Some(&0x02), "not a ServerHello: {answer:?}");
    // The same hello for SSL 3.0, TLS 1.0 and 1.1: a protocol_version alert.
    for version in [0x0300, 0x0301, 0x0302] {
        let answer = raw_hello(source, address, version).await;
        assert_eq!(
            answer.first(),
            Some(&0x15),
            "{version:#06x} was not refused with an alert: {answer:?}"
        );
        assert_eq!(
            answer.get(6),
            Some(&70),
            "{version:#06x}: not protocol_version: {answer:?}"
        );
    }
}

/// Runs `openssl s_client` with `args`, writing `input`; `None` when openssl is missing.
fn s_client(address: SocketAddr, args: &[&str], input: &str) -> Option<(bool, String)> {
    let mut child = match Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(address.to_string())
        .args(["-servername", "localhost", "-verify_return_error"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("skipping openssl checks: cannot run openssl ({error})");
            return None;
        }
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("openssl s_client {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some((output.status.success(), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_client_interoperates() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Palisade::new(dir.path().join("data"));
    let certs = certs_dev(&cli, &dir.path().join("certs"));
    let config = mtls_config(
        dir.path(),
        &certs.ca,
        &certs.server_cert,
        &certs.server_key,
        &certs.crl,
        "optional",
    );
    let server = cli.config(config).serve();
    let address = socket_addr(&server);
    let ca = certs.ca.to_str().unwrap().to_owned();
    let cert = certs.client_cert.to_str().unwrap().to_owned();
    let key = certs.client_key.to_str().unwrap().to_owned();
    let request = "GET /api/orders HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    let outcome = tokio::task::spawn_blocking(move || {
        let mut results = Vec::new();
        for version in ["-tls1_2", "-tls1_3"] {
            let result = s_client(
                address,
                &[
                    version, "-CAfile", &ca, "-cert", &cert, "-key", &key, "-ign_eof", "-alpn",
                    "http/1.1",
                ],
                request,
            )?;
            results.push((version, result));
        }
        // TLS 1.1 (allowed on the client side by lowering OpenSSL's security level).
        let old = s_client(
            address,
            &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", &ca],
            "",
        )?;
        results.push(("-tls1_1", old));
        Some(results)
    })
    .await
    .unwrap();
    let Some(results) = outcome else { return };
    for (version, (ok, text)) in results {
        if version == "-tls1_1" {
            assert!(!ok, "openssl completed a TLS 1.1 handshake:\n{text}");
            assert!(
                !text.contains("HTTP/1.1"),
                "TLS 1.1 reached the application:\n{text}"
            );
        } else {
            assert!(ok, "openssl {version} failed:\n{text}");
            let protocol = if version == "-tls1_2" {
                "TLSv1.2"
            } else {
                "TLSv1.3"
            };
            assert!(text.contains(protocol), "{version}:\n{text}");
            assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
            // The client certificate authenticated the request.
            assert!(text.contains("HTTP/1.1 200"), "{version}:\n{text}");
            assert!(text.contains("\"orders\""), "{version}:\n{text}");
        }
    }
}

/// What the test webhook receiver saw.
#[derive(Debug)]
struct Delivery {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    path: String,
    at: Instant,
    /// The status the receiver answered.
    answered: u16,
}

impl Delivery {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn verify(&self, secret: &str) -> Result<(), palisade_signing::Error> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        StandardWebhook::new(secret)?.verify(&headers, &self.body, SystemTime::now())
    }
}

#[derive(Clone)]
struct ReceiverState {
    deliveries: tokio::sync::mpsc::UnboundedSender<Delivery>,
    /// How many of the next deliveries get a 500.
    fail_next: Arc<AtomicUsize>,
}

async fn receive(
    axum::extract::State(state): axum::extract::State<ReceiverState>,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: axum::body::Bytes,
) -> http::StatusCode {
    let failing = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if failing {
        http::StatusCode::INTERNAL_SERVER_ERROR
    } else {
        http::StatusCode::NO_CONTENT
    };
    let delivery = Delivery {
        headers: headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
        path: uri.path().to_owned(),
        at: Instant::now(),
        answered: status.as_u16(),
    };
    let _ = state.deliveries.send(delivery);
    status
}

/// An HTTPS server on 127.0.0.1 accepting `POST /hook`, with the given certificate.
async fn start_receiver(
    cert: &Path,
    key: &Path,
) -> (
    u16,
    tokio::sync::mpsc::UnboundedReceiver<Delivery>,
    Arc<AtomicUsize>,
) {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (sender, deliveries) = tokio::sync::mpsc::unbounded_channel();
    let fail_next = Arc::new(AtomicUsize::new(0));
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(ReceiverState {
            deliveries: sender,
            fail_next: Arc::clone(&fail_next),
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(
                    hyper_util::rt::TokioIo::new(tls),
                    hyper_util::service::TowerToHyperService::new(router),
                )
                .await;
            });
        }
    });
    (port, deliveries, fail_next)
}

async fn next_delivery(
    deliveries: &mut tokio::sync::mpsc::UnboundedReceiver<Delivery>,
    within: Duration,
    server: &Server,
) -> Delivery {
    match tokio::time::timeout(within, deliveries.recv()).await {
        Ok(Some(delivery)) => delivery,
        _ => panic!(
            "no webhook delivery within {within:?}; server log:\n{}",
            server.logs()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_delivered_signed_over_tls_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Palisade::new(dir.path().join("data"));
    let certs = certs_dev(&cli, &dir.path().join("certs"));
    let (port, mut deliveries, fail_next) =
        start_receiver(&certs.server_cert, &certs.server_key).await;
    let config = dir.path().join("palisade.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[tls]
cert = {:?}
key = {:?}

[webhooks]
allow_networks = ["127.0.0.1/32"]
ports = [{port}]
ca = [{:?}]
"#,
            certs.server_cert, certs.server_key, certs.ca
        ),
    )
    .unwrap();
    let cli = cli.config(config);
    let (key, _) = cli.create_key("merchant", "orders:read,orders:write", &[]);
    let server = cli.serve();
    let url = &server.url;
    let client = https_client(&certs.ca, None, loopback_source());

    // The SSRF guard still refuses what the configuration does not allow.
    for refused in [
        format!("http://127.0.0.1:{port}/hook"),
        "https://127.0.0.1:1/hook".to_owned(),
        format!("https://10.0.0.1:{port}/hook"),
    ] {
        let response = client
            .post(format!("{url}/api/webhooks"))
            .header("x-api-key", &key)
            .json(&serde_json::json!({"url": refused, "events": ["order.created"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{refused} was accepted");
    }

    let hook = format!("https://127.0.0.1:{port}/hook");
    let registered: serde_json::Value = expect(
        client
            .post(format!("{url}/api/webhooks"))
            .header("x-api-key", &key)
            .json(&serde_json::json!({"url": hook, "events": ["order.created"]})),
        201,
        "webhook registration",
    )
    .await
    .json()
    .await
    .unwrap();
    let secret = registered["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{registered}");

    // An order: one delivery, signed with the registration's secret.
    let order: serde_json::Value = expect(
        client
            .post(format!("{url}/api/orders"))
            .header("x-api-key", &key)
            .json(&order_body()),
        201,
        "order",
    )
    .await
    .json()
    .await
    .unwrap();
    let delivery = next_delivery(&mut deliveries, Duration::from_secs(10), &server).await;
    assert_eq!(delivery.path, "/hook");
    assert!(
        delivery
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    assert!(delivery.header("webhook-id").is_some_and(|v| !v.is_empty()));
    assert!(delivery.header("webhook-timestamp").is_some());
    assert!(
        delivery
            .header("webhook-signature")
            .is_some_and(|v| v.starts_with("v1,"))
    );
    delivery
        .verify(&secret)
        .unwrap_or_else(|error| panic!("the delivery does not verify: {error:?}"));
    assert!(
        delivery
            .verify(&StandardWebhook::generate_secret())
            .is_err(),
        "verifies under any secret"
    );
    let tampered = Delivery {
        body: [delivery.body.as_slice(), b" "].concat(),
        headers: delivery.headers.clone(),
        path: delivery.path.clone(),
        at: delivery.at,
        answered: delivery.answered,
    };
    assert!(tampered.verify(&secret).is_err(), "a changed body verifies");
    let event: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(event["type"], "order.created", "{event}");
    assert_eq!(event["data"]["order"]["id"], order["id"], "{event}");
    assert!(
        !String::from_utf8_lossy(&delivery.body).contains(&secret),
        "the secret was sent"
    );

    // The receiver fails once: the delivery comes again after the backoff (5 s), with the
    // same message id and a valid signature.
    fail_next.store(1, Ordering::SeqCst);
    let second: serde_json::Value = expect(
        client
            .post(format!("{url}/api/orders"))
            .header("x-api-key", &key)
            .json(&order_body()),
        201,
        "second order",
    )
    .await
    .json()
    .await
    .unwrap();
    let failed = next_delivery(&mut deliveries, Duration::from_secs(10), &server).await;
    assert_eq!(failed.answered, 500, "the receiver did not fail");
    assert_eq!(delivery.answered, 204);
    let retried = next_delivery(&mut deliveries, Duration::from_secs(12), &server).await;
    let waited = retried.at.duration_since(failed.at);
    assert!(
        waited >= Duration::from_secs(4),
        "retried after only {waited:?}"
    );
    assert_eq!(failed.header("webhook-id"), retried.header("webhook-id"));
    retried.verify(&secret).unwrap();
    let event: serde_json::Value = serde_json::from_slice(&retried.body).unwrap();
    assert_eq!(event["type"], "order.created");
    assert_eq!(event["data"]["order"]["id"], second["id"], "{event}");
    // Delivered now: nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), deliveries.recv())
            .await
            .is_err(),
        "a delivered webhook was sent again"
    );
}
