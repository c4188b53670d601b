//! `GET /openapi.json`: generated from the handlers' annotations, so it cannot drift
//! from the code.

use axum::Json;
use palisade_jwt::GrantType;
use palisade_validate::{MULTILINE_PATTERN, SINGLE_LINE_PATTERN};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::{admin, app, oauth, orders, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Palisade reference server",
        description = "The reference server of Palisade, the API-security toolkit. Errors are RFC 9457 problem documents (`application/problem+json`) except on the OAuth endpoints (RFC 6749 §5.2). Every response under /api/ and /oauth/ carries X-RateLimit-* and the IETF RateLimit-Policy/RateLimit fields.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        app::health,
        app::jwks,
        app::metadata,
        document,
        oauth::token,
        oauth::authorize,
        oauth::device_authorization,
        oauth::device,
        oauth::revoke,
        oauth::introspect,
        orders::list,
        orders::create,
        orders::get,
        orders::delete,
        webhooks::register,
        admin::create_key,
        admin::list_keys,
        admin::revoke_key,
        admin::rotate_key,
        admin::list_abuse,
        admin::clear_abuse,
    ),
    modifiers(&Security, &CommonResponses, &OAuthForms),
    tags(
        (name = "public"), (name = "oauth"), (name = "orders"), (name = "webhooks"), (name = "admin")
    )
)]
pub(crate) struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "PALISADE-HMAC-SHA256 Credential=<id>/<yyyymmdd>/api/request, SignedHeaders=..., Signature=... with X-Palisade-Date; or RFC 9421 Signature-Input/Signature",
            ))),
        );
        components.add_security_scheme(
            "client_certificate",
            SecurityScheme::MutualTls {
                description: Some("a verified TLS client certificate mapped to an identity".into()),
                extensions: None,
            },
        );
    }
}

/// The answers the layers in front of every handler can give, documented on each
/// operation they guard (an API fuzzer checks every status against the document):
/// abuse detection and rate limits (429) on every limited path, credential checks (400
/// for malformed or ambiguous credentials, 401) on the protected ones, and body limits
/// (400 for malformed JSON or forms, 413, 415) wherever a body is read.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let limited = ["/api/", "/oauth/", "/admin/"]
                .iter()
                .any(|prefix| path.starts_with(prefix));
            let protected = path.starts_with("/api/") || path.starts_with("/admin/");
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let with_body = op.request_body.is_some();
                if limited {
                    add_response(
                        op,
                        "429",
                        "rate limited, or too many failed authentications from this address; see Retry-After",
                    );
                }
                let bad_request = match (protected, with_body) {
                    (true, true) => Some(
                        "malformed or ambiguous credentials (more than one kind), or a body that is not well-formed",
                    ),
                    (true, false) => {
                        Some("malformed or ambiguous credentials (more than one kind)")
                    }
                    (false, true) => Some("a body that is not well-formed"),
                    (false, false) => None,
                };
                if let Some(description) = bad_request {
                    add_response(op, "400", description);
                }
                if protected {
                    add_response(op, "401", "no valid credential");
                }
                if with_body {
                    add_response(op, "413", "the body is larger than allowed");
                    add_response(op, "415", "the body's content type is not the expected one");
                }
            }
        }
    }
}

/// The OAuth endpoints read their forms by hand (repeated parameters refused, RFC 6749
/// §3.1), so their field schemas are written here: the fields each one reads, unknown
/// fields allowed as plain strings (RFC 6749 §3.1: ignored), client credentials in
/// `client_id`/`client_secret` for `client_secret_post`.
struct OAuthForms;

/// A form field's name and, when the field is an enumeration, its values.
type FormField<'a> = (&'a str, Option<&'a [&'a str]>);

impl Modify for OAuthForms {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let client = [("client_id", None), ("client_secret", None)];
        let token_hint = ["access_token", "refresh_token"];
        let grants = [
            GrantType::ClientCredentials,
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::DeviceCode,
        ]
        .map(GrantType::as_str);
        let forms: [(&str, &[&str], Vec<FormField<'_>>); 5] = [
            (
                "/oauth/token",
                &["grant_type"],
                vec![
                    ("grant_type", Some(&grants[..])),
                    ("code", None),
                    ("redirect_uri", None),
                    ("code_verifier", None),
                    ("refresh_token", None),
                    ("device_code", None),
                    ("scope", None),
                ],
            ),
            ("/oauth/device_authorization", &[], vec![("scope", None)]),
            (
                "/oauth/revoke",
                &["token"],
                vec![("token", None), ("token_type_hint", Some(&token_hint[..]))],
            ),
            (
                "/oauth/introspect",
                &["token"],
                vec![("token", None), ("token_type_hint", Some(&token_hint[..]))],
            ),
            (
                "/oauth/device",
                &["user_code", "action"],
                vec![
                    ("user_code", None),
                    ("action", Some(&["approve", "deny"][..])),
                ],
            ),
        ];
        for (path, required, fields) in forms {
            let Some(body) = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.request_body.as_mut())
            else {
                continue;
            };
            let mut form = ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)));
            for (name, values) in fields.into_iter().chain(client) {
                let mut field = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1));
                if let Some(values) = values {
                    field = field.enum_values(Some(values.iter().copied()));
                }
                form = form.property(name, field);
            }
            for name in required {
                form = form.required(*name);
            }
            let form = form.build();
            for content in body.content.values_mut() {
                content.schema = Some(RefOr::T(form.clone().into()));
            }
        }
    }
}

/// Adds `status` to `op` unless its handler already documents it.
fn add_response(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
}

/// A string schema bounded in characters and held to `pattern`.
fn text(description: &str, (min, max): (usize, usize), pattern: &str, nullable: bool) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .description(Some(description))
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .build()
}

/// Schemas of fields whose rules are the validators' (`palisade_validate`), for
/// `#[schema(schema_with = ...)]`: the document says what the server accepts, no more.
pub(crate) mod fields {
    use super::*;

    pub(crate) fn street() -> Object {
        text(
            "1 to 200 characters, one line.",
            (1, 200),
            SINGLE_LINE_PATTERN,
            false,
        )
    }

    pub(crate) fn city() -> Object {
        text(
            "1 to 100 characters, one line.",
            (1, 100),
            SINGLE_LINE_PATTERN,
            false,
        )
    }

    pub(crate) fn postal_code() -> Object {
        text(
            "3 to 20 characters, one line.",
            (3, 20),
            SINGLE_LINE_PATTERN,
            false,
        )
    }

    pub(crate) fn owner() -> Object {
        text(
            "Whose data the key reaches: 1 to 128 characters, one line.",
            (1, 128),
            SINGLE_LINE_PATTERN,
            false,
        )
    }

    pub(crate) fn notes() -> Object {
        text(
            "Up to 500 characters; lines allowed, other control characters not.",
            (0, 500),
            MULTILINE_PATTERN,
            true,
        )
    }

    pub(crate) fn country() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("ISO 3166-1 alpha-2, upper case, officially assigned."))
            .enum_values(Some(palisade_validate::country_codes().iter().copied()))
            .build()
    }

    /// Keys neither operators (`$...`) nor, as the description says, the three prototype
    /// keys (JSON Schema's `not` would say it, but fuzzers handle it poorly).
    pub(crate) fn metadata() -> Object {
        // The characters a single line refuses, as a class body.
        let refused = SINGLE_LINE_PATTERN
            .trim_start_matches("^[^")
            .trim_end_matches("]*$");
        let key_pattern = format!("^[^${refused}][^{refused}]*$");
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
            .description(Some(
                "Up to 10 string pairs. Keys: 1 to 40 characters, one line, not starting with `$`, and not `__proto__`, `constructor` or `prototype`. Values: up to 500 characters.",
            ))
            .max_properties(Some(10))
            .property_names(Some(text("A key.", (1, 40), &key_pattern, false)))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(
                text("A value.", (0, 500), MULTILINE_PATTERN, false).into(),
            ))))
            .build()
    }

    pub(crate) fn scopes() -> utoipa::openapi::schema::Array {
        ArrayBuilder::new()
            .description(Some("1 to 32 scopes, e.g. `orders:read`."))
            .min_items(Some(1))
            .max_items(Some(32))
            .items(text("A scope.", (1, 64), "^[A-Za-z0-9:._*-]+$", false))
            .build()
    }

    pub(crate) fn plan() -> Object {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some("`free`, `pro` or `enterprise`."))
            .enum_values(Some(["free", "pro", "enterprise"]))
            .build()
    }

    pub(crate) fn events() -> utoipa::openapi::schema::Array {
        ArrayBuilder::new()
            .description(Some("1 or 2 of `order.created`, `order.deleted`."))
            .min_items(Some(1))
            .max_items(Some(2))
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(webhooks::EVENTS.iter().copied())),
            )
            .build()
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "public",
    responses((status = 200, description = "OpenAPI 3.1")))]
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_contract_path_is_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/health", "get"),
            ("/.well-known/jwks.json", "get"),
            ("/.well-known/oauth-authorization-server", "get"),
            ("/openapi.json", "get"),
            ("/oauth/token", "post"),
            ("/oauth/authorize", "get"),
            ("/oauth/device_authorization", "post"),
            ("/oauth/device", "post"),
            ("/oauth/revoke", "post"),
            ("/oauth/introspect", "post"),
            ("/api/orders", "get"),
            ("/api/orders", "post"),
            ("/api/orders/{id}", "get"),
            ("/api/orders/{id}", "delete"),
            ("/api/webhooks", "post"),
            ("/admin/keys", "post"),
            ("/admin/keys", "get"),
            ("/admin/keys/{key_id}", "delete"),
            ("/admin/keys/{key_id}/rotate", "post"),
            ("/admin/abuse", "get"),
            ("/admin/abuse/{identity}", "delete"),
        ] {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path}"
            );
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert!(schemas.contains_key("CreateOrder"));
    }

    /// What the layers in front of the handlers answer is documented, so that an API
    /// fuzzer finds no undocumented status.
    #[test]
    fn every_guarded_operation_documents_the_layers_answers() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let has = |status: &str| op["responses"].get(status).is_some();
                let limited = ["/api/", "/oauth/", "/admin/"]
                    .iter()
                    .any(|prefix| path.starts_with(prefix));
                if limited {
                    assert!(has("429"), "{method} {path}");
                }
                if path.starts_with("/api/") || path.starts_with("/admin/") {
                    assert!(has("400") && has("401"), "{method} {path}");
                }
                if op.get("requestBody").is_some() {
                    assert!(has("400") && has("413") && has("415"), "{method} {path}");
                }
            }
        }
        let health = &doc["paths"]["/health"]["get"]["responses"];
        assert!(health.get("429").is_none(), "only limited paths say 429");
    }

    /// The request schemas carry the validators' bounds, so data a fuzzer draws from the
    /// document is data the server accepts (bar facts no schema can state, such as a
    /// webhook host resolving to a public address).
    #[test]
    fn request_schemas_carry_the_validators_bounds() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let order = &schemas["CreateOrder"]["properties"];
        assert_eq!(order["items"]["minItems"], 1);
        assert_eq!(order["items"]["maxItems"], 100);
        assert_eq!(order["notes"]["maxLength"], 500);
        assert_eq!(order["notes"]["pattern"], MULTILINE_PATTERN);
        assert_eq!(order["metadata"]["maxProperties"], 10);
        let key = order["metadata"]["propertyNames"]["pattern"]
            .as_str()
            .unwrap();
        assert!(key.starts_with("^[^$\\x00"), "{key}");
        let address = &schemas["Address"]["properties"];
        assert_eq!(address["street"]["pattern"], SINGLE_LINE_PATTERN);
        assert_eq!(address["postal_code"]["minLength"], 3);
        let countries = address["country"]["enum"].as_array().unwrap();
        assert_eq!(countries.len(), palisade_validate::country_codes().len());
        assert!(
            countries
                .iter()
                .all(|c| palisade_validate::is_country_code(c.as_str().unwrap()))
        );
        let webhook = &schemas["RegisterWebhook"]["properties"];
        assert_eq!(
            webhook["events"]["items"]["enum"],
            serde_json::json!(webhooks::EVENTS)
        );
        let key_spec = &schemas["KeySpec"]["properties"];
        assert_eq!(key_spec["rate_limit"]["minimum"], 1);
        assert_eq!(key_spec["scopes"]["minItems"], 1);
        let token = &doc["paths"]["/oauth/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"];
        assert_eq!(token["required"], serde_json::json!(["grant_type"]));
        assert_eq!(
            token["properties"]["grant_type"]["enum"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        assert!(token["properties"].get("client_secret").is_some());
        let device = &doc["paths"]["/oauth/device"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
            ["schema"];
        assert_eq!(
            device["properties"]["action"]["enum"],
            serde_json::json!(["approve", "deny"])
        );
        let authorize = doc["paths"]["/oauth/authorize"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(
            authorize
                .iter()
                .filter(|p| p["required"] == true)
                .all(|p| p["schema"]["minLength"].as_u64() >= Some(1)),
            "{authorize:?}"
        );
    }
}
