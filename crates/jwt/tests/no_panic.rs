//! The fuzz target's property, as a proptest that runs in CI: no input makes
//! validation panic, and every failure is a typed error.

#![allow(clippy::unwrap_used)] // Tests: an unexpected error fails the test with its message.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use palisade_jwt::{
    AccessTokenValidator, Algorithm, IdTokenValidator, KeySet, SigningKey, VerifyingKey,
};
use proptest::prelude::*;

fn setup() -> (KeySet, AccessTokenValidator, IdTokenValidator, SigningKey) {
    let es = SigningKey::generate(Algorithm::ES256).unwrap();
    let hs = VerifyingKey::hmac("hs", &[1u8; 32]).unwrap();
    let algs = [
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::HS256,
    ];
    (
        KeySet::new(vec![es.verifying_key().clone(), hs]).unwrap(),
        AccessTokenValidator::new("https://i", "https://a", &algs).unwrap(),
        IdTokenValidator::new("https://i", "https://a", &algs).unwrap(),
        es,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        let (keys, access, id, _) = setup();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        prop_assert!(access.validate(&text, &keys, now).is_err());
        prop_assert!(id.validate(&text, &keys, now).is_err());
        let _ = KeySet::from_jwks_json(text.as_bytes());
    }

    #[test]
    fn arbitrary_signed_json_never_panics(header in "\\PC{0,120}", claims in "\\PC{0,200}", sign in any::<bool>()) {
        let (keys, access, id, key) = setup();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let input = format!("{}.{}", B64.encode(&header), B64.encode(&claims));
        let sig = if sign { B64.encode(key.sign(input.as_bytes()).unwrap()) } else { String::new() };
        let token = format!("{input}.{sig}");
        let result = access.validate(&token, &keys, now);
        if let Err(error) = &result {
            prop_assert!(!error.code().is_empty());
        }
        let _ = id.validate(&token, &keys, now);
    }

    #[test]
    fn structured_headers_never_panic(
        alg in prop::sample::select(vec!["ES256", "HS256", "none", "RS256", "EdDSA", "PS256", ""]),
        kid in prop::option::of("[ -~]{0,20}"),
        typ in prop::option::of(prop::sample::select(vec!["at+jwt", "JWT", "x"])),
        exp in prop::option::of(any::<i64>()),
    ) {
        let (keys, access, _, key) = setup();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut header = serde_json::json!({"alg": alg});
        if let Some(kid) = kid { header["kid"] = kid.into(); }
        if let Some(typ) = typ { header["typ"] = typ.into(); }
        let mut claims = serde_json::json!({"iss": "https://i", "aud": "https://a", "sub": "s", "iat": 1, "jti": "j", "client_id": "c"});
        if let Some(exp) = exp { claims["exp"] = exp.into(); }
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let token = format!("{input}.{}", B64.encode(key.sign(input.as_bytes()).unwrap()));
        let _ = access.validate(&token, &keys, now);
    }
}
