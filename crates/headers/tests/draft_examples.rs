//! Rendering checked against the examples of draft-ietf-httpapi-ratelimit-headers-10
//! (ietf-wg-httpapi/ratelimit-headers, folder draft-ietf-httpapi-ratelimit-headers-10,
//! IETF Trust, Revised BSD licence for code components).
//!
//! The draft writes some lists without a space after the comma; RFC 9651 serialisation
//! (which this crate follows) puts `", "` between members. Both parse to the same list, so
//! examples written without the space are compared after removing it from our output.

use std::time::{Duration, UNIX_EPOCH};

use palisade_headers::{
    Problem, QuotaPolicy, QuotaUnit, RateLimitHeaders, ServiceLimit, ServiceLimitItems,
};

fn policy(name: &str, q: u64, w: u64) -> QuotaPolicy {
    QuotaPolicy::new(name, q, w).expect("valid policy")
}

fn limit(r: u64, t: Option<u64>, pk: Option<&[u8]>) -> ServiceLimit {
    ServiceLimit {
        remaining: r,
        reset_after: t.map(Duration::from_secs),
        partition_key: pk.map(<[u8]>::to_vec),
    }
}

fn compact(s: Option<String>) -> String {
    s.expect("field").replace(", ", ",")
}

#[test]
fn section_3_policy_examples() {
    let burst = policy("burst", 100, 60);
    let daily = policy("daily", 1000, 86_400);
    let h = RateLimitHeaders::new()
        .policy(&burst, limit(0, Some(1), None))
        .policy(&daily, limit(0, Some(1), None));
    assert_eq!(
        compact(h.policy_field()),
        r#""burst";q=100;w=60,"daily";q=1000;w=86400"#
    );

    let default = policy("default", 100, 10);
    let h = RateLimitHeaders::new().policy(&default, limit(50, Some(30), None));
    assert_eq!(h.policy_field().as_deref(), Some(r#""default";q=100;w=10"#));
    // Section 4 / 4.2, first example.
    assert_eq!(
        h.ratelimit_field().as_deref(),
        Some(r#""default";r=50;t=30"#)
    );

    let permin = policy("permin", 50, 60);
    let perhr = policy("perhr", 1000, 3600);
    let h = RateLimitHeaders::new()
        .policy(&permin, limit(1, Some(1), None))
        .policy(&perhr, limit(1, Some(1), None));
    assert_eq!(
        compact(h.policy_field()),
        r#""permin";q=50;w=60,"perhr";q=1000;w=3600"#
    );
}

#[test]
fn section_3_2_quota_unit_order() {
    // The draft's example `"peruser";q=65535;qu="content-bytes";w=10;pk=:sdfjLJUOUH==:`
    // carries a non-canonical base64 key no encoder produces; the parameter order and
    // the unit are checked with a canonical key instead.
    let peruser = policy("peruser", 65_535, 10).with_unit(QuotaUnit::ContentBytes);
    let h = RateLimitHeaders::new().policy(&peruser, limit(1, Some(1), Some(b"App-999")));
    assert_eq!(
        h.policy_field().as_deref(),
        Some(r#""peruser";q=65535;qu="content-bytes";w=10;pk=:QXBwLTk5OQ==:"#)
    );
    let conc = policy("c", 5, 1).with_unit(QuotaUnit::ConcurrentRequests);
    let h = RateLimitHeaders::new().policy(&conc, limit(1, None, None));
    assert_eq!(
        h.policy_field().as_deref(),
        Some(r#""c";q=5;qu="concurrent-requests";w=1"#)
    );
}

#[test]
fn section_4_2_service_limit_examples() {
    let default = policy("default", 1000, 60);
    let h = RateLimitHeaders::new().policy(&default, limit(999, None, Some(b"trial121323")));
    assert_eq!(
        h.ratelimit_field().as_deref(),
        Some(r#""default";r=999;pk=:dHJpYWwxMjEzMjM=:"#)
    );
    let fields = h.render(UNIX_EPOCH);
    assert!(fields.iter().all(|(n, _)| *n != "x-ratelimit-reset"));

    let h =
        RateLimitHeaders::new().policy(&default, limit(300_000_000, Some(60), Some(b"App-999")));
    assert_eq!(
        h.ratelimit_field().as_deref(),
        Some(r#""default";r=300000000;t=60;pk=:QXBwLTk5OQ==:"#)
    );
}

#[test]
fn appendix_b_examples() {
    // B.1.3
    let basic = policy("basic", 100, 60);
    let h = RateLimitHeaders::new().policy(&basic, limit(60, Some(58), None));
    assert_eq!(h.policy_field().as_deref(), Some(r#""basic";q=100;w=60"#));
    assert_eq!(h.ratelimit_field().as_deref(), Some(r#""basic";r=60;t=58"#));

    // B.2.1
    let fixed = policy("fixedwindow", 100, 60);
    let h = RateLimitHeaders::new().policy(&fixed, limit(99, Some(50), None));
    assert_eq!(
        h.ratelimit_field().as_deref(),
        Some(r#""fixedwindow";r=99;t=50"#)
    );
    assert_eq!(
        h.policy_field().as_deref(),
        Some(r#""fixedwindow";q=100;w=60"#)
    );

    // B.3: Retry-After with RateLimit.
    let dynamic = policy("dynamic", 100, 60);
    let fields = RateLimitHeaders::new()
        .policy(&dynamic, limit(15, Some(40), None))
        .retry_after(Duration::from_secs(20))
        .render(UNIX_EPOCH + Duration::from_secs(1_000));
    assert!(fields.contains(&("retry-after", "20".to_owned())));
    assert!(fields.contains(&("ratelimit-policy", r#""dynamic";q=100;w=60"#.to_owned())));
    assert!(fields.contains(&("ratelimit", r#""dynamic";r=15;t=40"#.to_owned())));
    assert!(fields.contains(&("x-ratelimit-limit", "100".to_owned())));
    assert!(fields.contains(&("x-ratelimit-remaining", "15".to_owned())));
    assert!(fields.contains(&("x-ratelimit-reset", "1040".to_owned())));

    // B.3.2: two windows, the RateLimit field reports the one closest to exhaustion.
    // This example is written with RFC 9651's ", " separator, byte for byte.
    let hour = policy("hour", 1000, 3600);
    let day = policy("day", 5000, 86_400);
    let h = RateLimitHeaders::new()
        .policy(&hour, limit(1000, Some(1800), None))
        .policy(&day, limit(100, Some(36_000), None))
        .service_limit_items(ServiceLimitItems::MostRestrictive);
    assert_eq!(
        h.policy_field().as_deref(),
        Some(r#""hour";q=1000;w=3600, "day";q=5000;w=86400"#)
    );
    assert_eq!(
        h.ratelimit_field().as_deref(),
        Some(r#""day";r=100;t=36000"#)
    );
    let fields = h.render(UNIX_EPOCH);
    assert!(fields.contains(&("x-ratelimit-limit", "5000".to_owned())));
    assert!(fields.contains(&("x-ratelimit-remaining", "100".to_owned())));
    assert!(fields.contains(&("x-ratelimit-reset", "36000".to_owned())));
}

#[test]
fn section_5_1_quota_exceeded_problem() {
    let p = Problem::quota_exceeded(&["daily", "bandwidth"]);
    let v: serde_json::Value = serde_json::from_str(&p.to_json()).expect("json");
    assert_eq!(
        v["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(
        v["violated-policies"],
        serde_json::json!(["daily", "bandwidth"])
    );
    assert_eq!(v["status"], 429);
}
