use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP is, for deciding whether a server may connect to it on a
/// client's behalf. Only [`Public`](AddressClass::Public) is safe to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// Globally routable unicast.
    Public,
    /// `0.0.0.0`, `::`: connecting to it reaches the local host.
    Unspecified,
    /// `0.0.0.0/8` ("this network").
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// RFC 6598 carrier-grade NAT, `100.64.0.0/10` (also Alibaba Cloud's metadata address).
    SharedAddressSpace,
    /// `169.254.0.0/16` (the cloud metadata address `169.254.169.254` among them), `fe80::/10`.
    LinkLocal,
    /// IPv6 unique local addresses, `fc00::/7` (AWS's IPv6 metadata address among them).
    UniqueLocal,
    /// Deprecated IPv6 site-local addresses, `fec0::/10`.
    SiteLocal,
    /// Documentation ranges: `192.0.2/24`, `198.51.100/24`, `203.0.113/24`,
    /// `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Benchmarking ranges: `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// Multicast: `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Anything else that is not global unicast: `240/4`, `192.0.0/24`, `192.88.99/24`,
    /// IPv4-compatible and IPv4-translated IPv6, NAT64 local use, discard-only, ORCHID,
    /// and IPv6 outside `2000::/3`.
    Reserved,
}

impl AddressClass {
    /// Whether a server may connect to such an address on a client's behalf.
    pub fn is_public(self) -> bool {
        self == Self::Public
    }

    /// A stable snake_case name (`loopback`, `link_local`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unspecified => "unspecified",
            Self::ThisNetwork => "this_network",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedAddressSpace => "shared_address_space",
            Self::LinkLocal => "link_local",
            Self::UniqueLocal => "unique_local",
            Self::SiteLocal => "site_local",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Reserved => "reserved",
        }
    }
}

/// Classifies an address, looking inside the IPv6 forms that carry an IPv4 address
/// (mapped `::ffff:a.b.c.d`, compatible, translated, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`
/// and Teredo `2001::/32`), so that `::ffff:127.0.0.1` is [`Loopback`](AddressClass::Loopback).
///
/// ```
/// use palisade_validate::{classify_ip, AddressClass};
/// assert_eq!(classify_ip("::ffff:127.0.0.1".parse().unwrap()), AddressClass::Loopback);
/// assert_eq!(classify_ip("2002:a9fe:a9fe::".parse().unwrap()), AddressClass::LinkLocal);
/// assert!(classify_ip("93.184.215.14".parse().unwrap()).is_public());
/// ```
pub fn classify_ip(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_unspecified() => AddressClass::Unspecified,
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (0, ..) => AddressClass::ThisNetwork,
        (127, ..) => AddressClass::Loopback,
        (10, ..) | (192, 168, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedAddressSpace,
        (169, 254, _) => AddressClass::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Documentation,
        (198, 18..=19, _) => AddressClass::Benchmarking,
        (192, 0, 0) | (192, 88, 99) => AddressClass::Reserved,
        (224..=239, ..) => AddressClass::Multicast,
        (240..=255, ..) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn embedded(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// The class of an IPv4 address carried in a form that is itself never a fetch target:
/// the embedded address's own class if it is not public, else `Reserved`.
fn carried(v4: Ipv4Addr) -> AddressClass {
    match classify_v4(v4) {
        AddressClass::Public => AddressClass::Reserved,
        class => class,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => AddressClass::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => AddressClass::Loopback,
        // IPv4-compatible (deprecated) `::a.b.c.d`.
        [0, 0, 0, 0, 0, 0, hi, lo] => carried(embedded(hi, lo)),
        // IPv4-translated (RFC 2765) `::ffff:0:a.b.c.d`.
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => carried(embedded(hi, lo)),
        // NAT64 well-known prefix (RFC 6052): reaches the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => classify_v4(embedded(hi, lo)),
        // 6to4 (RFC 3056): the embedded address is a relay target.
        [0x2002, hi, lo, ..] => classify_v4(embedded(hi, lo)),
        // Teredo (RFC 4380): server address in clear, client address inverted.
        [0x2001, 0, server_hi, server_lo, _, _, client_hi, client_lo] => {
            let server = classify_v4(embedded(server_hi, server_lo));
            let client = classify_v4(embedded(!client_hi, !client_lo));
            if server.is_public() { client } else { server }
        }
        [0x2001, 0xdb8, ..] => AddressClass::Documentation,
        [0x3fff, b, ..] if b < 0x1000 => AddressClass::Documentation,
        [0x2001, 2, 0, ..] => AddressClass::Benchmarking,
        [0x2001, 0x10..=0x2f, ..] => AddressClass::Reserved,
        [a, ..] if a & 0xfe00 == 0xfc00 => AddressClass::UniqueLocal,
        [a, ..] if a & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [a, ..] if a & 0xffc0 == 0xfec0 => AddressClass::SiteLocal,
        [a, ..] if a & 0xff00 == 0xff00 => AddressClass::Multicast,
        [a, ..] if a & 0xe000 == 0x2000 => AddressClass::Public,
        _ => AddressClass::Reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> AddressClass {
        classify_ip(s.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        assert_eq!(c("0.0.0.0"), AddressClass::Unspecified);
        assert_eq!(c("0.1.2.3"), AddressClass::ThisNetwork);
        assert_eq!(c("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("127.255.255.254"), AddressClass::Loopback);
        assert_eq!(c("10.0.0.1"), AddressClass::Private);
        assert_eq!(c("172.16.0.1"), AddressClass::Private);
        assert_eq!(c("172.31.255.255"), AddressClass::Private);
        assert_eq!(c("172.32.0.1"), AddressClass::Public);
        assert_eq!(c("192.168.1.1"), AddressClass::Private);
        assert_eq!(c("100.64.0.1"), AddressClass::SharedAddressSpace);
        assert_eq!(c("100.100.100.200"), AddressClass::SharedAddressSpace);
        assert_eq!(c("100.128.0.1"), AddressClass::Public);
        assert_eq!(c("169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(c("192.0.0.170"), AddressClass::Reserved);
        assert_eq!(c("192.0.2.1"), AddressClass::Documentation);
        assert_eq!(c("198.51.100.1"), AddressClass::Documentation);
        assert_eq!(c("203.0.113.1"), AddressClass::Documentation);
        assert_eq!(c("198.18.0.1"), AddressClass::Benchmarking);
        assert_eq!(c("224.0.0.1"), AddressClass::Multicast);
        assert_eq!(c("240.0.0.1"), AddressClass::Reserved);
        assert_eq!(c("255.255.255.255"), AddressClass::Broadcast);
        assert_eq!(c("8.8.8.8"), AddressClass::Public);
        assert_eq!(c("1.1.1.1"), AddressClass::Public);
    }

    #[test]
    fn ipv6_ranges() {
        assert_eq!(c("::"), AddressClass::Unspecified);
        assert_eq!(c("::1"), AddressClass::Loopback);
        assert_eq!(c("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("::ffff:7f00:1"), AddressClass::Loopback);
        assert_eq!(c("::ffff:169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(c("::ffff:8.8.8.8"), AddressClass::Public);
        assert_eq!(c("::127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("::8.8.8.8"), AddressClass::Reserved);
        assert_eq!(c("::ffff:0:10.0.0.1"), AddressClass::Private);
        assert_eq!(c("::ffff:0:8.8.8.8"), AddressClass::Reserved);
        assert_eq!(c("64:ff9b::127.0.0.1"), AddressClass::Loopback);
        assert_eq!(c("64:ff9b::8.8.8.8"), AddressClass::Public);
        assert_eq!(c("64:ff9b:1::1"), AddressClass::Reserved);
        assert_eq!(c("2002:7f00:1::"), AddressClass::Loopback);
        assert_eq!(c("2002:a9fe:a9fe::1"), AddressClass::LinkLocal);
        assert_eq!(c("2002:0808:0808::1"), AddressClass::Public);
        // Teredo with client 127.0.0.1 (inverted: 80ff:fffe) and a public server.
        assert_eq!(
            c("2001:0:4136:e378:8000:63bf:80ff:fffe"),
            AddressClass::Loopback
        );
        assert_eq!(
            c("2001:0:4136:e378:8000:63bf:f7f7:f7f7"),
            AddressClass::Public
        );
        assert_eq!(c("2001:0:a00:1::"), AddressClass::Private);
        assert_eq!(c("2001:db8::1"), AddressClass::Documentation);
        assert_eq!(c("3fff::1"), AddressClass::Documentation);
        assert_eq!(c("2001:2::1"), AddressClass::Benchmarking);
        assert_eq!(c("2001:20::1"), AddressClass::Reserved);
        assert_eq!(c("fc00::1"), AddressClass::UniqueLocal);
        assert_eq!(c("fd00:ec2::254"), AddressClass::UniqueLocal);
        assert_eq!(c("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(c("fec0::1"), AddressClass::SiteLocal);
        assert_eq!(c("ff02::1"), AddressClass::Multicast);
        assert_eq!(c("100::1"), AddressClass::Reserved);
        assert_eq!(c("5f00::1"), AddressClass::Reserved);
        assert_eq!(c("2606:4700:4700::1111"), AddressClass::Public);
    }
}
