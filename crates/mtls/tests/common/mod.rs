//! Shared fixtures: a development PKI on disk, a loopback server and a TLS client.
#![allow(dead_code)] // Each test binary uses a different subset of the fixtures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use palisade_mtls::{
    ClientAuthMode, ClientAuthSettings, ClientCertSpec, DevCa, Error, IdentityRule, IssuedCert,
    MtlsAcceptor, PeerIdentity, ReloadableConfig, TlsSettings,
};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;

pub const DAY: Duration = Duration::from_secs(86_400);
pub const SVC_A: &str = "spiffe://example.org/svc-a";

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: DevCa,
    pub ca_path: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub crl: PathBuf,
    pub now: SystemTime,
}

impl Pki {
    pub fn new() -> Self {
        let now = SystemTime::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = DevCa::generate(now).expect("ca");
        let server = ca.issue_server(&["localhost"], now).expect("server");
        let pki = Self {
            ca_path: dir.path().join("ca.pem"),
            server_cert: dir.path().join("server.pem"),
            server_key: dir.path().join("server.key"),
            crl: dir.path().join("crl.pem"),
            dir,
            ca,
            now,
        };
        std::fs::write(&pki.ca_path, pki.ca.cert_pem()).expect("write");
        std::fs::write(&pki.server_cert, server.cert_pem()).expect("write");
        std::fs::write(&pki.server_key, server.key_pem()).expect("write");
        pki.write_crl(&[]);
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_crl(&self, revoked: &[&str]) {
        let crl = self.ca.crl(revoked, self.now, DAY).expect("crl");
        std::fs::write(&self.crl, crl).expect("write crl");
    }

    pub fn client(&self, cn: &str, uri: Option<&str>) -> IssuedCert {
        let mut spec = ClientCertSpec::new(cn, self.now);
        if let Some(uri) = uri {
            spec = spec.uri(uri);
        }
        self.ca.issue_client(&spec).expect("client")
    }

    pub fn settings(&self, mode: ClientAuthMode) -> TlsSettings {
        TlsSettings::new(&self.server_cert, &self.server_key).with_client_auth(
            ClientAuthSettings::new(&self.ca_path)
                .crl(&self.crl)
                .mode(mode)
                .identity(IdentityRule::new(SVC_A, ["orders:read", "orders:write"])),
        )
    }

    pub fn load(&self, mode: ClientAuthMode) -> Arc<ReloadableConfig> {
        Arc::new(ReloadableConfig::load(self.settings(mode), self.now).expect("load"))
    }
}

pub type Accepted = Result<Option<PeerIdentity>, Error>;

/// Accepts connections forever; reports each handshake's outcome, then echoes lines.
pub async fn serve(
    config: Arc<ReloadableConfig>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = MtlsAcceptor::new(config);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok((stream, identity)) => {
                        let _ = tx.send(Ok(identity));
                        let (read, mut write) = tokio::io::split(stream);
                        let mut lines = BufReader::new(read).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if write
                                .write_all(format!("{line}\n").as_bytes())
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err));
                    }
                }
            });
        }
    });
    (addr, rx)
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub struct ClientOptions<'a> {
    pub ca_pem: &'a str,
    pub cert: Option<&'a IssuedCert>,
    pub tls12_only: bool,
    pub alpn: Vec<Vec<u8>>,
}

impl<'a> ClientOptions<'a> {
    pub fn new(ca_pem: &'a str, cert: Option<&'a IssuedCert>) -> Self {
        Self {
            ca_pem,
            cert,
            tls12_only: false,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    pub fn build(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("ca pem"))
            .expect("root");
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match self.cert {
            Some(cert) => builder
                .with_client_auth_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::from_pem_slice(cert.key_pem().as_bytes()).expect("key"),
                )
                .expect("client cert"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        config.resumption = Resumption::in_memory_sessions(16);
        Arc::new(config)
    }
}

pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
}

/// Sends a line and reads the echo: proves the connection is open and usable (and makes
/// the client process any TLS 1.3 session tickets).
pub async fn echo(stream: &mut TlsStream<TcpStream>, line: &str) -> std::io::Result<String> {
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    let mut buf = vec![0_u8; line.len() + 1];
    stream.read_exact(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf).trim_end().to_owned())
}

/// The server's verdict on the next connection (bounded wait so a hang fails the test).
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Accepted>) -> Accepted {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("server outcome in time")
        .expect("server running")
}

/// Connects and returns the server's verdict. The client side may or may not notice a
/// refusal during its own handshake (TLS 1.3 verifies the client certificate after the
/// client has finished), so the server's verdict is what tests assert on.
pub async fn attempt(
    addr: SocketAddr,
    rx: &mut mpsc::UnboundedReceiver<Accepted>,
    config: Arc<rustls::ClientConfig>,
) -> (Accepted, Option<TlsStream<TcpStream>>) {
    let client = connect(addr, config).await.ok();
    (next(rx).await, client)
}
