//! The server's own problem documents (the layers make the rest).

use palisade_axum::ProblemResponse;
use palisade_headers::{FieldError, Problem};

/// 404, the same for a missing resource and another owner's.
pub(crate) fn not_found() -> ProblemResponse {
    ProblemResponse::coded(404, "not-found", "no such resource")
}

/// 405.
pub(crate) fn method_not_allowed() -> ProblemResponse {
    ProblemResponse::coded(
        405,
        "method-not-allowed",
        "this method is not allowed on this path",
    )
}

/// 503 when a backend cannot answer; never the backend's own message.
pub(crate) fn unavailable() -> ProblemResponse {
    ProblemResponse::coded(
        503,
        "unavailable",
        "a backend is unavailable; retry shortly",
    )
    .with_header("retry-after", "1")
}

/// 422 with the field errors.
pub(crate) fn validation(errors: Vec<FieldError>) -> ProblemResponse {
    ProblemResponse::new(
        Problem::new(422)
            .with_type(format!("{}validation_failed", palisade_axum::PROBLEM_BASE))
            .with_detail("the request body or parameters are invalid")
            .with_errors(errors),
    )
}

/// 400 for a request the server cannot read.
pub(crate) fn bad_request(code: &str, detail: &str) -> ProblemResponse {
    ProblemResponse::coded(400, code, detail)
}
