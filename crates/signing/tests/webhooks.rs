//! Standard Webhooks (published example from standard-webhooks/standard-webhooks,
//! libraries/go/webhook_test.go) and the Stripe-style profile.

// Helpers outside #[test] functions unwrap too: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use palisade_signing::{ErrorKind, StandardWebhook, StripeWebhook};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: u64 = 1_614_265_330;
const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn headers<'a>(sig: &'a str, ts: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("webhook-id", ID),
        ("webhook-timestamp", ts),
        ("webhook-signature", sig),
    ]
}

#[test]
fn standard_webhooks_published_example() {
    let wh = StandardWebhook::new(SECRET).unwrap();
    assert_eq!(wh.sign(ID, at(TS), PAYLOAD).unwrap(), EXPECTED);
    let ts = TS.to_string();
    wh.verify(&headers(EXPECTED, &ts), PAYLOAD, at(TS)).unwrap();
    // Without the prefix the secret is the same.
    let bare = StandardWebhook::new(SECRET.trim_start_matches("whsec_")).unwrap();
    bare.verify(&headers(EXPECTED, &ts), PAYLOAD, at(TS + 10))
        .unwrap();
    let h = wh.headers(ID, at(TS), PAYLOAD).unwrap();
    assert_eq!(h[1], ("webhook-timestamp".to_owned(), ts.clone()));
}

#[test]
fn standard_webhooks_rejections() {
    let wh = StandardWebhook::new(SECRET).unwrap();
    let ts = TS.to_string();
    // Tampered payload.
    let e = wh
        .verify(&headers(EXPECTED, &ts), br#"{"test": 1}"#, at(TS))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    // Outside the 5-minute tolerance, both ways.
    let e = wh
        .verify(&headers(EXPECTED, &ts), PAYLOAD, at(TS + 301))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RequestTimeTooSkewed);
    let e = wh
        .verify(&headers(EXPECTED, &ts), PAYLOAD, at(TS - 301))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RequestTimeTooSkewed);
    wh.verify(&headers(EXPECTED, &ts), PAYLOAD, at(TS + 300))
        .unwrap();
    // Missing header, bad timestamp, unknown version only.
    let e = wh
        .verify(&[("webhook-id", ID)], PAYLOAD, at(TS))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingHeader);
    let e = wh
        .verify(&headers(EXPECTED, "16142x"), PAYLOAD, at(TS))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let v2 = EXPECTED.replace("v1,", "v2,");
    let e = wh.verify(&headers(&v2, &ts), PAYLOAD, at(TS)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    assert!(StandardWebhook::new("whsec_!!!").is_err());
}

#[test]
fn standard_webhooks_rotation_accepts_any_signature() {
    let new_secret = StandardWebhook::generate_secret();
    assert!(new_secret.starts_with("whsec_"));
    let both = StandardWebhook::new(SECRET)
        .unwrap()
        .add_secret(&new_secret)
        .unwrap();
    let sig = both.sign(ID, at(TS), PAYLOAD).unwrap();
    assert!(sig.starts_with(EXPECTED) && sig.contains(' '));
    let ts = TS.to_string();
    // A receiver that only knows the new secret accepts the rotated header.
    let new_only = StandardWebhook::new(&new_secret).unwrap();
    new_only
        .verify(&headers(&sig, &ts), PAYLOAD, at(TS))
        .unwrap();
    // A receiver with both secrets accepts the old-only signature.
    both.verify(&headers(EXPECTED, &ts), PAYLOAD, at(TS))
        .unwrap();
    // Several signatures, one of them garbage, the good one last.
    let mixed = format!("v1,AAAA v1a,zzz {EXPECTED}");
    StandardWebhook::new(SECRET)
        .unwrap()
        .verify(&headers(&mixed, &ts), PAYLOAD, at(TS))
        .unwrap();
}

#[test]
fn stripe_profile() {
    // HMAC-SHA256("whsec_test_secret", "1614265330.{\"test\": 2432232314}"), computed
    // independently with Python's hmac module.
    let expected =
        "t=1614265330,v1=10c96c6fd3f320fcfc264cdc4f476c15060ede8e8a08404cea2ddf3b72544a9c";
    let stripe = StripeWebhook::new("whsec_test_secret");
    assert_eq!(stripe.sign(at(TS), PAYLOAD).unwrap(), expected);
    stripe.verify(expected, PAYLOAD, at(TS + 299)).unwrap();
    let with_v0 = format!("{expected},v0=deadbeef");
    stripe.verify(&with_v0, PAYLOAD, at(TS)).unwrap();
    assert_eq!(
        stripe.verify(expected, b"x", at(TS)).unwrap_err().kind(),
        ErrorKind::SignatureMismatch
    );
    assert_eq!(
        stripe
            .verify(expected, PAYLOAD, at(TS + 301))
            .unwrap_err()
            .kind(),
        ErrorKind::RequestTimeTooSkewed
    );
    assert_eq!(
        stripe.verify("v1=00", PAYLOAD, at(TS)).unwrap_err().kind(),
        ErrorKind::MalformedAuthorization
    );
    assert_eq!(
        stripe
            .verify("t=1,t=2,v1=00", PAYLOAD, at(TS))
            .unwrap_err()
            .kind(),
        ErrorKind::MalformedAuthorization
    );
    let rotated = StripeWebhook::new("old").add_secret("whsec_test_secret");
    rotated.verify(expected, PAYLOAD, at(TS)).unwrap();
}
