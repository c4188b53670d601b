//! Fuzz the strict `Authorization` header parser of `palisade-signing` (SigV4 style).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = palisade_signing::parse_authorization("AWS4-HMAC-SHA256", s);
        let _ = palisade_signing::parse_authorization("PALISADE-HMAC-SHA256", s);
    }
});
