//! RFC 9457 problem documents.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind};

/// Members a problem document defines itself; extensions cannot overwrite them.
const RESERVED: [&str; 6] = ["type", "title", "status", "detail", "instance", "errors"];

/// One entry of a problem's `errors` list (validation failures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field in the body, dot-joined with array indices as numbers
    /// (`items.0.quantity`).
    pub field: String,
    /// Stable machine-readable code (`too_long`, `pattern`, ...).
    pub code: String,
    /// Human-readable message. Never echo the rejected value if it may be a secret.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document, the one error body every Palisade crate's errors become
/// when they reach HTTP (the OAuth endpoints excepted, which answer RFC 6749 JSON).
///
/// Serialised with `serde`: `type` (default `about:blank`), `title`, `status`, and when
/// set `detail`, `instance`, `errors`, and any extension members at the top level. Send
/// it with [`Problem::CONTENT_TYPE`]. Put in `detail` only what the client may read:
/// never a stack trace, an internal error message or a credential.
///
/// ```
/// use palisade_headers::{FieldError, Problem};
///
/// let problem = Problem::new(422)
///     .with_type("https://palisade.dev/problems/validation")
///     .with_detail("the body is not a valid order")
///     .with_error(FieldError::new("items.0.quantity", "range", "must be 1 to 999"));
/// let json: serde_json::Value = serde_json::from_str(&problem.to_json())?;
/// assert_eq!(json["title"], "Unprocessable Content");
/// assert_eq!(json["errors"][0]["field"], "items.0.quantity");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    type_uri: String,
    #[serde(default)]
    title: String,
    status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldError>>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

impl Problem {
    /// The media type of a problem document.
    pub const CONTENT_TYPE: &'static str = "application/problem+json";
    /// Problem type of draft-ietf-httpapi-ratelimit-headers-10 §5.1 (429).
    pub const QUOTA_EXCEEDED: &'static str =
        "https://iana.org/assignments/http-problem-types#quota-exceeded";
    /// Problem type of draft-ietf-httpapi-ratelimit-headers-10 §5.3 (429).
    pub const ABNORMAL_USAGE_DETECTED: &'static str =
        "https://iana.org/assignments/http-problem-types#abnormal-usage-detected";

    /// A problem of type `about:blank` with the status's reason phrase as its title.
    ///
    /// A status outside 100..=599 is not an HTTP status; it becomes 500.
    pub fn new(status: u16) -> Self {
        let status = if (100..=599).contains(&status) {
            status
        } else {
            500
        };
        Self {
            type_uri: about_blank(),
            title: reason_phrase(status).to_owned(),
            status,
            detail: None,
            instance: None,
            errors: None,
            extensions: Map::new(),
        }
    }

    /// `429` of type quota-exceeded with the `violated-policies` member (draft-10 §5.1).
    pub fn quota_exceeded(violated_policies: &[&str]) -> Self {
        let mut p = Self::new(429).with_type(Self::QUOTA_EXCEEDED);
        p.extensions.insert(
            "violated-policies".to_owned(),
            Value::from(violated_policies.to_vec()),
        );
        p
    }

    /// Sets the `type` URI (a URI reference identifying the problem type).
    #[must_use]
    pub fn with_type(mut self, type_uri: impl Into<String>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Sets the `title`, a short summary that does not change between occurrences.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the `detail`, an explanation of this occurrence for the client.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the `instance`, a URI reference for this occurrence (e.g. the request path
    /// or `urn:uuid:<request id>`).
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Replaces the `errors` list.
    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = Some(errors);
        self
    }

    /// Appends one entry to the `errors` list.
    #[must_use]
    pub fn with_error(mut self, error: FieldError) -> Self {
        self.errors.get_or_insert_with(Vec::new).push(error);
        self
    }

    /// Adds an extension member.
    ///
    /// # Errors
    /// [`ErrorKind::ReservedMember`] when `name` is a standard member (`type`, `title`,
    /// `status`, `detail`, `instance`, `errors`).
    pub fn with_extension(mut self, name: impl Into<String>, value: Value) -> Result<Self, Error> {
        let name = name.into();
        if RESERVED.contains(&name.as_str()) {
            return Err(Error::new(
                ErrorKind::ReservedMember,
                "extension member would overwrite a standard member",
            ));
        }
        self.extensions.insert(name, value);
        Ok(self)
    }

    /// The `type` URI.
    pub fn type_uri(&self) -> &str {
        &self.type_uri
    }

    /// The `title`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `detail`, if set.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The `instance`, if set.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// The `errors` list (empty when not set).
    pub fn errors(&self) -> &[FieldError] {
        self.errors.as_deref().unwrap_or_default()
    }

    /// An extension member, if set.
    pub fn extension(&self, name: &str) -> Option<&Value> {
        self.extensions.get(name)
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        // Serialising strings, integers and JSON values into a String cannot fail;
        // the fallback keeps the function total anyway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                "{{\"type\":\"about:blank\",\"title\":\"{}\",\"status\":{}}}",
                reason_phrase(self.status),
                self.status
            )
        })
    }

    /// The `content-type` header for the body.
    pub fn content_type_header(&self) -> (&'static str, &'static str) {
        ("content-type", Self::CONTENT_TYPE)
    }
}

/// RFC 9110 reason phrases of the statuses an API commonly returns.
fn reason_phrase(status: u16) -> &'static str {
    known_phrase(status).unwrap_or(match status / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        _ => "Server Error",
    })
}

fn known_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_document() {
        let v: Value = serde_json::from_str(&Problem::new(404).to_json()).expect("json");
        assert_eq!(
            v,
            json!({"type": "about:blank", "title": "Not Found", "status": 404})
        );
    }

    #[test]
    fn full_document_round_trips() {
        let p = Problem::new(403)
            .with_type("https://example.com/probs/out-of-credit")
            .with_title("You do not have enough credit.")
            .with_detail("Your current balance is 30, but that costs 50.")
            .with_instance("/account/12345/msgs/abc")
            .with_extension("balance", json!(30))
            .expect("not reserved")
            .with_extension("accounts", json!(["/account/12345", "/account/67890"]))
            .expect("not reserved");
        // RFC 9457 §3 example, member for member.
        let v: Value = serde_json::from_str(&p.to_json()).expect("json");
        assert_eq!(
            v,
            json!({
                "type": "https://example.com/probs/out-of-credit",
                "title": "You do not have enough credit.",
                "status": 403,
                "detail": "Your current balance is 30, but that costs 50.",
                "instance": "/account/12345/msgs/abc",
                "balance": 30,
                "accounts": ["/account/12345", "/account/67890"]
            })
        );
        let back: Problem = serde_json::from_value(v).expect("parse");
        assert_eq!(back, p);
        assert_eq!(back.extension("balance"), Some(&json!(30)));
    }

    #[test]
    fn validation_errors_list() {
        let p = Problem::new(422).with_errors(vec![FieldError::new(
            "shipping_address.country",
            "pattern",
            "must be an ISO 3166-1 alpha-2 code",
        )]);
        let v: Value = serde_json::from_str(&p.to_json()).expect("json");
        assert_eq!(
            v["errors"],
            json!([{"field": "shipping_address.country", "code": "pattern", "message": "must be an ISO 3166-1 alpha-2 code"}])
        );
        assert_eq!(p.errors().len(), 1);
        assert_eq!(p.content_type_header().1, "application/problem+json");
    }

    #[test]
    fn reserved_members_refused() {
        for name in RESERVED {
            assert_eq!(
                Problem::new(400)
                    .with_extension(name, json!(1))
                    .map_err(|e| e.kind()),
                Err(ErrorKind::ReservedMember)
            );
        }
    }

    #[test]
    fn invalid_status_becomes_500_and_quota_exceeded() {
        assert_eq!(Problem::new(42).status(), 500);
        assert_eq!(Problem::new(1000).title(), "Internal Server Error");
        let p = Problem::quota_exceeded(&["daily", "bandwidth"]);
        assert_eq!(p.status(), 429);
        assert_eq!(p.type_uri(), Problem::QUOTA_EXCEEDED);
        assert_eq!(
            p.extension("violated-policies"),
            Some(&json!(["daily", "bandwidth"]))
        );
    }

    #[test]
    fn detail_with_quotes_is_escaped_json() {
        let p = Problem::new(400).with_detail("bad \"x\"\n</script>");
        let v: Value = serde_json::from_str(&p.to_json()).expect("json");
        assert_eq!(v["detail"], "bad \"x\"\n</script>");
    }
}
