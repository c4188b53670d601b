//! The SSRF guard with DNS: a fake resolver plays the attacker's name server.
#![cfg(feature = "resolve")]

use std::io;
use std::net::{IpAddr, SocketAddr};

use palisade_validate::{ErrorKind, TokioResolver, UrlPolicy};

fn answers(
    ips: &'static [&'static str],
) -> impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync {
    move |_host: &str, port: u16| {
        Ok(ips
            .iter()
            .map(|ip| SocketAddr::new(ip.parse::<IpAddr>().expect("test address"), port))
            .collect())
    }
}

#[tokio::test]
async fn public_answers_are_returned_for_pinning() {
    let policy = UrlPolicy::default();
    let vetted = policy
        .vet(
            "https://hooks.example.com/in",
            &answers(&["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]),
        )
        .await
        .unwrap();
    assert_eq!(vetted.host(), "hooks.example.com");
    assert_eq!(vetted.addrs().len(), 2);
    assert!(vetted.addrs().iter().all(|a| a.port() == 443));
    assert_eq!(vetted.url().path(), "/in");
}

#[tokio::test]
async fn a_name_that_resolves_inside_is_refused() {
    let policy = UrlPolicy::default();
    for (ips, class) in [
        (&["127.0.0.1"][..], "loopback"),
        (&["169.254.169.254"][..], "link_local"),
        (&["10.1.2.3"][..], "private"),
        (&["::ffff:127.0.0.1"][..], "loopback"),
        (&["fd00::1"][..], "unique_local"),
        (&["0.0.0.0"][..], "unspecified"),
    ] {
        let ips: &'static [&'static str] = Box::leak(ips.to_vec().into_boxed_slice());
        let e = policy
            .vet("https://127.0.0.1.nip.io/", &answers(ips))
            .await
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.detail()),
            (ErrorKind::ForbiddenAddress, Some(class))
        );
    }
}

#[tokio::test]
async fn one_bad_address_among_good_ones_refuses_all() {
    // A client library may pick any answer; a rebinding server mixes them.
    let policy = UrlPolicy::default();
    let e = policy
        .vet(
            "https://rebind.example/",
            &answers(&["93.184.215.14", "127.0.0.1"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForbiddenAddress);
}

#[tokio::test]
async fn dns_failures_and_empty_answers() {
    let policy = UrlPolicy::default();
    let fail =
        |_: &str, _: u16| -> io::Result<Vec<SocketAddr>> { Err(io::Error::other("nxdomain")) };
    assert_eq!(
        policy
            .vet("https://nope.example/", &fail)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::DnsFailure
    );
    assert_eq!(
        policy
            .vet("https://empty.example/", &answers(&[]))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::DnsFailure
    );
}

#[tokio::test]
async fn the_resolver_port_is_not_trusted() {
    let policy = UrlPolicy::default();
    let odd = |_: &str, _: u16| -> io::Result<Vec<SocketAddr>> {
        Ok(vec!["93.184.215.14:6379".parse().unwrap()])
    };
    let vetted = policy.vet("https://example.com/", &odd).await.unwrap();
    assert_eq!(vetted.addrs()[0].port(), 443);
}

#[tokio::test]
async fn the_real_resolver_sees_localhost() {
    // `localhost` is refused by name first; without the name rule, the system resolver
    // (through /etc/hosts, no network) answers loopback and the address rule refuses it.
    let e = UrlPolicy::default()
        .vet("https://localhost/", &TokioResolver)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HostNotAllowed);
    let by_address = UrlPolicy::default().clear_deny_hosts();
    let e = by_address
        .vet("https://localhost/", &TokioResolver)
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.detail()),
        (ErrorKind::ForbiddenAddress, Some("loopback"))
    );
}

#[tokio::test]
async fn real_resolution_of_a_loopback_name_is_refused() {
    // `localhost.localdomain`-style names are denied by pattern; a plain IP literal goes
    // through `resolve` without DNS.
    let policy = UrlPolicy::default();
    let url = url::Url::parse("https://127.0.0.1/").unwrap();
    assert_eq!(
        policy
            .resolve(url, &TokioResolver)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::ForbiddenAddress
    );
}

#[test]
fn allow_and_deny_lists() {
    let only = UrlPolicy::default()
        .allow_host("*.hooks.example.com")
        .allow_host("example.org");
    assert!(only.check_url("https://a.hooks.example.com/").is_ok());
    assert!(only.check_url("https://example.org/").is_ok());
    for url in [
        "https://hooks.example.com/",
        "https://evilhooks.example.com/",
        "https://example.com/",
        "https://sub.example.org/",
    ] {
        assert_eq!(
            only.check_url(url).unwrap_err().kind(),
            ErrorKind::HostNotAllowed,
            "{url}"
        );
    }
    let deny = UrlPolicy::default()
        .deny_host("*.evil.test")
        .deny_host("bad.test");
    assert_eq!(
        deny.check_url("https://x.evil.test/").unwrap_err().kind(),
        ErrorKind::HostNotAllowed
    );
    assert_eq!(
        deny.check_url("https://BAD.test./").unwrap_err().kind(),
        ErrorKind::HostNotAllowed
    );
    assert!(deny.check_url("https://good.test/").is_ok());
}

#[test]
fn schemes_ports_and_networks() {
    let policy = UrlPolicy::default()
        .schemes(["https", "http"])
        .ports([80, 443, 8443]);
    assert!(policy.check_url("http://example.com/").is_ok());
    assert!(policy.check_url("https://example.com:8443/").is_ok());
    assert_eq!(
        policy
            .check_url("https://example.com:8080/")
            .unwrap_err()
            .kind(),
        ErrorKind::PortNotAllowed
    );
    let internal = UrlPolicy::default().allow_network("10.20.0.0/16".parse().unwrap());
    assert!(internal.check_url("https://10.20.1.1/").is_ok());
    assert_eq!(
        internal.check_url("https://10.21.1.1/").unwrap_err().kind(),
        ErrorKind::ForbiddenAddress
    );
    let denied = UrlPolicy::default().deny_network("8.8.8.0/24".parse().unwrap());
    assert_eq!(
        denied.check_url("https://8.8.8.8/").unwrap_err().kind(),
        ErrorKind::ForbiddenAddress
    );
    // A mapped spelling of a denied network is still denied.
    assert_eq!(
        denied
            .check_url("https://[::ffff:8.8.8.8]/")
            .unwrap_err()
            .kind(),
        ErrorKind::ForbiddenAddress
    );
    let long = format!("https://example.com/{}", "a".repeat(3000));
    assert_eq!(
        UrlPolicy::default().check_url(&long).unwrap_err().kind(),
        ErrorKind::InvalidUrl
    );
}

#[test]
fn the_url_crate_canonicalises_what_std_rejects() {
    // Why the guard parses with `url`: std refuses these spellings, the fetching client
    // does not.
    for spelling in ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0"] {
        assert!(
            spelling.parse::<std::net::Ipv4Addr>().is_err(),
            "{spelling}"
        );
        let url = url::Url::parse(&format!("https://{spelling}/")).unwrap();
        assert!(matches!(url.host(), Some(url::Host::Ipv4(_))), "{spelling}");
    }
    let mapped: std::net::Ipv6Addr = "::ffff:127.0.0.1".parse().unwrap();
    assert!(!mapped.is_loopback());
    assert_eq!(
        palisade_validate::classify_ip(mapped.into()),
        palisade_validate::AddressClass::Loopback
    );
}

#[tokio::test]
async fn redirects_are_checked_again() {
    let policy = UrlPolicy::default().max_redirects(2);
    let from = policy.check_url("https://example.com/a/b").unwrap();
    let next = policy.check_redirect(&from, "/c?d=1", 0).unwrap();
    assert_eq!(next.as_str(), "https://example.com/c?d=1");
    assert_eq!(
        policy
            .check_redirect(&from, "https://127.0.0.1/", 0)
            .unwrap_err()
            .kind(),
        ErrorKind::ForbiddenAddress
    );
    assert_eq!(
        policy
            .check_redirect(&from, "http://example.com/", 0)
            .unwrap_err()
            .kind(),
        ErrorKind::SchemeNotAllowed
    );
    assert_eq!(
        policy
            .check_redirect(&from, "//user@example.com/", 0)
            .unwrap_err()
            .kind(),
        ErrorKind::UserinfoNotAllowed
    );
    assert_eq!(
        policy
            .check_redirect(&from, "https://[::1]:443/", 1)
            .unwrap_err()
            .kind(),
        ErrorKind::ForbiddenAddress
    );
    assert_eq!(
        policy.check_redirect(&from, "/ok", 2).unwrap_err().kind(),
        ErrorKind::TooManyRedirects
    );
    // A relative path with `//` inside is not user information.
    assert!(policy.check_redirect(&from, "/a//b@c", 0).is_ok());
    // The redirect target resolves again: a name that now points inside is refused.
    let target = policy
        .check_redirect(&from, "https://second.example/", 1)
        .unwrap();
    let inside = |_: &str, port: u16| -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::from(([192, 168, 0, 1], port))])
    };
    assert_eq!(
        policy.resolve(target, &inside).await.unwrap_err().kind(),
        ErrorKind::ForbiddenAddress
    );
}
