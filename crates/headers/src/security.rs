//! The security header set sent on every response.

use crate::error::{Error, ErrorKind};

/// `Strict-Transport-Security` settings.
///
/// Sent only on responses to requests that arrived over TLS (directly, or through a
/// trusted proxy that terminated TLS): RFC 6797 §7.2 says a server must not send it over
/// plain HTTP, and browsers ignore it there anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    /// `max-age` in seconds. Default one year (31 536 000), the value HSTS preload lists
    /// expect and long enough to cover users who return rarely.
    pub max_age: u64,
    /// `includeSubDomains`. Default on: a cookie-less API host rarely has subdomains that
    /// need plain HTTP, and leaving them out allows cookie injection from a sibling host.
    pub include_subdomains: bool,
    /// `preload`. Default off: preloading is a commitment the domain owner makes by
    /// submitting the domain, not something a library should assert.
    pub preload: bool,
}

impl Default for Hsts {
    fn default() -> Self {
        Self {
            max_age: 31_536_000,
            include_subdomains: true,
            preload: false,
        }
    }
}

impl Hsts {
    fn render(&self) -> String {
        let mut value = format!("max-age={}", self.max_age);
        if self.include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if self.preload {
            value.push_str("; preload");
        }
        value
    }
}

/// `X-Frame-Options` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrameOptions {
    /// `DENY` (default): an API response has no reason to be framed; this stops
    /// click-jacking in browsers that predate CSP `frame-ancestors`.
    #[default]
    Deny,
    /// `SAMEORIGIN`: framing by pages of the same origin only.
    SameOrigin,
}

impl FrameOptions {
    fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "DENY",
            Self::SameOrigin => "SAMEORIGIN",
        }
    }
}

/// Whether to send the legacy `X-XSS-Protection` header.
///
/// The default is not to send it. The XSS auditor it controlled has been removed from
/// every current browser, and where it still exists its "block" mode was itself a
/// cross-site leak (an attacker could probe which scripts a page contained by whether
/// the auditor fired). A JSON API has no HTML to protect; the CSP does that job. If an
/// old scanner insists on seeing the header, send `0` (auditor off), the value OWASP
/// recommends, never `1; mode=block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XssProtection {
    /// Do not send the header (default).
    #[default]
    Omit,
    /// Send `X-XSS-Protection: 0`.
    Disabled,
}

/// The security headers policy: which headers every response carries.
///
/// The defaults are the contract's set and are safe for a JSON API:
///
/// | header | value | why |
/// |---|---|---|
/// | `x-content-type-options` | `nosniff` | a browser must not sniff a JSON body into HTML or script |
/// | `x-frame-options` | `DENY` | API responses are never framed (click-jacking) |
/// | `content-security-policy` | `default-src 'none'; frame-ancestors 'none'` | a JSON response loads nothing; if one is ever rendered as HTML, nothing runs |
/// | `referrer-policy` | `no-referrer` | URLs with ids or tokens do not leak to third parties |
/// | `cross-origin-resource-policy` | `same-origin` | other sites cannot embed responses (Spectre-style reads) |
/// | `strict-transport-security` | `max-age=31536000; includeSubDomains` | only over TLS, see [`Hsts`] |
/// | `cache-control` | `no-store` | only on authenticated responses: personal data must not stay in shared or browser caches |
///
/// No header names the software (`server`, `x-powered-by`): advertising the stack and
/// version only helps an attacker pick an exploit. [`SecurityHeaders::removed`] lists
/// the names an adapter must strip. `X-XSS-Protection` is not sent, see
/// [`XssProtection`].
///
/// Header names are lower case, ready for `HeaderName::from_static`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHeaders {
    hsts: Option<String>,
    content_security_policy: String,
    frame_options: FrameOptions,
    referrer_policy: String,
    cross_origin_resource_policy: String,
    xss_protection: XssProtection,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        Self {
            hsts: Some(Hsts::default().render()),
            content_security_policy: "default-src 'none'; frame-ancestors 'none'".to_owned(),
            frame_options: FrameOptions::Deny,
            referrer_policy: "no-referrer".to_owned(),
            cross_origin_resource_policy: "same-origin".to_owned(),
            xss_protection: XssProtection::Omit,
        }
    }
}

/// Header names that must never appear on a response, because they name the software.
const REMOVED: [&str; 2] = ["server", "x-powered-by"];

impl SecurityHeaders {
    /// The default policy (same as [`Default::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets or disables (`None`) HSTS. Disabling is only sensible when TLS is never used.
    #[must_use]
    pub fn with_hsts(mut self, hsts: Option<Hsts>) -> Self {
        self.hsts = hsts.map(|h| h.render());
        self
    }

    /// Replaces the `Content-Security-Policy`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidHeaderValue`] when the value is empty or holds a control
    /// character or non-ASCII byte.
    pub fn with_content_security_policy(mut self, csp: &str) -> Result<Self, Error> {
        self.content_security_policy = checked_value(csp)?;
        Ok(self)
    }

    /// Sets `X-Frame-Options`.
    #[must_use]
    pub fn with_frame_options(mut self, frame_options: FrameOptions) -> Self {
        self.frame_options = frame_options;
        self
    }

    /// Replaces the `Referrer-Policy`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidHeaderValue`] as for
    /// [`with_content_security_policy`](Self::with_content_security_policy).
    pub fn with_referrer_policy(mut self, policy: &str) -> Result<Self, Error> {
        self.referrer_policy = checked_value(policy)?;
        Ok(self)
    }

    /// Replaces the `Cross-Origin-Resource-Policy`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidHeaderValue`] as for
    /// [`with_content_security_policy`](Self::with_content_security_policy).
    pub fn with_cross_origin_resource_policy(mut self, policy: &str) -> Result<Self, Error> {
        self.cross_origin_resource_policy = checked_value(policy)?;
        Ok(self)
    }

    /// Chooses whether `X-XSS-Protection: 0` is sent (see [`XssProtection`]).
    #[must_use]
    pub fn with_xss_protection(mut self, xss: XssProtection) -> Self {
        self.xss_protection = xss;
        self
    }

    /// The headers for one response.
    ///
    /// `over_tls`: the request arrived over TLS, directly or through a trusted proxy
    /// (the caller decides whether the proxy is trusted). `authenticated`: the request
    /// carried a verified credential, so the response is personal and must not be stored.
    pub fn for_response(&self, over_tls: bool, authenticated: bool) -> Vec<(&'static str, &str)> {
        let mut headers = Vec::with_capacity(8);
        headers.push(("x-content-type-options", "nosniff"));
        headers.push(("x-frame-options", self.frame_options.as_str()));
        headers.push((
            "content-security-policy",
            self.content_security_policy.as_str(),
        ));
        headers.push(("referrer-policy", self.referrer_policy.as_str()));
        headers.push((
            "cross-origin-resource-policy",
            self.cross_origin_resource_policy.as_str(),
        ));
        if let (true, Some(hsts)) = (over_tls, &self.hsts) {
            headers.push(("strict-transport-security", hsts.as_str()));
        }
        if authenticated {
            headers.push(("cache-control", "no-store"));
        }
        if self.xss_protection == XssProtection::Disabled {
            headers.push(("x-xss-protection", "0"));
        }
        headers
    }

    /// Header names an adapter must remove from every response (`server`,
    /// `x-powered-by`), whatever a handler or framework set.
    pub fn removed() -> &'static [&'static str] {
        &REMOVED
    }
}

/// A header value made only of visible ASCII, spaces and tabs (RFC 9110 `field-value`
/// without obs-text), so it can neither split a header nor smuggle a second one.
pub(crate) fn checked_value(value: &str) -> Result<String, Error> {
    if value.is_empty()
        || !value
            .bytes()
            .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
    {
        return Err(Error::new(
            ErrorKind::InvalidHeaderValue,
            "header value must be non-empty visible ASCII",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(headers: &[(&'static str, &'a str)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn contract_set_over_tls_authenticated() {
        let policy = SecurityHeaders::default();
        let h = policy.for_response(true, true);
        assert_eq!(get(&h, "x-content-type-options"), Some("nosniff"));
        assert_eq!(get(&h, "x-frame-options"), Some("DENY"));
        assert_eq!(
            get(&h, "content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
        assert_eq!(get(&h, "referrer-policy"), Some("no-referrer"));
        assert_eq!(get(&h, "cross-origin-resource-policy"), Some("same-origin"));
        assert_eq!(
            get(&h, "strict-transport-security"),
            Some("max-age=31536000; includeSubDomains")
        );
        assert_eq!(get(&h, "cache-control"), Some("no-store"));
        assert_eq!(get(&h, "x-xss-protection"), None);
        assert_eq!(get(&h, "server"), None);
        assert_eq!(get(&h, "x-powered-by"), None);
    }

    #[test]
    fn no_hsts_over_plain_http_and_no_no_store_when_anonymous() {
        let policy = SecurityHeaders::default();
        let h = policy.for_response(false, false);
        assert_eq!(get(&h, "strict-transport-security"), None);
        assert_eq!(get(&h, "cache-control"), None);
        assert_eq!(h.len(), 5);
    }

    #[test]
    fn names_are_lowercase() {
        let policy = SecurityHeaders::default().with_xss_protection(XssProtection::Disabled);
        let h = policy.for_response(true, true);
        for (name, _) in &h {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
        assert_eq!(get(&h, "x-xss-protection"), Some("0"));
    }

    #[test]
    fn custom_values_are_checked() {
        assert_eq!(
            SecurityHeaders::default()
                .with_content_security_policy("default-src 'self'\r\nSet-Cookie: a=b")
                .map_err(|e| e.kind()),
            Err(ErrorKind::InvalidHeaderValue)
        );
        assert!(SecurityHeaders::default().with_referrer_policy("").is_err());
        let policy = SecurityHeaders::default()
            .with_hsts(Some(Hsts {
                max_age: 63_072_000,
                include_subdomains: true,
                preload: true,
            }))
            .with_frame_options(FrameOptions::SameOrigin)
            .with_cross_origin_resource_policy("same-site")
            .expect("valid");
        let h = policy.for_response(true, false);
        assert_eq!(
            get(&h, "strict-transport-security"),
            Some("max-age=63072000; includeSubDomains; preload")
        );
        assert_eq!(get(&h, "x-frame-options"), Some("SAMEORIGIN"));
        assert_eq!(get(&h, "cross-origin-resource-policy"), Some("same-site"));
        let no_hsts = SecurityHeaders::default().with_hsts(None);
        assert_eq!(
            get(
                &no_hsts.for_response(true, false),
                "strict-transport-security"
            ),
            None
        );
    }

    #[test]
    fn removed_names_the_software_headers() {
        assert_eq!(SecurityHeaders::removed(), &["server", "x-powered-by"]);
    }
}
