//! Storage of the authorization server's state: clients, refresh-token families,
//! authorization codes and device grants.

use std::future::Future;

use crate::error::Result;

mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use sql::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sql::SqliteStore;

/// A registered OAuth client. Only the SHA-256 hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The client id.
    pub client_id: String,
    /// Hex SHA-256 of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    /// A display name.
    pub name: String,
    /// Grant types it may use (`client_credentials`, `authorization_code`,
    /// `refresh_token`, `urn:ietf:params:oauth:grant-type:device_code`).
    pub grant_types: Vec<String>,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
    /// Registration time, Unix seconds.
    pub created_at: u64,
}

/// A refresh-token family: every token rotated from one grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    /// The family id.
    pub family_id: String,
    /// The client it belongs to.
    pub client_id: String,
    /// The resource owner.
    pub subject: String,
    /// The scope granted (refreshes may narrow it per access token, never widen it).
    pub scope: String,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Absolute end of the family, Unix seconds.
    pub expires_at: u64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

/// One refresh token of a family, stored by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Its family.
    pub family_id: String,
    /// The token it replaced.
    pub parent_hash: Option<String>,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// When it was used (rotated), if it was.
    pub used_at: Option<u64>,
    /// The token that replaced it.
    pub replaced_by: Option<String>,
    /// The encrypted response given when it was rotated, readable only with this
    /// token itself, for the optional grace-window retry.
    pub retry_blob: Option<String>,
}

/// An access token issued within a family, kept so that revoking the family can
/// blocklist it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// Its `jti`.
    pub jti: String,
    /// Its family.
    pub family_id: String,
    /// Its `exp`, Unix seconds.
    pub expires_at: u64,
}

/// An authorization code, stored by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// Hex SHA-256 of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The exact redirect URI of the request.
    pub redirect_uri: String,
    /// The scope granted.
    pub scope: String,
    /// The user who approved.
    pub subject: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// When it was exchanged, if it was.
    pub used_at: Option<u64>,
    /// The family created by the exchange.
    pub family_id: Option<String>,
}

/// What consuming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeOutcome {
    /// First use: the code is now consumed.
    Fresh(CodeRecord),
    /// The code was already used: a replay.
    Reused(CodeRecord),
    /// No such code.
    Missing,
}

/// The state of a device grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// The user approved.
    Approved,
    /// The user denied.
    Denied,
    /// Tokens were issued.
    Consumed,
}

impl DeviceStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
        }
    }

    /// Reads the stored spelling (anything unknown counts as consumed).
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            _ => Self::Consumed,
        }
    }
}

/// An RFC 8628 device grant, stored by the hash of its device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Hex SHA-256 of the device code.
    pub device_code_hash: String,
    /// The user code (`BCDF-GHJK`).
    pub user_code: String,
    /// The client that asked.
    pub client_id: String,
    /// The scope asked for.
    pub scope: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// The polling interval in seconds (grows by 5 on every `slow_down`).
    pub interval: u64,
    /// The last poll, Unix seconds.
    pub last_poll: Option<u64>,
    /// Where the grant stands.
    pub status: DeviceStatus,
    /// The user who decided.
    pub subject: Option<String>,
}

/// Storage for the authorization server. Every method that decides between racing
/// requests is one atomic compare-and-swap in the backend.
pub trait OAuthStore: Send + Sync {
    /// Stores a new client (an existing id is replaced).
    fn put_client(&self, client: ClientRecord) -> impl Future<Output = Result<()>> + Send;
    /// Looks up a client.
    fn get_client(
        &self,
        client_id: &str,
    ) -> impl Future<Output = Result<Option<ClientRecord>>> + Send;

    /// Creates a family with its first refresh token and access token.
    fn create_family(
        &self,
        family: FamilyRecord,
        first: RefreshRecord,
        access: AccessRecord,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Looks up a refresh token and its family.
    fn get_refresh(
        &self,
        token_hash: &str,
    ) -> impl Future<Output = Result<Option<(RefreshRecord, FamilyRecord)>>> + Send;
    /// Atomically: if `old_hash` is unused and its family unrevoked, marks it used
    /// (replaced by `new`, with `retry_blob`), stores `new` and `access`, and returns
    /// `true`; otherwise changes nothing and returns `false`.
    fn rotate_refresh(
        &self,
        old_hash: &str,
        new: RefreshRecord,
        retry_blob: Option<String>,
        access: AccessRecord,
        now: u64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Revokes a family; returns its access tokens that have not expired yet.
    fn revoke_family(
        &self,
        family_id: &str,
        now: u64,
    ) -> impl Future<Output = Result<Vec<AccessRecord>>> + Send;

    /// Stores a new authorization code.
    fn put_code(&self, code: CodeRecord) -> impl Future<Output = Result<()>> + Send;
    /// Atomically marks a code used and attaches `family_id`, reporting a replay.
    fn consume_code(
        &self,
        code_hash: &str,
        family_id: &str,
        now: u64,
    ) -> impl Future<Output = Result<CodeOutcome>> + Send;

    /// Stores a new device grant.
    fn put_device(&self, device: DeviceRecord) -> impl Future<Output = Result<()>> + Send;
    /// Looks up a device grant by the hash of its device code.
    fn get_device(
        &self,
        device_code_hash: &str,
    ) -> impl Future<Output = Result<Option<DeviceRecord>>> + Send;
    /// Records a poll and the interval now in force.
    fn record_device_poll(
        &self,
        device_code_hash: &str,
        polled_at: u64,
        interval: u64,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Atomically decides a pending, unexpired grant by user code; `false` if there is
    /// none.
    fn decide_device(
        &self,
        user_code: &str,
        approved: bool,
        subject: &str,
        now: u64,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Atomically moves an approved grant to consumed; `false` if it was not approved.
    fn consume_device(&self, device_code_hash: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Deletes expired codes, device grants, refresh tokens and families.
    fn purge_expired(&self, now: u64) -> impl Future<Output = Result<()>> + Send;
}
