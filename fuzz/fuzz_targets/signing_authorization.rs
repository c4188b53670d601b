//! Fuzz the strict `Authorization` header parser of `palisade-signing` (SigV4 style),
//! for both the AWS and the Palisade algorithm names.
//!
//! Properties: no panic; an accepted header, written back in its canonical form, parses
//! to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_signing::parse_authorization;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for algorithm in ["AWS4-HMAC-SHA256", "PALISADE-HMAC-SHA256"] {
        let Ok(parsed) = parse_authorization(algorithm, s) else {
            continue;
        };
        // No optional spaces, so never longer than the input (the length limit holds).
        let canonical = format!(
            "{algorithm} Credential={}/{}/{},SignedHeaders={},Signature={}",
            parsed.access_key_id,
            parsed.date,
            parsed.scope_tail,
            parsed.signed_headers,
            parsed.signature
        );
        let again = parse_authorization(algorithm, &canonical)
            .expect("the canonical form of an accepted header parses");
        assert_eq!(again, parsed);
    }
});
