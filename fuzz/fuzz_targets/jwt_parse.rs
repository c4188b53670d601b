//! Token parsing and validation never panic on arbitrary input.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use palisade_jwt::{
    AccessTokenValidator, Algorithm, IdTokenValidator, KeySet, SigningKey, VerifyingKey,
};

struct Fixture {
    keys: KeySet,
    access: AccessTokenValidator,
    id: IdTokenValidator,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let es = SigningKey::generate(Algorithm::ES256).expect("key");
        let hs = VerifyingKey::hmac("hs", &[1u8; 32]).expect("key");
        let algs = [
            Algorithm::ES256,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::HS256,
        ];
        Fixture {
            keys: KeySet::new(vec![es.verifying_key().clone(), hs]).expect("set"),
            access: AccessTokenValidator::new("https://i", "https://a", &algs).expect("validator"),
            id: IdTokenValidator::new("https://i", "https://a", &algs).expect("validator"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let text = String::from_utf8_lossy(data);
    let _ = f.access.validate(&text, &f.keys, now);
    let _ = f.id.validate(&text, &f.keys, now);
    let _ = KeySet::from_jwks_json(data);
});
