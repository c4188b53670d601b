//! RFC 9421 HTTP Message Signatures and RFC 9530 `Content-Digest`.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::clock::{from_unix, unix_seconds};
use crate::credential::{CredentialStore, KeyMaterial, Secret};
use crate::error::{Error, ErrorKind, MismatchDetails, err};
use crate::nonce::NonceStore;
use crate::request::{Request, Response};
use crate::sfv::{
    BareItem, Item, Member, Params, parse_dictionary, parse_item, write_inner_list, write_item,
};
use crate::sigv4::hmac_sha256;
use crate::verifier::{Verified, Verifier};

/// An RFC 9421 signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rfc9421Algorithm {
    /// `hmac-sha256`.
    HmacSha256,
    /// `ed25519`.
    Ed25519,
    /// `ecdsa-p256-sha256` (signature as the 64-byte `r || s`).
    EcdsaP256Sha256,
}

impl Rfc9421Algorithm {
    /// The registered name (`hmac-sha256`, `ed25519`, `ecdsa-p256-sha256`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }

    /// The algorithm a credential's key verifies: `hmac-sha256` for a shared secret,
    /// else the public key's.
    pub fn for_key(key: &KeyMaterial) -> Self {
        match key {
            KeyMaterial::Secret(_) | KeyMaterial::Sealed(_) => Self::HmacSha256,
            KeyMaterial::Ed25519(_) => Self::Ed25519,
            KeyMaterial::EcdsaP256(_) => Self::EcdsaP256Sha256,
        }
    }
}

/// A private key that signs RFC 9421 signatures.
#[derive(Clone)]
pub enum Rfc9421Key {
    /// A shared secret for `hmac-sha256`.
    HmacSha256(Secret),
    /// An Ed25519 signing key.
    Ed25519(ed25519_dalek::SigningKey),
    /// A P-256 ECDSA signing key.
    EcdsaP256(p256::ecdsa::SigningKey),
}

impl Rfc9421Key {
    /// An Ed25519 key from its 32-byte seed.
    pub fn ed25519_from_seed(seed: &[u8]) -> Result<Self, Error> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| err(ErrorKind::InvalidKey, "an Ed25519 seed is 32 bytes"))?;
        Ok(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// A P-256 key from its 32-byte scalar.
    pub fn ecdsa_p256_from_scalar(scalar: &[u8]) -> Result<Self, Error> {
        p256::ecdsa::SigningKey::from_slice(scalar)
            .map(Self::EcdsaP256)
            .map_err(|_| err(ErrorKind::InvalidKey, "not a valid P-256 scalar"))
    }

    /// A private key from PEM, as OpenSSL writes it: PKCS#8 (`-----BEGIN PRIVATE KEY-----`,
    /// `openssl genpkey`) for Ed25519 or P-256, or SEC1 (`-----BEGIN EC PRIVATE KEY-----`,
    /// `openssl ecparam -genkey`) for P-256. Encrypted keys are not read.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidKey`] for anything else (another key type, a public key,
    /// malformed PEM).
    pub fn from_private_key_pem(pem: &str) -> Result<Self, Error> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Self::Ed25519(key));
        }
        if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(Self::EcdsaP256(key.into()));
        }
        if let Ok(key) = p256::SecretKey::from_sec1_pem(pem) {
            return Ok(Self::EcdsaP256(key.into()));
        }
        Err(err(
            ErrorKind::InvalidKey,
            "expected a PEM private key (PKCS#8 or SEC1), Ed25519 or P-256",
        ))
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Rfc9421Algorithm {
        match self {
            Self::HmacSha256(_) => Rfc9421Algorithm::HmacSha256,
            Self::Ed25519(_) => Rfc9421Algorithm::Ed25519,
            Self::EcdsaP256(_) => Rfc9421Algorithm::EcdsaP256Sha256,
        }
    }

    /// The verifying half, as the credential store would hold it.
    pub fn verifying_key(&self) -> KeyMaterial {
        match self {
            Self::HmacSha256(s) => KeyMaterial::Secret(s.clone()),
            Self::Ed25519(k) => KeyMaterial::Ed25519(k.verifying_key().to_bytes()),
            Self::EcdsaP256(k) => KeyMaterial::EcdsaP256(
                k.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::HmacSha256(s) => hmac_sha256(s.expose(), message).to_vec(),
            Self::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(message).to_bytes().to_vec()
            }
            Self::EcdsaP256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
        }
    }
}

impl fmt::Debug for Rfc9421Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rfc9421Key({}, <redacted>)", self.algorithm().name())
    }
}

fn hmac_matches(secret: &Secret, message: &[u8], signature: &[u8]) -> bool {
    let expected = hmac_sha256(secret.expose(), message);
    signature.len() == 32 && bool::from(expected.as_ref().ct_eq(signature))
}

/// Whether `signature` verifies; an error only when a sealed secret cannot be opened.
fn verify_with(key: &KeyMaterial, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
    Ok(match key {
        KeyMaterial::Secret(s) => hmac_matches(s, message, signature),
        KeyMaterial::Sealed(sealed) => hmac_matches(&sealed.open()?, message, signature),
        KeyMaterial::Ed25519(pk) => {
            let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(pk) else {
                return Ok(false);
            };
            let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                return Ok(false);
            };
            vk.verify_strict(message, &sig).is_ok()
        }
        KeyMaterial::EcdsaP256(sec1) => {
            use p256::ecdsa::signature::Verifier as _;
            let Ok(vk) = p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1) else {
                return Ok(false);
            };
            let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else {
                return Ok(false);
            };
            vk.verify(message, &sig).is_ok()
        }
    })
}

// ---------------------------------------------------------------------------------------
// RFC 9530 Content-Digest.

/// The RFC 9530 `Content-Digest` value for `body`: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, body);
    format!("sha-256=:{}:", STANDARD.encode(d.as_ref()))
}

/// Checks a `Content-Digest` header against `body`. Every `sha-256`/`sha-512` member
/// present must match, and at least one must be present; other algorithms are ignored.
pub fn verify_content_digest(header: &str, body: &[u8]) -> Result<(), Error> {
    let dict = parse_dictionary(header)?;
    let mut checked = 0;
    for (alg, member) in &dict {
        let algorithm = match alg.as_str() {
            "sha-256" => &digest::SHA256,
            "sha-512" => &digest::SHA512,
            _ => continue,
        };
        let Member::Item(Item {
            bare: BareItem::Bytes(expected),
            ..
        }) = member
        else {
            return Err(err(
                ErrorKind::MalformedSignatureInput,
                "a Content-Digest member is not a byte sequence",
            ));
        };
        let actual = digest::digest(algorithm, body);
        if !bool::from(actual.as_ref().ct_eq(expected.as_slice())) {
            return Err(err(
                ErrorKind::BodyHashMismatch,
                "the body does not match Content-Digest",
            ));
        }
        checked += 1;
    }
    if checked == 0 {
        return Err(err(
            ErrorKind::BodyHashMismatch,
            "Content-Digest has no sha-256 or sha-512 member",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Component values and the signature base.

struct Msg<'m, 'a> {
    request: Option<&'m Request<'a>>,
    status: Option<u16>,
    headers: &'m [(&'a str, &'a str)],
}

fn malformed(detail: &'static str) -> Error {
    err(ErrorKind::MalformedSignatureInput, detail)
}

fn component_name(item: &Item) -> Result<&str, Error> {
    match &item.bare {
        BareItem::String(s) => Ok(s),
        _ => Err(malformed("a component identifier is not a string")),
    }
}

fn form_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|x| char::from(*x).to_digit(16));
        match c {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                    i += 3;
                    continue;
                }
                out.push(c);
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn form_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header_value(msg: &Msg<'_, '_>, name: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut found = false;
    for (n, v) in msg.headers {
        if n.eq_ignore_ascii_case(name) {
            if found {
                out.push_str(", ");
            }
            out.push_str(v.trim_matches(|c| c == ' ' || c == '\t'));
            found = true;
        }
    }
    if !found {
        return Err(err(
            ErrorKind::MissingHeader,
            "a covered header is missing from the message",
        ));
    }
    Ok(out)
}

fn request_of<'m, 'a>(msg: &Msg<'m, 'a>) -> Result<&'m Request<'a>, Error> {
    msg.request
        .ok_or_else(|| malformed("a request-only derived component was used on a response"))
}

fn component_value(msg: &Msg<'_, '_>, item: &Item) -> Result<String, Error> {
    let name = component_name(item)?;
    if name.is_empty()
        || name
            .bytes()
            .any(|b| b.is_ascii_uppercase() || !(0x21..0x7f).contains(&b))
    {
        return Err(malformed(
            "a component name must be lower-case visible ASCII",
        ));
    }
    let allowed_param = if name == "@query-param" { "name" } else { "" };
    for (k, _) in &item.params {
        if k != allowed_param {
            return Err(malformed(
                "unsupported component parameter (sf, key, bs, req, tr are not supported)",
            ));
        }
    }
    if !name.starts_with('@') {
        return header_value(msg, name);
    }
    let value = match name {
        "@method" => request_of(msg)?.method.to_owned(),
        "@authority" => authority(msg)?,
        "@scheme" => request_of(msg)?.scheme.to_ascii_lowercase(),
        "@target-uri" => {
            let r = request_of(msg)?;
            format!(
                "{}://{}{}",
                r.scheme.to_ascii_lowercase(),
                authority(msg)?,
                r.target
            )
        }
        "@request-target" => request_of(msg)?.target.to_owned(),
        "@path" => {
            let p = request_of(msg)?.path();
            if p.is_empty() {
                "/".to_owned()
            } else {
                p.to_owned()
            }
        }
        "@query" => format!("?{}", request_of(msg)?.query().unwrap_or("")),
        "@query-param" => {
            let wanted = match item.params.iter().find(|(k, _)| k == "name") {
                Some((_, BareItem::String(s))) => form_encode(&form_decode(s)),
                _ => return Err(malformed("@query-param needs a string name parameter")),
            };
            let query = request_of(msg)?.query().unwrap_or("");
            let mut value = None;
            for piece in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
                if form_encode(&form_decode(k)) == wanted {
                    if value.is_some() {
                        return Err(malformed("@query-param names a repeated parameter"));
                    }
                    value = Some(form_encode(&form_decode(v)));
                }
            }
            value.ok_or_else(|| {
                err(
                    ErrorKind::MissingHeader,
                    "@query-param names an absent parameter",
                )
            })?
        }
        "@status" => match msg.status {
            Some(s) => format!("{s:03}"),
            None => return Err(malformed("@status is only defined for responses")),
        },
        _ => return Err(malformed("unknown derived component")),
    };
    Ok(value)
}

fn authority(msg: &Msg<'_, '_>) -> Result<String, Error> {
    let r = request_of(msg)?;
    match r.single_header("host") {
        Ok(Some(h)) => Ok(h.trim().to_ascii_lowercase()),
        Ok(None) => Err(err(
            ErrorKind::MissingHeader,
            "@authority needs a host header",
        )),
        Err(()) => Err(err(
            ErrorKind::InvalidRequest,
            "the host header is repeated",
        )),
    }
}

fn signature_base(
    msg: &Msg<'_, '_>,
    components: &[Item],
    params: &Params,
) -> Result<String, Error> {
    let mut base = String::with_capacity(256);
    for (i, item) in components.iter().enumerate() {
        if components.iter().take(i).any(|c| c == item) {
            return Err(malformed("a component is covered twice"));
        }
        let value = component_value(msg, item)?;
        if value.bytes().any(|b| b == b'\n' || b == b'\r') {
            return Err(err(
                ErrorKind::InvalidRequest,
                "a component value contains a newline",
            ));
        }
        write_item(&mut base, item);
        base.push_str(": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    write_inner_list(&mut base, components, params);
    Ok(base)
}

fn parse_component(spec: &str) -> Result<Item, Error> {
    if spec.starts_with('"') {
        return parse_item(spec);
    }
    Ok(Item {
        bare: BareItem::String(spec.to_owned()),
        params: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------
// Signing.

/// Signs requests or responses per RFC 9421.
///
/// Components are given as names (`"@method"`, `"content-digest"`) or as serialized
/// component identifiers (`"\"@query-param\";name=\"Pet\""`). Parameters are emitted in
/// the order `created`, `expires`, `keyid`, `nonce`, `alg`, `tag`.
#[derive(Debug, Clone)]
pub struct Rfc9421Signer {
    label: String,
    keyid: String,
    key: Rfc9421Key,
    components: Vec<String>,
    include_alg: bool,
    expires_in: Option<Duration>,
    nonce: Option<String>,
    tag: Option<String>,
}

impl Rfc9421Signer {
    /// A signer with label `sig1`, no covered components yet, and `alg` included.
    pub fn new(keyid: impl Into<String>, key: Rfc9421Key) -> Self {
        Self {
            label: "sig1".to_owned(),
            keyid: keyid.into(),
            key,
            components: Vec::new(),
            include_alg: true,
            expires_in: None,
            nonce: None,
            tag: None,
        }
    }

    /// The signature label (dictionary key).
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Covers one more component.
    #[must_use]
    pub fn cover(mut self, component: impl Into<String>) -> Self {
        self.components.push(component.into());
        self
    }

    /// Whether to emit the `alg` parameter (default: yes).
    #[must_use]
    pub fn include_alg(mut self, include: bool) -> Self {
        self.include_alg = include;
        self
    }

    /// Emits `expires` = `created` + `lifetime`.
    #[must_use]
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }

    /// Emits a `nonce` parameter.
    #[must_use]
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Emits a `tag` parameter (the application the signature is meant for).
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    fn sign_msg(&self, msg: &Msg<'_, '_>, now: SystemTime) -> Result<Vec<(String, String)>, Error> {
        let created = i64::try_from(unix_seconds(now)?)
            .map_err(|_| err(ErrorKind::InvalidRequest, "time out of range"))?;
        let components = self
            .components
            .iter()
            .map(|c| parse_component(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut params: Params = vec![("created".to_owned(), BareItem::Integer(created))];
        if let Some(life) = self.expires_in {
            let life = i64::try_from(life.as_secs())
                .map_err(|_| err(ErrorKind::InvalidRequest, "lifetime out of range"))?;
            params.push((
                "expires".to_owned(),
                BareItem::Integer(created.saturating_add(life)),
            ));
        }
        params.push(("keyid".to_owned(), BareItem::String(self.keyid.clone())));
        if let Some(nonce) = &self.nonce {
            params.push(("nonce".to_owned(), BareItem::String(nonce.clone())));
        }
        if self.include_alg {
            params.push((
                "alg".to_owned(),
                BareItem::String(self.key.algorithm().name().to_owned()),
            ));
        }
        if let Some(tag) = &self.tag {
            params.push(("tag".to_owned(), BareItem::String(tag.clone())));
        }
        for (_, v) in &params {
            if let BareItem::String(s) = v
                && !s.bytes().all(|b| (0x20..0x7f).contains(&b))
            {
                return Err(err(
                    ErrorKind::InvalidRequest,
                    "signature parameters must be printable ASCII",
                ));
            }
        }
        let base = signature_base(msg, &components, &params)?;
        let signature = self.key.sign(base.as_bytes());
        let mut input = format!("{}=", self.label);
        write_inner_list(&mut input, &components, &params);
        let mut sig = format!("{}=", self.label);
        crate::sfv::write_bare(&mut sig, &BareItem::Bytes(signature));
        Ok(vec![
            ("Signature-Input".to_owned(), input),
            ("Signature".to_owned(), sig),
        ])
    }

    /// Signs a request: returns the `Signature-Input` and `Signature` headers to add.
    /// Add `Content-Digest` (see [`content_digest`]) before signing when it is covered.
    pub fn sign_request(
        &self,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Vec<(String, String)>, Error> {
        let msg = Msg {
            request: Some(request),
            status: None,
            headers: &request.headers,
        };
        self.sign_msg(&msg, now)
    }

    /// Signs a response (`@status` and header fields).
    pub fn sign_response(
        &self,
        response: &Response<'_>,
        now: SystemTime,
    ) -> Result<Vec<(String, String)>, Error> {
        let msg = Msg {
            request: None,
            status: Some(response.status),
            headers: &response.headers,
        };
        self.sign_msg(&msg, now)
    }
}

// ---------------------------------------------------------------------------------------
// Verification.

/// The parameters of a verified RFC 9421 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// The signature label.
    pub label: String,
    /// The covered component identifiers, serialized.
    pub components: Vec<String>,
    /// `created`, as Unix seconds.
    pub created: Option<i64>,
    /// `expires`, as Unix seconds.
    pub expires: Option<i64>,
    /// `keyid`.
    pub keyid: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `alg`.
    pub alg: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
}

struct Selected {
    label: String,
    components: Vec<Item>,
    params: Params,
    signature: Vec<u8>,
}

fn combined(headers: &[(&str, &str)], name: &str) -> Option<String> {
    let mut out: Option<String> = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            match &mut out {
                Some(s) => {
                    s.push_str(", ");
                    s.push_str(v);
                }
                None => out = Some((*v).to_owned()),
            }
        }
    }
    out
}

fn select(headers: &[(&str, &str)], label: Option<&str>) -> Result<Selected, Error> {
    let (Some(input), Some(sigs)) = (
        combined(headers, "signature-input"),
        combined(headers, "signature"),
    ) else {
        return Err(err(
            ErrorKind::MissingSignature,
            "Signature-Input and Signature are both required",
        ));
    };
    let inputs = parse_dictionary(&input)?;
    let sigs = parse_dictionary(&sigs)?;
    let (label, member) = match label {
        Some(l) => inputs
            .into_iter()
            .find(|(k, _)| k == l)
            .ok_or_else(|| err(ErrorKind::MissingSignature, "no signature with that label"))?,
        None => {
            let mut it = inputs.into_iter();
            let first = it
                .next()
                .ok_or_else(|| err(ErrorKind::MissingSignature, "Signature-Input is empty"))?;
            if it.next().is_some() {
                return Err(malformed("several signatures and no label chosen"));
            }
            first
        }
    };
    let Member::InnerList(components, params) = member else {
        return Err(malformed("a Signature-Input member is not an inner list"));
    };
    let signature = match sigs.into_iter().find(|(k, _)| *k == label) {
        Some((
            _,
            Member::Item(Item {
                bare: BareItem::Bytes(b),
                ..
            }),
        )) => b,
        Some(_) => return Err(malformed("a Signature member is not a byte sequence")),
        None => {
            return Err(err(
                ErrorKind::MissingSignature,
                "no Signature for the label",
            ));
        }
    };
    for c in &components {
        component_name(c)?;
    }
    Ok(Selected {
        label,
        components,
        params,
        signature,
    })
}

fn describe(sel: &Selected) -> Result<SignatureParams, Error> {
    let mut out = SignatureParams {
        label: sel.label.clone(),
        components: sel
            .components
            .iter()
            .map(|c| {
                let mut s = String::new();
                write_item(&mut s, c);
                s
            })
            .collect(),
        created: None,
        expires: None,
        keyid: None,
        nonce: None,
        alg: None,
        tag: None,
    };
    for (k, v) in &sel.params {
        match (k.as_str(), v) {
            ("created", BareItem::Integer(i)) => out.created = Some(*i),
            ("expires", BareItem::Integer(i)) => out.expires = Some(*i),
            ("keyid", BareItem::String(s)) => out.keyid = Some(s.clone()),
            ("nonce", BareItem::String(s)) => out.nonce = Some(s.clone()),
            ("alg", BareItem::String(s)) => out.alg = Some(s.clone()),
            ("tag", BareItem::String(s)) => out.tag = Some(s.clone()),
            ("created" | "expires" | "keyid" | "nonce" | "alg" | "tag", _) => {
                return Err(malformed("a signature parameter has the wrong type"));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn check_alg(params: &SignatureParams, key: &KeyMaterial) -> Result<Rfc9421Algorithm, Error> {
    let alg = Rfc9421Algorithm::for_key(key);
    if let Some(named) = &params.alg
        && named != alg.name()
    {
        return Err(err(
            ErrorKind::UnsupportedAlgorithm,
            "the alg parameter does not match the key",
        ));
    }
    Ok(alg)
}

/// Verifies one RFC 9421 signature over a response with a known key (no time or replay
/// policy: a client checking a server's answer). Returns the signature's parameters.
pub fn verify_response(
    response: &Response<'_>,
    label: Option<&str>,
    key: &KeyMaterial,
) -> Result<SignatureParams, Error> {
    let sel = select(&response.headers, label)?;
    let params = describe(&sel)?;
    check_alg(&params, key)?;
    let msg = Msg {
        request: None,
        status: Some(response.status),
        headers: &response.headers,
    };
    let base = signature_base(&msg, &sel.components, &sel.params)?;
    if !verify_with(key, base.as_bytes(), &sel.signature)? {
        return Err(err(
            ErrorKind::SignatureMismatch,
            "the signature does not verify",
        ));
    }
    Ok(params)
}

/// Verifies one RFC 9421 signature over a request with a known key, checking only the
/// signature itself (no coverage, time or replay policy; use [`Verifier::verify_rfc9421`]
/// on a server).
pub fn verify_request_signature(
    request: &Request<'_>,
    label: Option<&str>,
    key: &KeyMaterial,
) -> Result<SignatureParams, Error> {
    let sel = select(&request.headers, label)?;
    let params = describe(&sel)?;
    check_alg(&params, key)?;
    let msg = Msg {
        request: Some(request),
        status: None,
        headers: &request.headers,
    };
    let base = signature_base(&msg, &sel.components, &sel.params)?;
    if !verify_with(key, base.as_bytes(), &sel.signature)? {
        return Err(err(
            ErrorKind::SignatureMismatch,
            "the signature does not verify",
        ));
    }
    Ok(params)
}

/// Parses a `Signature-Input` field value into each signature's parameters (a debugging
/// and inspection aid; strict RFC 8941 parsing, bounded sizes).
pub fn parse_signature_input(value: &str) -> Result<Vec<SignatureParams>, Error> {
    let dict = parse_dictionary(value)?;
    dict.into_iter()
        .map(|(label, member)| match member {
            Member::InnerList(components, params) => describe(&Selected {
                label,
                components,
                params,
                signature: Vec::new(),
            }),
            Member::Item(_) => Err(malformed("a Signature-Input member is not an inner list")),
        })
        .collect()
}

/// Which components a server requires an RFC 9421 signature to cover, and its other
/// rules.
#[derive(Debug, Clone)]
pub struct Rfc9421Policy {
    required: Vec<Vec<String>>,
    query_required: bool,
    digest_required: bool,
    require_created: bool,
    label: Option<String>,
    tag: Option<String>,
    algorithms: Vec<Rfc9421Algorithm>,
}

impl Rfc9421Policy {
    /// The reference server's policy: `@method`, `@authority`, `@path` or `@target-uri`,
    /// `@query` (or `@target-uri`) when there is a query, `content-digest` when there is a
    /// body; `created` required; `hmac-sha256`, `ed25519` and `ecdsa-p256-sha256`.
    pub fn palisade() -> Self {
        Self {
            required: vec![
                vec!["@method".to_owned()],
                vec!["@authority".to_owned(), "@target-uri".to_owned()],
                vec!["@path".to_owned(), "@target-uri".to_owned()],
            ],
            query_required: true,
            digest_required: true,
            require_created: true,
            label: None,
            tag: None,
            algorithms: vec![
                Rfc9421Algorithm::HmacSha256,
                Rfc9421Algorithm::Ed25519,
                Rfc9421Algorithm::EcdsaP256Sha256,
            ],
        }
    }

    /// No required component and `created` optional (still: time, replay and the body
    /// digest when `content-digest` is covered). Add requirements with
    /// [`Rfc9421Policy::require`].
    pub fn minimal() -> Self {
        Self {
            required: Vec::new(),
            query_required: false,
            digest_required: false,
            require_created: false,
            ..Self::palisade()
        }
    }

    /// Requires that one of `alternatives` be covered.
    #[must_use]
    pub fn require(mut self, alternatives: &[&str]) -> Self {
        self.required
            .push(alternatives.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Verifies the signature with this label (needed when a message carries several).
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Requires this `tag` parameter.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// The algorithms accepted.
    #[must_use]
    pub fn algorithms(mut self, algorithms: &[Rfc9421Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }
}

fn covered(components: &[Item], name: &str) -> bool {
    components
        .iter()
        .any(|c| matches!(&c.bare, BareItem::String(s) if s == name))
}

impl<C: CredentialStore, N: NonceStore> Verifier<C, N> {
    /// Verifies an RFC 9421 signature on a request under `policy`: coverage, `created`
    /// within the skew window, `expires`, `tag`, `Content-Digest` against the body, the
    /// key from the credential store by `keyid`, then the replay check.
    pub async fn verify_rfc9421(
        &self,
        policy: &Rfc9421Policy,
        request: &Request<'_>,
        now: SystemTime,
    ) -> Result<Verified, Error> {
        let sel = select(&request.headers, policy.label.as_deref())?;
        let params = describe(&sel)?;
        for alternatives in &policy.required {
            if !alternatives.iter().any(|a| covered(&sel.components, a)) {
                return Err(err(
                    ErrorKind::UnsignedRequiredHeader,
                    "a required component is not covered",
                ));
            }
        }
        if policy.query_required
            && request.query().is_some_and(|q| !q.is_empty())
            && !covered(&sel.components, "@query")
            && !covered(&sel.components, "@target-uri")
        {
            return Err(err(
                ErrorKind::UnsignedRequiredHeader,
                "the query is not covered",
            ));
        }
        let digest_covered = covered(&sel.components, "content-digest");
        if policy.digest_required && !request.body.is_empty() && !digest_covered {
            return Err(err(
                ErrorKind::UnsignedRequiredHeader,
                "content-digest must be covered when there is a body",
            ));
        }
        let now_s = i64::try_from(unix_seconds(now)?)
            .map_err(|_| err(ErrorKind::InvalidRequest, "time out of range"))?;
        let skew = i64::try_from(self.skew().as_secs()).unwrap_or(i64::MAX);
        match params.created {
            Some(created)
                if created > now_s.saturating_add(skew) || now_s.saturating_sub(created) > skew =>
            {
                return Err(err(
                    ErrorKind::RequestTimeTooSkewed,
                    "created is outside the allowed clock skew",
                ));
            }
            None if policy.require_created => {
                return Err(malformed("the created parameter is required"));
            }
            _ => {}
        }
        if let Some(expires) = params.expires
            && expires < now_s
        {
            return Err(err(ErrorKind::Expired, "the signature has expired"));
        }
        if let Some(tag) = &policy.tag
            && params.tag.as_deref() != Some(tag.as_str())
        {
            return Err(err(
                ErrorKind::InvalidScope,
                "the tag parameter does not match",
            ));
        }
        if digest_covered || (policy.digest_required && !request.body.is_empty()) {
            let header = match request.single_header("content-digest") {
                Ok(Some(h)) => h,
                Ok(None) => {
                    return Err(err(ErrorKind::MissingHeader, "Content-Digest is missing"));
                }
                Err(()) => {
                    return Err(err(ErrorKind::InvalidRequest, "Content-Digest is repeated"));
                }
            };
            verify_content_digest(header, request.body)?;
        }
        let keyid = params
            .keyid
            .clone()
            .ok_or_else(|| malformed("the keyid parameter is required"))?;
        let msg = Msg {
            request: Some(request),
            status: None,
            headers: &request.headers,
        };
        let base = signature_base(&msg, &sel.components, &sel.params)?;
        let credential = self.lookup(&keyid).await?;
        let alg = check_alg(&params, &credential.key)?;
        if !policy.algorithms.contains(&alg) {
            return Err(err(
                ErrorKind::UnsupportedAlgorithm,
                "this algorithm is not accepted",
            ));
        }
        if !verify_with(&credential.key, base.as_bytes(), &sel.signature)? {
            return Err(Error::mismatch(MismatchDetails {
                access_key_id: credential.access_key_id,
                owner: credential.owner,
                canonical_request: base,
                string_to_sign: String::new(),
            }));
        }
        let ttl = match params.expires {
            Some(e) => Duration::from_secs(u64::try_from(e.saturating_sub(now_s)).unwrap_or(0))
                .saturating_add(self.skew()),
            None => self.skew().saturating_mul(2),
        };
        // Without a nonce, what was signed (the signature base, which holds keyid and
        // created) identifies a replay, not the signature's bytes: an ECDSA signature
        // (r, s) has a twin (r, n - s) that verifies too, so its bytes could be varied.
        let replay_key = match &params.nonce {
            Some(nonce) => format!("{keyid}\n{nonce}").into_bytes(),
            None => base.into_bytes(),
        };
        self.check_replay("rfc9421", &replay_key, ttl, now).await?;
        let signed_at = params
            .created
            .and_then(|c| u64::try_from(c).ok())
            .map_or(now, from_unix);
        Ok(Verified {
            access_key_id: credential.access_key_id,
            owner: credential.owner,
            scopes: credential.scopes,
            profile: "rfc9421",
            signed_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_for(target: &str, components: &[&str]) -> String {
        let request = Request::new("GET", target).header("Host", "www.example.com");
        let msg = Msg {
            request: Some(&request),
            status: None,
            headers: &request.headers,
        };
        let items: Vec<Item> = components
            .iter()
            .map(|c| parse_component(c).unwrap())
            .collect();
        signature_base(&msg, &items, &Vec::new()).unwrap()
    }

    /// RFC 9421 section 2.2.8's `@query-param` examples.
    #[test]
    fn query_param_examples() {
        let target = "/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something";
        let base = base_for(
            target,
            &[
                r#""@query-param";name="var""#,
                r#""@query-param";name="bar""#,
                r#""@query-param";name="fa%C3%A7ade%22%3A%20""#,
            ],
        );
        let expected = "\"@query-param\";name=\"var\": this%20is%20a%20big%0Amultiline%20value\n\"@query-param\";name=\"bar\": with%20plus%20whitespace\n\"@query-param\";name=\"fa%C3%A7ade%22%3A%20\": something\n";
        assert!(base.starts_with(expected), "{base}");
        let base = base_for(
            "/path?param=value&foo=bar&baz=batman&qux=",
            &[r#""@query-param";name="qux""#],
        );
        assert!(base.starts_with("\"@query-param\";name=\"qux\": \n"));
    }

    /// RFC 9421 section 2.2 derived-component examples.
    #[test]
    fn derived_components() {
        let base = base_for(
            "/path?param=value",
            &[
                "@method",
                "@target-uri",
                "@authority",
                "@scheme",
                "@request-target",
                "@path",
                "@query",
            ],
        );
        assert!(base.starts_with(
            "\"@method\": GET\n\"@target-uri\": https://www.example.com/path?param=value\n\"@authority\": www.example.com\n\"@scheme\": https\n\"@request-target\": /path?param=value\n\"@path\": /path\n\"@query\": ?param=value\n"
        ));
        assert!(base_for("/path", &["@query"]).starts_with("\"@query\": ?\n"));
    }

    #[test]
    fn bad_components_are_typed_errors() {
        let request = Request::new("GET", "/?a=1&a=2").header("Host", "h");
        let msg = Msg {
            request: Some(&request),
            status: None,
            headers: &request.headers,
        };
        for c in [
            r#""Content-Type""#,
            r#""@unknown""#,
            r#""@status""#,
            r#""date";sf"#,
            r#""@query-param";name="a""#,
            r#""@query-param""#,
        ] {
            let item = parse_component(c).unwrap();
            assert!(signature_base(&msg, &[item], &Vec::new()).is_err(), "{c}");
        }
        let item = parse_component(r#""date""#).unwrap();
        assert_eq!(
            signature_base(&msg, &[item], &Vec::new())
                .unwrap_err()
                .kind(),
            ErrorKind::MissingHeader
        );
    }
}
