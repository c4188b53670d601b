//! Who is on the other end: the client address and whether the request came over TLS.
//!
//! The connection's peer address is the truth, unless the peer is a configured trusted
//! proxy; then, and only then, `X-Forwarded-For` and `X-Forwarded-Proto` are read. From
//! anyone else those headers are ignored, so a client cannot pick its own address (and
//! thereby its own rate-limit bucket) or claim TLS it did not use. A trusted proxy must
//! say `X-Forwarded-Proto: https`; a request it forwards over plain HTTP gets 403.
//!
//! The result is a [`ClientInfo`] in the request extensions; every later layer uses it
//! instead of looking at headers itself.
//!
//! ```
//! use palisade_axum::{ClientInfoLayer, TrustedProxies};
//!
//! let proxies = TrustedProxies::parse(["10.0.0.0/8", "::1/128"]).unwrap();
//! let layer = ClientInfoLayer::new(proxies);
//! let app: axum::Router = axum::Router::new().layer(layer);
//! # let _ = app;
//! ```

mod layer;
mod service;

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

pub use layer::ClientInfoLayer;
pub use service::ClientInfoService;

/// What a server knows about a connection, inserted into each request's extensions by the
/// accept loop. (axum's `ConnectInfo<SocketAddr>` is used when this is absent.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection itself is TLS.
    pub tls: bool,
}

/// The resolved client: its address and whether its request travelled over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address (through trusted proxies, the first untrusted hop).
    pub address: IpAddr,
    /// TLS directly, or `X-Forwarded-Proto: https` from a trusted proxy.
    pub over_tls: bool,
    /// Whether the request came through a trusted proxy.
    pub via_proxy: bool,
}

/// Networks whose peers may speak for the client through `X-Forwarded-*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// No proxy is trusted: the peer address is always the client.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Parses CIDR blocks (`10.0.0.0/8`, `fd00::/8`) or single addresses.
    pub fn parse<I, S>(networks: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        networks
            .into_iter()
            .map(|text| {
                let text = text.as_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{text}` is not an address or CIDR network"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `address` (IPv4-mapped IPv6 included) is a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `::ffff:10.0.0.1` is the IPv4 address `10.0.0.1` (dual-stack sockets report it so).
pub(crate) fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// Why forwarded information from a trusted proxy was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardedError {
    /// The proxy did not say the client used HTTPS.
    PlainHttp,
    /// `X-Forwarded-For` held something that is not an address.
    Malformed,
}

/// Resolves the client from the peer and, for a trusted peer, the forwarded headers.
///
/// `forwarded_for` is every `X-Forwarded-For` value in order; `forwarded_proto` the last
/// `X-Forwarded-Proto` value.
pub(crate) fn resolve(
    proxies: &TrustedProxies,
    peer: SocketAddr,
    tls: bool,
    forwarded_for: &[&str],
    forwarded_proto: Option<&str>,
) -> Result<ClientInfo, ForwardedError> {
    let peer_ip = canonical(peer.ip());
    if !proxies.contains(peer_ip) {
        return Ok(ClientInfo {
            address: peer_ip,
            over_tls: tls,
            via_proxy: false,
        });
    }
    let proto = forwarded_proto
        .and_then(|value| value.rsplit(',').next())
        .map(str::trim);
    if !tls && !proto.is_some_and(|proto| proto.eq_ignore_ascii_case("https")) {
        return Err(ForwardedError::PlainHttp);
    }
    // Walk from the right: each trusted hop appended the address it saw. The first
    // address that is not a trusted proxy is the client; anything left of it was written
    // by the client and is not believed.
    let mut client = peer_ip;
    for hop in forwarded_for
        .iter()
        .rev()
        .flat_map(|value| value.rsplit(','))
    {
        let hop = hop.trim();
        let address = parse_hop(hop).ok_or(ForwardedError::Malformed)?;
        client = canonical(address);
        if !proxies.contains(client) {
            break;
        }
    }
    Ok(ClientInfo {
        address: client,
        over_tls: true,
        via_proxy: true,
    })
}

/// An `X-Forwarded-For` entry: an address, possibly with a port or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if hop.len() > 64 {
        return None;
    }
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(["10.0.0.0/8", "192.168.1.1"]).unwrap()
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn untrusted_peers_cannot_forward() {
        let info = resolve(
            &proxies(),
            peer("203.0.113.9"),
            false,
            &["1.2.3.4"],
            Some("https"),
        )
        .unwrap();
        assert_eq!(info.address, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(!info.over_tls);
        assert!(!info.via_proxy);
    }

    #[test]
    fn trusted_proxy_names_the_first_untrusted_hop_from_the_right() {
        let info = resolve(
            &proxies(),
            peer("10.1.1.1"),
            false,
            &["6.6.6.6, 198.51.100.7", "10.2.2.2"],
            Some("https"),
        )
        .unwrap();
        assert_eq!(info.address, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert!(info.over_tls && info.via_proxy);
    }

    #[test]
    fn trusted_proxy_over_plain_http_is_refused() {
        assert_eq!(
            resolve(
                &proxies(),
                peer("10.1.1.1"),
                false,
                &["198.51.100.7"],
                Some("http")
            ),
            Err(ForwardedError::PlainHttp)
        );
        assert_eq!(
            resolve(&proxies(), peer("10.1.1.1"), false, &["198.51.100.7"], None),
            Err(ForwardedError::PlainHttp)
        );
    }

    #[test]
    fn garbage_in_the_trusted_part_is_refused() {
        assert_eq!(
            resolve(
                &proxies(),
                peer("10.1.1.1"),
                false,
                &["not-an-ip"],
                Some("https")
            ),
            Err(ForwardedError::Malformed)
        );
    }

    #[test]
    fn forwarded_entries_with_ports_and_brackets_parse() {
        assert_eq!(
            parse_hop("198.51.100.7:443"),
            Some("198.51.100.7".parse().unwrap())
        );
        assert_eq!(
            parse_hop("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            parse_hop("[2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_hop(&"1".repeat(100)), None);
    }

    #[test]
    fn mapped_ipv6_peers_match_ipv4_networks() {
        assert!(proxies().contains("::ffff:10.0.0.5".parse().unwrap()));
        assert!(!proxies().contains("::ffff:11.0.0.5".parse().unwrap()));
    }

    #[test]
    fn bad_networks_are_named() {
        let error = TrustedProxies::parse(["10.0.0.0/8", "nope"]).unwrap_err();
        assert!(error.contains("nope"));
    }
}
