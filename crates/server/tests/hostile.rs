//! The hostile-client suite (issue 12): what an attacker can send the running reference
//! server, and what it must get back. Every refusal is a 4xx (never a 500), 401s carry a
//! `WWW-Authenticate` challenge and a problem document, and no answer nor log line ever
//! holds a secret that was sent or stored.
//!
//! The abuse layer locks an address out after five failed authentications, and
//! anonymous requests are limited per address; so every attempt that is meant to fail
//! authentication comes from a loopback address of its own (`127.20.x.y`, see
//! [`attacker`]), and what is checked is the refusal of the credential itself.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{
    ApiKey, Credential, Profile, Resp, Server, basic, order_body, pkce, sign_request, with_headers,
};
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const REDIRECT: &str = "https://client.example/callback";
const PASSWORD: &str = "correct horse battery staple";

/// A server on the defaults except a generous default rate-limit plan.
fn busy_server() -> Server {
    Server::builder()
        .env("PALISADE_RATELIMIT__DEFAULT_PLAN", "enterprise")
        .start()
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

static NEXT_ADDRESS: AtomicU32 = AtomicU32::new(0);

/// A loopback address no other attempt of this run used: 127.20.0.1, 127.20.0.2, ...
fn fresh_address() -> IpAddr {
    let n = NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed);
    let octet = |value: u32| u8::try_from(value).unwrap();
    IpAddr::V4(Ipv4Addr::new(
        127,
        octet(20 + (n / 62_500) % 200),
        octet((n / 250) % 250),
        octet(n % 250 + 1),
    ))
}

/// An HTTP client on a fresh loopback address: its failures lock out nobody else, and
/// nothing it did before (there is no before) can explain its answers.
fn attacker() -> reqwest::Client {
    client_from(fresh_address())
}

fn client_from(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// Headers that may hold any bytes (non-ASCII included).
type RawHeaders = Vec<(String, Vec<u8>)>;

fn raw_headers(headers: &[(String, String)]) -> RawHeaders {
    headers
        .iter()
        .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
        .collect()
}

/// Replaces (or, with `None`, removes) every header called `name`; adds it when absent.
fn set_header(headers: &RawHeaders, name: &str, value: Option<&[u8]>) -> RawHeaders {
    let mut out: RawHeaders = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    if let Some(value) = value {
        out.push((name.to_owned(), value.to_vec()));
    }
    out
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

/// Sends `method url` with these headers and body from a fresh address.
async fn attack(
    server: &Server,
    method: Method,
    url: &str,
    headers: &RawHeaders,
    body: Vec<u8>,
) -> Resp {
    let mut request = attacker().request(method, url);
    for (name, value) in headers {
        request = request.header(name.as_str(), HeaderValue::from_bytes(value).unwrap());
    }
    server.send(request.body(body)).await
}

/// Sends a request whose body the server may refuse before reading all of it, and
/// records the answer. `None`: the server answered and closed the connection while the
/// body was still being sent, so the client saw a broken pipe instead of the status (a
/// refusal too; hyper does not drain a large unread body).
async fn send_oversized(server: &Server, request: reqwest::RequestBuilder) -> Option<Resp> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            eprintln!("the server closed the connection while the body was sent: {error}");
            return None;
        }
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    let mut recorded = String::new();
    for (name, value) in &headers {
        recorded.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    recorded.push_str(&body);
    let id = server.record_raw(&recorded);
    Some(Resp {
        id,
        status,
        headers,
        body,
    })
}

/// A refusal of a credential: 401 (or 400 for a request the server calls malformed), a
/// problem document, a challenge on the 401, never a 5xx.
#[track_caller]
fn assert_refused(answer: &Resp, case: &str) {
    assert!(
        matches!(answer.status, 400 | 401),
        "{case}: expected 401 (or 400), got {}: {}",
        answer.status,
        answer.body
    );
    assert_eq!(
        answer.content_type(),
        "application/problem+json",
        "{case}: {}",
        answer.body
    );
    assert_eq!(answer.json()["status"], answer.status, "{case}");
    if answer.status == 401 {
        assert!(
            answer.header("www-authenticate").is_some(),
            "{case}: a 401 without a challenge"
        );
    }
}

/// A refused bearer token: exactly 401, `WWW-Authenticate: Bearer ...
/// error="invalid_token"`, a problem document.
#[track_caller]
fn assert_invalid_token(answer: &Resp, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {}", answer.body);
    assert_eq!(
        answer.content_type(),
        "application/problem+json",
        "{case}: {}",
        answer.body
    );
    assert_eq!(answer.json()["status"], 401, "{case}");
    let challenge = answer
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{case}: no WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{case}: challenge {challenge:?}"
    );
}

/// Registers what the server stores in its data directory as secrets that no answer and
/// no log line may contain: the request-signing master key and the JWT private keys,
/// plus the SHA-256 of each API key given (the form a store keeps).
fn register_stored_secrets(server: &Server, keys: &[&ApiKey]) {
    let dir = server.data_dir();
    let master = std::fs::read(dir.join("signing-master.key")).unwrap();
    server.secret(&to_hex(&master));
    server.secret(&STANDARD.encode(&master));
    server.secret(&URL_SAFE_NO_PAD.encode(&master));
    for entry in std::fs::read_dir(dir.join("keys")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pem") {
            let pem = std::fs::read_to_string(&path).unwrap();
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            server.secret(&body);
            for line in pem
                .lines()
                .filter(|l| l.len() >= 32 && !l.starts_with("-----"))
            {
                server.secret(line);
            }
        }
    }
    for key in keys {
        for input in [key.key.as_str(), key.key.trim_start_matches("pk_")] {
            server.secret(&to_hex(Sha256::digest(input.as_bytes())));
        }
    }
}

/// Sends raw bytes over TCP from `local` (if any); returns what came back until the
/// server closed the connection or `timeout` passed, and records it for the leak check.
async fn raw_exchange(
    server: &Server,
    local: Option<IpAddr>,
    request: &[u8],
    timeout: Duration,
) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(address) = local {
        socket.bind(SocketAddr::new(address, 0)).unwrap();
    }
    let mut stream = socket.connect(server.addr).await.unwrap();
    // The server may answer (and close) before it read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(timeout, stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    server.record_raw(&text);
    text
}

/// The status of a raw HTTP/1.1 answer.
fn raw_status(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The header section of a raw answer, lines split.
fn raw_header_lines(answer: &str) -> Vec<&str> {
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .split("\r\n")
        .collect()
}

fn raw_has_header(answer: &str, name: &str) -> bool {
    raw_header_lines(answer).iter().skip(1).any(|line| {
        line.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    })
}

fn to_hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// The JWT attack catalogue
// ---------------------------------------------------------------------------------------

/// `header.claims.signature` over the JSON texts as given (so that duplicate members can
/// be written), signed by `key`.
fn jws(key: &palisade_jwt::SigningKey, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

/// The server's own signing key, read from its data directory: tokens it signs differ
/// from genuine ones only in what a case changes, so each refusal below is due to that
/// change and not to a bad signature.
fn server_signing_key(server: &Server, kid: &str) -> palisade_jwt::SigningKey {
    let pem =
        std::fs::read_to_string(server.data_dir().join("keys").join(format!("{kid}.pem"))).unwrap();
    palisade_jwt::SigningKey::from_pkcs8_pem(kid, palisade_jwt::Algorithm::ES256, &pem).unwrap()
}

/// The SubjectPublicKeyInfo (DER) of a P-256 public key given as JWK `x` and `y`.
fn p256_spki(jwk: &Value) -> Vec<u8> {
    let coordinate = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0x04 || x || y) }
    let mut der = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    der.push(4);
    der.extend(coordinate("x"));
    der.extend(coordinate("y"));
    der
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn the_jwt_attack_catalogue_is_refused() {
    let server = busy_server();
    let cli = server.cli();
    let client = cli.create_client("app", "orders:read", &["client_credentials"], &[]);
    let genuine = server
        .client_credentials(&client, Some("orders:read"))
        .await;
    let api = server.url("/api/orders");
    let bearer = |token: &str| {
        let server = &server;
        let api = &api;
        let value = format!("Bearer {token}").into_bytes();
        async move {
            attack(
                server,
                Method::GET,
                api,
                &vec![("Authorization".to_owned(), value)],
                Vec::new(),
            )
            .await
        }
    };

    // The genuine token's parts.
    let segments: Vec<&str> = genuine.split('.').collect();
    assert_eq!(segments.len(), 3);
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[0]).unwrap()).unwrap();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let key = server_signing_key(&server, &kid);
    register_stored_secrets(&server, &[]);
    let jwks = server.get("/.well-known/jwks.json").await.json();
    let public_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();

    let now = unix_now();
    let header_text = |changes: &dyn Fn(&mut Value)| {
        let mut h = header.clone();
        changes(&mut h);
        h.to_string()
    };
    let claims_text = |changes: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        changes(&mut c);
        c.to_string()
    };
    let unchanged = |_: &mut Value| {};
    let signed_claims =
        |changes: &dyn Fn(&mut Value)| jws(&key, &header.to_string(), &claims_text(changes));
    let signed_header =
        |changes: &dyn Fn(&mut Value)| jws(&key, &header_text(changes), &claims.to_string());

    // Controls: the genuine token, the same claims re-signed with the server's key, and
    // `typ: application/at+jwt` (RFC 9068 §4 allows both spellings) are accepted, so the
    // refusals below are the cases' doing.
    bearer(&genuine).await.expect(200);
    bearer(&signed_claims(&unchanged)).await.expect(200);
    bearer(&signed_header(&|h| h["typ"] = json!("application/at+jwt")))
        .await
        .expect(200);

    let mut cases: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, token: String| cases.push((name.to_owned(), token));

    // alg none, in every spelling, unsigned and with the genuine signature.
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = header_text(&|h| h["alg"] = json!(none));
        let unsigned = format!("{}.{}.", b64(&h), segments[1]);
        add(&format!("alg {none}, no signature"), unsigned.clone());
        add(
            &format!("alg {none}, genuine signature"),
            format!("{unsigned}{}", segments[2]),
        );
        let mut no_kid = header.clone();
        no_kid["alg"] = json!(none);
        no_kid.as_object_mut().unwrap().remove("kid");
        add(
            &format!("alg {none}, no kid"),
            format!("{}.{}.", b64(no_kid.to_string()), segments[1]),
        );
    }

    // Key confusion: HS256 with the server's public key, in every form an attacker
    // might guess the verifier feeds to HMAC.
    let spki = p256_spki(&public_jwk);
    let spki_pem = pem("PUBLIC KEY", &spki);
    let point = spki.get(spki.len() - 65..).unwrap().to_vec();
    let public_secrets: Vec<(&str, Vec<u8>)> = vec![
        ("PEM", spki_pem.clone().into_bytes()),
        (
            "PEM without newline",
            spki_pem.trim_end().as_bytes().to_vec(),
        ),
        ("SPKI DER", spki.clone()),
        ("JWK JSON", public_jwk.to_string().into_bytes()),
        ("JWKS JSON", jwks.to_string().into_bytes()),
        ("EC point", point.clone()),
        ("x||y", point.get(1..).unwrap().to_vec()),
    ];
    for (form, secret) in &public_secrets {
        let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        jwt_header.typ = Some("at+jwt".to_owned());
        jwt_header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(
            &jwt_header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap();
        add(&format!("HS256 keyed with the public key ({form})"), token);
    }

    // Another ES256 key, presenting the server's kid (and an embedded jwk of its own).
    let rogue = palisade_jwt::SigningKey::generate(palisade_jwt::Algorithm::ES256).unwrap();
    let rogue_pem = rogue.to_pkcs8_pem().unwrap();
    let rogue_der: String = rogue_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let rogue_encoding =
        jsonwebtoken::EncodingKey::from_ec_der(&STANDARD.decode(rogue_der).unwrap());
    let mut rogue_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    rogue_header.typ = Some("at+jwt".to_owned());
    rogue_header.kid = Some(kid.clone());
    add(
        "ES256 signed by another key with the server's kid",
        jsonwebtoken::encode(&rogue_header, &claims, &rogue_encoding).unwrap(),
    );
    let rogue_jwk = rogue.verifying_key().to_jwk().unwrap();
    rogue_header.jwk = Some(serde_json::from_value(rogue_jwk.clone()).unwrap());
    add(
        "jwk header with the attacker's own key",
        jsonwebtoken::encode(&rogue_header, &claims, &rogue_encoding).unwrap(),
    );
    rogue_header.jwk = None;
    rogue_header.kid = Some(rogue.kid().to_owned());
    add(
        "ES256 signed by another key with its own kid",
        jsonwebtoken::encode(&rogue_header, &claims, &rogue_encoding).unwrap(),
    );
    // A psychic signature (CVE-2022-21449): r = s = 0.
    add(
        "all-zero ECDSA signature",
        format!("{}.{}.{}", segments[0], segments[1], b64([0u8; 64])),
    );

    // kid: unknown, traversal, SQL, and odd shapes, each signed with the real key.
    for bad_kid in [
        json!("unknown-kid"),
        json!(format!("../keys/{kid}")),
        json!("../../../../../../etc/passwd"),
        json!("/dev/null"),
        json!(format!("{kid}/../{kid}")),
        json!(format!("{kid}.pem")),
        json!("' OR '1'='1"),
        json!(format!("{kid}' OR '1'='1")),
        json!("1; DROP TABLE apikey_keys; --"),
        json!(format!("{kid}\u{0}")),
        json!(""),
        json!("k".repeat(2000)),
        json!(null),
        json!(7),
        json!([kid.clone()]),
    ] {
        add(
            &format!("kid {bad_kid}"),
            signed_header(&|h| h["kid"] = bad_kid.clone()),
        );
    }
    // No kid at all: the key set picks its only key (by design, palisade-jwt's
    // `KeySet::select`), so a kid-less token must still carry that key's signature.
    let mut no_kid = header.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    add(
        "no kid, signed by another key",
        jws(&rogue, &no_kid.to_string(), &claims.to_string()),
    );

    // Embedded-key and external-key headers, even with a valid signature.
    add(
        "jku",
        signed_header(&|h| h["jku"] = json!("https://attacker.example/jwks.json")),
    );
    add(
        "x5u",
        signed_header(&|h| h["x5u"] = json!("https://attacker.example/cert.pem")),
    );
    add(
        "jwk (the server's own public key)",
        signed_header(&|h| h["jwk"] = public_jwk.clone()),
    );
    add(
        "x5c",
        signed_header(&|h| h["x5c"] = json!([STANDARD.encode(&spki)])),
    );
    add("crit exp", signed_header(&|h| h["crit"] = json!(["exp"])));
    add(
        "crit b64",
        signed_header(&|h| {
            h["crit"] = json!(["b64"]);
            h["b64"] = json!(false);
        }),
    );
    add("crit empty", signed_header(&|h| h["crit"] = json!([])));

    // typ other than at+jwt.
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("id+jwt"),
        json!("at+jwt2"),
        json!(""),
        json!(null),
        json!(1),
    ] {
        add(
            &format!("typ {typ}"),
            signed_header(&|h| h["typ"] = typ.clone()),
        );
    }
    let mut no_typ = header.clone();
    no_typ.as_object_mut().unwrap().remove("typ");
    add(
        "no typ",
        jws(&key, &no_typ.to_string(), &claims.to_string()),
    );

    // alg other than the key's.
    for alg in [
        "ES384", "ES512", "RS256", "PS256", "EdDSA", "HS256", "es256", "",
    ] {
        add(
            &format!("alg {alg} with the ES256 signature"),
            signed_header(&|h| h["alg"] = json!(alg)),
        );
    }

    // Time claims (beyond the 30 s leeway).
    add(
        "expired",
        signed_claims(&|c| {
            c["exp"] = json!(now - 120);
            c["iat"] = json!(now - 1200);
            c["nbf"] = json!(now - 1200);
        }),
    );
    add(
        "nbf in the future",
        signed_claims(&|c| c["nbf"] = json!(now + 300)),
    );
    add(
        "iat in the future",
        signed_claims(&|c| c["iat"] = json!(now + 300)),
    );
    add(
        "exp as a string",
        signed_claims(&|c| c["exp"] = json!((now + 600).to_string())),
    );
    add(
        "exp as a float",
        signed_claims(&|c| c["exp"] = json!(1.5e300)),
    );
    add("exp negative", signed_claims(&|c| c["exp"] = json!(-1)));
    add("exp null", signed_claims(&|c| c["exp"] = json!(null)));
    for missing in ["exp", "iss", "aud", "sub", "client_id", "iat"] {
        add(
            &format!("missing {missing}"),
            signed_claims(&|c| {
                c.as_object_mut().unwrap().remove(missing);
            }),
        );
    }

    // Issuer and audience.
    let issuer = claims["iss"].as_str().unwrap().to_owned();
    for iss in [
        json!("https://attacker.example"),
        json!(format!("{issuer}/")),
        json!(issuer.to_uppercase()),
        json!([issuer.clone()]),
        json!(""),
    ] {
        add(
            &format!("iss {iss}"),
            signed_claims(&|c| c["iss"] = iss.clone()),
        );
    }
    for aud in [
        json!("other-api"),
        json!(["other-api"]),
        json!([]),
        json!("PALISADE-API"),
        json!(""),
        json!(null),
    ] {
        add(
            &format!("aud {aud}"),
            signed_claims(&|c| c["aud"] = aud.clone()),
        );
    }

    // A valid token with its payload altered (the signature kept).
    for (name, change) in [
        (
            "scope widened",
            json!({"scope": "orders:read orders:write admin"}),
        ),
        ("sub changed", json!({"sub": "someone-else"})),
        ("exp extended", json!({"exp": now + 86_400 * 365})),
    ] {
        let mut altered = claims.clone();
        for (field, value) in change.as_object().unwrap() {
            altered[field] = value.clone();
        }
        add(
            &format!("payload altered: {name}"),
            format!(
                "{}.{}.{}",
                segments[0],
                b64(altered.to_string()),
                segments[2]
            ),
        );
    }
    // Mix and match: another genuine token's signature.
    let other = server
        .client_credentials(&client, Some("orders:read"))
        .await;
    let other_signature = other.rsplit('.').next().unwrap().to_owned();
    add(
        "header and claims of one token, signature of another",
        format!("{}.{}.{other_signature}", segments[0], segments[1]),
    );

    // Signature stripped or mangled.
    add(
        "signature stripped",
        format!("{}.{}.", segments[0], segments[1]),
    );
    add("two segments", format!("{}.{}", segments[0], segments[1]));
    add("one segment", segments[1].to_owned());
    add(
        "signature truncated",
        genuine.get(..genuine.len() - 4).unwrap().to_owned(),
    );
    add("signature padded", format!("{genuine}=="));
    add(
        "signature in standard base64",
        format!(
            "{}.{}.{}",
            segments[0],
            segments[1],
            STANDARD.encode(URL_SAFE_NO_PAD.decode(segments[2]).unwrap())
        ),
    );

    // Extra dots and whitespace.
    add("trailing dot", format!("{genuine}."));
    add("four segments", format!("{genuine}.{}", segments[2]));
    add("leading dot", format!(".{genuine}"));
    add(
        "empty middle segment",
        format!("{}..{}", segments[0], segments[2]),
    );
    add(
        "double dot",
        format!("{}..{}.{}", segments[0], segments[1], segments[2]),
    );
    add(
        "space inside",
        format!("{}. {}.{}", segments[0], segments[1], segments[2]),
    );
    add(
        "tab inside",
        format!("{}.{}\t.{}", segments[0], segments[1], segments[2]),
    );
    add("two tokens", format!("{genuine} {genuine}"));
    add("only dots", "..".to_owned());
    add("only dots, many", ".".repeat(100));

    // Size: past the 8 KiB token limit, within the header buffer.
    let padding = "a".repeat(9 * 1024);
    add(
        "9 KiB token",
        signed_claims(&|c| c["pad"] = json!(padding.clone())),
    );
    add(
        "40 KiB junk",
        format!(
            "{}.{}.{}",
            "A".repeat(20_000),
            "B".repeat(20_000),
            "C".repeat(100)
        ),
    );

    // Not base64url.
    add(
        "non-base64 header",
        format!("!!!.{}.{}", segments[1], segments[2]),
    );
    add(
        "non-base64 claims",
        format!("{}.%%%.{}", segments[0], segments[2]),
    );
    add(
        "non-base64 signature",
        format!("{}.{}.$$$", segments[0], segments[1]),
    );
    add(
        "base64 of non-JSON header",
        format!("{}.{}.{}", b64("not json"), segments[1], segments[2]),
    );
    add(
        "base64 of non-UTF-8 claims",
        jws(&key, &header.to_string(), "\u{fffd}")
            .replace(&b64("\u{fffd}"), &b64([0xff, 0xfe, 0x7b, 0x7d])),
    );
    add(
        "header is a JSON array",
        jws(&key, "[]", &claims.to_string()),
    );
    add(
        "claims are a JSON array",
        jws(&key, &header.to_string(), "[]"),
    );
    add("claims are null", jws(&key, &header.to_string(), "null"));
    add(
        "claims are a string",
        jws(&key, &header.to_string(), "\"x\""),
    );

    // Duplicate members, which parsers resolve differently.
    let claims_json = claims.to_string();
    let body = claims_json.strip_suffix('}').unwrap();
    for dup in [
        "\"sub\":\"admin\"",
        "\"scope\":\"orders:read orders:write admin\"",
        &format!("\"exp\":{}", now + 86_400),
        "\"aud\":\"other-api\"",
        &format!("\"iss\":\"{issuer}\""),
    ] {
        add(
            &format!("duplicate claim {dup}"),
            jws(&key, &header.to_string(), &format!("{body},{dup}}}")),
        );
    }
    let header_json = header.to_string();
    let header_body = header_json.strip_suffix('}').unwrap();
    for dup in [
        "\"alg\":\"none\"",
        "\"alg\":\"ES256\"",
        "\"kid\":\"unknown-kid\"",
        "\"typ\":\"JWT\"",
    ] {
        add(
            &format!("duplicate header member {dup}"),
            jws(&key, &format!("{header_body},{dup}}}"), &claims.to_string()),
        );
    }

    assert!(cases.len() > 100, "{} cases", cases.len());
    for (name, token) in &cases {
        // Parts of the genuine tokens are already secrets issued by their answers.
        if token.len() >= 6 && !genuine.contains(token.as_str()) && !other.contains(token.as_str())
        {
            server.secret(token);
        }
        let answer = bearer(token).await;
        assert_invalid_token(&answer, name);
    }

    // 100 KB: past the server's 64 KiB header buffer, refused before any handler with 431
    // (Request Header Fields Too Large); never a 5xx, and the server keeps serving.
    let huge = format!(
        "{}.{}.{}",
        "A".repeat(50_000),
        "B".repeat(50_000),
        "C".repeat(86)
    );
    let answer = attacker()
        .get(&api)
        .bearer_auth(&huge)
        .send()
        .await
        .map(|r| r.status().as_u16());
    eprintln!("100 KB token: {answer:?}");
    match answer {
        Ok(status) => assert!(matches!(status, 401 | 431), "100 KB token: {status}"),
        // Closing the connection on an oversized head is a refusal too.
        Err(error) => eprintln!("100 KB token: connection closed ({error})"),
    }

    // Scheme spellings and empty tokens.
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "bearer",
        "BEARER x",
        "Bearer\tabc",
    ] {
        let answer = attack(
            &server,
            Method::GET,
            &api,
            &vec![("Authorization".to_owned(), value.as_bytes().to_vec())],
            Vec::new(),
        )
        .await;
        assert_refused(&answer, &format!("Authorization {value:?}"));
    }
    // Two Authorization headers: malformed (400) or refused (401), never accepted.
    let answer = attack(
        &server,
        Method::GET,
        &api,
        &vec![
            (
                "Authorization".to_owned(),
                format!("Bearer {genuine}").into_bytes(),
            ),
            ("Authorization".to_owned(), b"Bearer x.y.z".to_vec()),
        ],
        Vec::new(),
    )
    .await;
    assert_refused(&answer, "two Authorization headers");

    // The server is unharmed and the genuine token still works.
    bearer(&genuine).await.expect(200);
    let checked = server.assert_no_secret_leaks();
    assert!(checked > cases.len());
}

// ---------------------------------------------------------------------------------------
// Replayed and tampered signatures
// ---------------------------------------------------------------------------------------

async fn signed_attack(
    server: &Server,
    profile: Profile,
    credential: &Credential,
    signed: (&str, &str, &[u8]),
    sent: (Method, &str, Vec<u8>),
    tamper: impl FnOnce(RawHeaders) -> RawHeaders,
) -> Resp {
    let (method, url, body) = signed;
    let content_type = (!body.is_empty()).then_some("application/json");
    let headers = sign_request(
        profile,
        credential,
        method,
        url,
        content_type,
        body,
        SystemTime::now(),
    );
    let (method, url, body) = sent;
    attack(server, method, url, &tamper(raw_headers(&headers)), body).await
}

async fn signature_attacks(profile: Profile) {
    let server = busy_server();
    let credential = server
        .cli()
        .create_credential("dave", "orders:read,orders:write");
    let orders = server.url("/api/orders");
    let order_a = server.url("/api/orders/ord_a");
    let order_b = server.url("/api/orders/ord_b");
    let body = serde_json::to_vec(&order_body()).unwrap();
    let mut other_body = order_body();
    other_body["items"][0]["quantity"] = json!(999);
    let other_body = serde_json::to_vec(&other_body).unwrap();
    let keep = |headers: RawHeaders| headers;
    let p = format!("{profile:?}");

    // Controls: untampered requests are accepted (so the refusals are the tampering's).
    signed_attack(
        &server,
        profile,
        &credential,
        ("GET", &orders, b""),
        (Method::GET, &orders, Vec::new()),
        keep,
    )
    .await
    .expect(200);
    signed_attack(
        &server,
        profile,
        &credential,
        ("GET", &order_a, b""),
        (Method::GET, &order_a, Vec::new()),
        keep,
    )
    .await
    .expect(404);

    // Replay: the same signed request twice.
    let headers = sign_request(
        profile,
        &credential,
        "GET",
        &orders,
        None,
        b"",
        SystemTime::now(),
    );
    attack(
        &server,
        Method::GET,
        &orders,
        &raw_headers(&headers),
        Vec::new(),
    )
    .await
    .expect(200);
    for _ in 0..2 {
        let replay = attack(
            &server,
            Method::GET,
            &orders,
            &raw_headers(&headers),
            Vec::new(),
        )
        .await;
        assert_eq!(replay.status, 401, "{p} replay: {}", replay.body);
        assert_refused(&replay, &format!("{p} replay"));
    }
    // A replayed write does not create a second order.
    let headers = sign_request(
        profile,
        &credential,
        "POST",
        &orders,
        Some("application/json"),
        &body,
        SystemTime::now(),
    );
    attack(
        &server,
        Method::POST,
        &orders,
        &raw_headers(&headers),
        body.clone(),
    )
    .await
    .expect(201);
    let replay = attack(
        &server,
        Method::POST,
        &orders,
        &raw_headers(&headers),
        body.clone(),
    )
    .await;
    assert_eq!(replay.status, 401, "{p} replayed POST: {}", replay.body);

    let mut cases: Vec<(&str, Resp)> = Vec::new();
    // Method changed (a DELETE that got through would be a 404 here).
    cases.push((
        "method changed",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &order_a, b""),
            (Method::DELETE, &order_a, Vec::new()),
            keep,
        )
        .await,
    ));
    // Path changed.
    cases.push((
        "path changed",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &order_a, b""),
            (Method::GET, &order_b, Vec::new()),
            keep,
        )
        .await,
    ));
    cases.push((
        "path case changed",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &order_a, b""),
            (Method::GET, &server.url("/api/orders/ORD_A"), Vec::new()),
            keep,
        )
        .await,
    ));
    cases.push((
        "path percent-encoded",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &order_a, b""),
            (Method::GET, &server.url("/api/orders/%6Frd_a"), Vec::new()),
            keep,
        )
        .await,
    ));
    // Query changed, added, removed.
    let limited = format!("{orders}?limit=5");
    cases.push((
        "query changed",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &limited, b""),
            (Method::GET, &format!("{orders}?limit=6"), Vec::new()),
            keep,
        )
        .await,
    ));
    cases.push((
        "query added",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &orders, b""),
            (Method::GET, &limited, Vec::new()),
            keep,
        )
        .await,
    ));
    cases.push((
        "query removed",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &limited, b""),
            (Method::GET, &orders, Vec::new()),
            keep,
        )
        .await,
    ));
    cases.push((
        "query parameter appended",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &limited, b""),
            (Method::GET, &format!("{limited}&limit=100"), Vec::new()),
            keep,
        )
        .await,
    ));
    // Body changed, dropped, extended.
    cases.push((
        "body changed",
        signed_attack(
            &server,
            profile,
            &credential,
            ("POST", &orders, &body),
            (Method::POST, &orders, other_body.clone()),
            keep,
        )
        .await,
    ));
    let mut longer = body.clone();
    longer.extend_from_slice(b" ");
    cases.push((
        "body extended by a space",
        signed_attack(
            &server,
            profile,
            &credential,
            ("POST", &orders, &body),
            (Method::POST, &orders, longer),
            keep,
        )
        .await,
    ));
    // A signed header changed.
    match profile {
        Profile::Palisade => {
            cases.push((
                "signed header changed",
                signed_attack(
                    &server,
                    profile,
                    &credential,
                    ("GET", &orders, b""),
                    (Method::GET, &orders, Vec::new()),
                    |h| set_header(&h, "X-Test-Nonce", Some(b"another-nonce-value")),
                )
                .await,
            ));
            cases.push((
                "content type changed",
                signed_attack(
                    &server,
                    profile,
                    &credential,
                    ("POST", &orders, &body),
                    (Method::POST, &orders, body.clone()),
                    |h| set_header(&h, "Content-Type", Some(b"application/json; charset=utf-8")),
                )
                .await,
            ));
            cases.push((
                "signed header removed",
                signed_attack(
                    &server,
                    profile,
                    &credential,
                    ("GET", &orders, b""),
                    (Method::GET, &orders, Vec::new()),
                    |h| set_header(&h, "X-Test-Nonce", None),
                )
                .await,
            ));
            cases.push((
                "date changed by a second",
                signed_attack(
                    &server,
                    profile,
                    &credential,
                    ("GET", &orders, b""),
                    (Method::GET, &orders, Vec::new()),
                    |h| {
                        let date = h
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case("x-palisade-date"))
                            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                            .unwrap();
                        let last = date.get(14..15).unwrap();
                        let changed = format!(
                            "{}{}Z",
                            date.get(..14).unwrap(),
                            if last == "0" { "1" } else { "0" }
                        );
                        set_header(&h, "X-Palisade-Date", Some(changed.as_bytes()))
                    },
                )
                .await,
            ));
        }
        Profile::Rfc9421 => {
            cases.push((
                "content-digest changed",
                signed_attack(
                    &server,
                    profile,
                    &credential,
                    ("POST", &orders, &body),
                    (Method::POST, &orders, other_body.clone()),
                    |h| {
                        let digest = sign_request(
                            Profile::Rfc9421,
                            &credential,
                            "POST",
                            &orders,
                            Some("application/json"),
                            &other_body,
                            SystemTime::now(),
                        );
                        set_header(
                            &h,
                            "Content-Digest",
                            Some(header_of(&digest, "content-digest").as_bytes()),
                        )
                    },
                )
                .await,
            ));
            cases.push((
                "signature parameters changed",
                signed_attack(
                    &server,
                    profile,
                    &credential,
                    ("GET", &orders, b""),
                    (Method::GET, &orders, Vec::new()),
                    |h| {
                        let input = h
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case("signature-input"))
                            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                            .unwrap();
                        let changed = input.replace("nonce=\"", "nonce=\"x");
                        set_header(&h, "Signature-Input", Some(changed.as_bytes()))
                    },
                )
                .await,
            ));
            cases.push((
                "content-digest dropped",
                signed_attack(
                    &server,
                    profile,
                    &credential,
                    ("POST", &orders, &body),
                    (Method::POST, &orders, body.clone()),
                    |h| set_header(&h, "Content-Digest", None),
                )
                .await,
            ));
        }
    }
    // Signed for another host.
    for host in [
        "http://api.example.com",
        "http://localhost:1",
        "http://127.0.0.1:1",
    ] {
        let elsewhere = format!("{host}/api/orders");
        cases.push((
            "signed for another host",
            signed_attack(
                &server,
                profile,
                &credential,
                ("GET", &elsewhere, b""),
                (Method::GET, &orders, Vec::new()),
                keep,
            )
            .await,
        ));
    }
    // A Host header other than the one signed (the signature covers it).
    cases.push((
        "Host header changed",
        signed_attack(
            &server,
            profile,
            &credential,
            ("GET", &orders, b""),
            (Method::GET, &orders, Vec::new()),
            |h| set_header(&h, "Host", Some(b"api.example.com")),
        )
        .await,
    ));
    // Dated six minutes in the past and in the future.
    for (name, offset) in [("6 minutes old", -360_i64), ("6 minutes ahead", 360)] {
        let when = if offset < 0 {
            SystemTime::now() - Duration::from_secs(offset.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(offset.unsigned_abs())
        };
        let headers = sign_request(profile, &credential, "GET", &orders, None, b"", when);
        cases.push((
            name,
            attack(
                &server,
                Method::GET,
                &orders,
                &raw_headers(&headers),
                Vec::new(),
            )
            .await,
        ));
    }
    // An unknown access key id, and a real one with another's secret.
    let stranger = Credential {
        access_key_id: format!("{}X", credential.access_key_id),
        secret: credential.secret.clone(),
    };
    cases.push((
        "unknown access key id",
        signed_attack(
            &server,
            profile,
            &stranger,
            ("GET", &orders, b""),
            (Method::GET, &orders, Vec::new()),
            keep,
        )
        .await,
    ));
    let forger = Credential {
        access_key_id: credential.access_key_id.clone(),
        secret: "not-the-secret-not-the-secret-00".to_owned(),
    };
    cases.push((
        "wrong secret",
        signed_attack(
            &server,
            profile,
            &forger,
            ("GET", &orders, b""),
            (Method::GET, &orders, Vec::new()),
            keep,
        )
        .await,
    ));

    for (name, answer) in &cases {
        assert_eq!(answer.status, 401, "{p} {name}: {}", answer.body);
        assert_refused(answer, &format!("{p} {name}"));
    }
    // Within the window is fine: four minutes old.
    let recent = SystemTime::now() - Duration::from_secs(240);
    let headers = sign_request(profile, &credential, "GET", &orders, None, b"", recent);
    attack(
        &server,
        Method::GET,
        &orders,
        &raw_headers(&headers),
        Vec::new(),
    )
    .await
    .expect(200);
    server.assert_no_secret_leaks();
}

#[tokio::test]
async fn palisade_signatures_replayed_or_tampered_are_refused() {
    signature_attacks(Profile::Palisade).await;
}

#[tokio::test]
async fn rfc9421_signatures_replayed_or_tampered_are_refused() {
    signature_attacks(Profile::Rfc9421).await;
}

#[tokio::test]
async fn malformed_signature_headers_are_refused_without_a_5xx() {
    let server = busy_server();
    let credential = server
        .cli()
        .create_credential("dave", "orders:read,orders:write");
    let orders = server.url("/api/orders");
    let fresh = |profile: Profile| {
        raw_headers(&sign_request(
            profile,
            &credential,
            "GET",
            &orders,
            None,
            b"",
            SystemTime::now(),
        ))
    };

    // The palisade profile's Authorization header, in every broken shape.
    let valid = fresh(Profile::Palisade);
    let authorization = valid
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        .unwrap();
    let part = |name: &str| {
        authorization
            .split([' ', ','])
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    let (cred, signed, sig) = (part("Credential"), part("SignedHeaders"), part("Signature"));
    let scheme = "PALISADE-HMAC-SHA256";
    let mut shapes: Vec<Vec<u8>> = [
        scheme.to_owned(),
        format!("{scheme} "),
        format!("{scheme} Credential="),
        format!("{scheme} Credential={cred}"),
        format!("{scheme} Credential={cred}, SignedHeaders={signed}"),
        format!("{scheme} SignedHeaders={signed}, Signature={sig}"),
        format!("{scheme} Credential={cred}, Signature={sig}"),
        format!("{scheme} Credential={cred}, Credential={cred}, SignedHeaders={signed}, Signature={sig}"),
        format!("{scheme} Credential=other/20200101/api/request, Credential={cred}, SignedHeaders={signed}, Signature={sig}"),
        format!("{scheme} Credential={cred}, SignedHeaders={signed}, SignedHeaders=host, Signature={sig}"),
        format!("{scheme} Credential={cred}, SignedHeaders={signed}, Signature={sig}, Signature={sig}"),
        format!("{authorization}, Signature={}", "0".repeat(64)),
        format!("{scheme} Credential=, SignedHeaders=, Signature="),
        format!("{scheme} Credential==, SignedHeaders===, Signature===="),
        format!("{scheme} ,,,,,,"),
        format!("{scheme} Credential={cred} SignedHeaders={signed} Signature={sig}"),
        format!("{scheme} Credential={cred};SignedHeaders={signed};Signature={sig}"),
        format!("{scheme} Credential=a/b/c/d/e/f/g/h, SignedHeaders={signed}, Signature={sig}"),
        format!("{scheme} Credential=/, SignedHeaders={signed}, Signature={sig}"),
        format!("{scheme} Credential={}, SignedHeaders={signed}, Signature={sig}", cred.replace("/api/", "/s3/")),
        format!("{scheme} Credential={}, SignedHeaders={signed}, Signature={sig}", cred.replace("request", "aws4_request")),
        format!("{scheme} Credential={cred}, SignedHeaders=x-palisade-date, Signature={sig}"),
        format!("{scheme} Credential={cred}, SignedHeaders=, Signature={sig}"),
        format!("{scheme} Credential={cred}, SignedHeaders=HOST;X-PALISADE-DATE, Signature={sig}"),
        format!("{scheme} Credential={cred}, SignedHeaders={signed};;;, Signature={sig}"),
        format!("{scheme} Credential={cred}, SignedHeaders={signed}, Signature={}", sig.to_uppercase()),
        format!("{scheme} Credential={cred}, SignedHeaders={signed}, Signature={}", sig.get(..32).unwrap()),
        format!("{scheme} Credential={cred}, SignedHeaders={signed}, Signature={}", "z".repeat(64)),
        format!("{scheme} Credential={cred}, SignedHeaders={signed}, Signature={}", "a".repeat(10_240)),
        format!("{scheme} Credential={}", "A".repeat(10_240)),
        format!("{scheme} {}", ",".repeat(10_240)),
        format!("{scheme}\tCredential={cred}, SignedHeaders={signed}, Signature={sig}"),
        format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, Signature={sig}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    // Non-ASCII, and bytes that are not UTF-8.
    shapes.push(
        format!("{scheme} Credential=é/ü/ß/∞, SignedHeaders={signed}, Signature={sig}")
            .into_bytes(),
    );
    let mut latin1 = format!("{scheme} Credential=").into_bytes();
    latin1.extend_from_slice(b"\xe9\xff\xfe\x80");
    latin1.extend_from_slice(format!(", SignedHeaders={signed}, Signature={sig}").as_bytes());
    shapes.push(latin1);

    let mut answers: Vec<(String, Resp)> = Vec::new();
    for shape in &shapes {
        let headers = set_header(&fresh(Profile::Palisade), "Authorization", Some(shape));
        let name = format!(
            "Authorization {:?}",
            String::from_utf8_lossy(shape.get(..shape.len().min(120)).unwrap())
        );
        answers.push((
            name,
            attack(&server, Method::GET, &orders, &headers, Vec::new()).await,
        ));
    }
    // A valid Authorization with a broken date.
    for date in [
        &b"yesterday"[..],
        b"",
        b"99999999T999999Z",
        b"20261327T250000Z",
        b"2026-11-27T12:00:00Z",
        b"\xff\xfe",
        &[b'1'; 10_240],
    ] {
        let headers = set_header(&fresh(Profile::Palisade), "X-Palisade-Date", Some(date));
        let name = format!(
            "X-Palisade-Date {:?}",
            String::from_utf8_lossy(date.get(..date.len().min(40)).unwrap())
        );
        answers.push((
            name,
            attack(&server, Method::GET, &orders, &headers, Vec::new()).await,
        ));
    }
    // Two Authorization headers of the profile.
    let mut doubled = fresh(Profile::Palisade);
    doubled.push((
        "Authorization".to_owned(),
        authorization.clone().into_bytes(),
    ));
    answers.push((
        "two palisade Authorization headers".to_owned(),
        attack(&server, Method::GET, &orders, &doubled, Vec::new()).await,
    ));
    // A presigned query with garbage.
    for query in [
        "X-Palisade-Signature=abc",
        "X-Palisade-Algorithm=PALISADE-HMAC-SHA256",
        "X-Palisade-Algorithm=PALISADE-HMAC-SHA256&X-Palisade-Credential=%ff&X-Palisade-Date=x&X-Palisade-Expires=-1&X-Palisade-SignedHeaders=host&X-Palisade-Signature=zz",
        "X-Palisade-Signature=1&X-Palisade-Signature=2",
    ] {
        answers.push((
            format!("presigned {query}"),
            attack(
                &server,
                Method::GET,
                &format!("{orders}?{query}"),
                &Vec::new(),
                Vec::new(),
            )
            .await,
        ));
    }

    // RFC 9421: Signature-Input and Signature garbage.
    let valid = fresh(Profile::Rfc9421);
    let input = valid
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("signature-input"))
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        .unwrap();
    let signature = valid
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("signature"))
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        .unwrap();
    let (label, _) = input.split_once('=').unwrap();
    let now = unix_now();
    let id = &credential.access_key_id;
    let components = "(\"@method\" \"@authority\" \"@path\")";
    let inputs: Vec<String> = vec![
        "garbage".into(),
        String::new(),
        label.into(),
        format!("{label}="),
        format!("{label}=("),
        format!("{label}=()"),
        format!("{label}=();created={now};keyid=\"{id}\";alg=\"hmac-sha256\""),
        format!("{label}={components};created=abc;keyid=\"{id}\";alg=\"hmac-sha256\""),
        format!("{label}={components};created=-5;keyid=\"{id}\";alg=\"hmac-sha256\""),
        format!("{label}={components};created=999999999999999;keyid=\"{id}\";alg=\"hmac-sha256\""),
        format!(
            "{label}={components};created=9999999999999999999999;keyid=\"{id}\";alg=\"hmac-sha256\""
        ),
        format!(
            "{label}={components};created={};keyid=\"{id}\";alg=\"hmac-sha256\"",
            now + 600
        ),
        format!(
            "{label}={components};created={};expires={};keyid=\"{id}\";alg=\"hmac-sha256\"",
            now - 100,
            now - 50
        ),
        format!("{label}={components};keyid=\"{id}\";alg=\"hmac-sha256\""),
        format!("{label}={components};created={now};alg=\"hmac-sha256\""),
        format!("{label}={components};created={now};keyid=\"unknown\";alg=\"hmac-sha256\""),
        format!(
            "{label}={components};created={now};keyid=\"../../etc/passwd\";alg=\"hmac-sha256\""
        ),
        format!("{label}={components};created={now};keyid=\"' OR '1'='1\";alg=\"hmac-sha256\""),
        format!("{label}={components};created={now};keyid={id};alg=\"hmac-sha256\""),
        format!("{label}={components};created={now};keyid=\"{id}\";alg=\"none\""),
        format!("{label}={components};created={now};keyid=\"{id}\";alg=\"rsa-v1_5-sha256\""),
        format!("{label}={components};created={now};keyid=\"{id}\";alg=\"hs2019\""),
        format!("{label}={components};created={now};keyid=\"{id}\";alg=\"ed25519\""),
        format!("{label}=(\"@method\" \"@path\");created={now};keyid=\"{id}\";alg=\"hmac-sha256\""),
        format!(
            "{label}=(\"@method\" \"@authority\" \"@path\" \"@bogus\");created={now};keyid=\"{id}\";alg=\"hmac-sha256\""
        ),
        format!(
            "{label}=(\"x-missing-header\" \"@method\" \"@authority\" \"@path\");created={now};keyid=\"{id}\";alg=\"hmac-sha256\""
        ),
        format!(
            "{label}=(\"@method\" \"@method\" \"@authority\" \"@path\");created={now};keyid=\"{id}\";alg=\"hmac-sha256\""
        ),
        format!("{input}, {input}"),
        format!(
            "{label}={components};created={now};keyid=\"{id}\";alg=\"hmac-sha256\";nonce=\"{}\"",
            "n".repeat(5000)
        ),
        (0..100)
            .map(|i| format!("s{i}={components};created={now};keyid=\"{id}\""))
            .collect::<Vec<_>>()
            .join(", "),
        format!("{label}={}", "(".repeat(10_000)),
        format!("{label}=\"{}\"", "x".repeat(10_240)),
        format!("{label}={components};created={now};keyid=\"é\";alg=\"hmac-sha256\""),
    ];
    for value in &inputs {
        let headers = set_header(
            &fresh(Profile::Rfc9421),
            "Signature-Input",
            Some(value.as_bytes()),
        );
        let shown: String = value.chars().take(100).collect();
        answers.push((
            format!("Signature-Input {shown:?}"),
            attack(&server, Method::GET, &orders, &headers, Vec::new()).await,
        ));
    }
    let signatures: Vec<String> = vec![
        "garbage".into(),
        String::new(),
        format!("{label}=:!!!:"),
        format!("{label}=::"),
        format!("{label}=:AAAA:"),
        format!("{label}=\"string\""),
        format!("{label}=({signature})"),
        format!("other{}", signature),
        format!("{signature}, {signature}"),
        format!("{label}=:{}:", "A".repeat(10_240)),
        format!("{label}=:{}:", STANDARD.encode([0u8; 32])),
        format!("{label}=:é:"),
    ];
    for value in &signatures {
        let headers = set_header(
            &fresh(Profile::Rfc9421),
            "Signature",
            Some(value.as_bytes()),
        );
        let shown: String = value.chars().take(100).collect();
        answers.push((
            format!("Signature {shown:?}"),
            attack(&server, Method::GET, &orders, &headers, Vec::new()).await,
        ));
    }
    let mut non_utf8 = b"sig1=(\"@method\");keyid=\"".to_vec();
    non_utf8.extend_from_slice(b"\xff\xfe\"");
    answers.push((
        "Signature-Input not UTF-8".to_owned(),
        attack(
            &server,
            Method::GET,
            &orders,
            &set_header(&fresh(Profile::Rfc9421), "Signature-Input", Some(&non_utf8)),
            Vec::new(),
        )
        .await,
    ));
    answers.push((
        "Signature without Signature-Input".to_owned(),
        attack(
            &server,
            Method::GET,
            &orders,
            &set_header(&fresh(Profile::Rfc9421), "Signature-Input", None),
            Vec::new(),
        )
        .await,
    ));
    answers.push((
        "Signature-Input without Signature".to_owned(),
        attack(
            &server,
            Method::GET,
            &orders,
            &set_header(&fresh(Profile::Rfc9421), "Signature", None),
            Vec::new(),
        )
        .await,
    ));
    let mut doubled = fresh(Profile::Rfc9421);
    doubled.push(("Signature-Input".to_owned(), input.clone().into_bytes()));
    doubled.push(("Signature".to_owned(), signature.clone().into_bytes()));
    answers.push((
        "duplicated Signature-Input and Signature headers".to_owned(),
        attack(&server, Method::GET, &orders, &doubled, Vec::new()).await,
    ));
    // Both profiles on one request: ambiguous.
    let mut both = fresh(Profile::Rfc9421);
    both.extend(
        fresh(Profile::Palisade)
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("x-test-nonce")),
    );
    answers.push((
        "both profiles at once".to_owned(),
        attack(&server, Method::GET, &orders, &both, Vec::new()).await,
    ));

    assert!(answers.len() > 90, "{}", answers.len());
    for (name, answer) in &answers {
        assert_refused(answer, name);
    }
    // And the credential still works.
    let headers = fresh(Profile::Rfc9421);
    attack(&server, Method::GET, &orders, &headers, Vec::new())
        .await
        .expect(200);
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Malformed credentials
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_api_keys_and_client_credentials_are_refused() {
    let server = busy_server();
    let cli = server.cli();
    let key = cli.create_key("erin", "orders:read", &["--plan", "enterprise"]);
    let client = cli.create_client("svc", "orders:read", &["client_credentials"], &[]);
    register_stored_secrets(&server, &[&key]);
    let orders = server.url("/api/orders");
    let raw = key.key.clone();
    let with_key = |values: Vec<Vec<u8>>| {
        values
            .into_iter()
            .map(|value| ("X-API-Key".to_owned(), value))
            .collect::<RawHeaders>()
    };

    // Control.
    attack(
        &server,
        Method::GET,
        &orders,
        &with_key(vec![raw.clone().into_bytes()]),
        Vec::new(),
    )
    .await
    .expect(200);

    let flip = |at: usize| {
        let mut chars: Vec<char> = raw.chars().collect();
        chars[at] = if chars[at] == 'x' { 'y' } else { 'x' };
        chars.into_iter().collect::<String>()
    };
    let body = raw.strip_prefix("pk_live_").unwrap();
    let mut variants: Vec<(String, Vec<Vec<u8>>)> = vec![
        (
            "bad checksum (last character)".into(),
            vec![flip(raw.len() - 1).into_bytes()],
        ),
        (
            "bad checksum (random part)".into(),
            vec![flip(12).into_bytes()],
        ),
        (
            "wrong prefix sk_live_".into(),
            vec![format!("sk_live_{body}").into_bytes()],
        ),
        (
            "wrong prefix pk_test_".into(),
            vec![format!("pk_test_{body}").into_bytes()],
        ),
        (
            "wrong prefix PK_LIVE_".into(),
            vec![format!("PK_LIVE_{body}").into_bytes()],
        ),
        ("no prefix".into(), vec![body.as_bytes().to_vec()]),
        (
            "truncated".into(),
            vec![raw.get(..raw.len() - 1).unwrap().as_bytes().to_vec()],
        ),
        ("extended".into(), vec![format!("{raw}A").into_bytes()]),
        ("doubled".into(), vec![format!("{raw}{raw}").into_bytes()]),
        ("empty".into(), vec![Vec::new()]),
        (
            "10 KB".into(),
            vec![format!("pk_live_{}", "A".repeat(10_240)).into_bytes()],
        ),
        (
            "10 KB of the key repeated".into(),
            vec![raw.repeat(10_240 / raw.len() + 1).into_bytes()],
        ),
        (
            "tab inside".into(),
            vec![format!("pk_live_\t{body}").into_bytes()],
        ),
        (
            "space inside".into(),
            vec![format!("pk_live_ {body}").into_bytes()],
        ),
        (
            "non-ASCII".into(),
            vec![format!("pk_live_é{body}").into_bytes()],
        ),
        (
            "not UTF-8".into(),
            vec![[b"pk_live_".as_slice(), b"\xff\xfe", body.as_bytes()].concat()],
        ),
        ("SQL".into(), vec![b"pk_live_' OR '1'='1' --".to_vec()]),
        (
            "Bearer in X-API-Key".into(),
            vec![format!("Bearer {raw}").into_bytes()],
        ),
        (
            "two headers, both valid".into(),
            vec![raw.clone().into_bytes(), raw.clone().into_bytes()],
        ),
        (
            "two headers, valid then invalid".into(),
            vec![raw.clone().into_bytes(), flip(12).into_bytes()],
        ),
        (
            "two headers, invalid then valid".into(),
            vec![flip(12).into_bytes(), raw.clone().into_bytes()],
        ),
        (
            "comma-joined".into(),
            vec![format!("{raw}, {raw}").into_bytes()],
        ),
    ];
    for (_, values) in &variants {
        for value in values {
            if let Ok(text) = std::str::from_utf8(value)
                && text.len() >= 6
                && text != raw
            {
                server.secret(text);
            }
        }
    }
    for (name, values) in variants.drain(..) {
        let answer = attack(&server, Method::GET, &orders, &with_key(values), Vec::new()).await;
        assert_eq!(answer.status, 401, "API key {name}: {}", answer.body);
        assert_refused(&answer, &format!("API key {name}"));
        assert!(
            !answer.body.contains("pk_live_"),
            "API key {name}: {}",
            answer.body
        );
    }
    // Control characters cannot be sent by a well-behaved client; on the wire they make
    // the request malformed.
    for control in ["\u{1}", "\u{7f}", "\u{0}", "\r"] {
        let request = format!(
            "GET /api/orders HTTP/1.1\r\nHost: {}\r\nX-API-Key: pk_live_{control}{body}\r\nConnection: close\r\n\r\n",
            server.addr
        );
        let answer = raw_exchange(
            &server,
            Some(fresh_address()),
            request.as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        let status = raw_status(&answer);
        assert!(
            matches!(status, Some(400 | 401)) || answer.is_empty(),
            "X-API-Key with {control:?}: {answer}"
        );
    }

    // Basic on /oauth/token: garbage of every kind.
    let token = server.url("/oauth/token");
    let id = &client.client_id;
    let secret = &client.client_secret;
    let basics: Vec<(String, Vec<u8>)> = vec![
        ("Basic".into(), b"Basic".to_vec()),
        ("Basic and a space".into(), b"Basic ".to_vec()),
        ("not base64".into(), b"Basic !!!!".to_vec()),
        ("base64 with bad padding".into(), b"Basic YWJj=".to_vec()),
        (
            "base64url alphabet".into(),
            format!("Basic {}", URL_SAFE_NO_PAD.encode([0xfb, 0xff, 0xfe])).into_bytes(),
        ),
        (
            "no colon".into(),
            format!("Basic {}", STANDARD.encode(id)).into_bytes(),
        ),
        (
            "empty secret".into(),
            format!("Basic {}", STANDARD.encode(format!("{id}:"))).into_bytes(),
        ),
        (
            "empty id".into(),
            format!("Basic {}", STANDARD.encode(format!(":{secret}"))).into_bytes(),
        ),
        (
            "wrong secret".into(),
            basic(id, "wrong-secret-wrong-secret").into_bytes(),
        ),
        (
            "unknown client".into(),
            basic("client_unknown", secret).into_bytes(),
        ),
        (
            "not UTF-8".into(),
            format!("Basic {}", STANDARD.encode(b"\xff\xfe:\xfd")).into_bytes(),
        ),
        (
            "NUL bytes".into(),
            format!("Basic {}", STANDARD.encode(format!("{id}\0:{secret}\0"))).into_bytes(),
        ),
        (
            "several spaces".into(),
            format!("Basic a b c {}", STANDARD.encode(format!("{id}:{secret}"))).into_bytes(),
        ),
        (
            "10 KB".into(),
            format!("Basic {}", STANDARD.encode("a".repeat(10_240))).into_bytes(),
        ),
        (
            "percent-encoded junk".into(),
            format!("Basic {}", STANDARD.encode("%zz:%%%")).into_bytes(),
        ),
        ("non-ASCII header".into(), "Basic é".as_bytes().to_vec()),
        ("raw bytes".into(), b"Basic \xff\xfe".to_vec()),
    ];
    for (name, value) in &basics {
        let answer = server
            .send(
                attacker()
                    .post(&token)
                    .header("authorization", HeaderValue::from_bytes(value).unwrap())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials"),
            )
            .await;
        assert!(
            matches!(answer.status, 400 | 401),
            "Basic {name}: {} {}",
            answer.status,
            answer.body
        );
        assert_eq!(answer.content_type(), "application/json", "Basic {name}");
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(
            matches!(error.as_str(), "invalid_client" | "invalid_request"),
            "Basic {name}: {error}"
        );
        if answer.status == 401 {
            assert!(answer.header("www-authenticate").is_some(), "Basic {name}");
        }
    }
    // Two client authentication methods at once (RFC 6749 §2.3: MUST NOT).
    let both = server
        .send(attacker().post(&token).basic_auth(id, Some(secret)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ]))
        .await;
    both.oauth_error(400, "invalid_request");
    // Control: the client itself still works.
    server.client_credentials(&client, None).await;
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Oversized and deeply nested bodies
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_nested_and_malformed_bodies_are_refused() {
    let server = busy_server();
    let cli = server.cli();
    // The abuse layer throttles a key with more than half errors after 50 requests: a few
    // keys keep each one under that.
    let keys: Vec<ApiKey> = (0..3)
        .map(|i| {
            cli.create_key(
                &format!("bodies{i}"),
                "orders:read,orders:write",
                &["--plan", "enterprise"],
            )
        })
        .collect();
    register_stored_secrets(&server, &keys.iter().collect::<Vec<_>>());
    let credential = cli.create_credential("bodies", "orders:read,orders:write");
    let orders = server.url("/api/orders");
    let sent = std::cell::Cell::new(0_usize);
    let post = |content_type: Option<&str>, body: Vec<u8>| {
        let key = &keys[sent.get() / 20];
        sent.set(sent.get() + 1);
        // A client of its own each time: after refusing an oversized body the server
        // may close the connection without `Connection: close`, and a pooled client
        // could send the next request on it.
        let mut request = common::http_client()
            .post(&orders)
            .header("x-api-key", &key.key)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        send_oversized(&server, request)
    };
    let json = Some("application/json");

    // Control.
    post(json, serde_json::to_vec(&order_body()).unwrap())
        .await
        .unwrap()
        .expect(201);

    let mut cases: Vec<(&str, Option<Resp>, &[u16])> = Vec::new();
    // 300 KB: over the 256 KiB limit.
    let mut big = order_body();
    big["notes"] = json!("x".repeat(300 * 1024));
    cases.push((
        "300 KB JSON",
        post(json, serde_json::to_vec(&big).unwrap()).await,
        &[413],
    ));
    cases.push((
        "300 KB of spaces",
        post(json, vec![b' '; 300 * 1024]).await,
        &[413],
    ));
    // 300 KB signed: refused by the authentication layer before anything is verified.
    let big_bytes = serde_json::to_vec(&big).unwrap();
    let headers = sign_request(
        Profile::Palisade,
        &credential,
        "POST",
        &orders,
        Some("application/json"),
        &big_bytes,
        SystemTime::now(),
    );
    cases.push((
        "300 KB signed",
        send_oversized(
            &server,
            with_headers(attacker().post(&orders), &headers).body(big_bytes),
        )
        .await,
        &[413],
    ));
    // Nesting depth 10 000, as arrays and as objects, at the top and inside a field.
    let depth = 10_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    cases.push((
        "arrays nested 10 000 deep",
        post(json, arrays.clone().into_bytes()).await,
        &[400, 422],
    ));
    cases.push((
        "objects nested 10 000 deep",
        post(json, objects.clone().into_bytes()).await,
        &[400, 422],
    ));
    let mut inside = serde_json::to_string(&order_body()).unwrap();
    inside.insert_str(1, &format!("\"metadata\":{objects},"));
    cases.push((
        "nesting inside a field",
        post(json, inside.into_bytes()).await,
        &[400, 422],
    ));
    let unclosed = "[".repeat(200_000);
    cases.push((
        "200 000 unclosed brackets",
        post(json, unclosed.into_bytes()).await,
        &[400, 422],
    ));
    // 100 000 keys (over the size limit) and 20 000 keys (within it).
    let many = |n: usize| {
        let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":\"v\"")).collect();
        format!("{{\"metadata\":{{{}}}}}", members.join(","))
    };
    cases.push((
        "100 000 keys",
        post(json, many(100_000).into_bytes()).await,
        &[413, 400, 422],
    ));
    cases.push((
        "20 000 keys",
        post(json, many(20_000).into_bytes()).await,
        &[400, 422],
    ));
    // Huge strings and numbers.
    let mut long_notes = order_body();
    long_notes["notes"] = json!("n".repeat(250_000));
    cases.push((
        "a 250 KB string",
        post(json, serde_json::to_vec(&long_notes).unwrap()).await,
        &[400, 422],
    ));
    let long_key = format!("{{\"{}\":1}}", "k".repeat(250_000));
    cases.push((
        "a 250 KB key",
        post(json, long_key.into_bytes()).await,
        &[400, 422],
    ));
    let mut quantity = serde_json::to_string(&order_body()).unwrap();
    quantity = quantity.replace(
        "\"quantity\":2",
        &format!("\"quantity\":1{}", "0".repeat(5000)),
    );
    cases.push((
        "a 5000-digit number",
        post(json, quantity.into_bytes()).await,
        &[400, 422],
    ));
    let exponent = serde_json::to_string(&order_body())
        .unwrap()
        .replace("\"quantity\":2", "\"quantity\":1e999999999");
    cases.push((
        "an exponent of 1e999999999",
        post(json, exponent.into_bytes()).await,
        &[400, 422],
    ));
    let array = format!(
        "{{\"items\":[{}]}}",
        vec!["{\"product_id\":\"prod_a\",\"quantity\":1}"; 5000].join(",")
    );
    cases.push((
        "5000 items",
        post(json, array.into_bytes()).await,
        &[400, 422],
    ));
    // Not UTF-8, or not JSON.
    let mut invalid = serde_json::to_vec(&order_body()).unwrap();
    let at = invalid.windows(4).position(|w| w == b"Main").unwrap();
    invalid[at] = 0xff;
    cases.push((
        "invalid UTF-8 in a string",
        post(json, invalid).await,
        &[400],
    ));
    let mut overlong = serde_json::to_vec(&order_body()).unwrap();
    let at = overlong.windows(4).position(|w| w == b"Main").unwrap();
    overlong.splice(at..at + 1, [0xc1, 0x8d]);
    cases.push(("overlong UTF-8", post(json, overlong).await, &[400]));
    let surrogate = serde_json::to_string(&order_body())
        .unwrap()
        .replace("Main", "\\ud800");
    cases.push((
        "a lone surrogate escape",
        post(json, surrogate.into_bytes()).await,
        &[400, 422],
    ));
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend(serde_json::to_vec(&order_body()).unwrap());
    cases.push(("a byte-order mark", post(json, bom).await, &[400]));
    cases.push(("an empty body", post(json, Vec::new()).await, &[400]));
    cases.push((
        "truncated JSON",
        post(json, b"{\"items\":[".to_vec()).await,
        &[400],
    ));
    let mut trailing = serde_json::to_vec(&order_body()).unwrap();
    trailing.extend_from_slice(b" {}");
    cases.push(("trailing data", post(json, trailing).await, &[400]));
    for scalar in ["null", "[]", "\"x\"", "1", "true"] {
        cases.push((
            "a JSON scalar or array",
            post(json, scalar.as_bytes().to_vec()).await,
            &[400, 422],
        ));
    }
    cases.push((
        "NUL bytes",
        post(json, b"{\"items\":\0}".to_vec()).await,
        &[400],
    ));
    // Duplicate keys, at the top and nested.
    let duplicate = serde_json::to_string(&order_body()).unwrap().replacen(
        '{',
        "{\"notes\":\"a\",\"notes\":\"b\",",
        1,
    );
    cases.push((
        "duplicate top-level keys",
        post(json, duplicate.into_bytes()).await,
        &[400],
    ));
    let nested_duplicate = serde_json::to_string(&order_body()).unwrap().replace(
        "\"city\":\"Springfield\"",
        "\"city\":\"Springfield\",\"city\":\"Shelbyville\"",
    );
    cases.push((
        "duplicate nested keys",
        post(json, nested_duplicate.into_bytes()).await,
        &[400],
    ));
    // Wrong content types.
    let good = serde_json::to_vec(&order_body()).unwrap();
    for (name, content_type) in [
        ("text/plain", Some("text/plain")),
        ("form", Some("application/x-www-form-urlencoded")),
        ("multipart", Some("multipart/form-data; boundary=x")),
        ("jsonx", Some("application/jsonx")),
        ("xml", Some("application/xml")),
        ("empty", Some("")),
        ("none", None),
    ] {
        let answer = post(content_type, good.clone()).await;
        cases.push((name, answer, &[415]));
    }

    assert!(sent.get() < 60, "{} requests", sent.get());
    for (name, answer, expected) in &cases {
        let Some(answer) = answer else {
            // Cut off while sending: only a body over the limit may be.
            assert!(expected.contains(&413), "{name}: connection closed");
            continue;
        };
        assert!(
            expected.contains(&answer.status),
            "{name}: expected {expected:?}, got {}: {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        );
        assert_eq!(answer.content_type(), "application/problem+json", "{name}");
        assert!(
            answer.body.len() < 4096,
            "{name}: a {}-byte answer",
            answer.body.len()
        );
    }

    // Past the limit on /oauth/token too, never a 5xx: the form is read up to 16 KiB and
    // anything longer is a 413 `invalid_request` OAuth error.
    for size in [300 * 1024, 3 * 1024 * 1024] {
        let form = format!("grant_type=client_credentials&pad={}", "p".repeat(size));
        let answer = send_oversized(
            &server,
            attacker()
                .post(server.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
        )
        .await;
        if let Some(answer) = answer {
            assert_eq!(answer.status, 413, "a {size}-byte form: {}", answer.body);
            assert!(answer.body.contains("invalid_request"), "{}", answer.body);
        }
    }
    // The server is unharmed.
    post(json, serde_json::to_vec(&order_body()).unwrap())
        .await
        .unwrap()
        .expect(201);
    server.get("/health").await.expect(200);
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------------------

/// Connects and sends `head`, then `a`s, one byte every `pace`, forever; returns how long
/// until the server closed the connection (or `limit`) and what it answered.
async fn dribble(
    addr: SocketAddr,
    head: Vec<u8>,
    pace: Duration,
    limit: Duration,
) -> (Duration, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        for byte in head.iter().copied().chain(std::iter::repeat(b'a')) {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(pace).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, reader.read_to_end(&mut answer)).await;
    let elapsed = start.elapsed();
    writing.abort();
    (elapsed, String::from_utf8_lossy(&answer).into_owned())
}

/// Sends `head` at once, then stalls; returns when the server closed (or `limit`).
async fn stall(addr: SocketAddr, head: Vec<u8>, limit: Duration) -> (Duration, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    stream.write_all(&head).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    (
        start.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[tokio::test]
async fn slow_clients_are_cut_off_while_others_are_served() {
    let server = busy_server();
    let key = server.cli().create_key(
        "patient",
        "orders:read,orders:write",
        &["--plan", "enterprise"],
    );
    let addr = server.addr;
    let host = addr.to_string();

    // Slowloris: the request head, one byte every 400 ms (it would take 25 s).
    let head = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nUser-Agent: slowloris\r\nX-Slow: ")
        .into_bytes();
    let slowloris = tokio::spawn(dribble(
        addr,
        head,
        Duration::from_millis(400),
        Duration::from_secs(25),
    ));
    // A slow body: Content-Length 1000, ten bytes sent, then nothing.
    let head = format!(
        "POST /api/orders HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"items\":",
        key.key
    )
    .into_bytes();
    let slow_body = tokio::spawn(stall(addr, head, Duration::from_secs(25)));

    // Meanwhile everyone else is served, promptly.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(11) {
        let before = Instant::now();
        server.get("/health").await.expect(200);
        server
            .send(
                server
                    .http()
                    .get(server.url("/api/orders"))
                    .header("x-api-key", &key.key),
            )
            .await
            .expect(200);
        assert!(
            before.elapsed() < Duration::from_secs(1),
            "slow while slow clients wait"
        );
        served += 2;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served >= 20);

    let (elapsed, answer) = slowloris.await.unwrap();
    eprintln!("slowloris: closed after {elapsed:?}, answer {answer:?}");
    assert!(
        elapsed >= Duration::from_secs(9) && elapsed <= Duration::from_secs(13),
        "slowloris closed after {elapsed:?} (header timeout 10 s)"
    );
    assert!(
        answer.is_empty() || raw_status(&answer) == Some(408),
        "slowloris answered {answer:?}"
    );

    let (elapsed, answer) = slow_body.await.unwrap();
    eprintln!("slow body: closed after {elapsed:?}, answer {answer:?}");
    assert!(
        elapsed >= Duration::from_secs(9) && elapsed <= Duration::from_secs(15),
        "slow body closed after {elapsed:?} (body timeout 10 s)"
    );
    // A body that stops arriving is a 408 (never a 413: its size was fine).
    assert!(
        answer.is_empty() || raw_status(&answer) == Some(408),
        "a stalled body: {answer:?}"
    );
    server.get("/health").await.expect(200);
}

/// A body that stops arriving is a request timeout (408), not a body that is too large.
#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    let server = busy_server();
    let key = server.cli().create_key(
        "patient",
        "orders:read,orders:write",
        &["--plan", "enterprise"],
    );
    let credential = server.cli().create_credential("patient", "orders:write");
    let host = server.addr.to_string();
    let declared = format!(
        "POST /api/orders HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
    );
    // With an API key (the handler reads the body) and with a signature (the
    // authentication layer reads it), side by side.
    let with_key = format!("{declared}X-API-Key: {}\r\n\r\n{{\"items\":", key.key).into_bytes();
    let signed = sign_request(
        Profile::Palisade,
        &credential,
        "POST",
        &server.url("/api/orders"),
        Some("application/json"),
        b"{}",
        SystemTime::now(),
    );
    let mut with_signature = declared;
    for (name, value) in signed
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-type"))
    {
        with_signature.push_str(&format!("{name}: {value}\r\n"));
    }
    with_signature.push_str("\r\n{\"items\":");
    let first = tokio::spawn(stall(server.addr, with_key, Duration::from_secs(25)));
    let second = tokio::spawn(stall(
        server.addr,
        with_signature.into_bytes(),
        Duration::from_secs(25),
    ));
    for task in [first, second] {
        let (elapsed, answer) = task.await.unwrap();
        assert!(elapsed <= Duration::from_secs(15), "{elapsed:?}");
        assert!(
            answer.is_empty() || raw_status(&answer) == Some(408),
            "a stalled body is a request timeout: {answer:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Many connections from one address
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn many_connections_from_one_address_do_not_starve_another() {
    let server = Server::start();
    let addr = server.addr;
    let mut flood = Vec::new();
    for _ in 0..600 {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .unwrap();
        flood.push(socket.connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Another address is served as usual.
    let other = client_from("127.0.0.2".parse().unwrap());
    let before = Instant::now();
    let answer = other.get(server.url("/health")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(before.elapsed() < Duration::from_secs(2));
    // A new connection from the flooding address is closed at once.
    let refused = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(server.url("/health"))
        .send()
        .await;
    assert!(refused.is_err(), "served past the cap: {refused:?}");

    // The excess was closed; the rest is held (until the header timeout).
    let mut checks = tokio::task::JoinSet::new();
    for mut stream in flood {
        checks.spawn(async move {
            let mut byte = [0u8; 1];
            let closed = matches!(
                tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await,
                Ok(Ok(0) | Err(_))
            );
            (closed, stream)
        });
    }
    let mut closed = 0;
    let mut open = Vec::new();
    while let Some(result) = checks.join_next().await {
        let (was_closed, stream) = result.unwrap();
        if was_closed {
            closed += 1;
        } else {
            open.push(stream);
        }
    }
    eprintln!(
        "600 connections from 127.0.0.1: {closed} closed, {} open",
        open.len()
    );
    assert!(closed >= 88, "only {closed} of 600 closed");
    assert!(open.len() <= 512, "{} held open", open.len());
    assert!(open.len() >= 500, "{} held open", open.len());

    // Released: 127.0.0.1 is served again once its connections are gone.
    drop(open);
    let again = common::eventually(Duration::from_secs(3), || async {
        server
            .http()
            .get(server.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(again, "127.0.0.1 not served after its connections closed");
}

// ---------------------------------------------------------------------------------------
// Header injection
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn cr_lf_never_reaches_a_response_header() {
    let server = busy_server();
    let cli = server.cli();
    let key = cli.create_key("inj", "orders:read,orders:write", &["--plan", "enterprise"]);
    let client = cli.create_client("web", "orders:read", &["authorization_code"], &[REDIRECT]);
    cli.create_user("alice", PASSWORD);
    let host = server.addr.to_string();

    // X-Request-Id with CR, LF, CRLF, obs-fold and encoded CRLF: never echoed; the
    // request is refused as malformed or answered with a fresh id.
    for (name, value) in [
        ("bare CR", "abc\rX-Injected: 1"),
        ("bare LF", "abc\nX-Injected: 1"),
        ("CRLF", "abc\r\nX-Injected: 1"),
        ("obs-fold", "abc\r\n X-Injected: 1"),
        ("NUL", "abc\0X-Injected: 1"),
    ] {
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: {host}\r\nX-Request-Id: {value}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw_exchange(&server, None, request.as_bytes(), Duration::from_secs(5)).await;
        let status = raw_status(&answer);
        eprintln!("X-Request-Id with {name}: {status:?}");
        assert!(
            matches!(status, Some(200 | 400)) || answer.is_empty(),
            "{name}: {answer:?}"
        );
        assert!(!raw_has_header(&answer, "x-injected"), "{name}: {answer:?}");
        if let Some(id) = raw_header_lines(&answer)
            .iter()
            .find_map(|l| l.strip_prefix("x-request-id: "))
        {
            // Either the valid prefix a lenient parser split off, or a fresh UUID.
            assert!(
                id == "abc" || uuid::Uuid::parse_str(id).is_ok(),
                "{name}: id {id:?}"
            );
        }
    }
    for value in [
        "abc%0d%0aX-Injected:%201",
        "abc%0AX-Injected",
        "abc\tdef",
        "<script>",
    ] {
        let answer = server
            .send(
                server
                    .http()
                    .get(server.url("/health"))
                    .header("x-request-id", value),
            )
            .await;
        let id = answer.header("x-request-id").unwrap();
        assert!(
            uuid::Uuid::parse_str(id).is_ok(),
            "{value:?} answered with id {id:?}"
        );
        assert!(answer.header("x-injected").is_none());
    }

    // Query parameters with CR/LF, reflected nowhere raw.
    let injected = "%0d%0aSet-Cookie:%20pwn=1%0d%0aX-Injected:%201";
    for path in [
        format!("/api/orders?limit={injected}"),
        format!("/api/orders?cursor={injected}"),
        format!("/api/orders?limit=5&{injected}={injected}"),
        format!("/api/orders/{injected}"),
        format!("/api/{injected}"),
        format!("/{injected}"),
        format!("/health?{injected}"),
        "/%0d%0aLocation:%20https://attacker.example".to_owned(),
        "/api/orders/%E5%98%8A%E5%98%8DSet-Cookie:%20pwn=1".to_owned(),
    ] {
        let answer = server
            .send(
                server
                    .http()
                    .get(server.url(&path))
                    .header("x-api-key", &key.key),
            )
            .await;
        assert!(
            answer.status < 500,
            "{path}: {} {}",
            answer.status,
            answer.body
        );
        assert!(answer.header("set-cookie").is_none(), "{path}");
        assert!(answer.header("x-injected").is_none(), "{path}");
        assert!(answer.header("location").is_none(), "{path}");
        assert!(
            !answer.body.contains('\r') && !answer.body.contains('\n'),
            "{path}: {:?}",
            answer.body
        );
        for (name, value) in &answer.headers {
            let bytes = value.as_bytes();
            assert!(
                !bytes.contains(&b'\r') && !bytes.contains(&b'\n'),
                "{path}: {name}"
            );
        }
    }
    // A raw CR or LF in the request line is malformed.
    for target in [
        "/api/orders\rSet-Cookie: pwn=1",
        "/health?a=\nX-Injected: 1",
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(&server, None, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(
            matches!(raw_status(&answer), Some(400 | 404)) || answer.is_empty(),
            "{target:?}: {answer:?}"
        );
        assert!(
            !raw_has_header(&answer, "set-cookie") && !raw_has_header(&answer, "x-injected"),
            "{answer:?}"
        );
    }

    // The state of /oauth/authorize: the redirect stays one Location header, the state
    // round-trips exactly, and nothing else is added.
    let (_, challenge) = pkce();
    for state in [
        "abc\r\nSet-Cookie: pwn=1",
        "abc\nLocation: https://attacker.example",
        "\r\n\r\n<html>pwn</html>",
        "abc%0d%0aSet-Cookie:%20pwn=1",
        "é\u{2028}\u{85}",
    ] {
        for scope in ["orders:read", "admin"] {
            let answer = server
                .send(
                    server
                        .http()
                        .get(server.url("/oauth/authorize"))
                        .query(&[
                            ("response_type", "code"),
                            ("client_id", client.client_id.as_str()),
                            ("redirect_uri", REDIRECT),
                            ("scope", scope),
                            ("state", state),
                            ("code_challenge", challenge.as_str()),
                            ("code_challenge_method", "S256"),
                        ])
                        .header("authorization", basic("alice", PASSWORD)),
                )
                .await;
            assert_eq!(
                answer.status, 302,
                "state {state:?} scope {scope}: {}",
                answer.body
            );
            assert_eq!(answer.headers.get_all("location").iter().count(), 1);
            assert!(answer.header("set-cookie").is_none());
            let location = answer.header("location").unwrap();
            assert!(!location.contains(['\r', '\n', ' ']), "{location:?}");
            assert!(
                location.starts_with(&format!("{REDIRECT}?")),
                "{location:?}"
            );
            let url = url::Url::parse(location).unwrap();
            let states: Vec<String> = url
                .query_pairs()
                .filter(|(n, _)| n == "state")
                .map(|(_, v)| v.into_owned())
                .collect();
            assert_eq!(states, [state.to_owned()], "{location:?}");
        }
    }
    // CR/LF in the redirect URI: answered directly, never redirected.
    let answer = server
        .send(
            server
                .http()
                .get(server.url("/oauth/authorize"))
                .query(&[
                    ("response_type", "code"),
                    ("client_id", client.client_id.as_str()),
                    ("redirect_uri", &format!("{REDIRECT}\r\nSet-Cookie: pwn=1")),
                    ("scope", "orders:read"),
                    ("state", "s"),
                    ("code_challenge", challenge.as_str()),
                    ("code_challenge_method", "S256"),
                ])
                .header("authorization", basic("alice", PASSWORD)),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.header("location").is_none() && answer.header("set-cookie").is_none());

    register_stored_secrets(&server, &[&key]);
    server.assert_no_secret_leaks();
}

// ---------------------------------------------------------------------------------------
// Secrets, sent and stored
// ---------------------------------------------------------------------------------------

/// Every kind of credential, good and bad, on every surface: no answer other than the one
/// that issued a secret, and no log line, holds it.
#[tokio::test]
async fn no_secret_sent_or_stored_appears_in_any_answer_or_log_line() {
    let server = busy_server();
    let cli = server.cli();
    let key = cli.create_key(
        "leaky",
        "orders:read,orders:write",
        &["--plan", "enterprise"],
    );
    let client = cli.create_client("leaky", "orders:read", &["client_credentials"], &[]);
    let credential = cli.create_credential("leaky", "orders:read,orders:write,admin");
    cli.create_user("leaky-user", PASSWORD);
    let token = server.client_credentials(&client, None).await;
    register_stored_secrets(&server, &[&key]);
    let orders = server.url("/api/orders");

    // Good credentials on good and bad requests (errors must not echo them either).
    for path in [
        "/api/orders",
        "/api/orders/ord_missing",
        "/api/orders?limit=1000",
        "/api/orders?cursor=forged",
    ] {
        server
            .send(
                server
                    .http()
                    .get(server.url(path))
                    .header("x-api-key", &key.key),
            )
            .await;
        server
            .send(server.http().get(server.url(path)).bearer_auth(&token))
            .await;
    }
    let mut invalid = order_body();
    invalid["items"][0]["quantity"] = json!(0);
    invalid["notes"] = json!(key.key.clone());
    invalid["metadata"] = json!({"secret": credential.secret.clone(), "$where": token.clone()});
    let answer = server
        .send(
            server
                .http()
                .post(&orders)
                .header("x-api-key", &key.key)
                .json(&invalid),
        )
        .await;
    answer.problem(422);
    // Ambiguous credentials: two kinds at once.
    let answer = server
        .send(
            server
                .http()
                .get(&orders)
                .header("x-api-key", &key.key)
                .bearer_auth(&token),
        )
        .await;
    answer.problem(400);
    // Bad credentials that look like good ones (near-misses must not be echoed).
    let near_key = format!("{}{}", key.key.get(..key.key.len() - 1).unwrap(), "Z");
    let near_token = format!("{}x", token.get(..token.len() - 1).unwrap());
    server.secret(&near_key);
    server.secret(&near_token);
    server
        .send(attacker().get(&orders).header("x-api-key", &near_key))
        .await
        .problem(401);
    server
        .send(attacker().get(&orders).bearer_auth(&near_token))
        .await
        .problem(401);
    // OAuth: a wrong secret, a right one in the wrong place, introspection and revocation.
    let wrong_secret = format!("{}-wrong", client.client_secret);
    server.secret(&wrong_secret);
    server
        .send(
            attacker()
                .post(server.url("/oauth/token"))
                .basic_auth(&client.client_id, Some(&wrong_secret))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await
        .oauth_error(401, "invalid_client");
    let introspected = server
        .send(
            server
                .http()
                .post(server.url("/oauth/introspect"))
                .basic_auth(&client.client_id, Some(&client.client_secret))
                .form(&[("token", token.as_str())]),
        )
        .await;
    introspected.expect(200);
    server
        .send(
            server
                .http()
                .post(server.url("/oauth/revoke"))
                .basic_auth(&client.client_id, Some(&client.client_secret))
                .form(&[("token", token.as_str())]),
        )
        .await;
    server
        .send(attacker().get(&orders).bearer_auth(&token))
        .await
        .problem(401);
    // A user's password, wrong and right, on the authorization endpoint.
    let wrong_password = format!("{PASSWORD}-wrong");
    server.secret(&wrong_password);
    server
        .send(
            attacker()
                .get(server.url("/oauth/authorize"))
                .query(&[
                    ("response_type", "code"),
                    ("client_id", client.client_id.as_str()),
                ])
                .header("authorization", basic("leaky-user", &wrong_password)),
        )
        .await;
    // Signatures: a good admin request, a tampered one, and the admin listing.
    let listed = server
        .send(common::signed(
            server.http(),
            Profile::Rfc9421,
            &credential,
            Method::GET,
            &server.url("/admin/keys"),
            None,
        ))
        .await;
    listed.expect(200);
    let mut tampered = sign_request(
        Profile::Palisade,
        &credential,
        "GET",
        &orders,
        None,
        b"",
        SystemTime::now(),
    );
    tampered.retain(|(n, _)| !n.eq_ignore_ascii_case("x-test-nonce"));
    let answer = attack(
        &server,
        Method::GET,
        &orders,
        &raw_headers(&tampered),
        Vec::new(),
    )
    .await;
    answer.problem(401);
    // Public documents.
    for path in [
        "/health",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/openapi.json",
    ] {
        server.get(path).await.expect(200);
    }
    // The metrics listener.
    let metrics = server
        .http()
        .get(&server.metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.record_raw(&metrics);

    let checked = server.assert_no_secret_leaks();
    assert!(checked >= 12, "{checked} secrets checked");
    // The log shows the failures happened (so the check above looked at real lines).
    let logs = server.log_lines().join("\n");
    assert!(logs.contains("auth_failure"), "no auth_failure in the log");
}
