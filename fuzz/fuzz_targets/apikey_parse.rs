//! Fuzz target: `KeyFormat::parse` on arbitrary bytes never panics, and accepts only
//! well-formed keys of the expected length and alphabet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_apikey::{Environment, KeyFormat};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    for format in [
        KeyFormat::default(),
        KeyFormat::new("acme", Environment::Test).expect("valid kind"),
    ] {
        if let Ok(parsed) = format.parse(&input) {
            let raw = parsed.expose_secret();
            assert_eq!(raw.len(), format.kind().len() + 6 + 49);
            assert!(raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        }
    }
});
