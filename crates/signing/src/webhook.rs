//! Webhook signatures: Standard Webhooks and the Stripe-style `t=..,v1=..` header.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::clock::unix_seconds;
use crate::credential::Secret;
use crate::encode::hex_lower;
use crate::error::{Error, ErrorKind, err};
use crate::sigv4::hmac_sha256;

const MAX_HEADER_LEN: usize = 4096;
const MAX_SIGNATURES: usize = 16;
/// The default tolerance between a webhook's timestamp and the receiver's clock.
pub const WEBHOOK_TOLERANCE: Duration = Duration::from_secs(300);

fn check_time(ts: &str, now: SystemTime, tolerance: Duration) -> Result<u64, Error> {
    if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            ErrorKind::InvalidRequest,
            "the webhook timestamp is not Unix seconds",
        ));
    }
    let ts: u64 = ts.parse().map_err(|_| {
        err(
            ErrorKind::InvalidRequest,
            "the webhook timestamp is not Unix seconds",
        )
    })?;
    if ts.abs_diff(unix_seconds(now)?) > tolerance.as_secs() {
        return Err(err(
            ErrorKind::RequestTimeTooSkewed,
            "the webhook timestamp is outside the tolerance",
        ));
    }
    Ok(ts)
}

fn header<'a>(headers: &[(&'a str, &'a str)], name: &str) -> Result<&'a str, Error> {
    let mut it = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let Some((_, v)) = it.next() else {
        return Err(err(ErrorKind::MissingHeader, "a webhook header is missing"));
    };
    if it.next().is_some() {
        return Err(err(
            ErrorKind::InvalidRequest,
            "a webhook header is repeated",
        ));
    }
    if v.len() > MAX_HEADER_LEN {
        return Err(err(
            ErrorKind::InvalidRequest,
            "a webhook header is too long",
        ));
    }
    Ok(v.trim())
}

/// Standard Webhooks (<https://www.standardwebhooks.com>): `webhook-id`,
/// `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`, over
/// `<id>.<timestamp>.<payload>`, with a `whsec_` base64 secret.
///
/// During secret rotation, hold several secrets: [`StandardWebhook::sign`] emits one
/// signature per secret (space-separated) and verification accepts any of them.
#[derive(Clone)]
pub struct StandardWebhook {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl StandardWebhook {
    /// A signer/verifier for one secret, `whsec_<base64>` (the prefix is optional).
    pub fn new(secret: &str) -> Result<Self, Error> {
        Ok(Self {
            secrets: vec![Self::decode(secret)?],
            tolerance: WEBHOOK_TOLERANCE,
        })
    }

    /// A fresh random `whsec_` secret (24 bytes), to show its owner once.
    pub fn generate_secret() -> String {
        use rand::RngCore as _;
        let mut bytes = zeroize::Zeroizing::new([0u8; 24]);
        rand::rng().fill_bytes(bytes.as_mut());
        format!("whsec_{}", STANDARD.encode(bytes.as_ref()))
    }

    fn decode(secret: &str) -> Result<Secret, Error> {
        let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
        let bytes = STANDARD
            .decode(b64)
            .map_err(|_| err(ErrorKind::InvalidKey, "a webhook secret is not base64"))?;
        if bytes.len() < 16 || bytes.len() > 64 {
            return Err(err(
                ErrorKind::InvalidKey,
                "a webhook secret must be 16 to 64 bytes",
            ));
        }
        Ok(Secret::new(bytes))
    }

    /// Adds a further secret (rotation).
    pub fn add_secret(mut self, secret: &str) -> Result<Self, Error> {
        self.secrets.push(Self::decode(secret)?);
        Ok(self)
    }

    /// Sets the tolerance (5 minutes by default).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    fn signature(secret: &Secret, id: &str, ts: u64, payload: &[u8]) -> [u8; 32] {
        let mut msg = Vec::with_capacity(id.len() + 16 + payload.len());
        msg.extend_from_slice(id.as_bytes());
        msg.push(b'.');
        msg.extend_from_slice(ts.to_string().as_bytes());
        msg.push(b'.');
        msg.extend_from_slice(payload);
        *hmac_sha256(secret.expose(), &msg)
    }

    /// The `webhook-signature` value: `v1,<base64>` per secret, space-separated.
    pub fn sign(&self, id: &str, timestamp: SystemTime, payload: &[u8]) -> Result<String, Error> {
        let ts = unix_seconds(timestamp)?;
        Ok(self
            .secrets
            .iter()
            .map(|s| {
                format!(
                    "v1,{}",
                    STANDARD.encode(Self::signature(s, id, ts, payload))
                )
            })
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// The three headers to send: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub fn headers(
        &self,
        id: &str,
        timestamp: SystemTime,
        payload: &[u8],
    ) -> Result<Vec<(String, String)>, Error> {
        Ok(vec![
            ("webhook-id".to_owned(), id.to_owned()),
            (
                "webhook-timestamp".to_owned(),
                unix_seconds(timestamp)?.to_string(),
            ),
            (
                "webhook-signature".to_owned(),
                self.sign(id, timestamp, payload)?,
            ),
        ])
    }

    /// Verifies a received webhook from its headers and raw payload.
    pub fn verify(
        &self,
        headers: &[(&str, &str)],
        payload: &[u8],
        now: SystemTime,
    ) -> Result<(), Error> {
        let id = header(headers, "webhook-id")?;
        let ts = header(headers, "webhook-timestamp")?;
        let sigs = header(headers, "webhook-signature")?;
        if id.is_empty() || id.len() > 256 {
            return Err(err(
                ErrorKind::InvalidRequest,
                "webhook-id is empty or too long",
            ));
        }
        let ts = check_time(ts, now, self.tolerance)?;
        let expected: Vec<[u8; 32]> = self
            .secrets
            .iter()
            .map(|s| Self::signature(s, id, ts, payload))
            .collect();
        let mut ok = false;
        for (i, entry) in sigs.split(' ').filter(|e| !e.is_empty()).enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(err(
                    ErrorKind::MalformedAuthorization,
                    "too many webhook signatures",
                ));
            }
            let Some(("v1", b64)) = entry.split_once(',') else {
                continue;
            };
            let Ok(given) = STANDARD.decode(b64) else {
                continue;
            };
            for e in &expected {
                ok |= bool::from(e.as_slice().ct_eq(given.as_slice()));
            }
        }
        if ok {
            Ok(())
        } else {
            Err(err(
                ErrorKind::SignatureMismatch,
                "no webhook signature matches",
            ))
        }
    }
}

impl fmt::Debug for StandardWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StandardWebhook({} secrets, <redacted>)",
            self.secrets.len()
        )
    }
}

/// The Stripe-style header `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`,
/// the secret used as raw bytes, 5 minutes of tolerance. Several `v1` entries (rotation)
/// are accepted; other schemes (`v0`) are ignored.
#[derive(Clone)]
pub struct StripeWebhook {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl StripeWebhook {
    /// A signer/verifier for one secret (its bytes as given, `whsec_` included).
    pub fn new(secret: &str) -> Self {
        Self {
            secrets: vec![Secret::from(secret)],
            tolerance: WEBHOOK_TOLERANCE,
        }
    }

    /// Adds a further secret (rotation).
    #[must_use]
    pub fn add_secret(mut self, secret: &str) -> Self {
        self.secrets.push(Secret::from(secret));
        self
    }

    /// Sets the tolerance (5 minutes by default).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    fn signature(secret: &Secret, ts: u64, payload: &[u8]) -> [u8; 32] {
        let mut msg = ts.to_string().into_bytes();
        msg.push(b'.');
        msg.extend_from_slice(payload);
        *hmac_sha256(secret.expose(), &msg)
    }

    /// The `Stripe-Signature` header value.
    pub fn sign(&self, timestamp: SystemTime, payload: &[u8]) -> Result<String, Error> {
        let ts = unix_seconds(timestamp)?;
        let mut out = format!("t={ts}");
        for s in &self.secrets {
            out.push_str(",v1=");
            out.push_str(&hex_lower(&Self::signature(s, ts, payload)));
        }
        Ok(out)
    }

    /// Verifies a `Stripe-Signature` header value against the raw payload.
    pub fn verify(&self, header: &str, payload: &[u8], now: SystemTime) -> Result<(), Error> {
        if header.len() > MAX_HEADER_LEN {
            return Err(err(
                ErrorKind::MalformedAuthorization,
                "the signature header is too long",
            ));
        }
        let mut ts = None;
        let mut given: Vec<[u8; 32]> = Vec::new();
        for part in header.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else {
                return Err(err(ErrorKind::MalformedAuthorization, "a part has no '='"));
            };
            match k {
                "t" => {
                    if ts.is_some() {
                        return Err(err(ErrorKind::MalformedAuthorization, "t is repeated"));
                    }
                    ts = Some(v);
                }
                "v1" => {
                    if given.len() >= MAX_SIGNATURES {
                        return Err(err(
                            ErrorKind::MalformedAuthorization,
                            "too many signatures",
                        ));
                    }
                    let mut sig = [0u8; 32];
                    if hex::decode_to_slice(v, &mut sig).is_ok() {
                        given.push(sig);
                    }
                }
                _ => {}
            }
        }
        let ts = ts.ok_or_else(|| err(ErrorKind::MalformedAuthorization, "t is missing"))?;
        let ts = check_time(ts, now, self.tolerance)?;
        if given.is_empty() {
            return Err(err(ErrorKind::MissingSignature, "no v1 signature"));
        }
        let mut ok = false;
        for s in &self.secrets {
            let expected = Self::signature(s, ts, payload);
            for g in &given {
                ok |= bool::from(expected.ct_eq(g));
            }
        }
        if ok {
            Ok(())
        } else {
            Err(err(ErrorKind::SignatureMismatch, "no v1 signature matches"))
        }
    }
}

impl fmt::Debug for StripeWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StripeWebhook({} secrets, <redacted>)",
            self.secrets.len()
        )
    }
}
