//! Signing and verifying keys, each bound to exactly one algorithm, and JWK sets.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm as JwtAlgorithm, DecodingKey};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// The signature algorithms Palisade accepts. `none` is not one of them, and every key is
/// bound to exactly one, so a token can never choose how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (the default for signing).
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys or larger).
    RS256,
    /// RSASSA-PSS with SHA-256 (2048-bit keys or larger).
    PS256,
    /// HMAC with SHA-256, only for keys that are configured as shared secrets, never
    /// from a JWKS document.
    HS256,
}

impl Algorithm {
    /// The JOSE name (`ES256`, `EdDSA`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::HS256 => "HS256",
        }
    }

    /// Parses a JOSE name; `none` and everything not listed is refused.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            "RS256" => Some(Self::RS256),
            "PS256" => Some(Self::PS256),
            "HS256" => Some(Self::HS256),
            _ => None,
        }
    }

    fn jwt(self) -> JwtAlgorithm {
        match self {
            Self::ES256 => JwtAlgorithm::ES256,
            Self::EdDSA => JwtAlgorithm::EdDSA,
            Self::RS256 => JwtAlgorithm::RS256,
            Self::PS256 => JwtAlgorithm::PS256,
            Self::HS256 => JwtAlgorithm::HS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a `kid` is safe to look up: 1 to 128 characters from
/// `A-Z a-z 0-9 . _ - + = ~ :`, never a `/`, a quote, a space or a control character.
pub(crate) fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_+=~:".contains(&b))
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::fill(&mut out[..]);
    out
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Makes sure the process-wide jsonwebtoken provider is usable by code that calls
/// jsonwebtoken directly. Palisade's own paths never depend on it: they call the
/// aws-lc-rs provider explicitly, so no feature combination can make them panic.
pub fn install_crypto_provider() {
    // An error only means that a provider was installed before; that is fine.
    let _already_installed = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

enum SigningInner {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

/// A private signing key bound to one algorithm, with its `kid`.
///
/// Generated with the OS CSPRNG; its PKCS#8 encoding is zeroized on drop; `Debug` shows
/// only the `kid` and the algorithm.
pub struct SigningKey {
    kid: String,
    alg: Algorithm,
    inner: SigningInner,
    secret: Zeroizing<Vec<u8>>,
    public: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Generates a new key for `alg` (ES256, EdDSA, RS256 or PS256; RSA keys are 2048
    /// bits) with a random `kid`.
    pub fn generate(alg: Algorithm) -> Result<Self> {
        let kid = random_token(12);
        let pkcs8: Vec<u8> = match alg {
            Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| Error::with(ErrorKind::InvalidKey, "EC key generation failed"))?,
            Algorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8())
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| Error::with(ErrorKind::InvalidKey, "Ed25519 key generation failed"))?,
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| Error::with(ErrorKind::InvalidKey, "RSA key generation failed"))?;
                let der: Pkcs8V1Der<'static> = pair
                    .as_der()
                    .map_err(|_| Error::with(ErrorKind::InvalidKey, "RSA key encoding failed"))?;
                der.as_ref().to_vec()
            }
            Algorithm::HS256 => {
                return Err(Error::with(
                    ErrorKind::InvalidKey,
                    "HS256 keys are shared secrets: use SigningKey::hmac",
                ));
            }
        };
        Self::from_pkcs8_der(&kid, alg, &pkcs8)
    }

    /// Loads a PKCS#8 DER private key for `alg`.
    pub fn from_pkcs8_der(kid: &str, alg: Algorithm, der: &[u8]) -> Result<Self> {
        if !valid_kid(kid) {
            return Err(Error::new(ErrorKind::InvalidKid));
        }
        let bad = |what: &'static str| Error::with(ErrorKind::InvalidKey, what);
        let (inner, public) = match alg {
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| bad("not a P-256 PKCS#8 key"))?;
                let point = pair.public_key().as_ref().to_vec();
                let public = VerifyingKey::from_ec_point(Some(kid.to_owned()), &point)?;
                (SigningInner::Ec(pair), public)
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|_| bad("not an Ed25519 PKCS#8 key"))?;
                let x = pair.public_key().as_ref().to_vec();
                let public = VerifyingKey::from_ed25519(Some(kid.to_owned()), &x)?;
                (SigningInner::Ed(pair), public)
            }
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| bad("not an RSA PKCS#8 key"))?;
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let public = VerifyingKey::from_rsa(
                    Some(kid.to_owned()),
                    alg,
                    &components.n,
                    &components.e,
                )?;
                (SigningInner::Rsa(pair), public)
            }
            Algorithm::HS256 => return Self::hmac(kid, der),
        };
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            inner,
            secret: Zeroizing::new(der.to_vec()),
            public,
        })
    }

    /// A shared-secret HS256 key (at least 32 bytes).
    pub fn hmac(kid: &str, secret: &[u8]) -> Result<Self> {
        if !valid_kid(kid) {
            return Err(Error::new(ErrorKind::InvalidKid));
        }
        if secret.len() < 32 {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "an HS256 secret needs at least 32 bytes",
            ));
        }
        Ok(Self {
            kid: kid.to_owned(),
            alg: Algorithm::HS256,
            inner: SigningInner::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                secret,
            ))),
            secret: Zeroizing::new(secret.to_vec()),
            public: VerifyingKey::hmac(kid, secret)?,
        })
    }

    /// Loads a `-----BEGIN PRIVATE KEY-----` PEM (PKCS#8).
    pub fn from_pkcs8_pem(kid: &str, alg: Algorithm, pem: &str) -> Result<Self> {
        let der = pem_decode(pem, "PRIVATE KEY")?;
        Self::from_pkcs8_der(kid, alg, &der)
    }

    /// The PKCS#8 PEM encoding of the private key (for an HS256 key: an error).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        if self.alg == Algorithm::HS256 {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "HS256 keys have no PEM form",
            ));
        }
        Ok(pem_encode(&self.secret, "PRIVATE KEY"))
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs `message` (the JWS signing input) and returns the raw signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let failed = || Error::with(ErrorKind::InvalidKey, "signing failed");
        match &self.inner {
            SigningInner::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed()),
            SigningInner::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            SigningInner::Rsa(pair) => {
                let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                    if self.alg == Algorithm::PS256 {
                        &RSA_PSS_SHA256
                    } else {
                        &RSA_PKCS1_SHA256
                    };
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(encoding, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| failed())?;
                Ok(signature)
            }
            SigningInner::Hmac(key) => Ok(aws_lc_rs::hmac::sign(key, message).as_ref().to_vec()),
        }
    }

    /// Builds a compact JWS with header `{"alg", "typ", "kid"}` over `claims`.
    pub fn encode<T: serde::Serialize + ?Sized>(&self, typ: &str, claims: &T) -> Result<String> {
        let header = json!({"alg": self.alg.as_str(), "typ": typ, "kid": self.kid});
        let header = serde_json::to_vec(&header).map_err(|_| Error::new(ErrorKind::Malformed))?;
        let claims = serde_json::to_vec(claims).map_err(|_| Error::new(ErrorKind::Malformed))?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// A public (or, for HS256, shared) verification key, bound to one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    alg: Algorithm,
    decoding: DecodingKey,
    /// The public JWK members (`kty`, `crv`, `x`, ...); `None` for shared secrets, which
    /// are never published.
    jwk: Option<Map<String, Value>>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    fn from_ec_point(kid: Option<String>, point: &[u8]) -> Result<Self> {
        let (Some(0x04), Some(x), Some(y)) = (point.first(), point.get(1..33), point.get(33..65))
        else {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "not an uncompressed P-256 point",
            ));
        };
        if point.len() != 65 {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "not an uncompressed P-256 point",
            ));
        }
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|_| Error::new(ErrorKind::InvalidKey))?;
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "EC".into());
        jwk.insert("crv".into(), "P-256".into());
        jwk.insert("x".into(), x.into());
        jwk.insert("y".into(), y.into());
        Ok(Self {
            kid,
            alg: Algorithm::ES256,
            decoding,
            jwk: Some(jwk),
        })
    }

    fn from_ed25519(kid: Option<String>, x: &[u8]) -> Result<Self> {
        if x.len() != 32 {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "an Ed25519 key has 32 bytes",
            ));
        }
        let x = URL_SAFE_NO_PAD.encode(x);
        let decoding =
            DecodingKey::from_ed_components(&x).map_err(|_| Error::new(ErrorKind::InvalidKey))?;
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "OKP".into());
        jwk.insert("crv".into(), "Ed25519".into());
        jwk.insert("x".into(), x.into());
        Ok(Self {
            kid,
            alg: Algorithm::EdDSA,
            decoding,
            jwk: Some(jwk),
        })
    }

    fn from_rsa(kid: Option<String>, alg: Algorithm, n: &[u8], e: &[u8]) -> Result<Self> {
        let n_trimmed: &[u8] = {
            let start = n.iter().position(|b| *b != 0).unwrap_or(n.len());
            n.get(start..).unwrap_or_default()
        };
        if n_trimmed.len() < 256 {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "RSA keys need at least 2048 bits",
            ));
        }
        if e.is_empty() || e.len() > 8 {
            return Err(Error::with(ErrorKind::InvalidKey, "bad RSA exponent"));
        }
        let decoding = DecodingKey::from_rsa_raw_components(n_trimmed, e);
        let mut jwk = Map::new();
        jwk.insert("kty".into(), "RSA".into());
        jwk.insert("n".into(), URL_SAFE_NO_PAD.encode(n_trimmed).into());
        jwk.insert("e".into(), URL_SAFE_NO_PAD.encode(e).into());
        Ok(Self {
            kid,
            alg,
            decoding,
            jwk: Some(jwk),
        })
    }

    /// A shared-secret HS256 verification key (at least 32 bytes). It is bound to HS256
    /// alone, so an RS256 public key can never be used as an HMAC secret.
    pub fn hmac(kid: &str, secret: &[u8]) -> Result<Self> {
        if !valid_kid(kid) {
            return Err(Error::new(ErrorKind::InvalidKid));
        }
        if secret.len() < 32 {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "an HS256 secret needs at least 32 bytes",
            ));
        }
        Ok(Self {
            kid: Some(kid.to_owned()),
            alg: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            jwk: None,
        })
    }

    /// Reads one public JWK. The key type fixes the algorithm (`EC` P-256 is ES256, `OKP`
    /// Ed25519 is EdDSA, `RSA` is RS256 unless the JWK says `PS256`); an `alg` member that
    /// disagrees, a `use` other than `sig`, a symmetric (`oct`) key, a private key and an
    /// RSA modulus under 2048 bits are refused.
    pub fn from_jwk(jwk: &Value) -> Result<Self> {
        let bad = |what: &'static str| Error::with(ErrorKind::InvalidKey, what);
        let obj = jwk
            .as_object()
            .ok_or_else(|| bad("a JWK is a JSON object"))?;
        let text = |name: &str| obj.get(name).and_then(Value::as_str);
        let bytes = |name: &'static str| -> Result<Vec<u8>> {
            let value = text(name).ok_or_else(|| bad("a JWK member is missing"))?;
            URL_SAFE_NO_PAD
                .decode(value)
                .map_err(|_| bad("a JWK member is not base64url"))
        };
        if obj.contains_key("d") {
            return Err(bad("a private JWK is never accepted as a verification key"));
        }
        if let Some(usage) = obj.get("use")
            && usage.as_str() != Some("sig")
        {
            return Err(bad("the JWK is not a signature key"));
        }
        if let Some(ops) = obj.get("key_ops") {
            let verifies = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
            if !verifies {
                return Err(bad("the JWK's key_ops exclude verify"));
            }
        }
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(kid)) if valid_kid(kid) => Some(kid.clone()),
            Some(_) => return Err(Error::new(ErrorKind::InvalidKid)),
        };
        let declared = match obj.get("alg") {
            None => None,
            Some(Value::String(alg)) => {
                Some(Algorithm::from_name(alg).ok_or_else(|| bad("unsupported JWK alg"))?)
            }
            Some(_) => return Err(bad("the JWK alg is not a string")),
        };
        let key = match text("kty") {
            Some("EC") => {
                if text("crv") != Some("P-256") {
                    return Err(bad("only the P-256 curve is supported"));
                }
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(bad("bad P-256 coordinates"));
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Self::from_ec_point(kid, &point)?
            }
            Some("OKP") => {
                if text("crv") != Some("Ed25519") {
                    return Err(bad("only the Ed25519 curve is supported"));
                }
                Self::from_ed25519(kid, &bytes("x")?)?
            }
            Some("RSA") => {
                let alg = match declared {
                    Some(Algorithm::PS256) => Algorithm::PS256,
                    _ => Algorithm::RS256,
                };
                Self::from_rsa(kid, alg, &bytes("n")?, &bytes("e")?)?
            }
            Some("oct") => return Err(bad("symmetric keys are never read from a JWK")),
            _ => return Err(bad("unsupported key type")),
        };
        if declared.is_some_and(|alg| alg != key.alg) {
            return Err(bad("the JWK alg disagrees with its key type"));
        }
        Ok(key)
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (`kid`, `alg`, `use: sig` included); `None` for a shared secret.
    pub fn to_jwk(&self) -> Option<Value> {
        let mut jwk = self.jwk.clone()?;
        if let Some(kid) = &self.kid {
            jwk.insert("kid".into(), kid.clone().into());
        }
        jwk.insert("alg".into(), self.alg.as_str().into());
        jwk.insert("use".into(), "sig".into());
        Some(Value::Object(jwk))
    }

    /// Verifies a raw signature over `message` through jsonwebtoken's aws-lc-rs provider,
    /// called explicitly rather than through the process-wide default.
    pub(crate) fn verify(&self, message: &[u8], signature: Vec<u8>) -> bool {
        let factory = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.verifier_factory;
        match factory(&self.alg.jwt(), &self.decoding) {
            Ok(verifier) => verifier.verify(message, &signature).is_ok(),
            Err(_) => false,
        }
    }
}

/// A set of verification keys, looked up by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

/// Largest JWKS document read (bytes).
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;

impl KeySet {
    /// A set of the given keys. Two keys with the same `kid`, or several keys of which
    /// one has no `kid`, are refused: lookups must be unambiguous.
    pub fn new(keys: Vec<VerifyingKey>) -> Result<Self> {
        if keys.len() > 1 {
            let mut kids = Vec::with_capacity(keys.len());
            for key in &keys {
                let kid = key.kid().ok_or_else(|| {
                    Error::with(ErrorKind::InvalidConfig, "every key of a set needs a kid")
                })?;
                if kids.contains(&kid) {
                    return Err(Error::with(
                        ErrorKind::InvalidConfig,
                        "duplicate kid in key set",
                    ));
                }
                kids.push(kid);
            }
        }
        Ok(Self { keys })
    }

    /// A set of one key.
    pub fn single(key: VerifyingKey) -> Self {
        Self { keys: vec![key] }
    }

    /// Reads a JWKS document (`{"keys": [...]}`). Keys this crate cannot use (other
    /// curves, encryption keys, symmetric keys) are skipped; a document with repeated
    /// JSON member names, repeated `kid`s or no usable key is refused.
    pub fn from_jwks_json(document: &[u8]) -> Result<Self> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "JWKS document too large",
            ));
        }
        let object = crate::json::parse_object(document)
            .map_err(|e| Error::with(ErrorKind::InvalidKey, format!("JWKS document: {e}")))?;
        let keys = object
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::with(ErrorKind::InvalidKey, "JWKS document without keys"))?;
        let mut usable = Vec::new();
        for jwk in keys {
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) => usable.push(key),
                Err(error) => tracing::debug!(%error, "skipping unusable JWK"),
            }
        }
        if usable.is_empty() {
            return Err(Error::with(
                ErrorKind::InvalidKey,
                "no usable key in the JWKS",
            ));
        }
        Self::new(usable)
    }

    /// The JWKS document of the public keys (shared secrets are never included).
    pub fn to_jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.iter().filter_map(VerifyingKey::to_jwk).collect();
        json!({ "keys": keys })
    }

    /// The keys.
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this `kid` is in the set.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }

    /// Picks the key for a token: by `kid` when given; without one only if the set holds
    /// exactly one key.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerifyingKey> {
        match kid {
            Some(kid) => {
                if !valid_kid(kid) {
                    return Err(Error::new(ErrorKind::InvalidKid));
                }
                self.keys
                    .iter()
                    .find(|k| k.kid() == Some(kid))
                    .ok_or_else(|| Error::new(ErrorKind::UnknownKey))
            }
            None => match self.keys.as_slice() {
                [only] => Ok(only),
                [] => Err(Error::new(ErrorKind::UnknownKey)),
                _ => Err(Error::new(ErrorKind::KidRequired)),
            },
        }
    }
}

impl From<Arc<KeySet>> for KeySet {
    fn from(set: Arc<KeySet>) -> Self {
        Arc::unwrap_or_clone(set)
    }
}

fn pem_encode(der: &[u8], label: &str) -> Zeroizing<String> {
    let body = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(pem: &str, label: &str) -> Result<Zeroizing<Vec<u8>>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let bad = || Error::with(ErrorKind::InvalidKey, "not a PKCS#8 PEM private key");
    let after = pem.split_once(&begin).ok_or_else(bad)?.1;
    let body = after.split_once(&end).ok_or_else(bad)?.0;
    let body: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_whitespace()).collect());
    STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_signs_and_verifies() {
        for alg in [
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
        ] {
            let key = SigningKey::generate(alg).unwrap();
            let sig = key.sign(b"message").unwrap();
            assert!(key.verifying_key().verify(b"message", sig.clone()));
            assert!(!key.verifying_key().verify(b"massage", sig));
            let pem = key.to_pkcs8_pem().unwrap();
            let again = SigningKey::from_pkcs8_pem(key.kid(), alg, &pem).unwrap();
            assert!(key.verifying_key().verify(b"x", again.sign(b"x").unwrap()));
            let jwk = key.verifying_key().to_jwk().unwrap();
            let parsed = VerifyingKey::from_jwk(&jwk).unwrap();
            assert_eq!(parsed.algorithm(), alg);
            assert!(parsed.verify(b"y", key.sign(b"y").unwrap()));
            assert!(!format!("{key:?}").contains(&*pem));
        }
    }

    #[test]
    fn jwk_alg_must_match_key_type() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let mut jwk = key.verifying_key().to_jwk().unwrap();
        jwk["alg"] = "HS256".into();
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
        jwk["alg"] = "RS256".into();
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
        let oct = json!({"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"});
        assert!(VerifyingKey::from_jwk(&oct).is_err());
    }

    #[test]
    fn short_hmac_secrets_and_bad_kids_are_refused() {
        assert!(SigningKey::hmac("k", b"short").is_err());
        assert!(VerifyingKey::hmac("../etc", &[7; 32]).is_err());
        assert!(valid_kid("abc-DEF_1.2"));
        assert!(!valid_kid("../../etc/passwd"));
        assert!(!valid_kid("x' OR '1'='1"));
        assert!(!valid_kid(""));
    }
}
