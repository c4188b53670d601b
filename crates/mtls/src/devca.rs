//! A development certificate authority: for tests, examples and `palisade certs dev`.
//! Never for production.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rand::RngCore as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::identity::serial_hex;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The SPIFFE ID of the client certificate [`DevCa::write_to_dir`] issues.
pub const DEV_CLIENT_SPIFFE_ID: &str = "spiffe://palisade.dev/client";

fn gen_err(e: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::CertificateGeneration,
        format!("certificate generation failed: {e}"),
    )
}

fn to_time(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0_u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // Positive and without a leading zero byte, so the encoding is exactly 16 bytes.
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    SerialNumber::from_slice(&bytes)
}

/// A certificate and its private key, as issued by [`DevCa`].
pub struct IssuedCert {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: Zeroizing<String>,
    serial: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("serial", &self.serial)
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// The certificate, DER.
    #[must_use]
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// The certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM.
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The serial number, lower-case hex (as [`crate::CertificateInfo::serial`]).
    #[must_use]
    pub fn serial(&self) -> &str {
        &self.serial
    }
}

/// What a client certificate from [`DevCa::issue_client`] carries.
#[derive(Debug, Clone)]
pub struct ClientCertSpec {
    common_name: String,
    uris: Vec<String>,
    dns: Vec<String>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl ClientCertSpec {
    /// A client certificate with this subject CN, valid from an hour before `now` for 30
    /// days.
    #[must_use]
    pub fn new(common_name: impl Into<String>, now: SystemTime) -> Self {
        Self {
            common_name: common_name.into(),
            uris: Vec::new(),
            dns: Vec::new(),
            not_before: now.checked_sub(HOUR).unwrap_or(now),
            not_after: now.checked_add(DAY * 30).unwrap_or(now),
        }
    }

    /// Adds a URI SAN (a SPIFFE ID, typically; add one only, or it is not a SPIFFE
    /// identity).
    #[must_use]
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.uris.push(uri.into());
        self
    }

    /// Adds a DNS SAN.
    #[must_use]
    pub fn dns(mut self, name: impl Into<String>) -> Self {
        self.dns.push(name.into());
        self
    }

    /// Sets the validity period.
    #[must_use]
    pub fn validity(mut self, not_before: SystemTime, not_after: SystemTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }
}

/// A development CA: self-signed, ECDSA P-256, issuing server and client certificates and
/// CRLs.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    cert_pem: String,
    key_pem: Zeroizing<String>,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The files [`DevCa::write_to_dir`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCaFiles {
    /// CA certificate (`ca.pem`): `[tls.client] ca`.
    pub ca_cert: PathBuf,
    /// CA private key (`ca.key`), mode 0600.
    pub ca_key: PathBuf,
    /// Server certificate (`server.pem`) for `localhost`, `127.0.0.1`, `::1`: `[tls] cert`.
    pub server_cert: PathBuf,
    /// Server private key (`server.key`), mode 0600: `[tls] key`.
    pub server_key: PathBuf,
    /// Client certificate (`client.pem`) with [`DEV_CLIENT_SPIFFE_ID`] and CN `dev-client`.
    pub client_cert: PathBuf,
    /// Client private key (`client.key`), mode 0600.
    pub client_key: PathBuf,
    /// An empty CRL (`crl.pem`) valid for 30 days: `[tls.client] crl`.
    pub crl: PathBuf,
    /// The client certificate's identity.
    pub client_identity: String,
}

impl DevCa {
    /// Generates a CA valid from an hour before `now` for ten years.
    ///
    /// # Errors
    /// [`ErrorKind::CertificateGeneration`].
    pub fn generate(now: SystemTime) -> Result<Self, Error> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Palisade Development CA");
        dn.push(DnType::OrganizationName, "Palisade (development only)");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        params.not_before = to_time(now.checked_sub(HOUR).unwrap_or(now));
        params.not_after = to_time(now.checked_add(DAY * 3650).unwrap_or(now));
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let key_pem = Zeroizing::new(key.serialize_pem());
        Ok(Self {
            cert_pem: cert.pem(),
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
            key_pem,
        })
    }

    /// The CA certificate, DER.
    #[must_use]
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM.
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses), valid from an
    /// hour before `now` for 90 days.
    ///
    /// # Errors
    /// [`ErrorKind::CertificateGeneration`], for example for an invalid name.
    pub fn issue_server(&self, names: &[&str], now: SystemTime) -> Result<IssuedCert, Error> {
        let not_after = now.checked_add(DAY * 90).unwrap_or(now);
        self.issue_server_with_validity(names, now.checked_sub(HOUR).unwrap_or(now), not_after)
    }

    /// Issues a server certificate with an explicit validity period (tests use this for
    /// expired and not-yet-valid certificates).
    ///
    /// # Errors
    /// [`ErrorKind::CertificateGeneration`].
    pub fn issue_server_with_validity(
        &self,
        names: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedCert, Error> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .map_err(gen_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("palisade"),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, not_before, not_after)
    }

    /// Issues a client certificate.
    ///
    /// # Errors
    /// [`ErrorKind::CertificateGeneration`], for example for a URI that is not ASCII.
    pub fn issue_client(&self, spec: &ClientCertSpec) -> Result<IssuedCert, Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        for uri in &spec.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.clone().try_into().map_err(gen_err)?));
        }
        for name in &spec.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.clone().try_into().map_err(gen_err)?));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, spec.not_before, spec.not_after)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedCert, Error> {
        let serial = random_serial();
        let serial_text = serial_hex(&serial.to_bytes());
        params.serial_number = Some(serial);
        params.not_before = to_time(not_before);
        params.not_after = to_time(not_after);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            der: cert.der().clone(),
            key_pem: Zeroizing::new(key.serialize_pem()),
            serial: serial_text,
        })
    }

    /// Signs a CRL revoking the certificates with these serial numbers (hex, as
    /// [`IssuedCert::serial`]), issued at `now` and valid for `validity`. Returns PEM.
    ///
    /// # Errors
    /// [`ErrorKind::CertificateGeneration`], or [`ErrorKind::InvalidConfig`] for a serial
    /// that is not hex.
    pub fn crl(
        &self,
        revoked: &[&str],
        now: SystemTime,
        validity: Duration,
    ) -> Result<String, Error> {
        let this_update = to_time(now);
        let mut revoked_certs = Vec::with_capacity(revoked.len());
        for serial in revoked {
            let bytes = hex::decode(serial)
                .map_err(|_| Error::new(ErrorKind::InvalidConfig, "a revoked serial is not hex"))?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: this_update,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let seconds = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs().max(1));
        let params = CertificateRevocationListParams {
            this_update,
            next_update: to_time(now.checked_add(validity).unwrap_or(now)),
            crl_number: SerialNumber::from_slice(&seconds.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .map_err(gen_err)?
            .pem()
            .map_err(gen_err)
    }

    /// Writes a CA, a server certificate for `localhost`, a client certificate and an
    /// empty CRL into `dir` (created if missing). Private keys are written with mode 0600.
    ///
    /// # Errors
    /// [`ErrorKind::FileUnreadable`] naming the file that could not be written, or
    /// [`ErrorKind::CertificateGeneration`].
    pub fn write_to_dir(&self, dir: &Path, now: SystemTime) -> Result<DevCaFiles, Error> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::new(
                ErrorKind::FileUnreadable,
                format!("cannot create directory: {e}"),
            )
            .with_path(dir)
        })?;
        let server = self.issue_server(&["localhost", "127.0.0.1", "::1"], now)?;
        let client =
            self.issue_client(&ClientCertSpec::new("dev-client", now).uri(DEV_CLIENT_SPIFFE_ID))?;
        let crl = self.crl(&[], now, DAY * 30)?;
        let files = DevCaFiles {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            crl: dir.join("crl.pem"),
            client_identity: DEV_CLIENT_SPIFFE_ID.to_owned(),
        };
        write_file(&files.ca_cert, self.cert_pem(), false)?;
        write_file(&files.ca_key, self.key_pem(), true)?;
        write_file(&files.server_cert, server.cert_pem(), false)?;
        write_file(&files.server_key, server.key_pem(), true)?;
        write_file(&files.client_cert, client.cert_pem(), false)?;
        write_file(&files.client_key, client.key_pem(), true)?;
        write_file(&files.crl, &crl, false)?;
        Ok(files)
    }
}

fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), Error> {
    let fail = |e: std::io::Error| {
        Error::new(ErrorKind::FileUnreadable, format!("cannot write file: {e}")).with_path(path)
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(contents.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::CertificateInfo;

    #[test]
    fn issued_certificates_carry_what_was_asked() {
        let now = SystemTime::now();
        let ca = DevCa::generate(now).expect("ca");
        let client = ca
            .issue_client(
                &ClientCertSpec::new("svc-a", now)
                    .uri("spiffe://example.org/svc-a")
                    .dns("svc-a.internal"),
            )
            .expect("client");
        let info = CertificateInfo::from_der(client.der()).expect("parse");
        assert_eq!(
            info.default_identity().expect("id"),
            "spiffe://example.org/svc-a"
        );
        assert_eq!(info.serial(), Some(client.serial()));
        assert_eq!(
            info.subject().map(ToString::to_string).as_deref(),
            Some("CN=svc-a")
        );
        assert_eq!(
            info.issuer().map(ToString::to_string).as_deref(),
            Some("O=Palisade (development only),CN=Palisade Development CA")
        );
        assert!(info.not_before() < Some(now) && info.not_after() > Some(now));
        assert!(format!("{client:?}").contains("[redacted]"));
        assert!(!format!("{ca:?}").contains("PRIVATE"));
    }

    #[test]
    fn crl_lists_revoked_serials() {
        let now = SystemTime::now();
        let ca = DevCa::generate(now).expect("ca");
        let client = ca
            .issue_client(&ClientCertSpec::new("svc", now))
            .expect("client");
        let pem = ca.crl(&[client.serial()], now, DAY).expect("crl");
        let der = rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .expect("pem");
        let (_, crl) = x509_parser::parse_x509_crl(&der).expect("crl");
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| serial_hex(r.raw_serial()))
            .collect();
        assert_eq!(serials, [client.serial()]);
        assert!(ca.crl(&["zz"], now, DAY).is_err());
    }

    use rustls_pki_types::pem::PemObject as _;
}
