//! Every rule driven across its threshold and back, against every store: the in-memory
//! one and (feature `redis`) the real Redis.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use palisade_abuse::{
    AbuseConfig, AbuseMonitor, AbuseStore, Action, Decision, Flag, Identity, LimitUsage,
    MemoryStore, Reason, RequestEvent,
};

/// A time aligned on an hour (and so on the 10-minute window).
const T0: u64 = 1_764_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn ok_event() -> RequestEvent<'static> {
    RequestEvent {
        endpoint: "GET /api/orders",
        is_auth_endpoint: false,
        status: 200,
        response_bytes: 100,
        user_agent: Some("client/1.0"),
        source_ip: ip("203.0.113.10"),
        rate_limit: None,
    }
}

struct Counting(Arc<AtomicUsize>);

fn monitor<S: AbuseStore>(store: S) -> (AbuseMonitor<S>, Arc<AtomicUsize>) {
    let alerts = Arc::new(AtomicUsize::new(0));
    let sink = Counting(alerts.clone());
    let m = AbuseMonitor::new(store, AbuseConfig::default())
        .expect("valid config")
        .with_alert_sink(move |_: &Flag| {
            sink.0.fetch_add(1, Ordering::SeqCst);
        });
    (m, alerts)
}

fn reason_of(d: Decision) -> Option<(Action, Reason)> {
    match d {
        Decision::Allow => None,
        Decision::Throttle { reason, .. } => Some((Action::Throttle, reason)),
        Decision::Block { reason, .. } => Some((Action::Block, reason)),
    }
}

async fn error_rate<S: AbuseStore>(store: S) {
    let (m, alerts) = monitor(store);
    let id = Identity::api_key("err");
    let mut e = ok_event();
    for i in 0..25 {
        m.record(&id, &e, at(i)).await;
    }
    e.status = 404;
    for i in 25..50 {
        m.record(&id, &e, at(i)).await;
    }
    // 25 of 50: exactly 50%, not over.
    assert_eq!(m.decision(&id, at(50)).await, Decision::Allow);
    m.record(&id, &e, at(50)).await;
    let d = m.decision(&id, at(51)).await;
    assert_eq!(reason_of(d), Some((Action::Throttle, Reason::ErrorRate)));
    assert_eq!(d.retry_after(at(50)), Duration::from_secs(300));
    assert_eq!(alerts.load(Ordering::SeqCst), 1);
    // More errors while throttled do not re-alert.
    m.record(&id, &e, at(52)).await;
    assert_eq!(alerts.load(Ordering::SeqCst), 1);
    // Expiry, then a clean window.
    assert_eq!(m.decision(&id, at(52 + 300)).await, Decision::Allow);
    m.record(&id, &ok_event(), at(2 * 600 + 10)).await;
    assert_eq!(m.decision(&id, at(2 * 600 + 11)).await, Decision::Allow);
}

async fn min_requests_guard<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let id = Identity::api_key("few");
    let mut e = ok_event();
    e.status = 401;
    for i in 0..49 {
        m.record(&id, &e, at(i)).await;
    }
    // 100% errors, but fewer than 50 requests.
    assert_eq!(m.decision(&id, at(49)).await, Decision::Allow);
    m.record(&id, &e, at(49)).await;
    assert_eq!(
        reason_of(m.decision(&id, at(50)).await),
        Some((Action::Throttle, Reason::ErrorRate))
    );
    // 5xx are not the client's errors.
    let id2 = Identity::api_key("fivexx");
    e.status = 503;
    for i in 0..60 {
        m.record(&id2, &e, at(i)).await;
    }
    assert_eq!(m.decision(&id2, at(60)).await, Decision::Allow);
}

async fn response_volume<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let id = Identity::client("scraper");
    let mut e = ok_event();
    e.response_bytes = 1024 * 1024;
    for i in 0..100 {
        m.record(&id, &e, at(i)).await;
    }
    assert_eq!(m.decision(&id, at(100)).await, Decision::Allow);
    e.response_bytes = 1;
    m.record(&id, &e, at(100)).await;
    assert_eq!(
        reason_of(m.decision(&id, at(101)).await),
        Some((Action::Throttle, Reason::ResponseVolume))
    );
    assert_eq!(m.decision(&id, at(100 + 301)).await, Decision::Allow);
}

async fn auth_share<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let id = Identity::address(ip("198.51.100.20"));
    let mut auth = ok_event();
    auth.is_auth_endpoint = true;
    for i in 0..16 {
        m.record(&id, &auth, at(i)).await;
    }
    for i in 16..20 {
        m.record(&id, &ok_event(), at(i)).await;
    }
    // 16 of 20 = 80%, not over.
    assert_eq!(m.decision(&id, at(20)).await, Decision::Allow);
    m.record(&id, &auth, at(20)).await;
    let d = m.decision(&id, at(21)).await;
    assert_eq!(
        reason_of(d),
        Some((Action::Block, Reason::AuthEndpointShare))
    );
    assert_eq!(d.retry_after(at(20)), Duration::from_secs(900));
    assert_eq!(m.decision(&id, at(20 + 900)).await, Decision::Allow);
}

async fn user_agent_rotation<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let id = Identity::api_key("rotator");
    let agents: Vec<String> = (0..11).map(|i| format!("agent/{i}")).collect();
    for (i, ua) in agents.iter().take(10).enumerate() {
        let mut e = ok_event();
        e.user_agent = Some(ua);
        m.record(&id, &e, at(i as u64)).await;
    }
    assert_eq!(m.decision(&id, at(10)).await, Decision::Allow);
    let mut e = ok_event();
    e.user_agent = Some(&agents[10]);
    m.record(&id, &e, at(10)).await;
    assert_eq!(
        reason_of(m.decision(&id, at(11)).await),
        Some((Action::Throttle, Reason::UserAgentRotation))
    );
    assert_eq!(m.decision(&id, at(10 + 300)).await, Decision::Allow);
    // Two windows later the agents are forgotten.
    let b = m.record(&id, &ok_event(), at(3 * 600)).await;
    assert_eq!(b.distinct_user_agents, 1);
}

async fn network_changes<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let id = Identity::api_key("leaked");
    for i in 0..5u8 {
        let mut e = ok_event();
        e.source_ip = IpAddr::from([192, 0, i, 7]);
        m.record(&id, &e, at(u64::from(i))).await;
        // Same /24: not a new network.
        e.source_ip = IpAddr::from([192, 0, i, 8]);
        m.record(&id, &e, at(u64::from(i))).await;
    }
    assert_eq!(m.decision(&id, at(5)).await, Decision::Allow);
    let mut e = ok_event();
    e.source_ip = ip("2001:db8:77::1");
    let b = m.record(&id, &e, at(5)).await;
    assert_eq!(b.distinct_networks, 6);
    assert_eq!(
        reason_of(m.decision(&id, at(6)).await),
        Some((Action::Throttle, Reason::NetworkChanges))
    );
    assert_eq!(m.decision(&id, at(5 + 300)).await, Decision::Allow);
}

async fn near_limit_bursts<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let id = Identity::api_key("pacer");
    let mut e = ok_event();
    e.rate_limit = Some(LimitUsage {
        remaining: 5,
        limit: 60,
    });
    for i in 0..99 {
        m.record(&id, &e, at(i)).await;
    }
    // Plenty of headroom does not count.
    let mut relaxed = ok_event();
    relaxed.rate_limit = Some(LimitUsage {
        remaining: 30,
        limit: 60,
    });
    m.record(&id, &relaxed, at(99)).await;
    assert_eq!(m.decision(&id, at(100)).await, Decision::Allow);
    m.record(&id, &e, at(100)).await;
    assert_eq!(
        reason_of(m.decision(&id, at(101)).await),
        Some((Action::Throttle, Reason::NearLimitBursts))
    );
    assert_eq!(m.decision(&id, at(100 + 300)).await, Decision::Allow);
}

async fn round_the_clock<S: AbuseStore>(store: S) {
    let (m, alerts) = monitor(store);
    let id = Identity::api_key("bot");
    for h in 0..23 {
        m.record(&id, &ok_event(), at(h * 3600 + 5)).await;
    }
    assert!(m.list_flagged(at(23 * 3600)).await.is_empty());
    let b = m.record(&id, &ok_event(), at(23 * 3600 + 5)).await;
    assert_eq!(b.active_hours, 24);
    // Alert only: still allowed, but listed and reported once.
    assert_eq!(m.decision(&id, at(23 * 3600 + 6)).await, Decision::Allow);
    let flags = m.list_flagged(at(23 * 3600 + 6)).await;
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].reason, Reason::RoundTheClock);
    assert_eq!(flags[0].action, Action::Alert);
    assert_eq!(alerts.load(Ordering::SeqCst), 1);
    // The alert flag expires after an hour; an idle hour breaks the pattern.
    assert!(m.list_flagged(at(24 * 3600 + 7)).await.is_empty());
    let b = m.record(&id, &ok_event(), at(25 * 3600 + 5)).await;
    assert_eq!(b.active_hours, 23);
}

async fn list_and_clear<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let a = Identity::api_key("list-a");
    let b = Identity::client("list-b");
    let mut auth = ok_event();
    auth.is_auth_endpoint = true;
    for i in 0..20 {
        m.record(&a, &auth, at(i)).await;
        m.record(&b, &auth, at(i)).await;
    }
    let flags = m.list_flagged(at(30)).await;
    let ids: Vec<&str> = flags.iter().map(|f| f.identity.as_str()).collect();
    assert_eq!(ids, vec!["apikey:list-a", "client:list-b"]);
    assert!(flags.iter().all(|f| f.reason == Reason::AuthEndpointShare));
    assert!(flags.iter().all(|f| f.detail.contains("20 of 20")));
    m.clear(&"apikey:list-a".parse().expect("identity"), at(31))
        .await;
    assert_eq!(m.decision(&a, at(31)).await, Decision::Allow);
    // Behaviour is forgotten too: one more auth request does not re-block at once.
    m.record(&a, &auth, at(32)).await;
    assert_eq!(m.decision(&a, at(33)).await, Decision::Allow);
    let flags = m.list_flagged(at(33)).await;
    assert_eq!(flags.len(), 1);
    assert!(m.list_flagged(at(20 + 900)).await.is_empty());
}

async fn brute_force<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let addr = ip("192.0.2.50");
    for i in 0..5 {
        let out = m.record_auth_failure(addr, Some("alice"), at(i)).await;
        assert!(out.lock.is_none(), "free attempt {i}");
    }
    let out = m.record_auth_failure(addr, Some("alice"), at(5)).await;
    assert_eq!(out.address_failures, 6);
    assert_eq!(out.account_failures, 6);
    let lock = out.lock.expect("backoff");
    assert_eq!(lock.reason, Reason::AuthBackoff);
    assert_eq!(lock.retry_after(at(5)), Duration::from_secs(1));
    assert!(m.is_locked(addr, Some("alice"), at(5)).await.is_some());
    assert!(m.is_locked(addr, Some("alice"), at(6)).await.is_none());
    // Backoff doubles: 7th failure waits 2 s.
    let out = m.record_auth_failure(addr, Some("alice"), at(10)).await;
    assert_eq!(
        out.lock.map(|l| l.retry_after(at(10))),
        Some(Duration::from_secs(2))
    );
    // Failures 8..10 for the account: lockout of 15 minutes for the account, from anywhere.
    for i in 0..3 {
        m.record_auth_failure(addr, Some("alice"), at(20 + i)).await;
    }
    let elsewhere = ip("203.0.113.99");
    let lock = m
        .is_locked(elsewhere, Some("alice"), at(30))
        .await
        .expect("account locked");
    assert_eq!(lock.reason, Reason::AuthLockout);
    assert!(m.is_locked(elsewhere, Some("bob"), at(30)).await.is_none());
    assert!(
        m.is_locked(elsewhere, Some("alice"), at(22 + 900))
            .await
            .is_none()
    );
    // A success resets the account's count (after the window, to start clean).
    m.record_auth_success("carol", at(40)).await;
    let out = m
        .record_auth_failure(elsewhere, Some("carol"), at(41))
        .await;
    assert_eq!(out.account_failures, 1);
    m.record_auth_success("carol", at(42)).await;
    let out = m
        .record_auth_failure(elsewhere, Some("carol"), at(43))
        .await;
    assert_eq!(out.account_failures, 1);
}

async fn credential_stuffing<S: AbuseStore>(store: S) {
    let (m, alerts) = monitor(store);
    let addr = ip("198.51.100.77");
    let accounts: Vec<String> = (0..11).map(|i| format!("user{i}@example.com")).collect();
    for (i, a) in accounts.iter().take(10).enumerate() {
        let out = m
            .record_auth_failure(addr, Some(a), at(i as u64 * 10))
            .await;
        assert_ne!(out.lock.map(|l| l.reason), Some(Reason::CredentialStuffing));
    }
    let out = m
        .record_auth_failure(addr, Some(&accounts[10]), at(100))
        .await;
    assert_eq!(out.distinct_accounts, 11);
    let lock = out.lock.expect("locked");
    assert_eq!(lock.reason, Reason::CredentialStuffing);
    assert_eq!(lock.retry_after(at(100)), Duration::from_secs(900));
    // The address is also throttled everywhere and listed.
    let id = Identity::address(addr);
    assert_eq!(
        reason_of(m.decision(&id, at(101)).await),
        Some((Action::Throttle, Reason::CredentialStuffing))
    );
    assert_eq!(alerts.load(Ordering::SeqCst), 1);
    // An administrator clears it.
    m.clear(&id, at(102)).await;
    assert!(m.is_locked(addr, None, at(102)).await.is_none());
    assert_eq!(m.decision(&id, at(102)).await, Decision::Allow);
    // Or it expires.
    let out = m.record_auth_failure(addr, Some("x"), at(2000)).await;
    assert!(out.lock.is_none());
}

async fn huge_inputs_are_bounded<S: AbuseStore>(store: S) {
    let (m, _) = monitor(store);
    let huge = "A".repeat(1 << 20);
    let id = Identity::user(&huge);
    assert!(id.as_str().len() < 64);
    let mut e = ok_event();
    e.user_agent = Some(&huge);
    e.endpoint = &huge;
    e.response_bytes = u64::MAX;
    let b = m.record(&id, &e, at(0)).await;
    assert_eq!(b.requests, 1);
    assert_eq!(
        reason_of(m.decision(&id, at(1)).await),
        Some((Action::Throttle, Reason::ResponseVolume))
    );
    let out = m.record_auth_failure(ip("::1"), Some(&huge), at(0)).await;
    assert_eq!(out.account_failures, 1);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::MemoryStore::new()).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis {
            use palisade_abuse::RedisStore;

            async fn store() -> Option<RedisStore> {
                let url = palisade_testkit::redis_url()?;
                let client = ::redis::Client::open(url).expect("redis url");
                let conn = client.get_connection_manager().await.expect("redis connection");
                Some(RedisStore::with_prefix(conn, palisade_testkit::unique_name("abuse")))
            }

            $(
                #[tokio::test]
                async fn $name() {
                    let Some(store) = store().await else { return };
                    super::$name(store).await;
                }
            )*
        }

        // Write-behind mode must reach the same decisions: what this instance records
        // counts at once, whether or not it has been flushed.
        #[cfg(feature = "redis")]
        mod redis_batched {
            use std::time::Duration;

            use palisade_abuse::RedisStore;

            async fn store() -> Option<RedisStore> {
                let url = palisade_testkit::redis_url()?;
                let client = ::redis::Client::open(url).expect("redis url");
                let conn = client.get_connection_manager().await.expect("redis connection");
                Some(
                    RedisStore::with_prefix(conn, palisade_testkit::unique_name("abuse"))
                        .batched(Duration::from_millis(250)),
                )
            }

            $(
                #[tokio::test]
                async fn $name() {
                    let Some(store) = store().await else { return };
                    super::$name(store).await;
                }
            )*
        }
    };
}

conformance!(
    error_rate,
    min_requests_guard,
    response_volume,
    auth_share,
    user_agent_rotation,
    network_changes,
    near_limit_bursts,
    round_the_clock,
    list_and_clear,
    brute_force,
    credential_stuffing,
    huge_inputs_are_bounded,
);
