//! Problem documents (RFC 9457) as axum responses.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};
use palisade_headers::{Challenge, Problem, WwwAuthenticate};

/// Base of the problem `type` URIs Palisade uses; each code gets its own page.
pub const PROBLEM_BASE: &str = "https://palisade.dev/problems/";

/// A problem document ready to be sent: status, `application/problem+json` body, and
/// any headers the problem needs (`WWW-Authenticate` on a 401, `Retry-After` on a 429).
#[derive(Debug, Clone)]
pub struct ProblemResponse {
    problem: Problem,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ProblemResponse {
    /// Wraps a problem document.
    pub fn new(problem: Problem) -> Self {
        Self {
            problem,
            headers: Vec::new(),
        }
    }

    /// A problem whose `type` is `PROBLEM_BASE` + `code`, with a client-safe detail.
    pub fn coded(status: u16, code: &str, detail: &str) -> Self {
        Self::new(
            Problem::new(status)
                .with_type(format!("{PROBLEM_BASE}{code}"))
                .with_detail(detail),
        )
    }

    /// 401 with a challenge for each accepted scheme.
    pub fn unauthenticated() -> Self {
        Self::coded(401, "unauthenticated", "this endpoint needs credentials")
            .with_challenge(WwwAuthenticate::new().challenge(Challenge::bearer()))
    }

    /// Adds a `WWW-Authenticate` header.
    #[must_use]
    pub fn with_challenge(mut self, challenge: WwwAuthenticate) -> Self {
        if let Some((_, value)) = challenge.header()
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            self.headers.push((WWW_AUTHENTICATE, value));
        }
        self
    }

    /// Adds a header (names and values from the headers crate are already checked).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((name, value));
        }
        self
    }

    /// The problem document.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl From<Problem> for ProblemResponse {
    fn from(problem: Problem) -> Self {
        Self::new(problem)
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.problem.status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Response::new(Body::from(self.problem.to_json()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(Problem::CONTENT_TYPE),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_problem_json_with_challenge() {
        let response = ProblemResponse::unauthenticated().into_response();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert!(
            response.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], 401);
        assert_eq!(
            json["type"],
            "https://palisade.dev/problems/unauthenticated"
        );
    }
}
