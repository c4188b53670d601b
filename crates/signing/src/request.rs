/// An HTTP request as plain data, borrowed from whatever the server holds.
///
/// `target` is the request target as it went on the wire: the path and the optional
/// query, already percent-encoded (`/a%20b?x=1&y=2`). Header names are matched
/// case-insensitively; repeated headers keep their order.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) scheme: &'a str,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    pub(crate) body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request with no headers and an empty body, scheme `https`.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        Self {
            method,
            target,
            scheme: "https",
            headers: Vec::new(),
            body: &[],
        }
    }

    /// Adds one header (repeat the call for a repeated header).
    #[must_use]
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds one header in place.
    pub fn push_header(&mut self, name: &'a str, value: &'a str) {
        self.headers.push((name, value));
    }

    /// Sets the body bytes.
    #[must_use]
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// Sets the scheme (`https` by default), used by RFC 9421 `@scheme`/`@target-uri`.
    #[must_use]
    pub fn scheme(mut self, scheme: &'a str) -> Self {
        self.scheme = scheme;
        self
    }

    /// The method as given.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request target (path and query) as given.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(&'a str, &'a str)] {
        &self.headers
    }

    /// The path part of the target.
    pub fn path(&self) -> &'a str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// The query part of the target (without `?`), if any.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The path and the query (empty when there is none), split once.
    pub(crate) fn path_and_query(&self) -> (&'a str, &'a str) {
        self.target.split_once('?').unwrap_or((self.target, ""))
    }

    /// Every value of the header `name`, in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The single value of `name`; `Ok(None)` when absent, `Err(())` when repeated.
    pub(crate) fn single_header(&self, lower: &str) -> Result<Option<&'a str>, ()> {
        let mut it = self
            .headers
            .iter()
            .filter(|(n, _)| name_is(n, lower))
            .map(|(_, v)| *v);
        let first = it.next();
        if it.next().is_some() {
            return Err(());
        }
        Ok(first)
    }
}

/// Whether header name `name` is `lower`, ignoring ASCII case, where `lower` is known to
/// be lower-case (a literal, or a checked `SignedHeaders` name): only `name` needs
/// folding, half the work of `eq_ignore_ascii_case`.
pub(crate) fn name_is(name: &str, lower: &str) -> bool {
    name.len() == lower.len()
        && name
            .bytes()
            .zip(lower.bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == b)
}

/// An HTTP response as plain data, for RFC 9421 signatures over responses (`@status`).
#[derive(Debug, Clone, Default)]
pub struct Response<'a> {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    pub(crate) body: &'a [u8],
}

impl<'a> Response<'a> {
    /// A response with the given status code.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: &[],
        }
    }

    /// Adds one header.
    #[must_use]
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sets the body bytes.
    #[must_use]
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }
}
