//! Fuzz the RFC 8941 structured-field parser behind RFC 9421 `Signature-Input` and
//! RFC 9530 `Content-Digest` in `palisade-signing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = palisade_signing::parse_signature_input(s);
        let _ = palisade_signing::verify_content_digest(s, b"{}");
    }
});
