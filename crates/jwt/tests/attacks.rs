//! One named test per attack on token validation. Each must fail with its typed error,
//! and none may panic.

#![allow(clippy::unwrap_used)] // Tests: an unexpected error fails the test with its message.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use palisade_jwt::{
    AccessTokenValidator, Algorithm, ErrorKind, IdTokenValidator, KeySet, SigningKey, VerifyingKey,
};
use serde_json::{Value, json};

const ISS: &str = "https://issuer.example";
const AUD: &str = "https://api.example";
const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": NOW + 900, "iat": NOW, "nbf": NOW,
        "jti": "jti-1", "client_id": "client-1", "scope": "orders:read"
    })
}

fn b64json(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

/// Signs arbitrary header and claims JSON text with `key`.
fn raw(key: &SigningKey, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", B64.encode(sig))
}

fn signed(key: &SigningKey, header: &Value, claims: &Value) -> String {
    raw(
        key,
        &serde_json::to_string(header).unwrap(),
        &serde_json::to_string(claims).unwrap(),
    )
}

fn header(key: &SigningKey) -> Value {
    json!({"alg": key.algorithm().as_str(), "typ": "at+jwt", "kid": key.kid()})
}

struct Fixture {
    key: SigningKey,
    keys: KeySet,
    validator: AccessTokenValidator,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let keys = KeySet::new(vec![
        key.verifying_key().clone(),
        other.verifying_key().clone(),
    ])
    .unwrap();
    let validator = AccessTokenValidator::new(
        ISS,
        AUD,
        &[Algorithm::ES256, Algorithm::RS256, Algorithm::HS256],
    )
    .unwrap();
    Fixture {
        key,
        keys,
        validator,
    }
}

fn kind_of(f: &Fixture, token: &str) -> ErrorKind {
    f.validator
        .validate(token, &f.keys, now())
        .expect_err("the token must be refused")
        .kind()
}

#[test]
fn valid_token_passes() {
    let f = fixture();
    let token = signed(&f.key, &header(&f.key), &claims());
    let claims = f.validator.validate(&token, &f.keys, now()).unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.client_id, "client-1");
    assert!(claims.has_scope("orders:read"));
}

#[test]
fn alg_none_is_refused() {
    let f = fixture();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = format!(
            "{}.{}.",
            b64json(&json!({"alg": alg, "typ": "at+jwt", "kid": f.key.kid()})),
            b64json(&claims())
        );
        assert_eq!(kind_of(&f, &token), ErrorKind::AlgorithmNotAllowed, "{alg}");
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // The attacker takes the RS256 public key (as published) and uses its bytes as an
    // HMAC secret. The key is bound to RS256, so HS256 can never select it.
    let rsa = SigningKey::generate(Algorithm::RS256).unwrap();
    let keys = KeySet::single(rsa.verifying_key().clone());
    let validator =
        AccessTokenValidator::new(ISS, AUD, &[Algorithm::RS256, Algorithm::HS256]).unwrap();
    let public_jwk = serde_json::to_vec(&rsa.verifying_key().to_jwk().unwrap()).unwrap();
    let forged_key = SigningKey::hmac(rsa.kid(), &public_jwk).unwrap();
    let token = signed(
        &forged_key,
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": rsa.kid()}),
        &claims(),
    );
    let error = validator.validate(&token, &keys, now()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AlgorithmKeyMismatch);
    assert_eq!(error.code(), "algorithm_key_mismatch");
}

#[test]
fn token_signed_by_embedded_jwk_is_refused() {
    let f = fixture();
    let attacker = SigningKey::generate(Algorithm::ES256).unwrap();
    let mut h = header(&attacker);
    h["jwk"] = attacker.verifying_key().to_jwk().unwrap();
    let token = signed(&attacker, &h, &claims());
    assert_eq!(kind_of(&f, &token), ErrorKind::ForbiddenHeader);
    // Same with the kid of a trusted key: still refused before any key is chosen.
    h["kid"] = f.key.kid().into();
    let token = signed(&attacker, &h, &claims());
    assert_eq!(kind_of(&f, &token), ErrorKind::ForbiddenHeader);
}

#[test]
fn jku_and_x5u_are_never_followed() {
    let f = fixture();
    for name in ["jku", "x5u", "x5c"] {
        let mut h = header(&f.key);
        h[name] = "https://attacker.example/keys".into();
        let token = signed(&f.key, &h, &claims());
        let error = f.validator.validate(&token, &f.keys, now()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ForbiddenHeader, "{name}");
        assert_eq!(error.detail(), Some(name));
    }
}

#[test]
fn kid_path_traversal_and_injection_are_refused() {
    let f = fixture();
    for kid in [
        "../../../../dev/null",
        "/etc/passwd",
        "x' OR '1'='1",
        "key\"; DROP TABLE keys; --",
        "a\u{0}b",
        "$(curl attacker)",
        "",
    ] {
        let mut h = header(&f.key);
        h["kid"] = kid.into();
        let token = signed(&f.key, &h, &claims());
        assert_eq!(kind_of(&f, &token), ErrorKind::InvalidKid, "{kid:?}");
    }
    let long = "a".repeat(129);
    let mut h = header(&f.key);
    h["kid"] = long.into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::InvalidKid
    );
    // A kid that is not a string is malformed.
    let mut h = header(&f.key);
    h["kid"] = json!(["x"]);
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::Malformed
    );
}

#[test]
fn unknown_kid_is_refused() {
    let f = fixture();
    let mut h = header(&f.key);
    h["kid"] = "no-such-key".into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::UnknownKey
    );
}

#[test]
fn kid_is_required_when_the_set_holds_several_keys() {
    let f = fixture();
    let h = json!({"alg": "ES256", "typ": "at+jwt"});
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::KidRequired
    );
    // With a single key, kid may be left out.
    let keys = KeySet::single(f.key.verifying_key().clone());
    assert!(
        f.validator
            .validate(&signed(&f.key, &h, &claims()), &keys, now())
            .is_ok()
    );
}

#[test]
fn payload_altered_without_resigning_is_refused() {
    let f = fixture();
    let token = signed(&f.key, &header(&f.key), &claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut altered = claims();
    altered["scope"] = "admin".into();
    let altered = b64json(&altered);
    parts[1] = &altered;
    assert_eq!(kind_of(&f, &parts.join(".")), ErrorKind::SignatureMismatch);
}

#[test]
fn signature_stripped_is_refused() {
    let f = fixture();
    let token = signed(&f.key, &header(&f.key), &claims());
    let (unsigned, _) = token.rsplit_once('.').unwrap();
    assert_eq!(
        kind_of(&f, &format!("{unsigned}.")),
        ErrorKind::SignatureMismatch
    );
    assert_eq!(kind_of(&f, unsigned), ErrorKind::Malformed);
}

#[test]
fn signature_spliced_from_another_token_is_refused() {
    let f = fixture();
    let a = signed(&f.key, &header(&f.key), &claims());
    let mut other = claims();
    other["sub"] = "admin".into();
    let b = signed(&f.key, &header(&f.key), &other);
    let (b_input, _) = b.rsplit_once('.').unwrap();
    let (_, a_sig) = a.rsplit_once('.').unwrap();
    assert_eq!(
        kind_of(&f, &format!("{b_input}.{a_sig}")),
        ErrorKind::SignatureMismatch
    );
}

#[test]
fn all_zero_ecdsa_signature_is_refused_cve_2022_21449() {
    let f = fixture();
    let token = signed(&f.key, &header(&f.key), &claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    let zero = B64.encode([0u8; 64]);
    assert_eq!(
        kind_of(&f, &format!("{input}.{zero}")),
        ErrorKind::SignatureMismatch
    );
    // And the DER-style short zero signature.
    let zero_short = B64.encode([0u8; 8]);
    assert_eq!(
        kind_of(&f, &format!("{input}.{zero_short}")),
        ErrorKind::SignatureMismatch
    );
}

#[test]
fn expired_token_is_refused_beyond_the_leeway() {
    let f = fixture();
    let mut c = claims();
    c["exp"] = (NOW - 31).into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &header(&f.key), &c)),
        ErrorKind::Expired
    );
    // Within the 30 s default tolerance it still passes.
    c["exp"] = (NOW - 29).into();
    assert!(
        f.validator
            .validate(&signed(&f.key, &header(&f.key), &c), &f.keys, now())
            .is_ok()
    );
}

#[test]
fn not_yet_valid_token_is_refused() {
    let f = fixture();
    let mut c = claims();
    c["nbf"] = (NOW + 31).into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &header(&f.key), &c)),
        ErrorKind::NotYetValid
    );
    let mut c = claims();
    c["iat"] = (NOW + 120).into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &header(&f.key), &c)),
        ErrorKind::IssuedInFuture
    );
}

#[test]
fn wrong_audience_is_refused() {
    let f = fixture();
    let mut c = claims();
    c["aud"] = "https://other.example".into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &header(&f.key), &c)),
        ErrorKind::WrongAudience
    );
    c["aud"] = json!(["https://other.example", AUD]);
    assert!(
        f.validator
            .validate(&signed(&f.key, &header(&f.key), &c), &f.keys, now())
            .is_ok()
    );
    c["aud"] = json!([]);
    assert_eq!(
        kind_of(&f, &signed(&f.key, &header(&f.key), &c)),
        ErrorKind::InvalidClaim
    );
}

#[test]
fn wrong_issuer_is_refused() {
    let f = fixture();
    let mut c = claims();
    c["iss"] = "https://evil.example".into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &header(&f.key), &c)),
        ErrorKind::WrongIssuer
    );
}

#[test]
fn wrong_typ_is_refused() {
    let f = fixture();
    for typ in [json!("JWT"), json!("id+jwt"), json!(null), json!(1)] {
        let mut h = header(&f.key);
        h["typ"] = typ.clone();
        let kind = kind_of(&f, &signed(&f.key, &h, &claims()));
        assert!(
            kind == ErrorKind::WrongTokenType || kind == ErrorKind::Malformed,
            "{typ}: {kind:?}"
        );
    }
    let mut h = header(&f.key);
    h.as_object_mut().unwrap().remove("typ");
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::WrongTokenType
    );
    // RFC 9068 allows the media-type spelling.
    h["typ"] = "application/at+jwt".into();
    assert!(
        f.validator
            .validate(&signed(&f.key, &h, &claims()), &f.keys, now())
            .is_ok()
    );
}

#[test]
fn access_and_id_tokens_never_pass_for_one_another() {
    let f = fixture();
    let id_validator = IdTokenValidator::new(ISS, AUD, &[Algorithm::ES256]).unwrap();
    let access = signed(&f.key, &header(&f.key), &claims());
    assert_eq!(
        id_validator
            .validate(&access, &f.keys, now())
            .unwrap_err()
            .kind(),
        ErrorKind::WrongTokenType
    );
    let id_token = signed(
        &f.key,
        &json!({"alg": "ES256", "typ": "JWT", "kid": f.key.kid()}),
        &json!({"iss": ISS, "sub": "u", "aud": AUD, "exp": NOW + 60, "iat": NOW, "nonce": "n"}),
    );
    assert_eq!(
        id_validator
            .validate(&id_token, &f.keys, now())
            .unwrap()
            .nonce
            .as_deref(),
        Some("n")
    );
    assert_eq!(kind_of(&f, &id_token), ErrorKind::WrongTokenType);
    // A refresh token is opaque: it is not even a JWS.
    assert_eq!(
        kind_of(&f, "prt_6c1cJ9yIapSQaoqVLvdJzX3xLqZl1V3t5vFZzQ"),
        ErrorKind::Malformed
    );
}

#[test]
fn missing_exp_is_refused() {
    let f = fixture();
    for name in ["exp", "iss", "aud", "sub", "jti", "client_id", "iat"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        let error = f
            .validator
            .validate(&signed(&f.key, &header(&f.key), &c), &f.keys, now())
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingClaim, "{name}");
        assert_eq!(error.detail(), Some(name));
    }
}

#[test]
fn time_claims_of_the_wrong_json_type_are_refused() {
    let f = fixture();
    for (name, value) in [
        ("exp", json!("1900000000")),
        ("exp", json!(null)),
        ("exp", json!(true)),
        ("exp", json!(-1)),
        ("exp", json!([1_900_000_000])),
        ("nbf", json!("0")),
        ("iat", json!({"t": 1})),
    ] {
        let mut c = claims();
        c[name] = value.clone();
        let error = f
            .validator
            .validate(&signed(&f.key, &header(&f.key), &c), &f.keys, now())
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidClaim, "{name}={value}");
    }
    // A fractional NumericDate is allowed (RFC 7519).
    let mut c = claims();
    c["exp"] = json!(NOW as f64 + 100.5);
    assert_eq!(
        f.validator
            .validate(&signed(&f.key, &header(&f.key), &c), &f.keys, now())
            .unwrap()
            .exp,
        NOW + 100
    );
}

#[test]
fn duplicate_json_keys_are_refused() {
    let f = fixture();
    let kid = f.key.kid();
    let h = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}"}}"#);
    let c = format!(
        r#"{{"iss":"{ISS}","sub":"u","aud":"{AUD}","exp":{},"iat":{NOW},"jti":"j","client_id":"c","role":"user","role":"admin"}}"#,
        NOW + 60
    );
    assert_eq!(
        kind_of(&f, &raw(&f.key, &h, &c)),
        ErrorKind::DuplicateJsonKey
    );
    let c2 = format!(
        r#"{{"iss":"{ISS}","sub":"u","aud":"{AUD}","exp":{},"exp":{},"iat":{NOW},"jti":"j","client_id":"c"}}"#,
        NOW + 60,
        NOW + 999_999
    );
    assert_eq!(
        kind_of(&f, &raw(&f.key, &h, &c2)),
        ErrorKind::DuplicateJsonKey
    );
    let h2 = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}","kid":"{kid}"}}"#);
    assert_eq!(
        kind_of(&f, &raw(&f.key, &h2, &c)),
        ErrorKind::DuplicateJsonKey
    );
}

#[test]
fn oversized_token_is_refused_before_parsing() {
    let f = fixture();
    let mut c = claims();
    c["padding"] = "x".repeat(10_000).into();
    let token = signed(&f.key, &header(&f.key), &c);
    assert_eq!(kind_of(&f, &token), ErrorKind::TooLarge);
    // Garbage of the same size is refused the same way, without being decoded.
    assert_eq!(kind_of(&f, &"!".repeat(9_000)), ErrorKind::TooLarge);
}

#[test]
fn unknown_crit_header_is_refused() {
    let f = fixture();
    let mut h = header(&f.key);
    h["crit"] = json!(["exp"]);
    h["exp"] = json!(1);
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::UnknownCritical
    );
}

#[test]
fn disallowed_algorithm_is_refused() {
    let f = fixture();
    let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let keys = KeySet::single(ed.verifying_key().clone());
    let token = signed(&ed, &header(&ed), &claims());
    assert_eq!(
        f.validator
            .validate(&token, &keys, now())
            .unwrap_err()
            .kind(),
        ErrorKind::AlgorithmNotAllowed
    );
    // RS384 is not supported at all.
    let mut h = header(&f.key);
    h["alg"] = "RS384".into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::AlgorithmNotAllowed
    );
}

#[test]
fn es256_token_claiming_rs256_on_ec_key_is_refused() {
    let f = fixture();
    let mut h = header(&f.key);
    h["alg"] = "RS256".into();
    assert_eq!(
        kind_of(&f, &signed(&f.key, &h, &claims())),
        ErrorKind::AlgorithmKeyMismatch
    );
}

#[test]
fn every_algorithm_round_trips() {
    for alg in [
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::PS256,
    ] {
        let key = SigningKey::generate(alg).unwrap();
        let keys = KeySet::from_jwks_json(
            serde_json::to_string(&KeySet::single(key.verifying_key().clone()).to_jwks())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let validator = AccessTokenValidator::new(ISS, AUD, &[alg]).unwrap();
        let token = key.encode("at+jwt", &claims()).unwrap();
        assert_eq!(
            validator.validate(&token, &keys, now()).unwrap().jti,
            "jti-1",
            "{alg}"
        );
    }
    let hs = SigningKey::hmac("shared", &[42; 32]).unwrap();
    let keys = KeySet::single(VerifyingKey::hmac("shared", &[42; 32]).unwrap());
    let validator = AccessTokenValidator::new(ISS, AUD, &[Algorithm::HS256]).unwrap();
    assert!(
        validator
            .validate(&hs.encode("at+jwt", &claims()).unwrap(), &keys, now())
            .is_ok()
    );
    let wrong = KeySet::single(VerifyingKey::hmac("shared", &[43; 32]).unwrap());
    assert_eq!(
        validator
            .validate(&hs.encode("at+jwt", &claims()).unwrap(), &wrong, now())
            .unwrap_err()
            .kind(),
        ErrorKind::SignatureMismatch
    );
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let f = fixture();
    for token in [
        "",
        ".",
        "..",
        "...",
        "a.b.c.d.e",
        "eyJ.eyJ.sig",
        "%%%.%%%.%%%",
        "e30.e30.",
        "W10.e30.AA",
    ] {
        let kind = kind_of(&f, token);
        assert!(
            matches!(kind, ErrorKind::Malformed | ErrorKind::SignatureMismatch),
            "{token:?}: {kind:?}"
        );
    }
    // Base64 with padding or non-canonical trailing bits is refused.
    let token = signed(&f.key, &header(&f.key), &claims());
    assert_eq!(
        kind_of(&f, &format!("{token}=")),
        ErrorKind::SignatureMismatch
    );
}
