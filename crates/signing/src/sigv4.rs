//! One engine, two profiles: the Palisade HMAC scheme and AWS Signature Version 4.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_lc_rs::{digest, hmac};
use zeroize::Zeroizing;

use crate::clock::{format_basic, from_unix, parse_basic, unix_seconds};
use crate::credential::Secret;
use crate::encode::{
    Hex32, PlusPolicy, Sink, canonical_path, canonical_query, decode_lower_hex32,
    fold_header_value, hex_lower, is_lower_token_byte, is_printable_ascii, is_token,
    percent_decode, split_ascii, split_once_ascii, uri_encode_str,
};
use crate::error::{Error, ErrorKind, err};
use crate::request::{Request, name_is};

/// The payload hash AWS uses when the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Bounds on what a verifier reads from a request (oversized input is refused).
pub(crate) const MAX_AUTHORIZATION_LEN: usize = 4096;
pub(crate) const MAX_SIGNED_HEADERS: usize = 64;
pub(crate) const MAX_TARGET_LEN: usize = 16 * 1024;
pub(crate) const MAX_HEADERS: usize = 256;
const MAX_ACCESS_KEY_ID_LEN: usize = 128;
const MAX_PRESIGN_EXPIRES: u64 = 604_800;

// Headers never signed, as botocore does it.
const UNSIGNED: &[&str] = &["authorization", "user-agent", "expect", "x-amzn-trace-id"];
// Header values replaced in debugging output.
const REDACTED: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-amz-security-token",
    "x-api-key",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Palisade,
    Aws4,
}

/// A Signature-Version-4-style profile: which algorithm name, scope, key chain, date
/// header and canonicalization rules apply.
///
/// - [`SigV4Profile::palisade`]: `PALISADE-HMAC-SHA256`, scope `<yyyymmdd>/api/request`,
///   key chain `PALISADE`+secret, time in `X-Palisade-Date`. The path is URI-encoded once
///   more (as AWS does for non-S3 services) but never normalized, so the signature covers
///   the exact path bytes.
/// - [`SigV4Profile::aws4`]: exactly AWS Signature Version 4 (`AWS4-HMAC-SHA256`, scope
///   `<date>/<region>/<service>/aws4_request`). For service `s3` the S3 rules apply: the
///   path is neither normalized nor encoded again, and `X-Amz-Content-Sha256` is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Profile {
    scheme: Scheme,
    region: String,
    service: String,
    plus: PlusPolicy,
    normalize_path: bool,
    double_encode_path: bool,
    content_sha256_header: bool,
    unsigned_payload: bool,
}

impl SigV4Profile {
    /// The `palisade` profile.
    pub fn palisade() -> Self {
        Self {
            scheme: Scheme::Palisade,
            region: "api".to_owned(),
            service: "request".to_owned(),
            plus: PlusPolicy::Literal,
            normalize_path: false,
            double_encode_path: true,
            content_sha256_header: false,
            unsigned_payload: false,
        }
    }

    /// The AWS Signature Version 4 profile for `region` and `service`.
    pub fn aws4(region: &str, service: &str) -> Self {
        let s3 = service == "s3";
        Self {
            scheme: Scheme::Aws4,
            region: region.to_owned(),
            service: service.to_owned(),
            plus: PlusPolicy::Literal,
            normalize_path: !s3,
            double_encode_path: !s3,
            content_sha256_header: s3,
            unsigned_payload: false,
        }
    }

    /// How a literal `+` in the query is canonicalized (see [`PlusPolicy`]).
    #[must_use]
    pub fn plus_policy(mut self, plus: PlusPolicy) -> Self {
        self.plus = plus;
        self
    }

    /// Whether `.`/`..` segments and empty segments are removed from the path (AWS
    /// default: yes except for S3).
    #[must_use]
    pub fn normalize_path(mut self, normalize: bool) -> Self {
        self.normalize_path = normalize;
        self
    }

    /// Whether signing adds and signs `X-Amz-Content-Sha256` (AWS profile; default: only
    /// for S3).
    #[must_use]
    pub fn content_sha256_header(mut self, add: bool) -> Self {
        self.content_sha256_header = add && self.scheme == Scheme::Aws4;
        self
    }

    /// Signing: use `UNSIGNED-PAYLOAD` instead of the body hash (AWS profile only).
    /// Verification: accept requests that declare `X-Amz-Content-Sha256: UNSIGNED-PAYLOAD`.
    #[must_use]
    pub fn unsigned_payload(mut self, unsigned: bool) -> Self {
        self.unsigned_payload = unsigned && self.scheme == Scheme::Aws4;
        self
    }

    /// `palisade` or `aws4`.
    pub fn name(&self) -> &'static str {
        match self.scheme {
            Scheme::Palisade => "palisade",
            Scheme::Aws4 => "aws4",
        }
    }

    /// The algorithm token (`PALISADE-HMAC-SHA256` or `AWS4-HMAC-SHA256`).
    pub fn algorithm(&self) -> &'static str {
        match self.scheme {
            Scheme::Palisade => "PALISADE-HMAC-SHA256",
            Scheme::Aws4 => "AWS4-HMAC-SHA256",
        }
    }

    /// The lower-case name of the date header (`x-palisade-date` or `x-amz-date`).
    pub fn date_header(&self) -> &'static str {
        match self.scheme {
            Scheme::Palisade => "x-palisade-date",
            Scheme::Aws4 => "x-amz-date",
        }
    }

    fn date_header_display(&self) -> &'static str {
        match self.scheme {
            Scheme::Palisade => "X-Palisade-Date",
            Scheme::Aws4 => "X-Amz-Date",
        }
    }

    fn param(&self, name: &str) -> String {
        match self.scheme {
            Scheme::Palisade => format!("X-Palisade-{name}"),
            Scheme::Aws4 => format!("X-Amz-{name}"),
        }
    }

    fn algorithm_param(&self) -> &'static str {
        match self.scheme {
            Scheme::Palisade => "X-Palisade-Algorithm",
            Scheme::Aws4 => "X-Amz-Algorithm",
        }
    }

    fn signature_param(&self) -> &'static str {
        match self.scheme {
            Scheme::Palisade => "X-Palisade-Signature",
            Scheme::Aws4 => "X-Amz-Signature",
        }
    }

    fn key_prefix(&self) -> &'static [u8] {
        match self.scheme {
            Scheme::Palisade => b"PALISADE",
            Scheme::Aws4 => b"AWS4",
        }
    }

    fn is_s3(&self) -> bool {
        self.scheme == Scheme::Aws4 && self.service == "s3"
    }

    /// The scope after the date: `api/request` or `<region>/<service>/aws4_request`.
    pub(crate) fn scope_tail(&self) -> String {
        match self.scheme {
            Scheme::Palisade => "api/request".to_owned(),
            Scheme::Aws4 => format!("{}/{}/aws4_request", self.region, self.service),
        }
    }

    /// Whether `tail` is [`Self::scope_tail`], without building it.
    fn is_scope_tail(&self, tail: &str) -> bool {
        match self.scheme {
            Scheme::Palisade => tail == "api/request",
            Scheme::Aws4 => {
                tail.strip_prefix(self.region.as_str())
                    .and_then(|t| t.strip_prefix('/'))
                    .and_then(|t| t.strip_prefix(self.service.as_str()))
                    == Some("/aws4_request")
            }
        }
    }

    /// Derives the signing key for `date` (`yyyymmdd`): HMAC over each scope part in
    /// turn, starting from the prefix and the secret.
    pub(crate) fn derive_key(&self, secret: &Secret, date: &str) -> Zeroizing<[u8; 32]> {
        let mut k0 = Zeroizing::new(Vec::with_capacity(8 + secret.expose().len()));
        k0.extend_from_slice(self.key_prefix());
        k0.extend_from_slice(secret.expose());
        let mut key = hmac_sha256(&k0, date.as_bytes());
        let tail = self.scope_tail();
        for part in tail.split('/') {
            key = hmac_sha256(key.as_ref(), part.as_bytes());
        }
        key
    }

    /// The canonical request this profile computes for `request`, signing the given
    /// (lower-case, sorted) header names with the given payload hash. A debugging aid.
    pub fn canonical_request(
        &self,
        request: &Request<'_>,
        signed_headers: &[&str],
        payload_hash: &str,
    ) -> Result<String, Error> {
        let extra: [(&str, &str); 0] = [];
        let query = request.query().unwrap_or("");
        Ok(self.build_canonical(request, query, "", &extra, signed_headers, payload_hash))
    }

    fn build_canonical(
        &self,
        request: &Request<'_>,
        query: &str,
        exclude_param: &str,
        extra: &[(&str, &str)],
        signed: &[&str],
        payload_hash: &str,
    ) -> String {
        let mut out = String::with_capacity(512 + request.target.len());
        self.write_canonical(
            &mut out,
            request,
            request.path(),
            query,
            exclude_param,
            extra,
            (signed, str::eq_ignore_ascii_case),
            PayloadHash::Given(payload_hash),
        );
        out
    }

    #[allow(clippy::too_many_arguments)] // The parts of a canonical request, each distinct.
    fn write_canonical(
        &self,
        out: &mut impl Sink,
        request: &Request<'_>,
        path: &str,
        query: &str,
        exclude_param: &str,
        extra: &[(&str, &str)],
        // The signed names, and how a header name is matched against one of them.
        (signed, same_name): (&[&str], impl Fn(&str, &str) -> bool),
        payload_hash: PayloadHash<'_>,
    ) {
        out.put(request.method);
        out.put_ascii(b'\n');
        canonical_path(out, path, self.double_encode_path, self.normalize_path);
        out.put_ascii(b'\n');
        canonical_query(out, query, self.plus, exclude_param);
        out.put_ascii(b'\n');
        for name in signed {
            out.put(name);
            out.put_ascii(b':');
            let mut first = true;
            for (n, v) in request.headers.iter().chain(extra.iter()) {
                if same_name(n, name) {
                    if !first {
                        out.put_ascii(b',');
                    }
                    fold_header_value(out, v);
                    first = false;
                }
            }
            out.put_ascii(b'\n');
        }
        out.put_ascii(b'\n');
        for (i, name) in signed.iter().enumerate() {
            if i > 0 {
                out.put_ascii(b';');
            }
            out.put(name);
        }
        out.put_ascii(b'\n');
        match payload_hash {
            PayloadHash::Computed(hex) => out.put_hex(&hex),
            PayloadHash::Given(s) => out.put(s),
        }
    }

    fn write_string_to_sign(
        &self,
        out: &mut impl Sink,
        timestamp: &str,
        scope: (&str, &str),
        canonical_hash: &[u8; 32],
    ) {
        out.put(self.algorithm());
        out.put_ascii(b'\n');
        out.put(timestamp);
        out.put_ascii(b'\n');
        out.put(scope.0);
        out.put_ascii(b'/');
        out.put(scope.1);
        out.put_ascii(b'\n');
        out.put_hex(&Hex32::new(canonical_hash));
    }

    pub(crate) fn string_to_sign(&self, timestamp: &str, scope: &str, canonical: &str) -> String {
        let hash = sha256(canonical.as_bytes());
        let (date, tail) = scope.split_once('/').unwrap_or((scope, ""));
        let mut s = String::with_capacity(40 + scope.len() + 64);
        self.write_string_to_sign(&mut s, timestamp, (date, tail), &hash);
        s
    }
}

/// A sink that takes raw bytes: the canonical text is ASCII, so the [`Sink`] methods are
/// each one byte copy.
trait ByteSink {
    fn put_bytes(&mut self, data: &[u8]);
}

impl<T: ByteSink> Sink for T {
    #[inline]
    fn put(&mut self, s: &str) {
        self.put_bytes(s.as_bytes());
    }

    #[inline]
    fn put_ascii(&mut self, b: u8) {
        self.put_bytes(&[b]);
    }

    #[inline]
    fn put_hex(&mut self, hex: &Hex32) {
        self.put_bytes(hex.as_bytes());
    }
}

/// Short text (a string to sign: at most about 370 bytes, as its parts are bounded) on the
/// stack, spilling to the heap only past the buffer.
struct StackText {
    buf: [u8; 512],
    len: usize,
    spill: Vec<u8>,
}

impl Default for StackText {
    fn default() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl ByteSink for StackText {
    #[inline]
    fn put_bytes(&mut self, data: &[u8]) {
        if self.spill.is_empty()
            && let Some(free) = self.buf.get_mut(self.len..self.len + data.len())
        {
            free.copy_from_slice(data);
            self.len += data.len();
            return;
        }
        if self.spill.is_empty() {
            self.spill
                .extend_from_slice(self.buf.get(..self.len).unwrap_or_default());
        }
        self.spill.extend_from_slice(data);
    }
}

impl StackText {
    fn as_bytes(&self) -> &[u8] {
        if self.spill.is_empty() {
            self.buf.get(..self.len).unwrap_or_default()
        } else {
            &self.spill
        }
    }
}

/// Text absorbed straight into SHA-256, a buffer at a time, so the verifier hashes the
/// canonical request without building it (and in bounded memory, whatever its size).
/// Text that fits the buffer (the usual canonical request) is hashed in one call,
/// without the hashing context that streaming needs (aws-lc allocates one).
struct Sha256Sink {
    ctx: Option<digest::Context>,
    buf: [u8; 1024],
    len: usize,
}

impl ByteSink for Sha256Sink {
    #[inline]
    fn put_bytes(&mut self, data: &[u8]) {
        if let Some(free) = self.buf.get_mut(self.len..self.len + data.len()) {
            free.copy_from_slice(data);
            self.len += data.len();
            return;
        }
        self.flush();
        match self.buf.get_mut(..data.len()) {
            Some(free) => {
                free.copy_from_slice(data);
                self.len = data.len();
            }
            None => Self::context(&mut self.ctx).update(data),
        }
    }
}

impl Sha256Sink {
    fn new() -> Self {
        Self {
            ctx: None,
            buf: [0; 1024],
            len: 0,
        }
    }

    fn context(ctx: &mut Option<digest::Context>) -> &mut digest::Context {
        ctx.get_or_insert_with(|| digest::Context::new(&digest::SHA256))
    }

    fn flush(&mut self) {
        let len = std::mem::take(&mut self.len);
        let pending = self.buf.get(..len).unwrap_or_default();
        Self::context(&mut self.ctx).update(pending);
    }

    fn finish(mut self) -> [u8; 32] {
        let pending = self.buf.get(..self.len).unwrap_or_default();
        let digest = match self.ctx.take() {
            None => digest::digest(&digest::SHA256, pending),
            Some(mut ctx) => {
                ctx.update(pending);
                ctx.finish()
            }
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    Hex32::new(&sha256(data)).as_str().to_owned()
}

/// The credential a client signs with.
#[derive(Clone)]
pub struct SigningCredential {
    access_key_id: String,
    secret: Secret,
    session_token: Option<String>,
    sign_session_token: bool,
}

impl SigningCredential {
    /// An access key id and its secret.
    pub fn new(access_key_id: impl Into<String>, secret: Secret) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret,
            session_token: None,
            sign_session_token: true,
        }
    }

    /// A temporary-credential session token, sent as `X-Amz-Security-Token`. When
    /// `signed` is false it is added after signing (as some AWS services require).
    #[must_use]
    pub fn session_token(mut self, token: impl Into<String>, signed: bool) -> Self {
        self.session_token = Some(token.into());
        self.sign_session_token = signed;
        self
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }
}

impl std::fmt::Debug for SigningCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCredential")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The result of signing: headers to add, plus the intermediate strings for debugging.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Headers to add to the request, in this order (`Authorization` first).
    pub headers: Vec<(String, String)>,
    /// The canonical request that was signed.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The signature, lower-case hex.
    pub signature: String,
}

fn check_request_shape(request: &Request<'_>) -> Result<(), Error> {
    if request.method.is_empty() || !is_token(request.method) {
        return Err(err(ErrorKind::InvalidRequest, "the method is not a token"));
    }
    if request.target.len() > MAX_TARGET_LEN || !request.target.starts_with('/') {
        return Err(err(
            ErrorKind::InvalidRequest,
            "the request target must start with '/' and be at most 16 KiB",
        ));
    }
    if request.headers.len() > MAX_HEADERS {
        return Err(err(ErrorKind::InvalidRequest, "too many headers"));
    }
    for (name, _) in &request.headers {
        if !is_token(name) {
            return Err(err(
                ErrorKind::InvalidRequest,
                "a header name is not a token",
            ));
        }
    }
    Ok(())
}

fn sorted_signed_names<'n>(names: impl Iterator<Item = &'n str>) -> Vec<String> {
    let mut out: Vec<String> = names
        .map(str::to_ascii_lowercase)
        .filter(|n| !UNSIGNED.contains(&n.as_str()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Signs `request` with the given profile: returns the headers to add
/// (`Authorization`, the date header, and where the profile wants them
/// `X-Amz-Content-Sha256` and `X-Amz-Security-Token`).
///
/// Every header of the request is signed except `authorization`, `user-agent`, `expect`
/// and `x-amzn-trace-id` (as botocore does). The request must carry `host`; under the
/// `palisade` profile a request with a body must carry `content-type`.
pub fn sign(
    profile: &SigV4Profile,
    credential: &SigningCredential,
    request: &Request<'_>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, Error> {
    sign_detailed(profile, credential, request, now).map(|s| s.headers)
}

/// [`sign`], also returning the canonical request and string to sign.
pub fn sign_detailed(
    profile: &SigV4Profile,
    credential: &SigningCredential,
    request: &Request<'_>,
    now: SystemTime,
) -> Result<Signed, Error> {
    check_request_shape(request)?;
    if request.header_values("host").next().is_none() {
        return Err(err(
            ErrorKind::MissingHeader,
            "the request has no host header",
        ));
    }
    if profile.scheme == Scheme::Palisade
        && !request.body.is_empty()
        && request.header_values("content-type").next().is_none()
    {
        return Err(err(
            ErrorKind::MissingHeader,
            "a request with a body must carry content-type",
        ));
    }
    let timestamp = format_basic(unix_seconds(now)?);
    let date = timestamp.get(..8).unwrap_or_default().to_owned();
    let payload_hash = if profile.unsigned_payload {
        UNSIGNED_PAYLOAD.to_owned()
    } else {
        sha256_hex(request.body)
    };

    // Headers this signer sets replace any the caller supplied.
    let replaced = |n: &str| {
        n.eq_ignore_ascii_case(profile.date_header())
            || (profile.content_sha256_header && n.eq_ignore_ascii_case("x-amz-content-sha256"))
            || (credential.session_token.is_some()
                && n.eq_ignore_ascii_case("x-amz-security-token"))
    };
    let mut base = request.clone();
    base.headers.retain(|(n, _)| !replaced(n));

    let mut added: Vec<(String, String)> = Vec::new();
    added.push((profile.date_header_display().to_owned(), timestamp.clone()));
    if profile.content_sha256_header {
        added.push(("X-Amz-Content-Sha256".to_owned(), payload_hash.clone()));
    }
    let mut token_header = None;
    if let Some(token) = &credential.session_token {
        let pair = ("X-Amz-Security-Token".to_owned(), token.clone());
        if credential.sign_session_token {
            added.push(pair);
        } else {
            token_header = Some(pair);
        }
    }
    let extra: Vec<(&str, &str)> = added
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let names = sorted_signed_names(
        base.headers
            .iter()
            .map(|(n, _)| *n)
            .chain(extra.iter().map(|(n, _)| *n)),
    );
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let query = base.query().unwrap_or("");
    let canonical = profile.build_canonical(&base, query, "", &extra, &signed, &payload_hash);
    let scope = format!("{date}/{}", profile.scope_tail());
    let sts = profile.string_to_sign(&timestamp, &scope, &canonical);
    let key = profile.derive_key(&credential.secret, &date);
    let signature = hex_lower(hmac_sha256(key.as_ref(), sts.as_bytes()).as_ref());
    let authorization = format!(
        "{} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        profile.algorithm(),
        credential.access_key_id,
        signed.join(";"),
    );
    let mut headers = vec![("Authorization".to_owned(), authorization)];
    headers.extend(added);
    headers.extend(token_header);
    Ok(Signed {
        headers,
        canonical_request: canonical,
        string_to_sign: sts,
        signature,
    })
}

/// Presigns `request`: returns the new request target with the signature in the query
/// string (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders`, `X-Amz-Signature`, or the `X-Palisade-` equivalents).
///
/// `expires` must be between 1 second and 7 days. Under the `aws4` profile for S3 the
/// payload is `UNSIGNED-PAYLOAD`, as botocore does it; otherwise the body hash is used.
pub fn presign(
    profile: &SigV4Profile,
    credential: &SigningCredential,
    request: &Request<'_>,
    now: SystemTime,
    expires: Duration,
) -> Result<String, Error> {
    presign_detailed(profile, credential, request, now, expires).map(|s| s.target)
}

/// A presigned request: the new target and the intermediate strings for debugging.
#[derive(Debug, Clone)]
pub struct Presigned {
    /// The request target (path and query) carrying the signature.
    pub target: String,
    /// The canonical request that was signed.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The signature, lower-case hex.
    pub signature: String,
}

/// [`presign`], also returning the canonical request and string to sign.
pub fn presign_detailed(
    profile: &SigV4Profile,
    credential: &SigningCredential,
    request: &Request<'_>,
    now: SystemTime,
    expires: Duration,
) -> Result<Presigned, Error> {
    check_request_shape(request)?;
    if request.header_values("host").next().is_none() {
        return Err(err(
            ErrorKind::MissingHeader,
            "the request has no host header",
        ));
    }
    let secs = expires.as_secs();
    if secs == 0 || secs > MAX_PRESIGN_EXPIRES {
        return Err(err(
            ErrorKind::InvalidRequest,
            "presigned URLs expire after 1 second to 7 days",
        ));
    }
    let timestamp = format_basic(unix_seconds(now)?);
    let date = timestamp.get(..8).unwrap_or_default().to_owned();
    let scope = format!("{date}/{}", profile.scope_tail());
    let payload_hash = if profile.unsigned_payload || profile.is_s3() {
        UNSIGNED_PAYLOAD.to_owned()
    } else {
        sha256_hex(request.body)
    };
    let names = sorted_signed_names(request.headers.iter().map(|(n, _)| *n));
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut params = vec![
        format!("{}={}", profile.param("Algorithm"), profile.algorithm()),
        format!(
            "{}={}",
            profile.param("Credential"),
            uri_encode_str(&format!("{}/{scope}", credential.access_key_id))
        ),
        format!("{}={timestamp}", profile.param("Date")),
        format!("{}={secs}", profile.param("Expires")),
        format!(
            "{}={}",
            profile.param("SignedHeaders"),
            uri_encode_str(&signed.join(";"))
        ),
    ];
    if let Some(token) = &credential.session_token
        && credential.sign_session_token
    {
        params.push(format!(
            "{}={}",
            profile.param("Security-Token"),
            uri_encode_str(token)
        ));
    }
    let mut query = request.query().unwrap_or("").to_owned();
    for p in &params {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(p);
    }
    let canonical = profile.build_canonical(request, &query, "", &[], &signed, &payload_hash);
    let sts = profile.string_to_sign(&timestamp, &scope, &canonical);
    let key = profile.derive_key(&credential.secret, &date);
    let signature = hex_lower(hmac_sha256(key.as_ref(), sts.as_bytes()).as_ref());
    let mut target = format!("{}?{query}", request.path());
    target.push('&');
    target.push_str(&profile.param("Signature"));
    target.push('=');
    target.push_str(&signature);
    if let (Some(token), false) = (&credential.session_token, credential.sign_session_token) {
        target.push('&');
        target.push_str(&profile.param("Security-Token"));
        target.push('=');
        target.push_str(&uri_encode_str(token));
    }
    Ok(Presigned {
        target,
        canonical_request: canonical,
        string_to_sign: sts,
        signature,
    })
}

// ---------------------------------------------------------------------------------------
// Verification, the synchronous part: parse, check shape/scope/time/body, build the
// string to sign. The verifier then looks the credential up and compares.

/// The three parts of a parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization<'a> {
    /// The access key id from `Credential=`.
    pub access_key_id: &'a str,
    /// `yyyymmdd` from the credential scope.
    pub date: &'a str,
    /// The scope after the date (`api/request`, `<region>/<service>/aws4_request`).
    pub scope_tail: &'a str,
    /// The signed header names, `;`-separated, lower-case and sorted.
    pub signed_headers: &'a str,
    /// The signature, 64 lower-case hex digits.
    pub signature: &'a str,
}

fn malformed(detail: &'static str) -> Error {
    err(ErrorKind::MalformedAuthorization, detail)
}

fn valid_access_key_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ACCESS_KEY_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn split_credential(value: &str) -> Result<(&str, &str, &str), Error> {
    let (akid, rest) =
        split_once_ascii(value, b'/').ok_or_else(|| malformed("the credential has no scope"))?;
    let (date, tail) = split_once_ascii(rest, b'/')
        .ok_or_else(|| malformed("the credential scope is truncated"))?;
    if !valid_access_key_id(akid) {
        return Err(malformed("the access key id is malformed"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("the credential date is not yyyymmdd"));
    }
    if tail.is_empty() || tail.len() > 256 {
        return Err(malformed("the credential scope is malformed"));
    }
    Ok((akid, date, tail))
}

fn check_signed_headers(list: &str) -> Result<(), Error> {
    split_signed_headers(list, &mut [""; MAX_SIGNED_HEADERS]).map(|_| ())
}

/// Checks a `SignedHeaders` list (lower-case tokens, sorted, no duplicates, at most
/// [`MAX_SIGNED_HEADERS`]) and splits it into `names` in the same pass.
fn split_signed_headers<'a, 'b>(
    list: &'a str,
    names: &'b mut [&'a str; MAX_SIGNED_HEADERS],
) -> Result<&'b [&'a str], Error> {
    match split_signed_headers_fast(list, names) {
        Some(count) => Ok(names.get(..count).unwrap_or_default()),
        // The checking pass below names the first fault.
        None => split_signed_headers_checked(list, names),
    }
}

/// One pass over the bytes of a well-formed list; `None` at the first fault of any
/// kind (the checked pass then reports which).
fn split_signed_headers_fast<'a>(
    list: &'a str,
    names: &mut [&'a str; MAX_SIGNED_HEADERS],
) -> Option<usize> {
    let bytes = list.as_bytes();
    let (mut start, mut count) = (0, 0);
    let mut prev: &[u8] = &[];
    for end in 0..=bytes.len() {
        match bytes.get(end) {
            Some(&b) if b != b';' => {
                if !is_lower_token_byte(b) {
                    return None;
                }
            }
            _ => {
                let name = bytes.get(start..end)?;
                if name.is_empty() || (count > 0 && prev >= name) {
                    return None;
                }
                *names.get_mut(count)? = list.get(start..end)?;
                count += 1;
                prev = name;
                start = end + 1;
            }
        }
    }
    Some(count)
}

fn split_signed_headers_checked<'a, 'b>(
    list: &'a str,
    names: &'b mut [&'a str; MAX_SIGNED_HEADERS],
) -> Result<&'b [&'a str], Error> {
    if list.is_empty() {
        return Err(malformed("SignedHeaders is empty"));
    }
    let mut count = 0;
    let mut prev = "";
    for name in list.split(';') {
        let slot = names
            .get_mut(count)
            .ok_or_else(|| malformed("too many signed headers"))?;
        count += 1;
        if name.is_empty() || !name.bytes().all(is_lower_token_byte) {
            return Err(malformed("a signed header name is not a lower-case token"));
        }
        if count > 1 && prev >= name {
            return Err(malformed("SignedHeaders is not sorted or has duplicates"));
        }
        *slot = name;
        prev = name;
    }
    Ok(names.get(..count).unwrap_or_default())
}

fn check_signature_hex(sig: &str) -> Result<(), Error> {
    decode_sig(sig).map(|_| ())
}

/// Parses an `Authorization` header strictly: the algorithm, one space, then exactly
/// `Credential=`, `SignedHeaders=`, `Signature=` in this order, each once, separated by
/// a comma and optional spaces. ASCII only, at most 4 KiB.
pub fn parse_authorization<'a>(
    algorithm: &str,
    header: &'a str,
) -> Result<ParsedAuthorization<'a>, Error> {
    parse_authorization_decoded(algorithm, header, &mut [""; MAX_SIGNED_HEADERS])
        .map(|(parsed, _, _)| parsed)
}

/// [`parse_authorization`], also returning the signed header names (split into
/// `names`) and the signature decoded: each is checked once, in the form the verifier
/// uses.
fn parse_authorization_decoded<'a, 'b>(
    algorithm: &str,
    header: &'a str,
    names: &'b mut [&'a str; MAX_SIGNED_HEADERS],
) -> Result<(ParsedAuthorization<'a>, &'b [&'a str], [u8; 32]), Error> {
    if header.len() > MAX_AUTHORIZATION_LEN {
        return Err(malformed("the Authorization header is too long"));
    }
    let (credential, signed_headers, signature) = match split_authorization_fast(algorithm, header)
    {
        Some(parts) => parts,
        // The checking split below names the first fault.
        None => split_authorization_checked(algorithm, header)?,
    };
    let (access_key_id, date, scope_tail) = split_credential(credential)?;
    let names = split_signed_headers(signed_headers, names)?;
    let decoded = decode_sig(signature)?;
    Ok((
        ParsedAuthorization {
            access_key_id,
            date,
            scope_tail,
            signed_headers,
            signature,
        },
        names,
        decoded,
    ))
}

/// The three values of a well-formed header, the way [`split_authorization_checked`]
/// splits it, in one pass with no error paths; `None` at any fault (the checked split
/// then reports which). Everything it accepts, the checked split accepts the same way.
fn split_authorization_fast<'a>(
    algorithm: &str,
    header: &'a str,
) -> Option<(&'a str, &'a str, &'a str)> {
    if !is_printable_ascii(header) {
        return None;
    }
    let rest = header.strip_prefix(algorithm)?.strip_prefix(' ')?;
    // A part: spaces, `key=`, the value up to the next comma (or the end for the last
    // part, which must hold no comma), trailing spaces dropped.
    let part = |rest: &'a str, key: &str, last: bool| -> Option<(&'a str, &'a str)> {
        let value = rest
            .trim_start_matches(' ')
            .strip_prefix(key)?
            .strip_prefix('=')?;
        let (value, tail) = match (split_once_ascii(value, b','), last) {
            (Some(split), false) => split,
            (None, true) => (value, ""),
            _ => return None,
        };
        Some((value.trim_end_matches(' '), tail))
    };
    let (credential, rest) = part(rest, "Credential", false)?;
    let (signed_headers, rest) = part(rest, "SignedHeaders", false)?;
    let (signature, _) = part(rest, "Signature", true)?;
    Some((credential, signed_headers, signature))
}

/// Splits the header into its three values, naming the first fault: the algorithm, one
/// space, then exactly `Credential=`, `SignedHeaders=`, `Signature=` in this order.
fn split_authorization_checked<'a>(
    algorithm: &str,
    header: &'a str,
) -> Result<(&'a str, &'a str, &'a str), Error> {
    if !is_printable_ascii(header) {
        return Err(malformed(
            "the Authorization header has non-ASCII or control bytes",
        ));
    }
    let (alg, rest) = split_once_ascii(header, b' ')
        .ok_or_else(|| malformed("the Authorization header is truncated"))?;
    if alg != algorithm {
        return Err(err(
            ErrorKind::UnsupportedAlgorithm,
            "the Authorization header names another algorithm",
        ));
    }
    let mut parts = rest.split(',').map(|p| p.trim_matches(' '));
    let mut take = |key: &str| -> Result<&'a str, Error> {
        let part = parts
            .next()
            .ok_or_else(|| malformed("the Authorization header is truncated"))?;
        let (k, v) = split_once_ascii(part, b'=')
            .ok_or_else(|| malformed("an Authorization parameter has no '='"))?;
        if k != key {
            return Err(match k {
                "Credential" | "SignedHeaders" | "Signature" => {
                    malformed("Authorization parameters are duplicated or out of order")
                }
                _ => malformed("unknown Authorization parameter"),
            });
        }
        Ok(v)
    };
    let credential = take("Credential")?;
    let signed_headers = take("SignedHeaders")?;
    let signature = take("Signature")?;
    if parts.next().is_some() {
        return Err(malformed("the Authorization header has extra parameters"));
    }
    Ok((credential, signed_headers, signature))
}

/// The payload hash entering the canonical request.
#[derive(Clone, Copy)]
enum PayloadHash<'r> {
    Computed(Hex32),
    /// As the client declared it (`x-amz-content-sha256`), or `UNSIGNED-PAYLOAD`.
    Given(&'r str),
}

impl PayloadHash<'_> {
    fn as_str(&self) -> &str {
        match self {
            Self::Computed(hex) => hex.as_str(),
            Self::Given(s) => s,
        }
    }
}

/// Everything the verifier needs after the synchronous checks. The canonical request is
/// only hashed; [`SigV4Profile::mismatch_strings`] rebuilds it on the failure path.
pub(crate) struct Prepared<'r> {
    pub(crate) access_key_id: Cow<'r, str>,
    pub(crate) date: Cow<'r, str>,
    pub(crate) scope_tail: Cow<'r, str>,
    timestamp: Cow<'r, str>,
    signed_headers: Cow<'r, str>,
    query: &'r str,
    exclude_param: &'static str,
    payload_hash: PayloadHash<'r>,
    canonical_hash: [u8; 32],
    pub(crate) signature: [u8; 32],
    pub(crate) signed_at: SystemTime,
    /// How long the signature could still pass the time checks (nonce lifetime).
    pub(crate) replay_ttl: Duration,
    pub(crate) presigned: bool,
}

pub(crate) struct TimeRules {
    pub(crate) max_skew: Duration,
}

fn decode_sig(hexsig: &str) -> Result<[u8; 32], Error> {
    decode_lower_hex32(hexsig)
        .ok_or_else(|| malformed("the signature is not 64 lower-case hex digits"))
}

fn check_skew(ts: u64, now: u64, rules: &TimeRules) -> Result<(), Error> {
    if ts.abs_diff(now) > rules.max_skew.as_secs() {
        return Err(err(
            ErrorKind::RequestTimeTooSkewed,
            "the difference between the request time and the server's time is too large",
        ));
    }
    Ok(())
}

impl SigV4Profile {
    pub(crate) fn prepare<'r>(
        &self,
        request: &Request<'r>,
        now: SystemTime,
        rules: &TimeRules,
    ) -> Result<Prepared<'r>, Error> {
        check_request_shape(request)?;
        let now_s = unix_seconds(now)?;
        let auth = match request.single_header("authorization") {
            Ok(v) => v,
            Err(()) => return Err(malformed("more than one Authorization header")),
        };
        let (path, query) = request.path_and_query();
        let algo_param = self.algorithm_param();
        // The key (up to the first '=') is the parameter name, which holds no '='.
        let presigned = split_ascii(query, b'&').any(|p| {
            p.strip_prefix(algo_param)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        });
        match (auth, presigned) {
            (Some(_), true) => Err(malformed("signature both in the header and in the query")),
            (Some(h), false) => self.prepare_header(request, (path, query), h, now_s, rules),
            (None, true) => self.prepare_query(request, query, now_s, rules),
            (None, false) => Err(err(
                ErrorKind::MissingSignature,
                "the request is not signed",
            )),
        }
    }

    /// The HMAC of the string to sign under the cached signing key; the string to sign
    /// is written on the stack, not allocated.
    pub(crate) fn signature_of(&self, key: &hmac::Key, prepared: &Prepared<'_>) -> [u8; 32] {
        let mut sts = StackText::default();
        self.write_string_to_sign(
            &mut sts,
            &prepared.timestamp,
            (&prepared.date, &prepared.scope_tail),
            &prepared.canonical_hash,
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(key, sts.as_bytes()).as_ref());
        out
    }

    /// The canonical request and string to sign of a prepared request, rebuilt for a
    /// mismatch report (the failure path only).
    pub(crate) fn mismatch_strings(
        &self,
        request: &Request<'_>,
        prepared: &Prepared<'_>,
    ) -> (String, String) {
        let signed: Vec<&str> = prepared.signed_headers.split(';').collect();
        let canonical = self.build_canonical(
            request,
            prepared.query,
            prepared.exclude_param,
            &[],
            &signed,
            prepared.payload_hash.as_str(),
        );
        let mut sts = String::with_capacity(128 + prepared.scope_tail.len());
        self.write_string_to_sign(
            &mut sts,
            &prepared.timestamp,
            (&prepared.date, &prepared.scope_tail),
            &sha256(canonical.as_bytes()),
        );
        (canonical, sts)
    }

    fn canonical_hash(
        &self,
        request: &Request<'_>,
        (path, query): (&str, &str),
        exclude_param: &str,
        signed: &[&str],
        payload_hash: PayloadHash<'_>,
    ) -> [u8; 32] {
        let mut out = Sha256Sink::new();
        self.write_canonical(
            &mut out,
            request,
            path,
            query,
            exclude_param,
            &[],
            // Checked `SignedHeaders` names are lower-case.
            (signed, name_is),
            payload_hash,
        );
        out.finish()
    }

    fn check_scope(&self, date: &str, tail: &str, timestamp: &str) -> Result<(), Error> {
        if !self.is_scope_tail(tail) {
            return Err(err(
                ErrorKind::InvalidScope,
                "the credential scope does not match this service",
            ));
        }
        if timestamp.get(..8) != Some(date) {
            return Err(err(
                ErrorKind::InvalidScope,
                "the credential date does not match the request date",
            ));
        }
        Ok(())
    }

    fn payload_hash<'r>(
        &self,
        request: &Request<'r>,
        signed: &[&str],
    ) -> Result<PayloadHash<'r>, Error> {
        let declared = if self.scheme == Scheme::Aws4 {
            match request.single_header("x-amz-content-sha256") {
                Ok(v) => v,
                Err(()) => {
                    return Err(err(
                        ErrorKind::InvalidRequest,
                        "more than one x-amz-content-sha256 header",
                    ));
                }
            }
        } else {
            None
        };
        let Some(declared) = declared else {
            return Ok(PayloadHash::Computed(Hex32::new(&sha256(request.body))));
        };
        if !signed.contains(&"x-amz-content-sha256") {
            return Err(err(
                ErrorKind::UnsignedRequiredHeader,
                "x-amz-content-sha256 is present but not signed",
            ));
        }
        let declared = declared.trim();
        if declared == UNSIGNED_PAYLOAD {
            if !self.unsigned_payload {
                return Err(err(
                    ErrorKind::BodyHashMismatch,
                    "UNSIGNED-PAYLOAD is not accepted here",
                ));
            }
            return Ok(PayloadHash::Given(UNSIGNED_PAYLOAD));
        }
        let actual = Hex32::new(&sha256(request.body));
        if !declared.eq_ignore_ascii_case(actual.as_str()) {
            return Err(err(
                ErrorKind::BodyHashMismatch,
                "the body does not match x-amz-content-sha256",
            ));
        }
        Ok(PayloadHash::Given(declared))
    }

    fn check_required(
        &self,
        request: &Request<'_>,
        signed: &[&str],
        presigned: bool,
    ) -> Result<(), Error> {
        let required = [
            Some("host"),
            (!presigned).then(|| self.date_header()),
            (self.scheme == Scheme::Palisade && !request.body.is_empty()).then_some("content-type"),
        ];
        for name in required.into_iter().flatten() {
            if !signed.contains(&name) {
                return Err(err(
                    ErrorKind::UnsignedRequiredHeader,
                    "a required header (host, the date header, or content-type with a body) is not signed",
                ));
            }
        }
        for name in signed {
            if !request.headers.iter().any(|(n, _)| name_is(n, name)) {
                return Err(err(
                    ErrorKind::MissingHeader,
                    "a signed header is missing from the request",
                ));
            }
        }
        Ok(())
    }

    fn prepare_header<'r>(
        &self,
        request: &Request<'r>,
        (path, query): (&'r str, &'r str),
        header: &'r str,
        now: u64,
        rules: &TimeRules,
    ) -> Result<Prepared<'r>, Error> {
        let mut names = [""; MAX_SIGNED_HEADERS];
        let (parsed, signed, signature) =
            parse_authorization_decoded(self.algorithm(), header, &mut names)?;
        let timestamp = match request.single_header(self.date_header()) {
            Ok(Some(v)) => v.trim(),
            Ok(None) => return Err(err(ErrorKind::MissingHeader, "the date header is missing")),
            Err(()) => {
                return Err(err(
                    ErrorKind::InvalidRequest,
                    "the date header is repeated",
                ));
            }
        };
        let ts = parse_basic(timestamp).ok_or_else(|| {
            err(
                ErrorKind::InvalidRequest,
                "the date header is not yyyymmddThhmmssZ",
            )
        })?;
        self.check_scope(parsed.date, parsed.scope_tail, timestamp)?;
        check_skew(ts, now, rules)?;
        self.check_required(request, signed, false)?;
        let payload_hash = self.payload_hash(request, signed)?;
        let canonical_hash = self.canonical_hash(request, (path, query), "", signed, payload_hash);
        Ok(Prepared {
            access_key_id: Cow::Borrowed(parsed.access_key_id),
            date: Cow::Borrowed(parsed.date),
            scope_tail: Cow::Borrowed(parsed.scope_tail),
            timestamp: Cow::Borrowed(timestamp),
            signed_headers: Cow::Borrowed(parsed.signed_headers),
            query,
            exclude_param: "",
            payload_hash,
            canonical_hash,
            signature,
            signed_at: from_unix(ts),
            replay_ttl: rules.max_skew.saturating_mul(2),
            presigned: false,
        })
    }

    fn prepare_query<'r>(
        &self,
        request: &Request<'r>,
        query: &'r str,
        now: u64,
        rules: &TimeRules,
    ) -> Result<Prepared<'r>, Error> {
        let names = [
            "Algorithm",
            "Credential",
            "Date",
            "Expires",
            "SignedHeaders",
            "Signature",
        ];
        let wanted: Vec<String> = names.iter().map(|n| self.param(n)).collect();
        let mut found: [Option<String>; 6] = Default::default();
        for piece in query.split('&') {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            if let Some(i) = wanted.iter().position(|w| w == k) {
                let slot = found
                    .get_mut(i)
                    .ok_or_else(|| malformed("presigned parameter"))?;
                if slot.is_some() {
                    return Err(malformed("a presigned query parameter is repeated"));
                }
                if v.len() > MAX_AUTHORIZATION_LEN {
                    return Err(malformed("a presigned query parameter is too long"));
                }
                let decoded = percent_decode(v)
                    .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)))
                    .ok_or_else(|| malformed("a presigned query parameter is not ASCII"))?;
                *slot = Some(decoded);
            }
        }
        let [
            Some(alg),
            Some(cred),
            Some(timestamp),
            Some(expires),
            Some(signed_list),
            Some(sig),
        ] = found
        else {
            return Err(malformed("the presigned query lacks a required parameter"));
        };
        if alg != self.algorithm() {
            return Err(err(
                ErrorKind::UnsupportedAlgorithm,
                "the presigned query names another algorithm",
            ));
        }
        let (akid, date, tail) = split_credential(&cred)?;
        check_signed_headers(&signed_list)?;
        check_signature_hex(&sig)?;
        let ts = parse_basic(&timestamp).ok_or_else(|| {
            err(
                ErrorKind::InvalidRequest,
                "the date is not yyyymmddThhmmssZ",
            )
        })?;
        self.check_scope(date, tail, &timestamp)?;
        let expires: u64 = if expires.len() <= 7 && expires.bytes().all(|b| b.is_ascii_digit()) {
            expires.parse().unwrap_or(0)
        } else {
            0
        };
        if expires == 0 || expires > MAX_PRESIGN_EXPIRES {
            return Err(malformed("X-Amz-Expires must be 1 to 604800 seconds"));
        }
        if ts > now.saturating_add(rules.max_skew.as_secs()) {
            return Err(err(
                ErrorKind::RequestTimeTooSkewed,
                "the presigned URL is dated in the future",
            ));
        }
        let end = ts.saturating_add(expires);
        if now > end {
            return Err(err(ErrorKind::Expired, "the presigned URL has expired"));
        }
        let signed: Vec<&str> = signed_list.split(';').collect();
        self.check_required(request, &signed, true)?;
        let payload_hash = if self.is_s3() || self.unsigned_payload {
            PayloadHash::Given(UNSIGNED_PAYLOAD)
        } else {
            PayloadHash::Computed(Hex32::new(&sha256(request.body)))
        };
        let sig_param = self.signature_param();
        let canonical_hash = self.canonical_hash(
            request,
            (request.path(), query),
            sig_param,
            &signed,
            payload_hash,
        );
        let signature = decode_sig(&sig)?;
        Ok(Prepared {
            access_key_id: Cow::Owned(akid.to_owned()),
            date: Cow::Owned(date.to_owned()),
            scope_tail: Cow::Owned(tail.to_owned()),
            signed_headers: Cow::Owned(signed_list.clone()),
            timestamp: Cow::Owned(timestamp),
            query,
            exclude_param: sig_param,
            payload_hash,
            canonical_hash,
            signature,
            signed_at: from_unix(ts),
            replay_ttl: Duration::from_secs(end.saturating_sub(now)).saturating_add(rules.max_skew),
            presigned: true,
        })
    }
}

/// The canonical request with sensitive header values replaced, for mismatch reports.
pub(crate) fn redact_canonical(canonical: &str) -> String {
    let mut out = String::with_capacity(canonical.len());
    for (i, line) in canonical.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match line.split_once(':') {
            Some((name, _)) if REDACTED.contains(&name) => {
                out.push_str(name);
                out.push_str(":<redacted>");
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALG: &str = "AWS4-HMAC-SHA256";

    /// Headers built from the pieces a real one has, shuffled, repeated, padded and
    /// damaged: whatever the one-pass splits accept, the checked ones accept the same way.
    fn header_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("AWS4-HMAC-SHA256".to_owned()),
            Just(" ".to_owned()),
            Just(",".to_owned()),
            Just("=".to_owned()),
            Just(";".to_owned()),
            Just("Credential".to_owned()),
            Just("SignedHeaders".to_owned()),
            Just("Signature".to_owned()),
            Just("AKID/20261127/us-east-1/s3/aws4_request".to_owned()),
            Just("host;x-amz-date".to_owned()),
            Just("a".repeat(64)),
            "[ -~]{0,6}",
            "[a-zA-Z;]{0,8}",
        ];
        prop::collection::vec(piece, 0..14).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn the_fast_authorization_split_agrees_with_the_checked_one(header in header_like()) {
            if let Some(fast) = split_authorization_fast(ALG, &header) {
                prop_assert_eq!(split_authorization_checked(ALG, &header).ok(), Some(fast));
            }
        }

        #[test]
        fn the_fast_signed_headers_split_agrees_with_the_checked_one(
            list in "[a-z;A-Z_ -]{0,40}"
        ) {
            let mut fast = [""; MAX_SIGNED_HEADERS];
            let mut checked = [""; MAX_SIGNED_HEADERS];
            if let Some(count) = split_signed_headers_fast(&list, &mut fast) {
                let checked = split_signed_headers_checked(&list, &mut checked);
                prop_assert_eq!(checked.ok(), fast.get(..count));
            }
        }

        #[test]
        fn well_formed_headers_take_the_fast_path(
            akid in "[A-Z0-9]{4,20}",
            names in prop::collection::btree_set("[a-z][a-z-]{0,12}", 1..6),
            sig in "[0-9a-f]{64}",
            pad in " {0,2}",
        ) {
            let list = names.into_iter().collect::<Vec<_>>().join(";");
            let header = format!(
                "{ALG} Credential={akid}/20261127/us-east-1/s3/aws4_request,{pad}SignedHeaders={list},{pad}Signature={sig}"
            );
            let fast = split_authorization_fast(ALG, &header);
            prop_assert!(fast.is_some());
            let mut names = [""; MAX_SIGNED_HEADERS];
            prop_assert!(split_signed_headers_fast(&list, &mut names).is_some());
        }
    }

    #[test]
    fn parses_a_valid_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let p = parse_authorization(ALG, h).unwrap();
        assert_eq!(p.access_key_id, "AKIDEXAMPLE");
        assert_eq!(p.scope_tail, "us-east-1/service/aws4_request");
        let compact = h.replace(", ", ",");
        assert!(parse_authorization(ALG, &compact).is_ok());
    }

    #[test]
    fn rejects_bad_headers_with_typed_errors() {
        let good = "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/s/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let cases = [
            ("", ErrorKind::MalformedAuthorization),
            ("AWS4-HMAC-SHA256", ErrorKind::MalformedAuthorization),
            ("HMAC Credential=x", ErrorKind::UnsupportedAlgorithm),
            (good.get(..60).unwrap(), ErrorKind::MalformedAuthorization),
            (
                "AWS4-HMAC-SHA256 SignedHeaders=host, Credential=AKID/20150830/r/s/aws4_request, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ErrorKind::MalformedAuthorization,
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/s/aws4_request, Credential=AKID/20150830/r/s/aws4_request, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ErrorKind::MalformedAuthorization,
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/s/aws4_request, SignedHeaders=x-amz-date;host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ErrorKind::MalformedAuthorization,
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/s/aws4_request, SignedHeaders=Host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ErrorKind::MalformedAuthorization,
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/s/aws4_request, SignedHeaders=host, Signature=5FA00FA31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ErrorKind::MalformedAuthorization,
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKÏD/20150830/r/s/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ErrorKind::MalformedAuthorization,
            ),
            (
                "AWS4-HMAC-SHA256 Credential=AKID/2015083/r/s/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                ErrorKind::MalformedAuthorization,
            ),
        ];
        for (h, kind) in cases {
            assert_eq!(parse_authorization(ALG, h).unwrap_err().kind(), kind, "{h}");
        }
        let long = format!("{good}{}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(
            parse_authorization(ALG, &long).unwrap_err().kind(),
            ErrorKind::MalformedAuthorization
        );
        let extra = format!("{good}, Foo=bar");
        assert!(parse_authorization(ALG, &extra).is_err());
    }

    #[test]
    fn streamed_canonical_hash_matches_the_built_canonical_request() {
        let long_value = "v".repeat(3000);
        let long_query = format!("/a/b?z=1&{}=2&a=%41", "k".repeat(1500));
        for (target, value) in [
            ("/api/orders?limit=20&cursor=abc", "short"),
            ("/a/./b/../c?x", long_value.as_str()),
            (long_query.as_str(), "  folded   value "),
        ] {
            let request = Request::new("POST", target)
                .header("Host", "h")
                .header("x-long", value)
                .header("x-long", "second");
            let signed = ["host", "x-long"];
            for profile in [SigV4Profile::palisade(), SigV4Profile::aws4("r", "s")] {
                let built = profile.build_canonical(
                    &request,
                    request.query().unwrap_or(""),
                    "",
                    &[],
                    &signed,
                    "abc",
                );
                let streamed = profile.canonical_hash(
                    &request,
                    request.path_and_query(),
                    "",
                    &signed,
                    PayloadHash::Given("abc"),
                );
                assert_eq!(streamed, sha256(built.as_bytes()), "{target}");
            }
        }
    }

    #[test]
    fn redaction() {
        let c = "GET\n/\n\nhost:a\nx-amz-security-token:TOKEN\n\nhost;x-amz-security-token\nabc";
        let r = redact_canonical(c);
        assert!(!r.contains("TOKEN"));
        assert!(r.contains("x-amz-security-token:<redacted>"));
    }
}
