//! `[tls]` / `[tls.client]` settings and the rustls `ServerConfig` built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{ServerConfig, version};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::identity::{IdentityMap, IdentityRule};

/// Largest certificate, key or CRL file read (CRLs of large CAs run to megabytes).
const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;
/// TLS 1.2 sessions remembered per configuration generation.
const SESSION_CACHE_SIZE: usize = 1024;

/// The `[tls]` section: the server's certificate chain and key, and optionally client
/// verification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct TlsSettings {
    /// PEM file holding the server certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM file holding the private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// `[tls.client]`: client-certificate verification; `None` for server-only TLS.
    #[cfg_attr(feature = "serde", serde(default))]
    pub client: Option<ClientAuthSettings>,
}

impl TlsSettings {
    /// Server-only TLS with this certificate chain and key.
    #[must_use]
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client: None,
        }
    }

    /// The same settings with client-certificate verification.
    #[must_use]
    pub fn with_client_auth(mut self, client: ClientAuthSettings) -> Self {
        self.client = Some(client);
        self
    }

    /// Every file these settings read; a change to any of them is a reason to reload.
    #[must_use]
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.cert.clone(), self.key.clone()];
        if let Some(client) = &self.client {
            files.push(client.ca.clone());
            files.extend(client.crl.iter().cloned());
        }
        files
    }
}

/// Whether a client must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ClientAuthMode {
    /// A client without a certificate connects anonymously (and must authenticate some
    /// other way); a client that presents one must present a valid one.
    Optional,
    /// The handshake fails without a valid client certificate.
    #[default]
    Required,
}

/// The `[tls.client]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ClientAuthSettings {
    /// PEM file of the CA certificates client certificates must chain to.
    pub ca: PathBuf,
    /// Certificate revocation lists, each file PEM (one or more lists) or DER (one list).
    /// Without any, revocation is not checked.
    #[cfg_attr(feature = "serde", serde(default))]
    pub crl: Vec<PathBuf>,
    /// Whether a certificate is required (the default) or optional.
    #[cfg_attr(feature = "serde", serde(default))]
    pub mode: ClientAuthMode,
    /// How revocation is checked when CRLs are configured.
    #[cfg_attr(feature = "serde", serde(default))]
    pub revocation: RevocationPolicy,
    /// `[[tls.client.identities]]`: the rules granting identities and scopes.
    #[cfg_attr(feature = "serde", serde(default))]
    pub identities: Vec<IdentityRule>,
}

impl ClientAuthSettings {
    /// Required client certificates chaining to the CAs in `ca`, no CRL, no rules.
    #[must_use]
    pub fn new(ca: impl Into<PathBuf>) -> Self {
        Self {
            ca: ca.into(),
            crl: Vec::new(),
            mode: ClientAuthMode::Required,
            revocation: RevocationPolicy::default(),
            identities: Vec::new(),
        }
    }

    /// Adds a CRL file.
    #[must_use]
    pub fn crl(mut self, path: impl Into<PathBuf>) -> Self {
        self.crl.push(path.into());
        self
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: ClientAuthMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the revocation policy.
    #[must_use]
    pub fn revocation(mut self, policy: RevocationPolicy) -> Self {
        self.revocation = policy;
        self
    }

    /// Adds an identity rule.
    #[must_use]
    pub fn identity(mut self, rule: IdentityRule) -> Self {
        self.identities.push(rule);
        self
    }
}

/// The revocation policy, explicit about what happens when status is unknown.
///
/// It applies only when at least one CRL is configured. The default is the strict one:
/// the whole chain is checked, unknown status is refused, and a CRL past its
/// `nextUpdate` is refused rather than trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RevocationPolicy {
    /// Which certificates of the chain are checked.
    pub scope: RevocationScope,
    /// What a certificate whose status no CRL covers gets.
    pub unknown_status: UnknownStatus,
    /// What a CRL past its `nextUpdate` is worth.
    pub stale_crl: StaleCrl,
}

/// Which certificates of a client's chain are checked for revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RevocationScope {
    /// The client certificate and every intermediate.
    #[default]
    Chain,
    /// Only the client certificate.
    EndEntity,
}

/// What a certificate whose revocation status is unknown (no CRL from its issuer) gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum UnknownStatus {
    /// Refused: the handshake fails.
    #[default]
    Deny,
    /// Accepted as if not revoked.
    Allow,
}

/// What a CRL past its `nextUpdate` is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum StaleCrl {
    /// Refused: loading fails at start-up or reload, and handshakes that rely on it fail.
    #[default]
    Refuse,
    /// Still used.
    Accept,
}

/// One build of the settings: the rustls configuration and the validated identity rules.
pub(crate) struct Built {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) identities: IdentityMap,
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the server configuration, checking every file and naming the one at fault.
pub(crate) fn build(settings: &TlsSettings, now: SystemTime) -> Result<Built, Error> {
    let provider = provider();
    let chain = load_certificates(&settings.cert)?;
    check_server_certificate(&settings.cert, &chain, now)?;
    let key = load_key(&settings.key)?;

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| Error::new(ErrorKind::InvalidConfig, format!("TLS versions: {e}")))?;

    let (builder, identities) = match &settings.client {
        None => (builder.with_no_client_auth(), IdentityMap::default()),
        Some(client) => {
            let identities = IdentityMap::new(client.identities.iter().cloned())?;
            let verifier = client_verifier(client, provider, now)?;
            (builder.with_client_cert_verifier(verifier), identities)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => Error::new(
            ErrorKind::KeyMismatch,
            format!(
                "the private key does not match the certificate in {}",
                settings.cert.display()
            ),
        )
        .with_path(&settings.key),
        other => Error::new(
            ErrorKind::InvalidKey,
            format!("unusable private key: {other}"),
        )
        .with_path(&settings.key),
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // A fresh session cache and ticket key per build: after a reload, sessions and
    // tickets issued before it cannot resume, so a client revoked by the new CRL must
    // complete a full handshake (and fail it).
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| Error::new(ErrorKind::InvalidConfig, format!("session tickets: {e}")))?;
    Ok(Built {
        config: Arc::new(config),
        identities,
    })
}

fn client_verifier(
    client: &ClientAuthSettings,
    provider: Arc<CryptoProvider>,
    now: SystemTime,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, Error> {
    let cas = load_certificates(&client.ca)?;
    let mut roots = RootCertStore::empty();
    let mut ca_subjects = Vec::new();
    for ca in &cas {
        let (_, parsed) = x509_parser::parse_x509_certificate(ca).map_err(|e| {
            Error::new(
                ErrorKind::InvalidCertificate,
                format!("bad CA certificate: {e}"),
            )
            .with_path(&client.ca)
        })?;
        if !parsed.validity().is_valid_at(asn1_time(now)) {
            tracing::warn!(file = %client.ca.display(), subject = %parsed.subject(), "a trusted CA certificate is outside its validity period");
        }
        ca_subjects.push(CaKey {
            subject: parsed.subject().as_raw().to_vec(),
            spki: parsed.public_key().raw.to_vec(),
        });
        roots.add(ca.clone()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidCertificate,
                format!("unusable CA certificate: {e}"),
            )
            .with_path(&client.ca)
        })?;
    }

    let mut crls = Vec::new();
    for path in &client.crl {
        crls.extend(load_crls(
            path,
            &ca_subjects,
            &provider,
            client.revocation.stale_crl,
            now,
        )?);
    }

    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).with_crls(crls);
    if client.revocation.scope == RevocationScope::EndEntity {
        builder = builder.only_check_end_entity_revocation();
    }
    if client.revocation.unknown_status == UnknownStatus::Allow {
        builder = builder.allow_unknown_revocation_status();
    }
    if client.revocation.stale_crl == StaleCrl::Refuse {
        builder = builder.enforce_revocation_expiration();
    }
    if client.mode == ClientAuthMode::Optional {
        builder = builder.allow_unauthenticated();
    }
    builder.build().map_err(|e| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("client certificate verifier: {e}"),
        )
        .with_path(&client.ca)
    })
}

fn asn1_time(now: SystemTime) -> x509_parser::time::ASN1Time {
    let secs = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    };
    x509_parser::time::ASN1Time::from_timestamp(secs).unwrap_or_else(|_| {
        x509_parser::time::ASN1Time::from_timestamp(0)
            .unwrap_or_else(|_| x509_parser::time::ASN1Time::now())
    })
}

fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let unreadable = |e: std::io::Error| {
        Error::new(ErrorKind::FileUnreadable, format!("cannot read file: {e}")).with_path(path)
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > MAX_FILE_LEN {
        return Err(
            Error::new(ErrorKind::FileUnreadable, "file is larger than 16 MiB").with_path(path),
        );
    }
    std::fs::read(path).map(Zeroizing::new).map_err(unreadable)
}

fn pem_error(path: &Path, what: &str, e: &rustls_pki_types::pem::Error) -> Error {
    Error::new(
        ErrorKind::InvalidPem,
        format!("invalid PEM while reading {what}: {e}"),
    )
    .with_path(path)
}

/// Reads every CERTIFICATE section of a PEM file; at least one is required.
pub(crate) fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "certificates", &e))?;
    if certs.is_empty() {
        return Err(
            Error::new(ErrorKind::InvalidPem, "no PEM CERTIFICATE section found").with_path(path),
        );
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let bytes = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => Error::new(
            ErrorKind::InvalidPem,
            "no PEM private key found (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)",
        )
        .with_path(path),
        other => pem_error(path, "the private key", &other),
    })
}

fn check_server_certificate(
    path: &Path,
    chain: &[CertificateDer<'_>],
    now: SystemTime,
) -> Result<(), Error> {
    let leaf = chain
        .first()
        .ok_or_else(|| Error::new(ErrorKind::InvalidPem, "no certificate found").with_path(path))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        Error::new(
            ErrorKind::InvalidCertificate,
            format!("the server certificate cannot be parsed: {e}"),
        )
        .with_path(path)
    })?;
    let validity = cert.validity();
    let at = asn1_time(now);
    if at < validity.not_before {
        return Err(Error::new(
            ErrorKind::NotYetValid,
            format!(
                "the server certificate is not valid before {}",
                validity.not_before
            ),
        )
        .with_path(path));
    }
    if at > validity.not_after {
        return Err(Error::new(
            ErrorKind::Expired,
            format!("the server certificate expired at {}", validity.not_after),
        )
        .with_path(path));
    }
    Ok(())
}

/// Reads the CRLs of one file (PEM with one or more `X509 CRL` sections, or one DER CRL)
/// and checks each: parseable, issued by a configured CA, not stale when stale CRLs are
/// refused.
fn load_crls(
    path: &Path,
    cas: &[CaKey],
    provider: &CryptoProvider,
    stale: StaleCrl,
    now: SystemTime,
) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let bytes = read_file(path)?;
    // A DER CRL starts with a SEQUENCE tag; anything else is read as PEM (which may have
    // explanatory text before the first section).
    let crls = if bytes.first() != Some(&0x30) {
        let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(path, "a CRL", &e))?;
        if crls.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidCrl, "no PEM X509 CRL section found").with_path(path),
            );
        }
        crls
    } else {
        vec![CertificateRevocationListDer::from(bytes.to_vec())]
    };
    let at = asn1_time(now);
    for crl in &crls {
        let (rest, parsed) = x509_parser::parse_x509_crl(crl).map_err(|e| {
            Error::new(
                ErrorKind::InvalidCrl,
                format!("not a certificate revocation list: {e}"),
            )
            .with_path(path)
        })?;
        if !rest.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidCrl, "trailing bytes after the CRL").with_path(path),
            );
        }
        let signed = cas
            .iter()
            .filter(|ca| ca.subject.as_slice() == parsed.issuer().as_raw())
            .any(|ca| crl_signed_by(crl, &ca.spki, provider));
        if !signed {
            return Err(Error::new(
                ErrorKind::InvalidCrl,
                format!(
                    "the CRL (issuer {}) is not signed by one of the trusted CAs",
                    parsed.issuer()
                ),
            )
            .with_path(path));
        }
        if stale == StaleCrl::Refuse
            && let Some(next) = parsed.next_update()
            && next < at
        {
            return Err(Error::new(
                ErrorKind::InvalidCrl,
                format!("the CRL is stale: its nextUpdate {next} has passed"),
            )
            .with_path(path));
        }
    }
    Ok(crls)
}

/// A trusted CA's name and key, to check that CRLs come from it.
struct CaKey {
    subject: Vec<u8>,
    spki: Vec<u8>,
}

/// Splits a DER SEQUENCE into its elements, each as its full encoding and its contents.
fn der_elements(seq: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    use x509_parser::asn1_rs::{Any, FromDer};
    let (rest, outer) = Any::from_der(seq).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let mut input = outer.data;
    let mut out = Vec::new();
    while !input.is_empty() {
        let (rest, any) = Any::from_der(input).ok()?;
        let full = input.get(..input.len().checked_sub(rest.len())?)?;
        out.push((full, any.data));
        input = rest;
    }
    Some(out)
}

/// Whether the CRL's signature verifies with the CA key, using the same algorithms (and
/// the same identifier matching) as the handshake's verifier: a CRL from another CA with
/// the same name (an old CA after a rotation, say) is caught at start-up rather than
/// failing every handshake later.
fn crl_signed_by(crl: &[u8], ca_spki: &[u8], provider: &CryptoProvider) -> bool {
    let Some([(tbs, _), (_, sig_alg), (_, sig_bits)]) =
        der_elements(crl).and_then(|v| <[_; 3]>::try_from(v).ok())
    else {
        return false;
    };
    let Some([(_, key_alg), (_, key_bits)]) =
        der_elements(ca_spki).and_then(|v| <[_; 2]>::try_from(v).ok())
    else {
        return false;
    };
    let (Some((0, signature)), Some((0, key))) = (sig_bits.split_first(), key_bits.split_first())
    else {
        return false;
    };
    provider
        .signature_verification_algorithms
        .all
        .iter()
        .filter(|alg| {
            alg.public_key_alg_id().as_ref() == key_alg
                && alg.signature_alg_id().as_ref() == sig_alg
        })
        .any(|alg| alg.verify_signature(key, tbs, signature).is_ok())
}
