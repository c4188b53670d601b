//! `palisade sign`: its `aws4` profile against the AWS SDK's own signer (the `aws-sigv4`
//! crate) for the same request, credentials, region, service and time; its `palisade`
//! and `rfc9421` output against a running server.

#![allow(clippy::unwrap_used)]

mod harness;

use std::collections::BTreeMap;
use std::time::SystemTime;

use harness::{
    ED25519_PUBLIC_PEM, ED25519_SEED, P256_PUBLIC_PEM, P256_SCALAR, Palisade, http_client,
    loopback_source, order_body, rfc9421_headers, rfc9421_headers_with,
};
use sha2::{Digest, Sha256};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TIMESTAMP: &str = "2026-11-27T12:00:00Z";

fn signing_time() -> SystemTime {
    SystemTime::from(time::macros::datetime!(2026-11-27 12:00:00 UTC))
}

/// One request to sign.
struct Case<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a str,
    region: &'a str,
    service: &'a str,
}

/// `palisade sign --profile aws4 --json ...`: header name (lower case) to value.
fn cli_sign(case: &Case<'_>, profile: &str, extra: &[&str]) -> BTreeMap<String, String> {
    let mut args = vec![
        "sign",
        "--profile",
        profile,
        "--access-key-id",
        AKID,
        "--secret-stdin",
    ];
    args.extend_from_slice(extra);
    let header_args: Vec<String> = case
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    for header in &header_args {
        args.extend_from_slice(&["-H", header]);
    }
    if !case.body.is_empty() {
        args.extend_from_slice(&["--data", case.body]);
    }
    args.extend_from_slice(&[case.method, case.url]);
    // The CLI needs no data directory for `sign`; give it an empty one anyway.
    let dir = tempfile::tempdir().unwrap();
    let signed = Palisade::new(dir.path()).json_stdin(&args, Some(&format!("{SECRET}\n")));
    signed
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn cli_aws4(case: &Case<'_>) -> BTreeMap<String, String> {
    cli_sign(
        case,
        "aws4",
        &[
            "--region",
            case.region,
            "--service",
            case.service,
            "--timestamp",
            TIMESTAMP,
        ],
    )
}

/// What the `aws-sigv4` crate adds to the same request (the settings the AWS SDKs use:
/// S3's for `s3`, the defaults elsewhere).
fn sdk_aws4(case: &Case<'_>) -> BTreeMap<String, String> {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    use aws_sigv4::sign::v4;
    let identity = Credentials::new(AKID, SECRET, None, None, "test").into();
    let mut settings = SigningSettings::default();
    if case.service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(case.region)
        .name(case.service)
        .time(signing_time())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        case.method,
        case.url,
        case.headers.iter().copied(),
        SignableBody::Bytes(case.body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| (h.name().to_ascii_lowercase(), h.value().to_owned()))
        .collect()
}

fn assert_same(case: &Case<'_>) -> BTreeMap<String, String> {
    let ours = cli_aws4(case);
    let theirs = sdk_aws4(case);
    assert_eq!(
        ours, theirs,
        "{} {} ({}): palisade sign differs from aws-sigv4",
        case.method, case.url, case.service
    );
    assert!(
        ours["authorization"].starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/20261127/{}/{}/aws4_request, SignedHeaders=",
            case.region, case.service
        )),
        "{ours:?}"
    );
    assert_eq!(ours["x-amz-date"], "20261127T120000Z");
    ours
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn aws4_get_with_a_query_matches_the_aws_sdk() {
    let ours = assert_same(&Case {
        method: "GET",
        url: "https://api.example.com/api/orders?limit=20&cursor=abc%2Fdef&a=1&empty=",
        headers: &[("X-Request-Id", "0f3c2b1a")],
        body: "",
        region: "us-east-1",
        service: "execute-api",
    });
    assert!(
        ours["authorization"].contains("SignedHeaders=host;x-amz-date;x-request-id,"),
        "{ours:?}"
    );
    assert!(
        !ours.contains_key("x-amz-content-sha256"),
        "only S3 adds X-Amz-Content-Sha256: {ours:?}"
    );
    // Path rules outside S3: dot segments removed, the path encoded once more.
    assert_same(&Case {
        method: "GET",
        url: "https://api.example.com/v1/caf%C3%A9/my%20orders/./x/../items?b=2&a=1",
        headers: &[],
        body: "",
        region: "eu-west-1",
        service: "execute-api",
    });
    // A host with a port.
    assert_same(&Case {
        method: "GET",
        url: "http://localhost:8080/api/orders",
        headers: &[],
        body: "",
        region: "us-east-1",
        service: "execute-api",
    });
}

#[test]
fn aws4_post_with_a_body_matches_the_aws_sdk() {
    let body = r#"{"items":[{"product_id":"prod_abc","quantity":1}]}"#;
    let ours = assert_same(&Case {
        method: "POST",
        url: "https://api.example.com/api/orders",
        headers: &[
            ("Content-Type", "application/json"),
            // Neither botocore nor the SDKs sign it; the CLI must not either.
            ("User-Agent", "integration-test/1.0"),
        ],
        body,
        region: "eu-west-1",
        service: "execute-api",
    });
    assert!(
        ours["authorization"].contains("SignedHeaders=content-type;host;x-amz-date,"),
        "{ours:?}"
    );
    // The body is covered: another body, another signature.
    let other = cli_aws4(&Case {
        method: "POST",
        url: "https://api.example.com/api/orders",
        headers: &[("Content-Type", "application/json")],
        body: "{}",
        region: "eu-west-1",
        service: "execute-api",
    });
    assert_ne!(ours["authorization"], other["authorization"]);
}

#[test]
fn aws4_s3_adds_the_content_hash_and_keeps_the_path() {
    let body = "hello, bucket\n";
    let ours = assert_same(&Case {
        method: "PUT",
        url: "https://examplebucket.s3.amazonaws.com/photos//2026/./my%20file.jpg",
        headers: &[("Content-Type", "image/jpeg")],
        body,
        region: "us-east-1",
        service: "s3",
    });
    assert_eq!(ours["x-amz-content-sha256"], sha256_hex(body.as_bytes()));
    assert!(
        ours["authorization"]
            .contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,"),
        "{ours:?}"
    );
    let listed = assert_same(&Case {
        method: "GET",
        url: "https://examplebucket.s3.amazonaws.com/?list-type=2&prefix=photos%2F2026",
        headers: &[],
        body: "",
        region: "us-east-1",
        service: "s3",
    });
    assert_eq!(listed["x-amz-content-sha256"], sha256_hex(b""));
    // The same path under another service is normalized and encoded again: the S3 rules
    // really apply only to S3.
    let elsewhere = cli_aws4(&Case {
        method: "PUT",
        url: "https://examplebucket.s3.amazonaws.com/photos//2026/./my%20file.jpg",
        headers: &[("Content-Type", "image/jpeg")],
        body,
        region: "us-east-1",
        service: "execute-api",
    });
    assert!(!elsewhere.contains_key("x-amz-content-sha256"));
}

#[test]
fn text_output_matches_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Palisade::new(dir.path());
    let args = [
        "sign",
        "--profile",
        "aws4",
        "--access-key-id",
        AKID,
        "--secret-stdin",
        "--timestamp",
        TIMESTAMP,
        "GET",
        "https://api.example.com/api/orders?limit=1",
    ];
    let json = cli.json_stdin(&args, Some(SECRET));
    let output = cli.run(&args, Some(SECRET), false);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<String> = json
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.as_str().unwrap()))
        .collect();
    let mut printed: Vec<&str> = text.lines().collect();
    let mut expected: Vec<&str> = lines.iter().map(String::as_str).collect();
    printed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(printed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn palisade_and_rfc9421_signatures_from_the_cli_are_accepted_by_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Palisade::new(dir.path().join("data"));
    let (access_key_id, secret) = cli.create_credential("alice", "orders:read,orders:write");
    let server = cli.serve();
    let client = http_client(loopback_source());
    let sign = |profile: &str, method: &str, url: &str, headers: &[&str], body: Option<&str>| {
        let mut args = vec![
            "sign",
            "--profile",
            profile,
            "--access-key-id",
            &access_key_id,
            "--secret-stdin",
        ];
        for header in headers {
            args.extend_from_slice(&["-H", header]);
        }
        if let Some(body) = body {
            args.extend_from_slice(&["--data", body]);
        }
        args.extend_from_slice(&[method, url]);
        cli.json_stdin(&args, Some(&format!("{secret}\n")))
    };
    let send =
        |method: reqwest::Method, url: &str, signed: &serde_json::Value, body: Option<&str>| {
            let mut request = client.request(method, url);
            for (name, value) in signed.as_object().unwrap() {
                request = request.header(name, value.as_str().unwrap());
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_owned());
            }
            request.send()
        };

    // palisade profile: a write with a body, then a read with a query.
    let body = serde_json::to_string(&order_body()).unwrap();
    let url = format!("{}/api/orders", server.url);
    let signed = sign(
        "palisade",
        "POST",
        &url,
        &["Content-Type: application/json"],
        Some(&body),
    );
    assert!(
        signed["Authorization"]
            .as_str()
            .unwrap()
            .starts_with(&format!("PALISADE-HMAC-SHA256 Credential={access_key_id}/")),
        "{signed}"
    );
    assert!(signed.get("X-Palisade-Date").is_some(), "{signed}");
    let response = send(reqwest::Method::POST, &url, &signed, Some(&body))
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let order: serde_json::Value = response.json().await.unwrap();

    let url = format!("{}/api/orders?limit=5", server.url);
    let signed = sign("palisade", "GET", &url, &[], None);
    let response = send(reqwest::Method::GET, &url, &signed, None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page: serde_json::Value = response.json().await.unwrap();
    assert_eq!(page["orders"][0]["id"], order["id"], "{page}");
    // The same signature a second time is a replay.
    let replayed = send(reqwest::Method::GET, &url, &signed, None)
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);

    // A signature over one request does not authorize another.
    let other = format!("{}/api/orders?limit=6", server.url);
    let signed = sign("palisade", "GET", &url, &[], None);
    let response = send(reqwest::Method::GET, &other, &signed, None)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // rfc9421 profile: a read with a query and a write with a body.
    let url = format!("{}/api/orders?limit=3", server.url);
    let signed = sign("rfc9421", "GET", &url, &[], None);
    assert!(signed.get("Signature-Input").is_some(), "{signed}");
    let response = send(reqwest::Method::GET, &url, &signed, None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let url = format!("{}/api/orders", server.url);
    let signed = sign(
        "rfc9421",
        "POST",
        &url,
        &["Content-Type: application/json"],
        Some(&body),
    );
    let response = send(reqwest::Method::POST, &url, &signed, Some(&body))
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_credentials_verify_ed25519_and_p256_signatures() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use palisade_signing::{Rfc9421Key, Secret};

    let dir = tempfile::tempdir().unwrap();
    let cli = Palisade::new(dir.path().join("data"));
    let create = |pem: &str| cli.public_key_credential("alice", "orders:read,orders:write", pem);
    let ed = create(ED25519_PUBLIC_PEM);
    assert_eq!(ed["algorithm"], "ed25519", "{ed}");
    assert!(
        ed.get("secret").is_none(),
        "no secret for a public key: {ed}"
    );
    let ec = create(P256_PUBLIC_PEM);
    assert_eq!(ec["algorithm"], "ecdsa-p256-sha256", "{ec}");
    let (ed_id, ec_id) = (
        ed["access_key_id"].as_str().unwrap().to_owned(),
        ec["access_key_id"].as_str().unwrap().to_owned(),
    );

    // Not a public key: a clear error, nothing created.
    let output = cli.create_public_key_credential(
        "alice",
        "orders:read",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n-----END PRIVATE KEY-----\n",
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected a PEM public key"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = cli.json(&["credentials", "list"]);
    let mut algorithms: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["algorithm"].as_str().unwrap())
        .collect();
    algorithms.sort_unstable();
    assert_eq!(algorithms, ["ecdsa-p256-sha256", "ed25519"], "{listed}");

    let server = cli.serve();
    let client = http_client(loopback_source());
    let send =
        |method: reqwest::Method, url: String, headers: Vec<(String, String)>, body: Vec<u8>| {
            let mut request = client.request(method, url).body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.send()
        };
    let ed_key =
        || Rfc9421Key::ed25519_from_seed(&URL_SAFE_NO_PAD.decode(ED25519_SEED).unwrap()).unwrap();
    let ec_key = || {
        Rfc9421Key::ecdsa_p256_from_scalar(&URL_SAFE_NO_PAD.decode(P256_SCALAR).unwrap()).unwrap()
    };

    // Ed25519: a write with a body, then a read with a query.
    let body = serde_json::to_vec(&order_body()).unwrap();
    let url = format!("{}/api/orders", server.url);
    let headers = rfc9421_headers(&ed_id, ed_key(), "POST", &url, &body);
    let response = send(reqwest::Method::POST, url.clone(), headers, body.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let list = format!("{}/api/orders?limit=5", server.url);
    let headers = rfc9421_headers(&ed_id, ed_key(), "GET", &list, b"");
    let response = send(reqwest::Method::GET, list.clone(), headers, vec![])
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    // `palisade sign --private-key` with the same key (PKCS#8, as `openssl genpkey` writes).
    let private = dir.path().join("ed25519.key");
    std::fs::write(
        &private,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let private = private.to_str().unwrap();
    let from_cli = cli.json(&[
        "sign",
        "--profile",
        "rfc9421",
        "--access-key-id",
        &ed_id,
        "--private-key",
        private,
        "GET",
        &list,
    ]);
    assert!(
        from_cli["Signature-Input"]
            .as_str()
            .unwrap()
            .contains("alg=\"ed25519\""),
        "{from_cli}"
    );
    let headers: Vec<(String, String)> = from_cli
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    let response = send(reqwest::Method::GET, list.clone(), headers, vec![])
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let output = cli.run(
        &[
            "sign",
            "--access-key-id",
            &ed_id,
            "--private-key",
            private,
            "GET",
            &list,
        ],
        None,
        false,
    );
    assert!(
        !output.status.success(),
        "a private key with the palisade profile"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("only with --profile rfc9421"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // P-256.
    let headers = rfc9421_headers(&ec_id, ec_key(), "POST", &url, &body);
    let response = send(reqwest::Method::POST, url.clone(), headers, body.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);

    // The wrong private key, another algorithm than the credential's, an HMAC keyed
    // with the PEM text, or (algorithm confusion) an HMAC keyed with the public key's own
    // 32 bytes with the `alg` parameter left out, so that only the credential's key type
    // decides: each refused.
    let palisade_signing::KeyMaterial::Ed25519(public) = ed_key().verifying_key() else {
        unreachable!("an Ed25519 key")
    };
    let hmac = |key: Vec<u8>| Rfc9421Key::HmacSha256(Secret::new(key));
    let refused = [
        rfc9421_headers(&ed_id, ec_key(), "GET", &list, b""),
        rfc9421_headers(
            &ed_id,
            Rfc9421Key::ed25519_from_seed(&[7u8; 32]).unwrap(),
            "GET",
            &list,
            b"",
        ),
        rfc9421_headers(&ed_id, hmac(ED25519_PUBLIC_PEM.into()), "GET", &list, b""),
        rfc9421_headers_with(&ed_id, hmac(public.to_vec()), "GET", &list, b"", false),
    ];
    for (case, headers) in refused.into_iter().enumerate() {
        let response = send(reqwest::Method::GET, list.clone(), headers, vec![])
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "case {case}");
    }
}
