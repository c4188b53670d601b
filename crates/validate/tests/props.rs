//! Property tests: limits hold exactly at their bounds, and no input panics (the same
//! properties as the fuzz targets, run in CI).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::CreateOrder;
use palisade_validate::{
    ErrorKind, Limits, Rejection, UrlPolicy, classify_ip, escape_html, from_slice, parse, safe_join,
};
use proptest::prelude::*;

fn malformed_kind<T: serde::de::DeserializeOwned>(
    body: &[u8],
    limits: &Limits,
) -> Option<ErrorKind> {
    match parse::<T>(body, limits) {
        Err(Rejection::Malformed(e)) => Some(e.kind()),
        _ => None,
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_$]{0,6}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = from_slice::<CreateOrder>(&bytes, &Limits::default());
        let _ = parse::<serde_json::Value>(&bytes, &Limits::default());
    }

    #[test]
    fn json_shaped_text_never_panics(text in "[\\[\\]{}\",:0-9a-z_$\\\\. \\-eEu]{0,300}") {
        let _ = from_slice::<CreateOrder>(text.as_bytes(), &Limits::default());
        // Whatever the scan accepts, serde_json accepts too (no differential that the
        // typed step would turn into a 500).
        if parse::<serde_json::Value>(text.as_bytes(), &Limits::default()).is_ok() {
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        }
    }

    #[test]
    fn valid_json_is_accepted_unchanged(value in json_value()) {
        let text = serde_json::to_vec(&value).unwrap();
        let limits = Limits::default().reject_proto_keys(false);
        let back = parse::<serde_json::Value>(&text, &limits).unwrap();
        // Same parser underneath: the same value as plain serde_json (floats included).
        prop_assert_eq!(back, serde_json::from_slice::<serde_json::Value>(&text).unwrap());
    }

    #[test]
    fn depth_limit_is_exact(depth in 0usize..80, max in 0usize..64) {
        let text = format!("{}0{}", "[".repeat(depth), "]".repeat(depth));
        let limits = Limits::default().max_depth(max);
        let refused = malformed_kind::<serde_json::Value>(text.as_bytes(), &limits);
        prop_assert_eq!(refused.is_some(), depth > max);
        if depth > max { prop_assert_eq!(refused, Some(ErrorKind::DepthExceeded)); }
    }

    #[test]
    fn array_limit_is_exact(len in 0usize..300, max in 0usize..200) {
        let text = format!("[{}]", vec!["0"; len].join(","));
        let refused = malformed_kind::<serde_json::Value>(text.as_bytes(), &Limits::default().max_array_len(max));
        prop_assert_eq!(refused, (len > max).then_some(ErrorKind::ArrayTooLong));
    }

    #[test]
    fn key_limit_is_exact(keys in 0usize..300, max in 0usize..200) {
        let members: Vec<String> = (0..keys).map(|i| format!("\"k{i}\":{i}")).collect();
        let text = format!("{{{}}}", members.join(","));
        let refused = malformed_kind::<serde_json::Value>(text.as_bytes(), &Limits::default().max_keys(max));
        prop_assert_eq!(refused, (keys > max).then_some(ErrorKind::TooManyKeys));
    }

    #[test]
    fn duplicates_are_always_found(keys in 1usize..100, dup in any::<prop::sample::Index>()) {
        let mut members: Vec<String> = (0..keys).map(|i| format!("\"k{i}\":{i}")).collect();
        members.push(format!("\"k{}\":0", dup.index(keys)));
        let text = format!("{{{}}}", members.join(","));
        prop_assert_eq!(
            malformed_kind::<serde_json::Value>(text.as_bytes(), &Limits::default()),
            Some(ErrorKind::DuplicateKey)
        );
    }

    #[test]
    fn string_limit_is_exact(len in 0usize..400, max in 0usize..300) {
        let text = format!("\"{}\"", "a".repeat(len));
        let refused = malformed_kind::<serde_json::Value>(text.as_bytes(), &Limits::default().max_string_bytes(max));
        prop_assert_eq!(refused, (len > max).then_some(ErrorKind::StringTooLong));
    }

    #[test]
    fn body_limit_is_exact(len in 0usize..300, max in 0usize..300) {
        let text = format!("\"{}\"", "a".repeat(len));
        let too_large = matches!(
            parse::<serde_json::Value>(text.as_bytes(), &Limits::default().max_body_bytes(max)),
            Err(Rejection::TooLarge { .. })
        );
        prop_assert_eq!(too_large, len + 2 > max);
    }

    #[test]
    fn arbitrary_urls_never_panic_and_accepted_ips_are_public(input in "\\PC{0,120}") {
        let policy = UrlPolicy::default();
        if let Ok(url) = policy.check_url(&input) {
            match url.host() {
                Some(url::Host::Ipv4(ip)) => prop_assert!(classify_ip(ip.into()).is_public()),
                Some(url::Host::Ipv6(ip)) => prop_assert!(classify_ip(ip.into()).is_public()),
                _ => {}
            }
        }
    }

    #[test]
    fn url_shaped_input_never_panics(input in "(https?|ftp|file)://[@:./\\\\%0-9a-fx\\[\\]A-F]{0,60}") {
        let _ = UrlPolicy::default().check_url(&input);
    }

    #[test]
    fn ipv4_in_ipv6_forms_keep_their_class(a in any::<u32>()) {
        let v4 = Ipv4Addr::from(a);
        let class = classify_ip(IpAddr::V4(v4));
        let [o1, o2, o3, o4] = v4.octets();
        let hi = u16::from_be_bytes([o1, o2]);
        let lo = u16::from_be_bytes([o3, o4]);
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        let nat64 = IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo));
        let six_to_four = IpAddr::V6(Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1));
        prop_assert_eq!(classify_ip(mapped), class);
        prop_assert_eq!(classify_ip(nat64), class);
        prop_assert_eq!(classify_ip(six_to_four), class);
        // The URL guard agrees with the classification for every spelling it parses.
        let decimal = format!("https://{a}/");
        prop_assert_eq!(UrlPolicy::default().check_url(&decimal).is_ok(), class.is_public());
    }

    #[test]
    fn safe_join_never_leaves_the_base(path in "[a-z./\\\\%2e\u{ff0e}]{0,30}") {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        if let Ok(joined) = safe_join(dir.path(), &path) {
            prop_assert!(joined.starts_with(&base));
            prop_assert!(!joined.components().any(|c| c == std::path::Component::ParentDir));
        }
    }

    #[test]
    fn escaped_html_has_no_markup(text in "\\PC{0,64}") {
        let escaped = escape_html(&text);
        prop_assert!(!escaped.contains(['<', '>', '"', '\'']));
        let back = escaped
            .replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
            .replace("&#x27;", "'").replace("&amp;", "&");
        prop_assert_eq!(back, text);
    }

    #[test]
    fn prefixed_ids_match_the_pattern(rest in "[a-zA-Z0-9]{1,40}", bad in "[^a-zA-Z0-9]") {
        prop_assert!(palisade_validate::prefixed_id(&("prod_".to_owned() + &rest), "prod_", 64).is_ok());
        prop_assert!(palisade_validate::prefixed_id(&("prod_".to_owned() + &rest + &bad), "prod_", 64).is_err());
    }
}
