use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use url::{Host, Url};

use crate::{AddressClass, Error, ErrorKind, classify_ip};

/// Host names refused before any DNS query: they name the local machine or a private
/// network by convention (RFC 6761, RFC 8375, cloud metadata services).
const DEFAULT_DENY: [&str; 6] = [
    "localhost",
    "*.localhost",
    "*.local",
    "*.internal",
    "*.home.arpa",
    "*.localdomain",
];

/// Resolves a host name to socket addresses. Implemented by [`TokioResolver`] and, for
/// tests and custom caches, by any `Fn(&str, u16) -> io::Result<Vec<SocketAddr>>`.
pub trait Resolve: Send + Sync {
    /// The addresses `host` resolves to, with `port`.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
}

impl<F> Resolve for F
where
    F: Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync,
{
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
        std::future::ready(self(host, port))
    }
}

/// The system resolver, through `tokio::net::lookup_host`.
#[cfg(feature = "resolve")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioResolver;

#[cfg(feature = "resolve")]
impl Resolve for TokioResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// A URL that passed every check, with the addresses it was checked against.
///
/// Connect to [`addrs`](VettedUrl::addrs), not to the host name again: a second DNS query
/// could answer differently (DNS rebinding). With an HTTP client that resolves on its own,
/// pin the name (reqwest: `ClientBuilder::resolve_to_addrs(host, addrs)`), turn automatic
/// redirects off, and pass each `Location` to [`UrlPolicy::check_redirect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VettedUrl {
    url: Url,
    addrs: Vec<SocketAddr>,
}

impl VettedUrl {
    /// The parsed URL, as the fetching client must use it.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host as it goes in the `Host` header and TLS SNI.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The vetted socket addresses; never empty.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The URL and the addresses.
    pub fn into_parts(self) -> (Url, Vec<SocketAddr>) {
        (self.url, self.addrs)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    Subdomains(String),
}

impl HostPattern {
    fn parse(pattern: &str) -> Self {
        let p = pattern.trim_end_matches('.').to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(domain) => Self::Subdomains(domain.to_owned()),
            None => Self::Exact(p),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => host == h,
            Self::Subdomains(d) => host
                .strip_suffix(d.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        }
    }
}

/// Rules for URLs that a client asks the server to fetch (webhooks, avatars by URL,
/// imports): the server-side request forgery guard.
///
/// Defaults: scheme `https`, port 443, no user information, host names `localhost`,
/// `*.localhost`, `*.local`, `*.internal`, `*.home.arpa`, `*.localdomain` refused, URLs up
/// to 2048 bytes, 5 redirects, and only [public](AddressClass::Public) addresses.
///
/// ```
/// use palisade_validate::{ErrorKind, UrlPolicy};
/// let policy = UrlPolicy::default();
/// assert!(policy.check_url("https://hooks.example.com/in").is_ok());
/// for url in ["https://2130706433/", "https://0177.0.0.1/", "https://0x7f.1/",
///             "https://127.1/", "https://[::ffff:127.0.0.1]/", "https://169.254.169.254/"] {
///     assert_eq!(policy.check_url(url).unwrap_err().kind(), ErrorKind::ForbiddenAddress);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    schemes: Vec<String>,
    ports: Vec<u16>,
    allow_hosts: Vec<HostPattern>,
    deny_hosts: Vec<HostPattern>,
    allow_networks: Vec<IpNet>,
    deny_networks: Vec<IpNet>,
    max_url_len: usize,
    max_redirects: usize,
}

impl Default for UrlPolicy {
    fn default() -> Self {
        Self {
            schemes: vec!["https".to_owned()],
            ports: vec![443],
            allow_hosts: Vec::new(),
            deny_hosts: DEFAULT_DENY.iter().map(|p| HostPattern::parse(p)).collect(),
            allow_networks: Vec::new(),
            deny_networks: Vec::new(),
            max_url_len: 2048,
            max_redirects: 5,
        }
    }
}

impl UrlPolicy {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the allowed schemes (lower case), e.g. `["https", "http"]`.
    #[must_use]
    pub fn schemes<'a>(mut self, schemes: impl IntoIterator<Item = &'a str>) -> Self {
        self.schemes = schemes.into_iter().map(str::to_ascii_lowercase).collect();
        self
    }

    /// Replaces the allowed ports (the scheme's default port counts when none is written).
    #[must_use]
    pub fn ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.ports = ports.into_iter().collect();
        self
    }

    /// Adds a host to the allow list: `example.com` exactly, or `*.example.com` for its
    /// subdomains. Once the list is not empty, every other host is refused.
    #[must_use]
    pub fn allow_host(mut self, pattern: &str) -> Self {
        self.allow_hosts.push(HostPattern::parse(pattern));
        self
    }

    /// Adds a host to the deny list (same patterns as [`allow_host`](Self::allow_host)).
    #[must_use]
    pub fn deny_host(mut self, pattern: &str) -> Self {
        self.deny_hosts.push(HostPattern::parse(pattern));
        self
    }

    /// Empties the deny list, the default names included (they are then refused only by
    /// the addresses they resolve to).
    #[must_use]
    pub fn clear_deny_hosts(mut self) -> Self {
        self.deny_hosts.clear();
        self
    }

    /// Permits a network that the address rules would refuse, e.g. an internal webhook
    /// subnet. Deny networks still win.
    #[must_use]
    pub fn allow_network(mut self, net: IpNet) -> Self {
        self.allow_networks.push(net);
        self
    }

    /// Refuses a network on top of the address rules.
    #[must_use]
    pub fn deny_network(mut self, net: IpNet) -> Self {
        self.deny_networks.push(net);
        self
    }

    /// The longest URL accepted, in bytes.
    #[must_use]
    pub fn max_url_len(mut self, len: usize) -> Self {
        self.max_url_len = len;
        self
    }

    /// The most redirects [`check_redirect`](Self::check_redirect) follows.
    #[must_use]
    pub fn max_redirects(mut self, hops: usize) -> Self {
        self.max_redirects = hops;
        self
    }

    /// Parses `input` exactly as a WHATWG-conformant client (the `url` crate, which reqwest
    /// uses) will, and checks everything that can be checked without DNS: scheme, user
    /// information, host lists, port, and the address when the host is an IP in any of
    /// its spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`, `0`, `[::ffff:7f00:1]`).
    ///
    /// # Errors
    /// [`InvalidUrl`](ErrorKind::InvalidUrl), [`SchemeNotAllowed`](ErrorKind::SchemeNotAllowed),
    /// [`UserinfoNotAllowed`](ErrorKind::UserinfoNotAllowed),
    /// [`HostNotAllowed`](ErrorKind::HostNotAllowed), [`PortNotAllowed`](ErrorKind::PortNotAllowed),
    /// [`ForbiddenAddress`](ErrorKind::ForbiddenAddress).
    pub fn check_url(&self, input: &str) -> Result<Url, Error> {
        if input.len() > self.max_url_len {
            return Err(Error::new(ErrorKind::InvalidUrl).with_detail("too long"));
        }
        let url = Url::parse(input).map_err(|_| Error::new(ErrorKind::InvalidUrl))?;
        if authority_has_at(input) {
            return Err(Error::new(ErrorKind::UserinfoNotAllowed));
        }
        self.check_parsed(&url)?;
        Ok(url)
    }

    fn check_parsed(&self, url: &Url) -> Result<(), Error> {
        if !self.schemes.iter().any(|s| s == url.scheme()) {
            return Err(Error::new(ErrorKind::SchemeNotAllowed));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::new(ErrorKind::UserinfoNotAllowed));
        }
        let host = url
            .host()
            .ok_or_else(|| Error::new(ErrorKind::InvalidUrl).with_detail("no host"))?;
        let name = match &host {
            Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        if name.is_empty() || self.deny_hosts.iter().any(|p| p.matches(&name)) {
            return Err(Error::new(ErrorKind::HostNotAllowed));
        }
        if !self.allow_hosts.is_empty() && !self.allow_hosts.iter().any(|p| p.matches(&name)) {
            return Err(Error::new(ErrorKind::HostNotAllowed));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::new(ErrorKind::PortNotAllowed))?;
        if !self.ports.contains(&port) {
            return Err(Error::new(ErrorKind::PortNotAllowed));
        }
        match host {
            Host::Ipv4(ip) => self.check_ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => self.check_ip(IpAddr::V6(ip)),
            Host::Domain(_) => Ok(()),
        }
    }

    /// Checks one address against the network lists and the address rules.
    ///
    /// # Errors
    /// [`ForbiddenAddress`](ErrorKind::ForbiddenAddress), with the class as detail.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Error> {
        let canonical = ip.to_canonical();
        let listed = |nets: &[IpNet]| {
            nets.iter()
                .any(|n| n.contains(&ip) || n.contains(&canonical))
        };
        if listed(&self.deny_networks) {
            return Err(Error::new(ErrorKind::ForbiddenAddress).with_detail("denied network"));
        }
        if listed(&self.allow_networks) {
            return Ok(());
        }
        match classify_ip(ip) {
            AddressClass::Public => Ok(()),
            class => Err(Error::new(ErrorKind::ForbiddenAddress).with_detail(class.as_str())),
        }
    }

    /// Resolves a checked URL's host and checks every address it resolves to; one
    /// forbidden address refuses the whole URL, since a client could pick any of them.
    ///
    /// # Errors
    /// As [`check_url`](Self::check_url), plus [`DnsFailure`](ErrorKind::DnsFailure).
    pub async fn resolve<R: Resolve>(&self, url: Url, resolver: &R) -> Result<VettedUrl, Error> {
        self.check_parsed(&url)?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::new(ErrorKind::PortNotAllowed))?;
        let mut addrs = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => {
                let mut addrs = resolver
                    .resolve(name, port)
                    .await
                    .map_err(|_| Error::new(ErrorKind::DnsFailure))?;
                addrs.sort_unstable();
                addrs.dedup();
                addrs
            }
            None => return Err(Error::new(ErrorKind::InvalidUrl)),
        };
        if addrs.is_empty() {
            return Err(Error::new(ErrorKind::DnsFailure).with_detail("no addresses"));
        }
        for addr in &mut addrs {
            self.check_ip(addr.ip())?;
            // Whatever the resolver said, connect to the port that was checked.
            addr.set_port(port);
        }
        Ok(VettedUrl { url, addrs })
    }

    /// [`check_url`](Self::check_url) then [`resolve`](Self::resolve).
    ///
    /// # Errors
    /// As those two.
    pub async fn vet<R: Resolve>(&self, input: &str, resolver: &R) -> Result<VettedUrl, Error> {
        let url = self.check_url(input)?;
        self.resolve(url, resolver).await
    }

    /// Checks a redirect's `Location` (relative to `from`) as a new URL; `hops` is the
    /// number of redirects already followed. Resolve the result again before connecting.
    ///
    /// # Errors
    /// [`TooManyRedirects`](ErrorKind::TooManyRedirects) or as [`check_url`](Self::check_url).
    pub fn check_redirect(&self, from: &Url, location: &str, hops: usize) -> Result<Url, Error> {
        if hops >= self.max_redirects {
            return Err(Error::new(ErrorKind::TooManyRedirects));
        }
        if location.len() > self.max_url_len {
            return Err(Error::new(ErrorKind::InvalidUrl).with_detail("too long"));
        }
        let url = from
            .join(location)
            .map_err(|_| Error::new(ErrorKind::InvalidUrl))?;
        if authority_has_at(location) {
            return Err(Error::new(ErrorKind::UserinfoNotAllowed));
        }
        self.check_parsed(&url)?;
        Ok(url)
    }
}

/// Whether the authority as written holds an `@`, even one the parser drops
/// (`https://@host/`, `https://:@host/`).
fn authority_has_at(input: &str) -> bool {
    let Some((before, rest)) = input.trim_start().split_once("//") else {
        return false;
    };
    let scheme_ok = before.is_empty()
        || before.strip_suffix(':').is_some_and(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
    if !scheme_ok {
        return false;
    }
    rest.split(['/', '\\', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
}
