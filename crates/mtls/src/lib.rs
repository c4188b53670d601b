//! Mutual TLS that is easy to get right: a rustls server configuration with client
//! certificate verification, CRLs and reload, peer identities with scopes, a proxy mode
//! for TLS terminated in front of the server, and a development CA.
//!
//! - [`TlsSettings`] / [`ClientAuthSettings`] mirror the `[tls]` and `[tls.client]`
//!   configuration sections (with the `serde` feature they deserialize from TOML).
//! - [`ReloadableConfig`] builds the rustls `ServerConfig` (TLS 1.2 and 1.3 only, ALPN
//!   `h2` and `http/1.1`, rustls's WebPKI client verifier) and reloads it from disk on
//!   demand, on a file change ([`ReloadableConfig::watch_files`]) or on `SIGHUP`.
//! - [`MtlsAcceptor::accept`] runs the handshake and returns the stream with the
//!   [`PeerIdentity`] of the client certificate: identity travels with the connection.
//! - [`IdentityMap`] turns a verified certificate into an identity and scopes, by SPIFFE
//!   ID, SAN, subject or pinned fingerprint ([`IdentityRule`], [`Matcher`]).
//! - [`ProxyIdentifier`] reads nginx-style `X-Client-Cert-DN`/`X-Client-Cert-Serial` or
//!   Envoy's `X-Forwarded-Client-Cert` from trusted proxy networks only.
//! - [`DevCa`] (feature `dev-ca`) issues a CA, server and client certificates and CRLs.
//!
//! # Example
//!
//! A development CA, a server requiring client certificates, and one handshake on
//! loopback:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::SystemTime;
//! use palisade_mtls::{ClientAuthSettings, DevCa, IdentityRule, MtlsAcceptor, ReloadableConfig, TlsSettings};
//!
//! let now = SystemTime::now();
//! let dir = tempfile::tempdir()?;
//! let ca = DevCa::generate(now)?;
//! let files = ca.write_to_dir(dir.path(), now)?;
//!
//! let settings = TlsSettings::new(&files.server_cert, &files.server_key).with_client_auth(
//!     ClientAuthSettings::new(&files.ca_cert)
//!         .crl(&files.crl)
//!         .identity(IdentityRule::new("spiffe://palisade.dev/client", ["orders:read"])),
//! );
//! let config = Arc::new(ReloadableConfig::load(settings, now)?);
//! let acceptor = MtlsAcceptor::new(config.clone());
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let server = tokio::spawn(async move {
//!     let (tcp, _) = listener.accept().await?;
//!     let (_stream, identity) = acceptor.accept(tcp).await?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(identity)
//! });
//!
//! // The client side: any TLS client with the client certificate.
//! # use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(CertificateDer::from_pem_file(&files.ca_cert)?)?;
//! let client = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
//!     .with_safe_default_protocol_versions()?
//!     .with_root_certificates(roots)
//!     .with_client_auth_cert(
//!         vec![CertificateDer::from_pem_file(&files.client_cert)?],
//!         PrivateKeyDer::from_pem_file(&files.client_key)?,
//!     )?;
//! let tcp = tokio::net::TcpStream::connect(addr).await?;
//! let _tls = tokio_rustls::TlsConnector::from(Arc::new(client))
//!     .connect(ServerName::try_from("localhost")?, tcp)
//!     .await?;
//!
//! let identity = server.await?.map_err(|e| e.to_string())?.expect("a client certificate");
//! assert_eq!(identity.id(), "spiffe://palisade.dev/client");
//! assert_eq!(identity.scopes(), ["orders:read"]);
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! **Handled.** A client is identified only by a certificate chaining to a configured CA,
//! within its validity, not revoked by a configured CRL (unknown status and stale CRLs
//! refused by default, see [`RevocationPolicy`]). Reloading replaces the session cache and
//! ticket key, so a client revoked by a new CRL cannot resume an old session. A certificate
//! with more than one URI SAN is never taken as a SPIFFE identity. The identity reaches
//! handlers through the connection ([`MtlsAcceptor::accept`]), never through a header the
//! client controls; forwarded-certificate headers are believed only from the TCP peer
//! addresses of configured proxy networks, parsed strictly and bounded, and refused (or
//! ignored, by policy) from anyone else. Start-up fails with an error naming the file for
//! garbage PEM, a key that does not match the certificate, a server certificate outside
//! its validity, or an unreadable, foreign or stale CRL.
//!
//! **Not handled.** Online revocation (OCSP) and CRL fetching: CRLs are files that an
//! operator or a job keeps fresh. Connections already open when a certificate is revoked
//! stay open until they close; bound their lifetime if that matters. In proxy mode the
//! proxy's own verification is trusted entirely, and the HTTP adapter must remove
//! [`FORWARDED_CERT_HEADERS`] from every request so nothing downstream reads them. The
//! development CA is for development only.

#[cfg(feature = "dev-ca")]
mod devca;
mod dn;
mod error;
mod identity;
mod proxy;
mod reload;
mod server;
mod xfcc;

#[cfg(feature = "dev-ca")]
pub use crate::devca::{ClientCertSpec, DEV_CLIENT_SPIFFE_ID, DevCa, DevCaFiles, IssuedCert};
pub use crate::dn::DistinguishedName;
pub use crate::error::{Error, ErrorKind};
pub use crate::identity::{
    CertificateInfo, IdentityMap, IdentityRule, IdentitySource, Matcher, PeerIdentity, SpiffeId,
    SubjectAltName,
};
pub use crate::proxy::{
    FORWARDED_CERT_HEADERS, ForwardedCertStyle, HEADER_CLIENT_CERT_DN, HEADER_CLIENT_CERT_SERIAL,
    HEADER_CLIENT_VERIFY, HEADER_XFCC, ProxyIdentifier, ProxyOutcome, ProxySettings,
    UntrustedHeaders, is_forwarded_cert_header,
};
pub use crate::reload::{MtlsAcceptor, ReloadableConfig};
pub use crate::server::{
    ClientAuthMode, ClientAuthSettings, RevocationPolicy, RevocationScope, StaleCrl, TlsSettings,
    UnknownStatus,
};
pub use crate::xfcc::{MAX_XFCC_LEN, XfccElement, parse_xfcc};
/// The TLS crates this API exposes, re-exported so callers use the same versions.
pub use {rustls, tokio_rustls};
