//! The SSRF guard on arbitrary strings: never panics, and an accepted IP host is public.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_validate::{UrlPolicy, classify_ip, safe_join};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let policy = UrlPolicy::default()
        .schemes(["https", "http"])
        .ports([80, 443, 8080]);
    if let Ok(url) = policy.check_url(input) {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => assert!(classify_ip(ip.into()).is_public()),
            Some(url::Host::Ipv6(ip)) => assert!(classify_ip(ip.into()).is_public()),
            _ => {}
        }
        let _ = policy.check_redirect(&url, input, 0);
    }
    let _ = safe_join(std::path::Path::new("/tmp"), input);
});
