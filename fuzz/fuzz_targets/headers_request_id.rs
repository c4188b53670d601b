//! Arbitrary inbound `X-Request-Id` bytes and challenge parameters: never a panic, and
//! the outputs are always safe header values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_headers::{Challenge, RequestId};

fuzz_target!(|data: &[u8]| {
    let id = RequestId::accept_or_generate_bytes(Some(data));
    assert!(RequestId::is_well_formed(id.as_str()));
    let text = String::from_utf8_lossy(data);
    let value = Challenge::bearer()
        .realm(&text)
        .error_description(&text)
        .scope(&text)
        .to_header_value();
    assert!(value.bytes().all(|b| (0x20..=0x7e).contains(&b)));
});
