//! Arbitrary identity strings (as `DELETE /admin/abuse/{identity}` receives them) and
//! identity values: never a panic, always bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_abuse::Identity;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = text.parse::<Identity>() {
        assert_eq!(id.as_str().parse::<Identity>().ok(), Some(id.clone()));
    }
    let id = Identity::user(&text);
    assert!(id.as_str().len() <= 5 + 128);
});
