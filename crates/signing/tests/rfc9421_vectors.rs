//! RFC 9421 Appendix B test vectors (keys from B.1, messages from B.2), byte for byte,
//! and RFC 9530 Content-Digest. Source: RFC 9421 (IETF Trust, BSD licence), as also
//! used by pyauth/http-message-signatures `test/test.py`.

// Helpers outside #[test] functions unwrap too: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use palisade_signing::{
    ErrorKind, KeyMaterial, Request, Response, Rfc9421Algorithm, Rfc9421Key, Rfc9421Signer, Secret,
    content_digest, parse_signature_input, verify_content_digest, verify_request_signature,
    verify_response,
};

const SHARED_SECRET_B64: &str =
    "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";
const ED25519_D: &str = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU";
const ED25519_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";
const P256_D: &str = "UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs";
const P256_X: &str = "qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA";
const P256_Y: &str = "Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0";
const CREATED: u64 = 1_618_884_473;
const BODY: &[u8] = br#"{"hello": "world"}"#;

fn created() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(CREATED)
}

/// The test request of RFC 9421 Appendix B.2.
fn test_request() -> Request<'static> {
    Request::new("POST", "/foo?param=Value&Pet=dog")
        .header("Host", "example.com")
        .header("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
        .header("Content-Type", "application/json")
        .header(
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        )
        .header("Content-Length", "18")
        .body(BODY)
}

fn with(request: &Request<'static>, added: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let _ = request;
    (
        added.iter().map(|(n, _)| n.clone()).collect(),
        added.iter().map(|(_, v)| v.clone()).collect(),
    )
}

#[test]
fn b_2_5_hmac_sha256_byte_for_byte() {
    let secret = Secret::new(STANDARD.decode(SHARED_SECRET_B64).unwrap());
    let signer = Rfc9421Signer::new("test-shared-secret", Rfc9421Key::HmacSha256(secret.clone()))
        .label("sig-b25")
        .include_alg(false)
        .cover("date")
        .cover("@authority")
        .cover("content-type");
    let request = test_request();
    let added = signer.sign_request(&request, created()).unwrap();
    assert_eq!(
        added[0],
        (
            "Signature-Input".to_owned(),
            r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#.to_owned()
        )
    );
    assert_eq!(
        added[1],
        (
            "Signature".to_owned(),
            "sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:".to_owned()
        )
    );
    let (names, values) = with(&request, &added);
    let mut signed = request.clone();
    for (n, v) in names.iter().zip(&values) {
        signed.push_header(n, v);
    }
    let params = verify_request_signature(&signed, None, &KeyMaterial::Secret(secret)).unwrap();
    assert_eq!(params.keyid.as_deref(), Some("test-shared-secret"));
    assert_eq!(params.created, Some(1_618_884_473));
    // Wrong key: mismatch.
    let other = KeyMaterial::Secret(Secret::from("another secret"));
    assert_eq!(
        verify_request_signature(&signed, None, &other)
            .unwrap_err()
            .kind(),
        ErrorKind::SignatureMismatch
    );
}

#[test]
fn b_2_6_ed25519_byte_for_byte() {
    let seed = URL_SAFE_NO_PAD.decode(ED25519_D).unwrap();
    let key = Rfc9421Key::ed25519_from_seed(&seed).unwrap();
    let public: [u8; 32] = URL_SAFE_NO_PAD
        .decode(ED25519_X)
        .unwrap()
        .try_into()
        .unwrap();
    assert!(matches!(key.verifying_key(), KeyMaterial::Ed25519(pk) if pk == public));
    let signer = Rfc9421Signer::new("test-key-ed25519", key)
        .label("sig-b26")
        .include_alg(false)
        .cover("date")
        .cover("@method")
        .cover("@path")
        .cover("@authority")
        .cover("content-type")
        .cover("content-length");
    let request = test_request();
    let added = signer.sign_request(&request, created()).unwrap();
    assert_eq!(
        added[0].1,
        r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#
    );
    assert_eq!(
        added[1].1,
        "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"
    );
    let mut signed = request.clone();
    for (n, v) in &added {
        signed.push_header(n, v);
    }
    verify_request_signature(&signed, Some("sig-b26"), &KeyMaterial::Ed25519(public)).unwrap();
    // A tampered method fails.
    let mut tampered = signed.clone();
    tampered = Request::new("PUT", tampered.target()).body(BODY);
    for (n, v) in signed.headers() {
        tampered.push_header(n, v);
    }
    assert_eq!(
        verify_request_signature(&tampered, None, &KeyMaterial::Ed25519(public))
            .unwrap_err()
            .kind(),
        ErrorKind::SignatureMismatch
    );
}

fn p256_public() -> KeyMaterial {
    let mut sec1 = vec![4u8];
    sec1.extend(URL_SAFE_NO_PAD.decode(P256_X).unwrap());
    sec1.extend(URL_SAFE_NO_PAD.decode(P256_Y).unwrap());
    KeyMaterial::EcdsaP256(sec1)
}

/// B.2.4: ECDSA is randomized, so the published signature is verified (and ours is
/// verified too), over the test response.
#[test]
fn b_2_4_ecdsa_p256_response() {
    let base_response = || {
        Response::new(200)
            .header("Date", "Tue, 20 Apr 2021 02:07:56 GMT")
            .header("Content-Type", "application/json")
            .header(
                "Content-Digest",
                "sha-512=:JlEy2bfUz7WrWIjc1qV6KVLpdr/7L5/L4h7Sxvh6sNHpDQWDCL+GauFQWcZBvVDhiyOnAQsxzZFYwi0wDH+1pw==:",
            )
            .header("Content-Length", "23")
            .body(br#"{"message": "good dog"}"#)
    };
    let published = base_response()
        .header(
            "Signature-Input",
            r#"sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#,
        )
        .header(
            "Signature",
            "sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:",
        );
    let key = p256_public();
    // Published in RFC 9421 B.2.4.
    let rfc = base_response()
        .header(
            "Signature-Input",
            r#"sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#,
        )
        .header(
            "Signature",
            "sig-b24=:0Ry6HsvzS5VmA6HlfBYS/fYYeNs7fYuA7s0tAdxfUlPGv0CSVuwrrzBOjcCFHTxVRJ01wjvSzM2BetJauj8dsw==:",
        );
    let params = verify_response(&rfc, None, &key).unwrap();
    assert_eq!(params.label, "sig-b24");
    // A signature made for other bytes does not verify.
    assert_eq!(
        verify_response(&published, None, &key).unwrap_err().kind(),
        ErrorKind::SignatureMismatch
    );
    // Our own signature with the B.1.3 private key verifies with the public key.
    let signer = Rfc9421Signer::new(
        "test-key-ecc-p256",
        Rfc9421Key::ecdsa_p256_from_scalar(&URL_SAFE_NO_PAD.decode(P256_D).unwrap()).unwrap(),
    )
    .label("sig-b24")
    .include_alg(false)
    .cover("@status")
    .cover("content-type")
    .cover("content-digest")
    .cover("content-length");
    let response = base_response();
    let added = signer.sign_response(&response, created()).unwrap();
    assert_eq!(
        added[0].1,
        r#"sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#
    );
    let mut signed = response.clone();
    for (n, v) in &added {
        signed = signed.header(n, v);
    }
    verify_response(&signed, None, &key).unwrap();
    // CVE-2022-21449: an all-zero ECDSA signature never verifies.
    let zero = base_response()
        .header(
            "Signature-Input",
            r#"sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#,
        )
        .header("Signature", &*Box::leak(format!("sig-b24=:{}:", STANDARD.encode([0u8; 64])).into_boxed_str()));
    assert_eq!(
        verify_response(&zero, None, &key).unwrap_err().kind(),
        ErrorKind::SignatureMismatch
    );
}

#[test]
fn b_2_1_signature_input_parses_with_nonce() {
    let parsed = parse_signature_input(
        r#"sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd""#,
    )
    .unwrap();
    assert_eq!(parsed[0].components.len(), 0);
    assert_eq!(parsed[0].nonce.as_deref(), Some("b3k2pp5k7z-50gnwp.yemd"));
    let parsed = parse_signature_input(
        r#"sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss""#,
    )
    .unwrap();
    assert_eq!(parsed[0].components[3], "\"@query\"");
}

#[test]
fn rfc9530_content_digest() {
    assert_eq!(
        content_digest(BODY),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
    // The RFC 9421 test request's sha-512 digest matches its body.
    verify_content_digest(
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        BODY,
    )
    .unwrap();
    assert_eq!(
        verify_content_digest(&content_digest(b"other"), BODY)
            .unwrap_err()
            .kind(),
        ErrorKind::BodyHashMismatch
    );
    assert_eq!(
        verify_content_digest("md5=:AAAA:", BODY)
            .unwrap_err()
            .kind(),
        ErrorKind::BodyHashMismatch
    );
    assert_eq!(
        verify_content_digest("sha-256=AAAA", BODY)
            .unwrap_err()
            .kind(),
        ErrorKind::MalformedSignatureInput
    );
}

/// B.1.4 and B.1.3's public keys as the RFC prints them (PEM SubjectPublicKeyInfo), read
/// the way `palisade credentials create --public-key` reads a file.
const ED25519_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
";
const P256_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----
";

#[test]
fn public_keys_read_from_pem() {
    let ed = KeyMaterial::from_public_key_pem(ED25519_PUBLIC_PEM).unwrap();
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(ED25519_X)
        .unwrap()
        .try_into()
        .unwrap();
    assert!(matches!(ed, KeyMaterial::Ed25519(pk) if pk == x));
    assert_eq!(Rfc9421Algorithm::for_key(&ed), Rfc9421Algorithm::Ed25519);
    let ec = KeyMaterial::from_public_key_pem(P256_PUBLIC_PEM).unwrap();
    match (&ec, p256_public()) {
        (KeyMaterial::EcdsaP256(got), KeyMaterial::EcdsaP256(want)) => assert_eq!(*got, want),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Rfc9421Algorithm::for_key(&ec),
        Rfc9421Algorithm::EcdsaP256Sha256
    );

    // Other key types, private keys and damaged PEM are refused.
    let rsa = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCxTlF4ZXXC1icWoF3MoPFqbwAs
eDlapaDi2G69ohngbts4J0q+JSIjuhJywBrtG44F69tgKHHwrv5n3vZdyu6+mIgy
GCK8iFsnGTUJkWvbxfrmplN0o+wi3f6REfSTIfEJwYRF4fS5hP046qLLN82fwCtW
ivFENjIAHAmijsFCfwIDAQAB
-----END PUBLIC KEY-----
";
    let ed_private = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
";
    let truncated = ED25519_PUBLIC_PEM.replace("0bs=", "");
    for pem in [rsa, ed_private, truncated.as_str(), "", "not a key"] {
        let error = KeyMaterial::from_public_key_pem(pem).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidKey, "{pem}");
    }
}

/// B.1.4 and B.1.3's private keys as PEM (PKCS#8 for Ed25519, SEC1 and PKCS#8 for P-256,
/// the forms OpenSSL writes), read the way `palisade sign --private-key` reads a file.
#[test]
fn private_keys_read_from_pem() {
    let ed = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
";
    let key = Rfc9421Key::from_private_key_pem(ed).unwrap();
    assert_eq!(key.algorithm(), Rfc9421Algorithm::Ed25519);
    match (
        key.verifying_key(),
        KeyMaterial::from_public_key_pem(ED25519_PUBLIC_PEM).unwrap(),
    ) {
        (KeyMaterial::Ed25519(got), KeyMaterial::Ed25519(want)) => assert_eq!(got, want),
        other => panic!("{other:?}"),
    }
    let sec1 = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49
AwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM
4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END EC PRIVATE KEY-----
";
    let pkcs8 = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUpuF81l+kOxbjf7T
4mNSv0r5tN67Gim7rnf6EFpcYDuhRANCAASohVhlUsKs9kcYeM/XsJNbT/4P0t/D
QSSOoXvEHgWK8DHOJzfS0wzgYX6FHoPGHvVnnRUYZ2V2SQNdkKdM2ehd
-----END PRIVATE KEY-----
";
    for pem in [sec1, pkcs8] {
        let key = Rfc9421Key::from_private_key_pem(pem).unwrap();
        assert_eq!(key.algorithm(), Rfc9421Algorithm::EcdsaP256Sha256);
        match (key.verifying_key(), p256_public()) {
            (KeyMaterial::EcdsaP256(got), KeyMaterial::EcdsaP256(want)) => assert_eq!(got, want),
            other => panic!("{other:?}"),
        }
    }
    for pem in [
        ED25519_PUBLIC_PEM,
        P256_PUBLIC_PEM,
        "",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        let error = Rfc9421Key::from_private_key_pem(pem)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidKey, "{pem}");
    }
}
