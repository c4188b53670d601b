//! A framework-free OAuth 2.0 authorization server core with the OAuth 2.1 rules.

mod error;
mod pkce;
mod server;

pub use error::{OAuthError, OAuthErrorCode};
pub use pkce::{pkce_s256_challenge, verify_pkce_s256};
pub use server::{
    AuthorizationServer, AuthorizationServerConfig, AuthorizationServerMetadata, AuthorizeError,
    ClientRegistration, DeviceAuthorizationResponse, GrantType, IntrospectionResponse,
    RegisteredClient, TokenResponse,
};
