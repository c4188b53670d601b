//! Every grant, rotation, reuse detection and revocation path, run against each
//! backend: memory always, SQLite with the `sqlite` feature, PostgreSQL and Redis with
//! their features and a reachable server (skipped with a printed reason otherwise, and
//! failing in CI where `PALISADE_REQUIRE_SERVICES=1`).

#![allow(clippy::unwrap_used)] // Tests: an unexpected error fails the test with its message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use palisade_jwt::{
    AuthorizationServer, AuthorizationServerConfig, AuthorizeError, Blocklist, ClientRegistration,
    CodeOutcome, DeviceRecord, DeviceStatus, ErrorKind, GrantType, KeyRing, MemoryBlocklist,
    MemoryStore, OAuthErrorCode, OAuthStore, RotationPolicy, TokenResponse, pkce_s256_challenge,
};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://api.example";
const T0: u64 = 1_800_000_000;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "https://app.example/cb";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn server<S: OAuthStore, B: Blocklist>(
    store: S,
    blocklist: B,
    grace: Option<Duration>,
) -> AuthorizationServer<S, B> {
    let keys = Arc::new(KeyRing::ephemeral(RotationPolicy::default(), at(T0 - 10)).unwrap());
    let mut config = AuthorizationServerConfig::new(ISS, AUD);
    config.refresh_grace = grace;
    AuthorizationServer::new(config, keys, store, blocklist).unwrap()
}

struct Client {
    id: String,
    secret: String,
}

async fn client<S: OAuthStore, B: Blocklist>(
    s: &AuthorizationServer<S, B>,
    grants: Vec<GrantType>,
) -> Client {
    let reg = ClientRegistration::new(
        "app",
        grants,
        vec!["orders:read".into(), "orders:write".into()],
    )
    .with_redirect_uris(vec![REDIRECT.into()]);
    let registered = s.register_client(reg, at(T0)).await.unwrap();
    Client {
        id: registered.client_id,
        secret: registered.client_secret.unwrap().to_string(),
    }
}

async fn client_credentials<S: OAuthStore, B: Blocklist>(s: AuthorizationServer<S, B>) {
    let c = client(&s, vec![GrantType::ClientCredentials]).await;
    let auth = basic(&c.id, &c.secret);
    let response = s
        .token(
            &form(&[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read"),
            ]),
            Some(&auth),
            at(T0),
        )
        .await
        .unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, 900);
    assert!(response.refresh_token.is_none());
    let claims = s
        .verify_access_token(&response.access_token, at(T0 + 1))
        .await
        .unwrap();
    // The second use comes from the verified-token cache: same claims, and (below) the
    // same expiry.
    let again = s
        .verify_access_token(&response.access_token, at(T0 + 2))
        .await
        .unwrap();
    assert_eq!(again, claims);
    assert_eq!(claims.sub, c.id);
    assert_eq!(claims.client_id, c.id);
    assert_eq!(claims.scope, "orders:read");
    assert_eq!(claims.exp, T0 + 900);
    // client_secret_post works too; no scope means every allowed scope.
    let post = s
        .token(
            &form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &c.id),
                ("client_secret", &c.secret),
            ]),
            None,
            at(T0),
        )
        .await
        .unwrap();
    assert_eq!(post.scope, "orders:read orders:write");
    // Failures.
    let wrong = basic(&c.id, "cs_wrong");
    let error = s
        .token(
            &form(&[("grant_type", "client_credentials")]),
            Some(&wrong),
            at(T0),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidClient);
    assert_eq!(error.http_status(), 401);
    let error = s
        .token(
            &form(&[
                ("grant_type", "client_credentials"),
                ("client_secret", &c.secret),
            ]),
            Some(&auth),
            at(T0),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidRequest);
    let error = s
        .token(
            &form(&[("grant_type", "client_credentials"), ("scope", "admin")]),
            Some(&auth),
            at(T0),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidScope);
    let error = s
        .token(&form(&[("grant_type", "password")]), Some(&auth), at(T0))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::UnsupportedGrantType);
    let error = s
        .token(
            &form(&[("grant_type", "authorization_code")]),
            Some(&auth),
            at(T0),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::UnauthorizedClient);
    let error = s
        .token(
            &form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "cl_nobody"),
            ]),
            None,
            at(T0),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidClient);
    // Expired access token.
    let error = s
        .verify_access_token(&response.access_token, at(T0 + 900 + 31))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Expired);
    // A token altered by one character is verified afresh (another cache key) and refused.
    let mut altered = response.access_token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(s.verify_access_token(&altered, at(T0 + 3)).await.is_err());
    // The metadata names every endpoint of the contract.
    let meta = s.metadata();
    assert_eq!(meta.token_endpoint, "https://auth.example/oauth/token");
    assert_eq!(meta.code_challenge_methods_supported, vec!["S256"]);
    assert_eq!(s.jwks()["keys"].as_array().unwrap().len(), 1);
}

async fn authorize_code<S: OAuthStore, B: Blocklist>(
    s: &AuthorizationServer<S, B>,
    c: &Client,
    now: u64,
) -> String {
    let location = s
        .authorize(
            &form(&[
                ("response_type", "code"),
                ("client_id", &c.id),
                ("redirect_uri", REDIRECT),
                ("scope", "orders:read"),
                ("state", "st ate"),
                ("code_challenge", &pkce_s256_challenge(VERIFIER)),
                ("code_challenge_method", "S256"),
            ]),
            "alice",
            at(now),
        )
        .await
        .unwrap();
    assert!(
        location.starts_with("https://app.example/cb?code="),
        "{location}"
    );
    assert!(
        location.contains("&state=st%20ate&iss=https%3A%2F%2Fauth.example"),
        "{location}"
    );
    location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

fn exchange_form<'a>(c: &'a Client, code: &'a str, verifier: &'a str) -> HashMap<String, String> {
    form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", &c.id),
        ("client_secret", &c.secret),
    ])
}

async fn authorization_code<S: OAuthStore, B: Blocklist>(s: AuthorizationServer<S, B>) {
    let c = client(
        &s,
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let code = authorize_code(&s, &c, T0).await;
    let tokens = s
        .token(&exchange_form(&c, &code, VERIFIER), None, at(T0 + 1))
        .await
        .unwrap();
    assert!(tokens.refresh_token.as_deref().unwrap().starts_with("prt_"));
    let claims = s
        .verify_access_token(&tokens.access_token, at(T0 + 2))
        .await
        .unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.scope, "orders:read");
    // A second use of the code fails and revokes what the first use issued.
    let error = s
        .token(&exchange_form(&c, &code, VERIFIER), None, at(T0 + 3))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    assert_eq!(
        s.verify_access_token(&tokens.access_token, at(T0 + 4))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Revoked
    );
    let refresh = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh_token.as_deref().unwrap()),
    ]);
    let auth = basic(&c.id, &c.secret);
    assert_eq!(
        s.token(&refresh, Some(&auth), at(T0 + 5))
            .await
            .unwrap_err()
            .code(),
        OAuthErrorCode::InvalidGrant
    );

    // Wrong verifier, wrong redirect, expired code.
    let code = authorize_code(&s, &c, T0).await;
    let bad = s
        .token(&exchange_form(&c, &code, &"x".repeat(43)), None, at(T0 + 1))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), OAuthErrorCode::InvalidGrant);
    let code = authorize_code(&s, &c, T0).await;
    let mut f = exchange_form(&c, &code, VERIFIER);
    f.insert("redirect_uri".into(), "https://app.example/other".into());
    assert_eq!(
        s.token(&f, None, at(T0 + 1)).await.unwrap_err().code(),
        OAuthErrorCode::InvalidGrant
    );
    let code = authorize_code(&s, &c, T0).await;
    assert_eq!(
        s.token(&exchange_form(&c, &code, VERIFIER), None, at(T0 + 61))
            .await
            .unwrap_err()
            .code(),
        OAuthErrorCode::InvalidGrant
    );
    let missing = form(&[
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("client_id", &c.id),
        ("client_secret", &c.secret),
    ]);
    assert_eq!(
        s.token(&missing, None, at(T0)).await.unwrap_err().code(),
        OAuthErrorCode::InvalidRequest
    );

    // Authorization request errors: unknown client and unregistered redirect URIs are
    // answered directly; the rest redirect with an error.
    let base = |extra: &[(&str, &str)]| {
        let mut f = form(&[
            ("response_type", "code"),
            ("client_id", &c.id),
            ("redirect_uri", REDIRECT),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ]);
        for (k, v) in extra {
            f.insert((*k).into(), (*v).into());
        }
        f
    };
    match s
        .authorize(&base(&[("client_id", "cl_nobody")]), "alice", at(T0))
        .await
    {
        Err(AuthorizeError::Direct(e)) => assert_eq!(e.code(), OAuthErrorCode::InvalidClient),
        other => panic!("{other:?}"),
    }
    match s
        .authorize(
            &base(&[("redirect_uri", "https://evil.example/cb")]),
            "alice",
            at(T0),
        )
        .await
    {
        Err(AuthorizeError::Direct(e)) => assert_eq!(e.code(), OAuthErrorCode::InvalidRequest),
        other => panic!("{other:?}"),
    }
    for (extra, expected) in [
        (("code_challenge_method", "plain"), "invalid_request"),
        (("code_challenge", ""), "invalid_request"),
        (("response_type", "token"), "unsupported_response_type"),
        (("scope", "admin"), "invalid_scope"),
    ] {
        match s.authorize(&base(&[extra]), "alice", at(T0)).await {
            Err(AuthorizeError::Redirect(location)) => {
                assert!(location.starts_with(REDIRECT), "{location}");
                assert!(
                    location.contains(&format!("error={expected}")),
                    "{location}"
                );
                assert!(location.contains("state=s"), "{location}");
            }
            other => panic!("{extra:?}: {other:?}"),
        }
    }
}

fn refresh_form<'a>(
    c: &'a Client,
    token: &'a str,
    scope: Option<&'a str>,
) -> HashMap<String, String> {
    let mut f = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", &c.id),
        ("client_secret", &c.secret),
    ]);
    if let Some(scope) = scope {
        f.insert("scope".into(), scope.into());
    }
    f
}

async fn first_tokens<S: OAuthStore, B: Blocklist>(
    s: &AuthorizationServer<S, B>,
    c: &Client,
) -> TokenResponse {
    let code = authorize_code(s, c, T0).await;
    s.token(&exchange_form(c, &code, VERIFIER), None, at(T0 + 1))
        .await
        .unwrap()
}

async fn refresh_rotation_and_reuse<S: OAuthStore, B: Blocklist>(s: AuthorizationServer<S, B>) {
    let c = client(
        &s,
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let first = first_tokens(&s, &c).await;
    let r1 = first.refresh_token.clone().unwrap();
    let second = s
        .token(&refresh_form(&c, &r1, None), None, at(T0 + 10))
        .await
        .unwrap();
    let r2 = second.refresh_token.clone().unwrap();
    assert_ne!(r1, r2);
    assert_eq!(second.scope, "orders:read");
    // Scope may narrow... (the family's scope is orders:read; ask for a wider one)
    let error = s
        .token(
            &refresh_form(&c, &r2, Some("orders:read orders:write")),
            None,
            at(T0 + 11),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidScope);
    let third = s
        .token(
            &refresh_form(&c, &r2, Some("orders:read")),
            None,
            at(T0 + 12),
        )
        .await
        .unwrap();
    let r3 = third.refresh_token.clone().unwrap();
    // Another client cannot use it.
    let other = client(&s, vec![GrantType::AuthorizationCode]).await;
    let error = s
        .token(&refresh_form(&other, &r3, None), None, at(T0 + 13))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    // Both access tokens work until a used refresh token comes back.
    s.verify_access_token(&second.access_token, at(T0 + 14))
        .await
        .unwrap();
    s.verify_access_token(&third.access_token, at(T0 + 14))
        .await
        .unwrap();
    let error = s
        .token(&refresh_form(&c, &r1, None), None, at(T0 + 15))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    // The whole family is revoked: refresh and access tokens alike.
    for access in [
        &first.access_token,
        &second.access_token,
        &third.access_token,
    ] {
        assert_eq!(
            s.verify_access_token(access, at(T0 + 16))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Revoked
        );
    }
    let error = s
        .token(&refresh_form(&c, &r3, None), None, at(T0 + 17))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    // Unknown and expired refresh tokens.
    let error = s
        .token(&refresh_form(&c, "prt_unknown", None), None, at(T0))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    let fresh = first_tokens(&s, &c).await.refresh_token.unwrap();
    let late = T0 + 14 * 24 * 3600 + 10;
    let error = s
        .token(&refresh_form(&c, &fresh, None), None, at(late))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
}

async fn refresh_grace_window<S: OAuthStore, B: Blocklist>(s: AuthorizationServer<S, B>) {
    let c = client(
        &s,
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let r1 = first_tokens(&s, &c).await.refresh_token.unwrap();
    let a = s
        .token(&refresh_form(&c, &r1, None), None, at(T0 + 10))
        .await
        .unwrap();
    // The immediate parent, retried within the window, gets the same pair back.
    let retry = s
        .token(&refresh_form(&c, &r1, None), None, at(T0 + 12))
        .await
        .unwrap();
    assert_eq!(retry, a);
    s.verify_access_token(&a.access_token, at(T0 + 12))
        .await
        .unwrap();
    // Once the child has been used, the grandparent is a reuse.
    let r2 = a.refresh_token.clone().unwrap();
    let b = s
        .token(&refresh_form(&c, &r2, None), None, at(T0 + 13))
        .await
        .unwrap();
    let error = s
        .token(&refresh_form(&c, &r1, None), None, at(T0 + 14))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    assert_eq!(
        s.verify_access_token(&b.access_token, at(T0 + 15))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Revoked
    );
    // Outside the window, the parent is a reuse.
    let r1 = first_tokens(&s, &c).await.refresh_token.unwrap();
    let a = s
        .token(&refresh_form(&c, &r1, None), None, at(T0 + 100))
        .await
        .unwrap();
    let error = s
        .token(&refresh_form(&c, &r1, None), None, at(T0 + 100 + 11))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    assert_eq!(
        s.verify_access_token(&a.access_token, at(T0 + 112))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Revoked
    );
}

async fn device_flow<S: OAuthStore, B: Blocklist>(s: AuthorizationServer<S, B>) {
    let c = client(&s, vec![GrantType::DeviceCode]).await;
    let auth = basic(&c.id, &c.secret);
    let start = s
        .device_authorization(&form(&[("scope", "orders:read")]), Some(&auth), at(T0))
        .await
        .unwrap();
    assert_eq!(start.interval, 5);
    assert_eq!(start.expires_in, 600);
    assert_eq!(start.verification_uri, "https://auth.example/oauth/device");
    let poll = form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", &start.device_code),
    ]);
    let code = |t: u64| {
        let s = &s;
        let poll = &poll;
        let auth = &auth;
        async move {
            s.token(poll, Some(auth), at(t))
                .await
                .map(|_| ())
                .unwrap_err()
                .code()
        }
    };
    assert_eq!(code(T0 + 5).await, OAuthErrorCode::AuthorizationPending);
    assert_eq!(code(T0 + 6).await, OAuthErrorCode::SlowDown);
    // The interval grew to 10 s.
    assert_eq!(code(T0 + 12).await, OAuthErrorCode::SlowDown);
    assert_eq!(code(T0 + 30).await, OAuthErrorCode::AuthorizationPending);
    s.device_decision(&start.user_code.to_lowercase(), "bob", true, at(T0 + 31))
        .await
        .unwrap();
    assert_eq!(
        s.device_decision(&start.user_code, "bob", false, at(T0 + 32))
            .await
            .unwrap_err()
            .code(),
        OAuthErrorCode::InvalidGrant
    );
    let tokens = s.token(&poll, Some(&auth), at(T0 + 50)).await.unwrap();
    assert_eq!(
        s.verify_access_token(&tokens.access_token, at(T0 + 51))
            .await
            .unwrap()
            .sub,
        "bob"
    );
    assert_eq!(code(T0 + 70).await, OAuthErrorCode::InvalidGrant);

    // Denied.
    let start = s
        .device_authorization(&form(&[]), Some(&auth), at(T0))
        .await
        .unwrap();
    let poll = form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", &start.device_code),
    ]);
    s.device_decision(&start.user_code, "bob", false, at(T0 + 1))
        .await
        .unwrap();
    assert_eq!(
        s.token(&poll, Some(&auth), at(T0 + 10))
            .await
            .unwrap_err()
            .code(),
        OAuthErrorCode::AccessDenied
    );
    // Expired.
    let start = s
        .device_authorization(&form(&[]), Some(&auth), at(T0))
        .await
        .unwrap();
    let poll = form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", &start.device_code),
    ]);
    assert_eq!(
        s.token(&poll, Some(&auth), at(T0 + 601))
            .await
            .unwrap_err()
            .code(),
        OAuthErrorCode::ExpiredToken
    );
    assert!(
        s.device_decision(&start.user_code, "bob", true, at(T0 + 601))
            .await
            .is_err()
    );
    // A client without the grant.
    let other = client(&s, vec![GrantType::ClientCredentials]).await;
    let error = s
        .device_authorization(&form(&[]), Some(&basic(&other.id, &other.secret)), at(T0))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::UnauthorizedClient);
}

async fn revocation_and_introspection<S: OAuthStore, B: Blocklist>(s: AuthorizationServer<S, B>) {
    let c = client(
        &s,
        vec![GrantType::AuthorizationCode, GrantType::ClientCredentials],
    )
    .await;
    let auth = basic(&c.id, &c.secret);
    let tokens = first_tokens(&s, &c).await;
    let refresh = tokens.refresh_token.clone().unwrap();
    let introspect = |token: &str| form(&[("token", token)]);
    let active = s
        .introspect(&introspect(&tokens.access_token), Some(&auth), at(T0 + 2))
        .await
        .unwrap();
    assert!(active.active);
    assert_eq!(active.sub.as_deref(), Some("alice"));
    assert_eq!(active.client_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(active.token_type.as_deref(), Some("Bearer"));
    assert_eq!(active.scope.as_deref(), Some("orders:read"));
    assert!(active.exp.is_some() && active.iat.is_some());
    let r = s
        .introspect(&introspect(&refresh), Some(&auth), at(T0 + 2))
        .await
        .unwrap();
    assert!(r.active);
    assert_eq!(r.token_type.as_deref(), Some("refresh_token"));
    assert!(
        !s.introspect(&introspect("garbage"), Some(&auth), at(T0))
            .await
            .unwrap()
            .active
    );
    // Introspection needs client authentication.
    assert_eq!(
        s.introspect(&introspect(&tokens.access_token), None, at(T0))
            .await
            .unwrap_err()
            .code(),
        OAuthErrorCode::InvalidClient
    );
    // Another client's revocation request changes nothing.
    let other = client(&s, vec![GrantType::ClientCredentials]).await;
    s.revoke(
        &introspect(&tokens.access_token),
        Some(&basic(&other.id, &other.secret)),
        at(T0 + 3),
    )
    .await
    .unwrap();
    s.verify_access_token(&tokens.access_token, at(T0 + 3))
        .await
        .unwrap();
    // RFC 7009: the access token is revoked at once.
    s.revoke(&introspect(&tokens.access_token), Some(&auth), at(T0 + 3))
        .await
        .unwrap();
    let error = s
        .verify_access_token(&tokens.access_token, at(T0 + 4))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Revoked);
    assert_eq!(error.code(), "revoked");
    assert!(
        !s.introspect(&introspect(&tokens.access_token), Some(&auth), at(T0 + 4))
            .await
            .unwrap()
            .active
    );
    // Revoking a refresh token revokes its family.
    s.revoke(&introspect(&refresh), Some(&auth), at(T0 + 5))
        .await
        .unwrap();
    assert!(
        !s.introspect(&introspect(&refresh), Some(&auth), at(T0 + 5))
            .await
            .unwrap()
            .active
    );
    let error = s
        .token(&refresh_form(&c, &refresh, None), None, at(T0 + 6))
        .await
        .unwrap_err();
    assert_eq!(error.code(), OAuthErrorCode::InvalidGrant);
    // Unknown tokens are answered with success.
    s.revoke(&introspect("prt_nothing"), Some(&auth), at(T0))
        .await
        .unwrap();
    s.revoke(&introspect("nothing"), Some(&auth), at(T0))
        .await
        .unwrap();
}

/// Direct conformance checks of the store's compare-and-swap operations.
async fn store_conformance<S: OAuthStore>(store: S) {
    use palisade_jwt::{AccessRecord, CodeRecord, FamilyRecord, RefreshRecord};
    let family = FamilyRecord {
        family_id: "fam1".into(),
        client_id: "c".into(),
        subject: "u".into(),
        scope: "a b".into(),
        created_at: 10,
        expires_at: 1000,
        revoked_at: None,
    };
    let token = |hash: &str, parent: Option<&str>| RefreshRecord {
        token_hash: hash.into(),
        family_id: "fam1".into(),
        parent_hash: parent.map(Into::into),
        issued_at: 10,
        expires_at: 500,
        used_at: None,
        replaced_by: None,
        retry_blob: None,
    };
    let access = |jti: &str, exp: u64| AccessRecord {
        jti: jti.into(),
        family_id: "fam1".into(),
        expires_at: exp,
    };
    store
        .create_family(family.clone(), token("h1", None), access("j1", 100))
        .await
        .unwrap();
    let (t, f) = store.get_refresh("h1").await.unwrap().unwrap();
    assert_eq!(f, family);
    assert_eq!(t.used_at, None);
    assert!(
        store
            .rotate_refresh(
                "h1",
                token("h2", Some("h1")),
                Some("blob".into()),
                access("j2", 200),
                20
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_refresh("h1", token("h3", Some("h1")), None, access("j3", 200), 21)
            .await
            .unwrap()
    );
    assert!(
        store.get_refresh("h3").await.unwrap().is_none(),
        "a lost swap leaves no trace"
    );
    let (t, _) = store.get_refresh("h1").await.unwrap().unwrap();
    assert_eq!(t.used_at, Some(20));
    assert_eq!(t.replaced_by.as_deref(), Some("h2"));
    assert_eq!(t.retry_blob.as_deref(), Some("blob"));
    let mut live = store.revoke_family("fam1", 150).await.unwrap();
    live.sort_by(|a, b| a.jti.cmp(&b.jti));
    assert_eq!(live, vec![access("j2", 200)]);
    assert_eq!(
        store.get_refresh("h2").await.unwrap().unwrap().1.revoked_at,
        Some(150)
    );
    assert!(
        !store
            .rotate_refresh("h2", token("h4", Some("h2")), None, access("j4", 300), 151)
            .await
            .unwrap()
    );

    let code = CodeRecord {
        code_hash: "ch".into(),
        client_id: "c".into(),
        redirect_uri: "https://x/cb".into(),
        scope: "a".into(),
        subject: "u".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        expires_at: 70,
        used_at: None,
        family_id: None,
    };
    store.put_code(code.clone()).await.unwrap();
    match store.consume_code("ch", "famX", 15).await.unwrap() {
        CodeOutcome::Fresh(r) => assert_eq!(r.family_id.as_deref(), Some("famX")),
        other => panic!("{other:?}"),
    }
    match store.consume_code("ch", "famY", 16).await.unwrap() {
        CodeOutcome::Reused(r) => assert_eq!(r.family_id.as_deref(), Some("famX")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.consume_code("nope", "f", 1).await.unwrap(),
        CodeOutcome::Missing
    );

    let device = DeviceRecord {
        device_code_hash: "dh".into(),
        user_code: "BCDF-GHJK".into(),
        client_id: "c".into(),
        scope: "a".into(),
        expires_at: 600,
        interval: 5,
        last_poll: None,
        status: DeviceStatus::Pending,
        subject: None,
    };
    store.put_device(device.clone()).await.unwrap();
    assert_eq!(store.get_device("dh").await.unwrap(), Some(device));
    store.record_device_poll("dh", 30, 10).await.unwrap();
    assert!(!store.consume_device("dh").await.unwrap());
    assert!(
        !store
            .decide_device("BCDF-GHJK", true, "u", 600)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        store
            .decide_device("BCDF-GHJK", true, "u", 40)
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_device("BCDF-GHJK", false, "v", 41)
            .await
            .unwrap()
    );
    let d = store.get_device("dh").await.unwrap().unwrap();
    assert_eq!(
        (d.status, d.subject.as_deref(), d.last_poll, d.interval),
        (DeviceStatus::Approved, Some("u"), Some(30), 10)
    );
    assert!(store.consume_device("dh").await.unwrap());
    assert!(!store.consume_device("dh").await.unwrap());

    store.purge_expired(10_000).await.unwrap();
    assert!(store.get_refresh("h1").await.unwrap().is_none());
    assert!(store.get_device("dh").await.unwrap().is_none());
    assert_eq!(
        store.consume_code("ch", "f", 1).await.unwrap(),
        CodeOutcome::Missing
    );
}

/// Concurrent refreshes of one token never fork the family: without a grace window
/// exactly one wins; with one, every racer gets the same pair.
async fn concurrent_refresh<S: OAuthStore + 'static, B: Blocklist + 'static>(
    s: AuthorizationServer<S, B>,
    grace: bool,
) {
    let s = Arc::new(s);
    let c = client(
        &s,
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
    )
    .await;
    let r1 = first_tokens(&s, &c).await.refresh_token.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(&s);
        let f = refresh_form(&c, &r1, None);
        tasks.push(tokio::spawn(
            async move { s.token(&f, None, at(T0 + 10)).await },
        ));
    }
    let mut ok = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(response) => ok.push(response),
            Err(error) => assert_eq!(error.code(), OAuthErrorCode::InvalidGrant),
        }
    }
    if grace {
        assert_eq!(ok.len(), 8, "every racer is served inside the grace window");
        assert!(ok.iter().all(|r| *r == ok[0]), "one pair, no fork");
    } else {
        assert_eq!(ok.len(), 1, "exactly one rotation wins");
    }
}

macro_rules! backend_tests {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn client_credentials_grant() {
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                client_credentials(server(store, blocklist, None)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn authorization_code_grant_with_pkce() {
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                authorization_code(server(store, blocklist, None)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refresh_token_reused_revokes_the_family() {
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                refresh_rotation_and_reuse(server(store, blocklist, None)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refresh_grace_window_returns_the_same_pair() {
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                refresh_grace_window(server(store, blocklist, Some(Duration::from_secs(10)))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn device_grant() {
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                device_flow(server(store, blocklist, None)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn revocation_and_introspection_endpoints() {
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                revocation_and_introspection(server(store, blocklist, None)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn store_conformance_suite() {
                let Some((store, _blocklist)) = $make.await else {
                    return;
                };
                store_conformance(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_refreshes_never_fork_a_family() {
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                concurrent_refresh(server(store, blocklist, None), false).await;
                let Some((store, blocklist)) = $make.await else {
                    return;
                };
                concurrent_refresh(
                    server(store, blocklist, Some(Duration::from_secs(10))),
                    true,
                )
                .await;
            }
        }
    };
}

backend_tests!(memory, async {
    Some((MemoryStore::new(), MemoryBlocklist::new()))
});

#[cfg(feature = "sqlite")]
async fn sqlite_backend() -> Option<(palisade_jwt::SqliteStore, MemoryBlocklist)> {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("oauth.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    // Keep the directory for the pool's lifetime (the test process ends first).
    #[allow(clippy::mem_forget)]
    std::mem::forget(dir);
    let store = palisade_jwt::SqliteStore::new(pool.clone()).await.unwrap();
    // Migrations are idempotent.
    palisade_jwt::SqliteStore::new(pool).await.unwrap();
    Some((store, MemoryBlocklist::new()))
}

#[cfg(feature = "sqlite")]
backend_tests!(sqlite, sqlite_backend());

#[cfg(feature = "postgres")]
async fn postgres_backend() -> Option<(palisade_jwt::PostgresStore, MemoryBlocklist)> {
    let url = palisade_testkit::fresh_postgres_database("jwt").await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .unwrap();
    let store = palisade_jwt::PostgresStore::new(pool.clone())
        .await
        .unwrap();
    palisade_jwt::PostgresStore::new(pool).await.unwrap();
    Some((store, MemoryBlocklist::new()))
}

#[cfg(feature = "postgres")]
backend_tests!(postgres, postgres_backend());

#[cfg(all(feature = "postgres", feature = "redis"))]
async fn postgres_redis_backend() -> Option<(
    palisade_jwt::PostgresStore,
    palisade_jwt::RedisBlocklist<redis::aio::MultiplexedConnection>,
)> {
    let redis_url = palisade_testkit::redis_url()?;
    let (store, _) = postgres_backend().await?;
    let client = redis::Client::open(redis_url).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let prefix = format!("{}:", palisade_testkit::unique_name("palisade:jti:test"));
    Some((
        store,
        palisade_jwt::RedisBlocklist::with_prefix(connection, prefix),
    ))
}

#[cfg(all(feature = "postgres", feature = "redis"))]
backend_tests!(postgres_redis, postgres_redis_backend());
