//! Server-side verification: each rejection the issue names, in a named test, for the
//! palisade, aws4 and rfc9421 profiles; interoperability with the `aws-sigv4` crate; the
//! `+` policy; the Redis nonce store against the real Redis.

// Helpers outside #[test] functions unwrap too: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use palisade_signing::{
    Credential, ErrorKind, KeyMaterial, MasterKey, MemoryCredentialStore, MemoryNonceStore,
    PlusPolicy, Request, Rfc9421Key, Rfc9421Policy, Rfc9421Signer, Secret, SigV4Profile,
    SigningCredential, Verifier, content_digest, presign, sign,
};

const AKID: &str = "AKIDPALISADE1";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const BODY: &[u8] = br#"{"items":[{"product_id":"prod_1","quantity":2}]}"#;

fn now() -> SystemTime {
    // 2026-11-27T12:00:00Z
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_780_800)
}

fn store() -> MemoryCredentialStore {
    let store = MemoryCredentialStore::new(MasterKey::generate());
    store
        .insert(Credential {
            access_key_id: AKID.into(),
            owner: "acme".into(),
            scopes: vec!["orders:read".into(), "orders:write".into()],
            key: KeyMaterial::Secret(Secret::from(SECRET)),
        })
        .unwrap();
    store
}

fn verifier() -> Verifier<MemoryCredentialStore, MemoryNonceStore> {
    Verifier::new(store(), MemoryNonceStore::new())
}

fn client() -> SigningCredential {
    SigningCredential::new(AKID, Secret::from(SECRET))
}

fn base_request() -> Request<'static> {
    Request::new("POST", "/api/orders?dry_run=1")
        .header("Host", "api.example.com")
        .header("Content-Type", "application/json")
        .body(BODY)
}

/// Signs `request` and returns owned headers to attach.
fn signed_headers(
    profile: &SigV4Profile,
    request: &Request<'_>,
    at: SystemTime,
) -> Vec<(String, String)> {
    sign(profile, &client(), request, at).unwrap()
}

fn attach<'a>(request: &Request<'a>, added: &'a [(String, String)]) -> Request<'a> {
    let mut r = request.clone();
    for (n, v) in added {
        r.push_header(n, v);
    }
    r
}

#[tokio::test]
async fn palisade_profile_accepts_a_signed_request_and_reports_the_owner() {
    let profile = SigV4Profile::palisade();
    let added = signed_headers(&profile, &base_request(), now());
    assert!(added[0].1.starts_with(&format!(
        "PALISADE-HMAC-SHA256 Credential={AKID}/20261127/api/request, SignedHeaders=content-type;host;x-palisade-date, Signature="
    )));
    assert_eq!(
        added[1],
        ("X-Palisade-Date".into(), "20261127T120000Z".into())
    );
    let request = attach(&base_request(), &added);
    let v = verifier().verify(&profile, &request, now()).await.unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.owner, "acme");
    assert_eq!(v.scopes, ["orders:read", "orders:write"]);
    assert_eq!(v.profile, "palisade");
    assert_eq!(v.signed_at, now());
}

#[tokio::test]
async fn replay_is_rejected() {
    for profile in [
        SigV4Profile::palisade(),
        SigV4Profile::aws4("us-east-1", "execute-api"),
    ] {
        let added = signed_headers(&profile, &base_request(), now());
        let request = attach(&base_request(), &added);
        let verifier = verifier();
        verifier.verify(&profile, &request, now()).await.unwrap();
        let e = verifier
            .verify(&profile, &request, now() + Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Replay);
        assert_eq!(e.code(), "replay");
    }
}

#[tokio::test]
async fn unauthenticated_traffic_does_not_fill_the_nonce_store() {
    let profile = SigV4Profile::palisade();
    let nonces = std::sync::Arc::new(MemoryNonceStore::new());
    let verifier = Verifier::new(store(), nonces.clone());
    for i in 0..20u8 {
        let bogus = format!(
            "PALISADE-HMAC-SHA256 Credential={AKID}/20261127/api/request, SignedHeaders=host;x-palisade-date, Signature={i:064x}"
        );
        let r = Request::new("GET", "/")
            .header("Host", "h")
            .header("X-Palisade-Date", "20261127T120000Z")
            .header("Authorization", &bogus);
        let e = verifier.verify(&profile, &r, now()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    }
    assert!(nonces.is_empty());
}

#[tokio::test]
async fn clock_skew_is_rejected() {
    let profile = SigV4Profile::palisade();
    let signed_at = now() - Duration::from_secs(301);
    let added = signed_headers(&profile, &base_request(), signed_at);
    let request = attach(&base_request(), &added);
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RequestTimeTooSkewed);
    assert_eq!(e.aws_code(), "RequestTimeTooSkewed");
    // Signed in the future beyond the window, too.
    let added = signed_headers(&profile, &base_request(), now() + Duration::from_secs(301));
    let request = attach(&base_request(), &added);
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RequestTimeTooSkewed);
    // Inside the window it passes.
    let added = signed_headers(&profile, &base_request(), now() - Duration::from_secs(299));
    let request = attach(&base_request(), &added);
    verifier().verify(&profile, &request, now()).await.unwrap();
}

#[tokio::test]
async fn tampered_body_is_rejected() {
    for profile in [
        SigV4Profile::palisade(),
        SigV4Profile::aws4("us-east-1", "execute-api"),
    ] {
        let added = signed_headers(&profile, &base_request(), now());
        let tampered =
            base_request().body(br#"{"items":[{"product_id":"prod_1","quantity":999}]}"#);
        let request = attach(&tampered, &added);
        let e = verifier()
            .verify(&profile, &request, now())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SignatureMismatch, "{}", profile.name());
    }
    // S3 declares the hash in x-amz-content-sha256: a different body is a hash mismatch.
    let s3 = SigV4Profile::aws4("us-east-1", "s3");
    let added = signed_headers(&s3, &base_request(), now());
    let request = attach(&base_request().body(b"other"), &added);
    let e = verifier().verify(&s3, &request, now()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BodyHashMismatch);
    assert_eq!(e.aws_code(), "XAmzContentSHA256Mismatch");
}

#[tokio::test]
async fn tampered_header_is_rejected_with_owner_only_debug_details() {
    let profile = SigV4Profile::palisade();
    let request = base_request().header("X-Tenant", "a");
    let added = signed_headers(&profile, &request, now());
    let tampered = base_request().header("X-Tenant", "b");
    let request = attach(&tampered, &added);
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    assert_eq!(e.aws_code(), "SignatureDoesNotMatch");
    let details = e.mismatch_details().unwrap();
    assert_eq!(details.owner, "acme");
    assert!(details.canonical_request.contains("x-tenant:b"));
    assert!(
        details
            .string_to_sign
            .starts_with("PALISADE-HMAC-SHA256\n20261127T120000Z\n")
    );
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET));
    // A tampered path too.
    let added = signed_headers(&profile, &base_request(), now());
    let moved = Request::new("POST", "/api/admin?dry_run=1")
        .header("Host", "api.example.com")
        .header("Content-Type", "application/json")
        .body(BODY);
    let e = verifier()
        .verify(&profile, &attach(&moved, &added), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
}

#[tokio::test]
async fn wrong_credential_scope_is_rejected() {
    // Signed for another region/service than the verifier expects.
    let signer_profile = SigV4Profile::aws4("eu-west-1", "execute-api");
    let added = signed_headers(&signer_profile, &base_request(), now());
    let request = attach(&base_request(), &added);
    let expected = SigV4Profile::aws4("us-east-1", "execute-api");
    let e = verifier()
        .verify(&expected, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidScope);
    // The credential date must match the timestamp.
    let profile = SigV4Profile::palisade();
    let added = signed_headers(&profile, &base_request(), now());
    let forged_auth = added[0].1.replace("/20261127/", "/20261126/");
    let request = base_request()
        .header("Authorization", &forged_auth)
        .header("X-Palisade-Date", &added[1].1);
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidScope);
    // A palisade signature is not an aws4 one.
    let request = attach(&base_request(), &added);
    let e = verifier()
        .verify(&expected, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
}

#[tokio::test]
async fn unsigned_required_header_is_rejected() {
    let profile = SigV4Profile::palisade();
    // Signed without content-type, then content-type added: not signed.
    let bare = Request::new("POST", "/api/orders")
        .header("Host", "h")
        .body(BODY);
    let e = sign(&profile, &client(), &bare, now()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingHeader);
    // Forge a header that leaves host out of SignedHeaders.
    let added = signed_headers(&profile, &base_request(), now());
    let forged = added[0].1.replace(
        "content-type;host;x-palisade-date",
        "content-type;x-palisade-date",
    );
    let request = base_request()
        .header("Authorization", &forged)
        .header("X-Palisade-Date", &added[1].1);
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsignedRequiredHeader);
    let forged = added[0]
        .1
        .replace("content-type;host;x-palisade-date", "host;x-palisade-date");
    let request = base_request()
        .header("Authorization", &forged)
        .header("X-Palisade-Date", &added[1].1);
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsignedRequiredHeader);
}

#[tokio::test]
async fn unknown_credential_and_missing_signature() {
    let profile = SigV4Profile::palisade();
    let other = SigningCredential::new("AKIDOTHER", Secret::from(SECRET));
    let added = sign(&profile, &other, &base_request(), now()).unwrap();
    let e = verifier()
        .verify(&profile, &attach(&base_request(), &added), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownCredential);
    assert_eq!(e.aws_code(), "InvalidAccessKeyId");
    let e = verifier()
        .verify(&profile, &base_request(), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingSignature);
}

#[tokio::test]
async fn presigned_urls_verify_once_and_expire() {
    for profile in [
        SigV4Profile::palisade(),
        SigV4Profile::aws4("us-east-1", "s3"),
    ] {
        let request = Request::new("GET", "/bucket/key.txt").header("Host", "files.example.com");
        let target = presign(
            &profile,
            &client(),
            &request,
            now(),
            Duration::from_secs(60),
        )
        .unwrap();
        let presigned = Request::new("GET", &target).header("Host", "files.example.com");
        let verifier = verifier();
        let v = verifier
            .verify(&profile, &presigned, now() + Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(v.owner, "acme");
        let e = verifier
            .verify(&profile, &presigned, now())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Replay);
        let e = super_verifier()
            .verify(&profile, &presigned, now() + Duration::from_secs(61))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Expired);
        // AWS allows reuse until expiry when asked.
        let reuse = super_verifier().presigned_reuse(true);
        reuse.verify(&profile, &presigned, now()).await.unwrap();
        reuse.verify(&profile, &presigned, now()).await.unwrap();
        // A tampered query fails.
        let tampered = target.replace("key.txt", "other.txt");
        let r = Request::new("GET", &tampered).header("Host", "files.example.com");
        let e = super_verifier()
            .verify(&profile, &r, now())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    }
}

fn super_verifier() -> Verifier<MemoryCredentialStore, MemoryNonceStore> {
    verifier()
}

#[tokio::test]
async fn unsigned_payload_only_when_allowed() {
    let signer = SigV4Profile::aws4("us-east-1", "s3").unsigned_payload(true);
    let added = signed_headers(&signer, &base_request(), now());
    assert!(
        added
            .iter()
            .any(|(n, v)| n == "X-Amz-Content-Sha256" && v == "UNSIGNED-PAYLOAD")
    );
    let request = attach(&base_request(), &added);
    verifier().verify(&signer, &request, now()).await.unwrap();
    let strict = SigV4Profile::aws4("us-east-1", "s3");
    let e = verifier()
        .verify(&strict, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BodyHashMismatch);
}

fn aws_sigv4_crate_headers(target: &str, body: &[u8]) -> Vec<(String, String)> {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = Credentials::new(AKID, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("execute-api")
        .time(now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("https://api.example.com{target}");
    let headers = [
        ("host", "api.example.com"),
        ("content-type", "application/json"),
    ];
    let signable =
        SignableRequest::new("POST", &url, headers.into_iter(), SignableBody::Bytes(body)).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect()
}

#[tokio::test]
async fn requests_signed_by_the_aws_sigv4_crate_verify() {
    let profile = SigV4Profile::aws4("us-east-1", "execute-api");
    let target = "/api/orders?b=2&a=1";
    let added = aws_sigv4_crate_headers(target, BODY);
    let request = Request::new("POST", target)
        .header("host", "api.example.com")
        .header("content-type", "application/json")
        .body(BODY);
    let v = verifier()
        .verify(&profile, &attach(&request, &added), now())
        .await
        .unwrap();
    assert_eq!(v.profile, "aws4");
    // Our own signature for the same request is identical.
    let ours = signed_headers(&profile, &request, now());
    let theirs = added.iter().find(|(n, _)| n == "authorization").unwrap();
    assert_eq!(ours[0].1, theirs.1);
}

#[tokio::test]
async fn plus_policy_is_explicit() {
    // The aws-sigv4 crate reads `+` as a space; botocore keeps it.
    let target = "/api/search?q=a+b";
    let added = aws_sigv4_crate_headers(target, BODY);
    let request = Request::new("POST", target)
        .header("host", "api.example.com")
        .header("content-type", "application/json")
        .body(BODY);
    let signed = attach(&request, &added);
    let literal = SigV4Profile::aws4("us-east-1", "execute-api");
    let e = verifier()
        .verify(&literal, &signed, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    assert!(
        e.mismatch_details()
            .unwrap()
            .canonical_request
            .contains("\nq=a+b\n")
    );
    let space = literal.clone().plus_policy(PlusPolicy::Space);
    verifier().verify(&space, &signed, now()).await.unwrap();
    // Under the default policy, `+`, `%2B` and `%20` canonicalize differently.
    let canon = |t: &str| {
        literal
            .canonical_request(&Request::new("GET", t).header("host", "h"), &["host"], "x")
            .unwrap()
    };
    assert_ne!(canon("/?q=a+b"), canon("/?q=a%2Bb"));
    assert_ne!(canon("/?q=a+b"), canon("/?q=a%20b"));
    assert_eq!(canon("/?q=a%2bb"), canon("/?q=a%2Bb"));
}

#[tokio::test]
async fn oversized_and_duplicated_authorization_are_typed_errors() {
    let profile = SigV4Profile::palisade();
    let added = signed_headers(&profile, &base_request(), now());
    let request = attach(&base_request(), &added).header("Authorization", &added[0].1);
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MalformedAuthorization);
    let huge = "x".repeat(10_000);
    let request = base_request()
        .header("Authorization", &huge)
        .header("X-Palisade-Date", "20261127T120000Z");
    let e = verifier()
        .verify(&profile, &request, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MalformedAuthorization);
}

// ---------------------------------------------------------------------------------------
// RFC 9421 under the server's policy.

fn rfc_signer() -> Rfc9421Signer {
    Rfc9421Signer::new(AKID, Rfc9421Key::HmacSha256(Secret::from(SECRET)))
        .cover("@method")
        .cover("@authority")
        .cover("@path")
        .cover("@query")
        .cover("content-digest")
}

#[tokio::test]
async fn rfc9421_profile_accepts_and_rejects() {
    let digest = content_digest(BODY);
    let request = base_request().header("Content-Digest", &digest);
    let added = rfc_signer().sign_request(&request, now()).unwrap();
    let signed = attach(&request, &added);
    let policy = Rfc9421Policy::palisade();
    let verifier = verifier();
    let v = verifier
        .verify_rfc9421(&policy, &signed, now())
        .await
        .unwrap();
    assert_eq!((v.profile, v.owner.as_str()), ("rfc9421", "acme"));
    // Replay.
    let e = verifier
        .verify_rfc9421(&policy, &signed, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Replay);
    // Skew.
    let e = super_verifier()
        .verify_rfc9421(&policy, &signed, now() + Duration::from_secs(301))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RequestTimeTooSkewed);
    // Tampered body: the digest no longer matches.
    let tampered = attach(&request.clone().body(b"{}"), &added);
    let e = super_verifier()
        .verify_rfc9421(&policy, &tampered, now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BodyHashMismatch);
    // Tampered header (authority).
    let moved = Request::new("POST", "/api/orders?dry_run=1")
        .header("Host", "evil.example.com")
        .header("Content-Type", "application/json")
        .header("Content-Digest", &digest)
        .body(BODY);
    let e = super_verifier()
        .verify_rfc9421(&policy, &attach(&moved, &added), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    // Unsigned required component: no content-digest covered while there is a body.
    let weak = Rfc9421Signer::new(AKID, Rfc9421Key::HmacSha256(Secret::from(SECRET)))
        .cover("@method")
        .cover("@authority")
        .cover("@path")
        .cover("@query");
    let added = weak.sign_request(&request, now()).unwrap();
    let e = super_verifier()
        .verify_rfc9421(&policy, &attach(&request, &added), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsignedRequiredHeader);
    // Wrong scope: a tag the policy does not expect.
    let tagged = rfc_signer().tag("other-app");
    let added = tagged.sign_request(&request, now()).unwrap();
    let e = super_verifier()
        .verify_rfc9421(
            &policy.clone().tag("palisade"),
            &attach(&request, &added),
            now(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidScope);
    // Expired.
    let short = rfc_signer().expires_in(Duration::from_secs(10));
    let added = short.sign_request(&request, now()).unwrap();
    let e = super_verifier()
        .verify_rfc9421(
            &policy,
            &attach(&request, &added),
            now() + Duration::from_secs(11),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Expired);
}

/// A verifier whose store holds `key`'s verifying half as `access_key_id` (owner `robot`).
fn verifier_holding(
    access_key_id: &str,
    key: &Rfc9421Key,
) -> Verifier<MemoryCredentialStore, MemoryNonceStore> {
    let store = store();
    store
        .insert(Credential {
            access_key_id: access_key_id.into(),
            owner: "robot".into(),
            scopes: vec![],
            key: key.verifying_key(),
        })
        .unwrap();
    Verifier::new(store, MemoryNonceStore::new())
}

#[tokio::test]
async fn rfc9421_ed25519_credential_and_nonce_replay() {
    let key = Rfc9421Key::ed25519_from_seed(&[7u8; 32]).unwrap();
    let verifier = verifier_holding("ed-key", &key);
    let request = Request::new("GET", "/api/orders").header("Host", "api.example.com");
    let signer = Rfc9421Signer::new("ed-key", key)
        .cover("@method")
        .cover("@authority")
        .cover("@path")
        .nonce("n-1");
    let added = signer.sign_request(&request, now()).unwrap();
    let v = verifier
        .verify_rfc9421(&Rfc9421Policy::palisade(), &attach(&request, &added), now())
        .await
        .unwrap();
    assert_eq!(v.owner, "robot");
    // Same nonce, new signature (a second later): still a replay.
    let again = signer
        .sign_request(&request, now() + Duration::from_secs(1))
        .unwrap();
    let e = verifier
        .verify_rfc9421(&Rfc9421Policy::palisade(), &attach(&request, &again), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Replay);
}

/// An ECDSA signature (r, s) has a twin (r, n - s) that verifies as well: replay
/// protection must not be keyed on the signature's bytes, or the twin is a second use.
#[tokio::test]
async fn rfc9421_ecdsa_signature_twin_is_a_replay() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    let key = Rfc9421Key::ecdsa_p256_from_scalar(&[9u8; 32]).unwrap();
    let verifier = verifier_holding("ec-key", &key);
    let request = Request::new("GET", "/api/orders").header("Host", "api.example.com");
    let signer = Rfc9421Signer::new("ec-key", key)
        .label("sig1")
        .cover("@method")
        .cover("@authority")
        .cover("@path");
    let added = signer.sign_request(&request, now()).unwrap();
    let policy = Rfc9421Policy::palisade();
    verifier
        .verify_rfc9421(&policy, &attach(&request, &added), now())
        .await
        .unwrap();

    // The twin: same r, s replaced by n - s.
    let (name, value) = &added[1];
    let encoded = value
        .strip_prefix("sig1=:")
        .and_then(|v| v.strip_suffix(':'))
        .unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap();
    let (r, s) = signature.split_scalars();
    let twin = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    assert_ne!(twin.to_bytes(), signature.to_bytes());
    let twin_value = format!("sig1=:{}:", STANDARD.encode(twin.to_bytes()));
    let twin_headers = vec![added[0].clone(), (name.clone(), twin_value)];
    let e = verifier
        .verify_rfc9421(&policy, &attach(&request, &twin_headers), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Replay);

    // Signed again in the same second, it is the same signed content: a replay too.
    let again = signer.sign_request(&request, now()).unwrap();
    let e = verifier
        .verify_rfc9421(&policy, &attach(&request, &again), now())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Replay);
    // A second later it is a new request.
    let later = signer
        .sign_request(&request, now() + Duration::from_secs(1))
        .unwrap();
    verifier
        .verify_rfc9421(&policy, &attach(&request, &later), now())
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Redis.

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_nonce_store_refuses_replays_against_the_real_redis() {
    use palisade_signing::{NonceStore, RedisNonceStore};
    let Some(url) = palisade_testkit::redis_url() else {
        return;
    };
    let client = redis::Client::open(url).unwrap();
    let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
    let prefix = palisade_testkit::unique_name("palisade:signing:test");
    let nonces = RedisNonceStore::new(conn).with_prefix(prefix);
    let ttl = Duration::from_secs(2);
    assert!(nonces.check_and_insert("sig-a", ttl, now()).await.unwrap());
    assert!(!nonces.check_and_insert("sig-a", ttl, now()).await.unwrap());
    assert!(nonces.check_and_insert("sig-b", ttl, now()).await.unwrap());

    // Through the verifier: the second use is a replay, even from a second verifier
    // (another instance) sharing the same Redis.
    let profile = SigV4Profile::palisade();
    let added = signed_headers(&profile, &base_request(), now());
    let request = attach(&base_request(), &added);
    let first = Verifier::new(store(), nonces.clone());
    let second = Verifier::new(store(), nonces.clone());
    first.verify(&profile, &request, now()).await.unwrap();
    let e = second.verify(&profile, &request, now()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Replay);
}

/// A store whose sealed secrets cannot be opened (sealed under another master key).
struct WrongMasterStore(MemoryCredentialStore);

impl palisade_signing::CredentialStore for WrongMasterStore {
    async fn credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Credential>, palisade_signing::Error> {
        let Some(mut credential) = self.0.credential(access_key_id).await? else {
            return Ok(None);
        };
        if let KeyMaterial::Sealed(sealed) = &credential.key {
            credential.key = KeyMaterial::Sealed(palisade_signing::SealedKey::new(
                std::sync::Arc::new(MasterKey::generate()),
                access_key_id,
                sealed.sealed().clone(),
            ));
        }
        Ok(Some(credential))
    }
}

#[tokio::test]
async fn a_changed_secret_is_not_served_from_the_key_cache() {
    let profile = SigV4Profile::palisade();
    let verifier = verifier().replay_protection(false);
    let request = |secret: &str| {
        let client = SigningCredential::new(AKID, Secret::from(secret));
        sign(&profile, &client, &base_request(), now()).unwrap()
    };
    let old = request(SECRET);
    // The old secret's key is derived and cached.
    verifier
        .verify(&profile, &attach(&base_request(), &old), now())
        .await
        .unwrap();
    // The secret is rotated in the store (same id, date and scope: the same cache slot).
    verifier
        .credentials()
        .insert(Credential {
            access_key_id: AKID.into(),
            owner: "acme".into(),
            scopes: vec![],
            key: KeyMaterial::Secret(Secret::from("a-new-secret")),
        })
        .unwrap();
    let stale = verifier
        .verify(&profile, &attach(&base_request(), &old), now())
        .await
        .unwrap_err();
    assert_eq!(stale.kind(), ErrorKind::SignatureMismatch);
    let new = request("a-new-secret");
    verifier
        .verify(&profile, &attach(&base_request(), &new), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sealed_secret_that_does_not_open_is_a_crypto_error_not_a_mismatch() {
    let profile = SigV4Profile::palisade();
    let verifier = Verifier::new(WrongMasterStore(store()), MemoryNonceStore::new());
    let added = signed_headers(&profile, &base_request(), now());
    let error = verifier
        .verify(&profile, &attach(&base_request(), &added), now())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Crypto);
}
