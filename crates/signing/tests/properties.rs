//! Property tests: canonicalization is deterministic and injective where it must be,
//! sign/verify round-trips, and no parser panics on arbitrary input (the same property
//! the fuzz targets check).

// Helpers outside #[test] functions unwrap too: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use palisade_signing::{
    Credential, KeyMaterial, MasterKey, MemoryCredentialStore, MemoryNonceStore, Request, Secret,
    SigV4Profile, SigningCredential, StandardWebhook, StripeWebhook, Verifier, parse_authorization,
    parse_signature_input, sign, verify_content_digest,
};
use proptest::prelude::*;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_780_800)
}

fn canon(profile: &SigV4Profile, target: &str) -> String {
    profile
        .canonical_request(
            &Request::new("GET", target).header("host", "h"),
            &["host"],
            "x",
        )
        .unwrap()
}

proptest! {
    #[test]
    fn authorization_parser_never_panics(s in ".{0,600}") {
        let _ = parse_authorization("AWS4-HMAC-SHA256", &s);
        let _ = parse_authorization("PALISADE-HMAC-SHA256", &format!("PALISADE-HMAC-SHA256 {s}"));
    }

    #[test]
    fn authorization_parser_never_panics_on_near_valid(
        akid in "[A-Za-z0-9]{0,20}", date in "[0-9]{0,9}", sh in "[a-z;-]{0,40}",
        sig in "[0-9a-f]{0,70}", sep in "(, |,| ,)",
    ) {
        let h = format!("AWS4-HMAC-SHA256 Credential={akid}/{date}/r/s/aws4_request{sep}SignedHeaders={sh}{sep}Signature={sig}");
        let _ = parse_authorization("AWS4-HMAC-SHA256", &h);
    }

    #[test]
    fn structured_field_parser_never_panics(s in ".{0,400}") {
        let _ = parse_signature_input(&s);
        let _ = verify_content_digest(&s, b"body");
    }

    #[test]
    fn structured_field_parser_never_panics_on_sf_alphabet(s in "[a-z0-9=;,() \"@:*.?+/-]{0,200}") {
        let _ = parse_signature_input(&s);
    }

    #[test]
    fn webhook_verifiers_never_panic(sig in ".{0,300}", ts in ".{0,20}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let wh = StandardWebhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let _ = wh.verify(&[("webhook-id", "msg"), ("webhook-timestamp", &ts), ("webhook-signature", &sig)], &body, now());
        let _ = StripeWebhook::new("s").verify(&sig, &body, now());
    }

    /// Canonicalizing a canonical query again changes nothing (idempotent), and the
    /// order of parameters on the wire does not matter.
    #[test]
    fn query_canonicalization_is_idempotent_and_order_free(
        pairs in proptest::collection::vec(("[a-zA-Z0-9%+ ._~!*'()-]{0,8}", "[a-zA-Z0-9%+ ._~/:@-]{0,8}"), 0..6)
    ) {
        let profile = SigV4Profile::aws4("us-east-1", "service");
        let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let forward = canon(&profile, &format!("/?{}", q.join("&")));
        let mut rev = q.clone();
        rev.reverse();
        let backward = canon(&profile, &format!("/?{}", rev.join("&")));
        prop_assert_eq!(&forward, &backward);
        let cq = forward.lines().nth(2).unwrap().to_owned();
        let again = canon(&profile, &format!("/?{cq}"));
        prop_assert_eq!(again.lines().nth(2).unwrap(), cq.as_str());
    }

    /// Paths: normalization removes every dot segment and double slash; the canonical
    /// path is pure unreserved characters, '/' and %XX escapes.
    #[test]
    fn path_canonicalization_is_well_formed(path in "/[a-zA-Z0-9./%@ :~-]{0,30}") {
        let profile = SigV4Profile::aws4("us-east-1", "service");
        let c = canon(&profile, &path);
        let p = c.lines().nth(1).unwrap();
        prop_assert!(p.starts_with('/'));
        prop_assert!(!p.contains("//"));
        prop_assert!(!p.split('/').any(|s| s == "." || s == ".."));
        prop_assert!(p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b)));
    }

    /// Header values: surrounding whitespace and inner runs never change the signature.
    #[test]
    fn header_whitespace_folding(words in proptest::collection::vec("[a-zA-Z0-9\"]{1,5}", 1..5), pad in "[ \t]{0,3}") {
        let profile = SigV4Profile::palisade();
        let tight = words.join(" ");
        let loose = format!("{pad}{}{pad}", words.join(&format!(" {pad}")));
        let a = profile.canonical_request(&Request::new("GET", "/").header("host", "h").header("x-v", &tight), &["host", "x-v"], "x").unwrap();
        let b = profile.canonical_request(&Request::new("GET", "/").header("host", "h").header("x-v", &loose), &["host", "x-v"], "x").unwrap();
        prop_assert_eq!(a, b);
    }

    /// Sign then verify round-trips for arbitrary bodies, paths and queries; changing one
    /// body byte breaks it.
    #[test]
    fn sign_verify_round_trip(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        path in "/[a-z0-9/._-]{0,20}",
        query in "[a-z0-9=&%+]{0,20}",
        flip in any::<usize>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let target = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        let store = MemoryCredentialStore::new(MasterKey::generate());
        store.insert(Credential { access_key_id: "AK".into(), owner: "o".into(), scopes: vec![], key: KeyMaterial::Secret(Secret::from("s")) }).unwrap();
        let verifier = Verifier::new(store, MemoryNonceStore::new()).replay_protection(false);
        for profile in [SigV4Profile::palisade(), SigV4Profile::aws4("eu-west-1", "svc")] {
            let request = Request::new("PUT", &target).header("Host", "h").header("Content-Type", "application/octet-stream").body(&body);
            let added = sign(&profile, &SigningCredential::new("AK", Secret::from("s")), &request, now()).unwrap();
            let mut signed = request.clone();
            for (n, v) in &added { signed.push_header(n, v); }
            prop_assert!(rt.block_on(verifier.verify(&profile, &signed, now())).is_ok());
            let mut other = body.clone();
            let i = flip % other.len();
            other[i] ^= 1;
            let tampered = Request::new("PUT", &target).header("Host", "h").header("Content-Type", "application/octet-stream").body(&other);
            let mut tampered_signed = tampered.clone();
            for (n, v) in &added { tampered_signed.push_header(n, v); }
            prop_assert!(rt.block_on(verifier.verify(&profile, &tampered_signed, now())).is_err());
        }
    }
}
