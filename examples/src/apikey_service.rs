//! An API-key-only service: `palisade-apikey` with its in-memory store, behind
//! `palisade-axum`'s authentication and scope layers.
//!
//! At start the binary creates one key for the owner `demo` with the scope
//! [`SCOPE`] and prints it once (only its hash is kept), then serves `GET /hello`:
//!
//! ```text
//! cargo run -p palisade-examples --bin apikey_service -- --listen 127.0.0.1:8080
//! curl -i -H 'X-API-Key: pk_live_...' http://127.0.0.1:8080/hello
//! ```
//!
//! | request | answer |
//! |---|---|
//! | the printed key | 200 `{"message": "hello, demo", "key_id": "key_...", "scopes": [...]}` |
//! | no key | 401 problem document with a `WWW-Authenticate` challenge |
//! | a mistyped, unknown or revoked key | 401 problem document, `WWW-Authenticate: ApiKey realm="api"` |
//! | a valid key without the scope | 403 problem document (`insufficient_scope`) |
//! | two kinds of credential at once | 400 |
//!
//! The request path is [`ClientInfoLayer`] (the client address, for keys restricted to
//! networks) -> [`AuthenticateLayer`] with the [`ApiKeyVerifier`] -> [`RequireScopeLayer`]
//! on the route -> the handler, which extracts the [`Principal`].

use std::sync::Arc;
use std::time::SystemTime;

use axum::routing::get;
use axum::{Json, Router};
use palisade_apikey::{ApiKeys, CreatedKey, KeyStore, NewKey};
use palisade_axum::{
    ApiKeyVerifier, AuthenticateLayer, ClientInfoLayer, Principal, RequireScopeLayer,
    TrustedProxies,
};
use serde_json::{Value, json};

/// The scope `GET /hello` requires.
pub const SCOPE: &str = "greetings:read";

/// The owner of the key the binary creates at start.
pub const DEMO_OWNER: &str = "demo";

/// Creates the demo key: owner [`DEMO_OWNER`], scope [`SCOPE`]. The raw key in the
/// result is the only copy; show it to its owner once and drop it.
pub async fn create_demo_key<S: KeyStore>(
    keys: &ApiKeys<S>,
    now: SystemTime,
) -> Result<CreatedKey, palisade_apikey::Error> {
    keys.create(NewKey::new(DEMO_OWNER).scopes([SCOPE]), now)
        .await
}

/// The service: `GET /hello` for callers whose API key grants [`SCOPE`].
///
/// `keys` is shared with whoever creates and revokes keys; a revocation takes effect on
/// the next request.
pub fn app<S: KeyStore + 'static>(keys: Arc<ApiKeys<S>>) -> Router {
    Router::new()
        .route("/hello", get(hello))
        // Per route: an unauthenticated request to an unknown path still gets its 404.
        .route_layer(RequireScopeLayer::new([SCOPE]))
        // The last layer added runs first: client address, then authentication.
        .layer(AuthenticateLayer::new().verifier(ApiKeyVerifier::new(keys)))
        .layer(ClientInfoLayer::new(TrustedProxies::none()))
}

/// `GET /hello`: greets the key's owner. The key id is public; the key never appears.
async fn hello(principal: Principal) -> Json<Value> {
    Json(json!({
        "message": format!("hello, {}", principal.owner()),
        "key_id": principal.identity(),
        "scopes": principal.scopes(),
    }))
}
