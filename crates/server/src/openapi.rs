//! `GET /openapi.json`: generated from the handlers' annotations, so it cannot drift
//! from the code.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
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
    modifiers(&Security),
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
}
