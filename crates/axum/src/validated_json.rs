//! `ValidatedJson<T>`: a JSON body read within limits, strictly typed and validated.

use axum::extract::{FromRequest, Request};
use http::header::CONTENT_TYPE;
use palisade_headers::{FieldError, Problem};
use palisade_validate::{Limits, Rejection};
use serde::de::DeserializeOwned;
use validator::Validate;

use crate::problem::{PROBLEM_BASE, ProblemResponse};

/// Extracts a `T` from a JSON body with [`palisade_validate::from_slice`]: size and
/// structure limits, duplicate keys refused, strict types, unknown fields refused where
/// `T` says so, then `T`'s `validator` rules.
///
/// Rejections are problem documents: 415 without a JSON content type, 413 past the body
/// limit, 400 for malformed JSON, 422 with `errors: [{field, code, message}]` (field
/// paths in the client's spelling, `items.0.quantity`). The limits are the defaults, or a
/// [`Limits`] value put in the request extensions (`axum::Extension(limits)`).
///
/// ```
/// use palisade_axum::ValidatedJson;
/// use serde::Deserialize;
/// use validator::Validate;
///
/// #[derive(Deserialize, Validate)]
/// #[serde(deny_unknown_fields)]
/// struct NewNote {
///     #[validate(length(min = 1, max = 500))]
///     text: String,
/// }
///
/// async fn create(ValidatedJson(note): ValidatedJson<NewNote>) -> String {
///     note.text
/// }
/// let app: axum::Router = axum::Router::new().route("/notes", axum::routing::post(create));
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidatedJson<T>(pub T);

impl<T, S> FromRequest<S> for ValidatedJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ProblemResponse;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers().get(CONTENT_TYPE)) {
            return Err(ProblemResponse::coded(
                415,
                "unsupported_media_type",
                "the body must be application/json",
            ));
        }
        let limits = request
            .extensions()
            .get::<Limits>()
            .cloned()
            .unwrap_or_default();
        let body_limit = limits.body_limit();
        let body = request.into_body();
        let bytes =
            http_body_util::BodyExt::collect(http_body_util::Limited::new(body, body_limit))
                .await
                .map_err(|error| body_error(error.as_ref(), body_limit))?
                .to_bytes();
        palisade_validate::from_slice(&bytes, &limits)
            .map(ValidatedJson)
            .map_err(|rejection| rejection_response(&rejection))
    }
}

fn is_json(content_type: Option<&http::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .rsplit_once('+')
            .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
}

/// 413 past the limit; 408 when the body stopped arriving (a read timeout further out,
/// or a client that went away): that is not the client's size, so not a 413.
pub(crate) fn body_error(
    error: &(dyn std::error::Error + 'static),
    limit: usize,
) -> ProblemResponse {
    if error.is::<http_body_util::LengthLimitError>() {
        too_large(limit)
    } else {
        ProblemResponse::coded(
            408,
            "body_incomplete",
            "the body did not arrive in time or was cut short",
        )
    }
}

fn too_large(limit: usize) -> ProblemResponse {
    ProblemResponse::coded(
        413,
        "body_too_large",
        &format!("the body is larger than {limit} bytes"),
    )
}

/// The problem document for a refused body.
pub(crate) fn rejection_response(rejection: &Rejection) -> ProblemResponse {
    match rejection {
        Rejection::TooLarge { limit } => too_large(*limit),
        Rejection::Invalid(errors) => ProblemResponse::new(
            Problem::new(422)
                .with_type(format!("{PROBLEM_BASE}validation_failed"))
                .with_detail("the body does not match the schema")
                .with_errors(
                    errors
                        .iter()
                        .map(|e| FieldError::new(e.field(), e.code(), e.message()))
                        .collect(),
                ),
        ),
        // The message names the limit or position, never echoes the body.
        Rejection::Malformed(error) => {
            ProblemResponse::coded(400, error.code(), &error.to_string())
        }
        _ => ProblemResponse::coded(400, rejection.code(), "the body was refused"),
    }
}
