//! `palisade sign`: the headers that sign a request, for the `palisade`, `aws4` and
//! `rfc9421` profiles. Needs no data directory: everything comes from the arguments.

use std::io::Read;
use std::time::SystemTime;

use clap::{Args, ValueEnum};
use palisade_signing::{
    Request, Rfc9421Key, Rfc9421Signer, Secret, SigV4Profile, SigningCredential, content_digest,
};
use zeroize::Zeroizing;

/// Largest `--data` body.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Options of `palisade sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The access key id (RFC 9421: the `keyid`).
    #[arg(long, value_name = "ID")]
    access_key_id: String,
    /// Read the secret from standard input (one trailing newline is dropped).
    #[arg(
        long,
        required_unless_present = "private_key",
        conflicts_with = "private_key"
    )]
    secret_stdin: bool,
    /// Sign with a private key instead (`rfc9421` only): a PEM file, PKCS#8 for Ed25519
    /// or P-256 (`openssl genpkey`), or SEC1 for P-256, whose public key was registered
    /// with `credentials create --public-key`.
    #[arg(long, value_name = "FILE")]
    private_key: Option<std::path::PathBuf>,
    /// Which signature to produce.
    #[arg(long, value_enum, default_value_t = Profile::Palisade)]
    profile: Profile,
    /// AWS region (`aws4` only).
    #[arg(long, value_name = "R", default_value = "us-east-1")]
    region: String,
    /// AWS service (`aws4` only); `s3` applies S3's path rules and adds
    /// `X-Amz-Content-Sha256`.
    #[arg(long, value_name = "S", default_value = "execute-api")]
    service: String,
    /// Signing time (RFC 3339), to reproduce a signature; default now.
    #[arg(long, value_name = "RFC3339")]
    timestamp: Option<String>,
    /// The method, e.g. GET.
    method: String,
    /// The URL as it goes on the wire (already percent-encoded).
    url: String,
    /// A header to send and sign, `Name: value`.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// The body: a string, or `@FILE`.
    #[arg(long, value_name = "STRING|@FILE")]
    data: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    Palisade,
    Aws4,
    Rfc9421,
}

/// What `sign` signs with: the shared secret, or (RFC 9421) a private key.
pub(crate) enum SigningKey {
    Secret(Zeroizing<String>),
    Private(Box<Rfc9421Key>),
}

/// The key the arguments name: `--private-key`'s file, else the secret on standard input.
pub(crate) fn read_key(args: &SignArgs) -> Result<SigningKey, String> {
    let Some(path) = &args.private_key else {
        return read_secret_stdin().map(SigningKey::Secret);
    };
    let shown = path.display();
    if args.profile != Profile::Rfc9421 {
        return Err(format!(
            "--private-key {shown}: only with --profile rfc9421 (the palisade and aws4 profiles sign with the shared secret)"
        ));
    }
    let pem = read_pem_file("--private-key", path)?;
    Rfc9421Key::from_private_key_pem(&pem)
        .map(|key| SigningKey::Private(Box::new(key)))
        .map_err(|_| {
            format!(
                "--private-key {shown}: expected an unencrypted PEM private key (PKCS#8 or SEC1), Ed25519 or P-256"
            )
        })
}

/// A key file named by `option` (`--public-key`, `--private-key`): PEM text of at most
/// 16 KiB, wiped from memory when dropped (it may hold a private key).
pub(crate) fn read_pem_file(
    option: &str,
    path: &std::path::Path,
) -> Result<Zeroizing<String>, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|error| format!("{option} {shown}: {error}"))?;
    let mut pem = Zeroizing::new(String::new());
    file.take(16 * 1024 + 1)
        .read_to_string(&mut pem)
        .map_err(|_| format!("{option} {shown}: not a PEM text file"))?;
    if pem.len() > 16 * 1024 {
        return Err(format!("{option} {shown}: larger than 16 KiB"));
    }
    Ok(pem)
}

/// Computes the headers; each is `(name, value)`.
pub(crate) fn run(args: &SignArgs, key: SigningKey) -> Result<Vec<(String, String)>, String> {
    let now = match &args.timestamp {
        None => SystemTime::now(),
        Some(text) => SystemTime::from(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    "--timestamp: expected an RFC 3339 time, e.g. 2026-11-27T12:00:00Z".to_owned()
                })?,
        ),
    };
    let url = url::Url::parse(&args.url)
        .map_err(|_| "URL: expected an absolute http(s) URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("URL: expected an http or https URL".into());
    }
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err("URL: it has no host".into()),
    };
    // The target exactly as given on the command line (the signer encodes per profile).
    let target = wire_target(&args.url).ok_or("URL: cannot find the path")?;
    let body = read_body(args.data.as_deref())?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for raw in &args.headers {
        let (name, value) = raw
            .split_once(':')
            .ok_or_else(|| format!("-H {raw:?}: expected 'Name: value'"))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return Err(format!("-H {raw:?}: invalid header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let method = args.method.to_ascii_uppercase();
    match args.profile {
        Profile::Palisade | Profile::Aws4 => {
            let profile = if args.profile == Profile::Palisade {
                SigV4Profile::palisade()
            } else {
                SigV4Profile::aws4(&args.region, &args.service)
            };
            let mut request = Request::new(&method, &target)
                .scheme(url.scheme())
                .body(&body);
            request.push_header("host", &host);
            for (name, value) in &headers {
                request.push_header(name, value);
            }
            let SigningKey::Secret(secret) = &key else {
                return Err("--private-key: only with --profile rfc9421".into());
            };
            let credential = SigningCredential::new(
                &args.access_key_id,
                Secret::new(secret.as_bytes().to_vec()),
            );
            palisade_signing::sign(&profile, &credential, &request, now)
                .map_err(|error| format!("cannot sign: {}", error.detail()))
        }
        Profile::Rfc9421 => {
            let mut added = Vec::new();
            if !body.is_empty() {
                added.push(("Content-Digest".to_owned(), content_digest(&body)));
            }
            let mut request = Request::new(&method, &target)
                .scheme(url.scheme())
                .body(&body);
            request.push_header("host", &host);
            for (name, value) in headers.iter().chain(added.iter()) {
                request.push_header(name, value);
            }
            let key = match key {
                SigningKey::Secret(secret) => {
                    Rfc9421Key::HmacSha256(Secret::new(secret.as_bytes().to_vec()))
                }
                SigningKey::Private(key) => *key,
            };
            let mut signer = Rfc9421Signer::new(&args.access_key_id, key)
                .cover("@method")
                .cover("@authority")
                .cover("@path");
            if url.query().is_some() {
                signer = signer.cover("@query");
            }
            for (name, _) in &headers {
                signer = signer.cover(name.to_ascii_lowercase());
            }
            if !body.is_empty() {
                signer = signer.cover("content-digest");
            }
            // A random nonce keeps two signatures made in the same second apart (replay
            // protection); a fixed --timestamp asks for a reproducible signature instead.
            if args.timestamp.is_none() {
                signer = signer.nonce(uuid::Uuid::new_v4().simple().to_string());
            }
            let signature = signer
                .sign_request(&request, now)
                .map_err(|error| format!("cannot sign: {}", error.detail()))?;
            added.extend(signature);
            Ok(added)
        }
    }
}

/// The path and query of `url` as written (no re-encoding).
fn wire_target(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://")?.1;
    let target = match after_scheme.find(['/', '?']) {
        Some(at) => after_scheme.get(at..)?,
        None => "/",
    };
    let target = target.split('#').next()?;
    Some(if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_owned()
    })
}

fn read_body(data: Option<&str>) -> Result<Vec<u8>, String> {
    match data {
        None => Ok(Vec::new()),
        Some(text) => match text.strip_prefix('@') {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|error| format!("--data @{path}: {error}"))?;
                let mut body = Vec::new();
                file.take(MAX_BODY + 1)
                    .read_to_end(&mut body)
                    .map_err(|error| format!("--data @{path}: {error}"))?;
                if body.len() as u64 > MAX_BODY {
                    return Err(format!("--data @{path}: larger than 16 MiB"));
                }
                Ok(body)
            }
            None => Ok(text.as_bytes().to_vec()),
        },
    }
}

/// Reads a secret from standard input, dropping one trailing newline (`\n` or `\r\n`).
pub(crate) fn read_secret_stdin() -> Result<Zeroizing<String>, String> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|error| format!("standard input: {error}"))?;
    Ok(Zeroizing::new(strip_one_newline(&text).to_owned()))
}

fn strip_one_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn targets_are_taken_as_written() {
        assert_eq!(
            wire_target("https://h/a%20b?x=1+2&y").unwrap(),
            "/a%20b?x=1+2&y"
        );
        assert_eq!(wire_target("https://h").unwrap(), "/");
        assert_eq!(wire_target("https://h?q=1").unwrap(), "/?q=1");
        assert_eq!(wire_target("https://h:8080/p#frag").unwrap(), "/p");
    }

    #[test]
    fn one_newline_is_dropped() {
        assert_eq!(strip_one_newline("s3cret\n"), "s3cret");
        assert_eq!(strip_one_newline("s3cret\r\n"), "s3cret");
        assert_eq!(strip_one_newline("s3cret\n\n"), "s3cret\n");
        assert_eq!(strip_one_newline("s3cret"), "s3cret");
    }
}
