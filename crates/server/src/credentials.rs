//! Request-signing credentials and users, in the server's own tables.
//!
//! Signing secrets must be usable (HMAC needs the secret itself), so they are kept
//! sealed under the master key ([`MasterKey`], AES-256-GCM bound to the access key id)
//! and opened only to verify. User passwords are kept as Argon2id hashes.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use palisade_signing::{
    Credential, CredentialStore, KeyMaterial, MasterKey, Rfc9421Algorithm, SealedKey, SealedSecret,
    Secret,
};
use rand::distr::{Alphanumeric, SampleString};
use zeroize::Zeroizing;

use crate::clock;
use crate::db::{Db, DbError, DbResult, sql, sql_as};

/// Signing credentials in the database.
#[derive(Clone)]
pub(crate) struct DbCredentialStore {
    db: Db,
    master: Arc<MasterKey>,
}

/// A credential made by `palisade credentials create`: the secret shown once.
pub(crate) struct NewCredential {
    pub(crate) access_key_id: String,
    pub(crate) secret: Zeroizing<String>,
}

/// What listing shows of a credential (never the secret).
#[derive(Debug, serde::Serialize)]
pub(crate) struct CredentialSummary {
    pub(crate) access_key_id: String,
    pub(crate) owner: String,
    pub(crate) scopes: Vec<String>,
    /// `hmac-sha256` (a shared secret), `ed25519` or `ecdsa-p256-sha256` (a public key).
    pub(crate) algorithm: String,
    pub(crate) created_at: i64,
}

/// The `algorithm` column's values: a shared secret, or a public key's algorithm.
const HMAC: &str = Rfc9421Algorithm::HmacSha256.name();
const ED25519: &str = Rfc9421Algorithm::Ed25519.name();
const ECDSA_P256: &str = Rfc9421Algorithm::EcdsaP256Sha256.name();

impl DbCredentialStore {
    pub(crate) fn new(db: Db, master: MasterKey) -> Self {
        Self {
            db,
            master: Arc::new(master),
        }
    }

    /// Creates a credential for `owner` with `scopes`.
    pub(crate) async fn create(&self, owner: &str, scopes: &[String]) -> DbResult<NewCredential> {
        let access_key_id = new_access_key_id();
        let secret = Zeroizing::new(Alphanumeric.sample_string(&mut rand::rng(), 40));
        let sealed = self
            .master
            .seal(&access_key_id, &Secret::new(secret.as_bytes().to_vec()))
            .map_err(|_| DbError("cannot seal the secret".into()))?;
        sql!(
            &self.db,
            execute,
            "INSERT INTO server_credentials (access_key_id, owner, scopes, sealed_secret, created_at) VALUES ($1, $2, $3, $4, $5)",
            access_key_id.as_str(),
            owner,
            scopes.join(" "),
            sealed.as_bytes().to_vec(),
            clock::unix_now()
        )?;
        Ok(NewCredential {
            access_key_id,
            secret,
        })
    }

    /// Creates a credential for `owner` that verifies RFC 9421 signatures with a public
    /// key (Ed25519 or P-256): the server never holds the private key. Returns the
    /// access key id (the signatures' `keyid`).
    pub(crate) async fn create_with_public_key(
        &self,
        owner: &str,
        scopes: &[String],
        key: &KeyMaterial,
    ) -> DbResult<String> {
        let (algorithm, public_key) = match key {
            KeyMaterial::Ed25519(bytes) => (ED25519, bytes.to_vec()),
            KeyMaterial::EcdsaP256(bytes) => (ECDSA_P256, bytes.clone()),
            KeyMaterial::Secret(_) | KeyMaterial::Sealed(_) => {
                return Err(DbError("not a public key".into()));
            }
        };
        let access_key_id = new_access_key_id();
        sql!(
            &self.db,
            execute,
            "INSERT INTO server_credentials (access_key_id, owner, scopes, sealed_secret, public_key, algorithm, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            access_key_id.as_str(),
            owner,
            scopes.join(" "),
            Vec::<u8>::new(),
            public_key,
            algorithm,
            clock::unix_now()
        )?;
        Ok(access_key_id)
    }

    /// Revokes a credential; later signatures with it are refused.
    pub(crate) async fn revoke(&self, access_key_id: &str) -> DbResult<bool> {
        let changed = sql!(
            &self.db,
            execute,
            "UPDATE server_credentials SET revoked_at = $1 WHERE access_key_id = $2 AND revoked_at IS NULL",
            clock::unix_now(),
            access_key_id
        )?;
        Ok(changed > 0)
    }

    /// Active credentials, optionally of one owner.
    pub(crate) async fn list(&self, owner: Option<&str>) -> DbResult<Vec<CredentialSummary>> {
        let rows: Vec<(String, String, String, String, i64)> = sql_as!(
            &self.db,
            (String, String, String, String, i64),
            fetch_all,
            "SELECT access_key_id, owner, scopes, algorithm, created_at FROM server_credentials WHERE revoked_at IS NULL AND ($1 = '' OR owner = $1) ORDER BY created_at, access_key_id",
            owner.unwrap_or("")
        )?;
        Ok(rows
            .into_iter()
            .map(
                |(access_key_id, owner, scopes, algorithm, created_at)| CredentialSummary {
                    access_key_id,
                    owner,
                    scopes: split_scopes(&scopes),
                    algorithm,
                    created_at,
                },
            )
            .collect())
    }
}

/// `PK` and 18 random upper-case letters and digits.
fn new_access_key_id() -> String {
    format!(
        "PK{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), 18)
            .to_ascii_uppercase()
    )
}

fn split_scopes(scopes: &str) -> Vec<String> {
    scopes.split_whitespace().map(str::to_owned).collect()
}

impl CredentialStore for DbCredentialStore {
    async fn credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Credential>, palisade_signing::Error> {
        // Ids are short; anything longer cannot exist and is not worth a query.
        if access_key_id.len() > 128 {
            return Ok(None);
        }
        type Row = (String, String, Vec<u8>, Option<Vec<u8>>, String);
        let row: Option<Row> = sql_as!(
            &self.db,
            Row,
            fetch_optional,
            "SELECT owner, scopes, sealed_secret, public_key, algorithm FROM server_credentials WHERE access_key_id = $1 AND revoked_at IS NULL",
            access_key_id
        )
        .map_err(|_| palisade_signing::Error::store_unavailable())?;
        let Some((owner, scopes, sealed, public_key, algorithm)) = row else {
            return Ok(None);
        };
        let key = match (algorithm.as_str(), public_key) {
            // Handed over sealed: the verifier opens it only to derive a signing key.
            (HMAC, _) => KeyMaterial::Sealed(SealedKey::new(
                Arc::clone(&self.master),
                access_key_id,
                SealedSecret::from_bytes(sealed),
            )),
            (ED25519, Some(bytes)) => match <[u8; 32]>::try_from(bytes.as_slice()) {
                Ok(key) => KeyMaterial::Ed25519(key),
                Err(_) => return Err(palisade_signing::Error::store_unavailable()),
            },
            (ECDSA_P256, Some(bytes)) => KeyMaterial::EcdsaP256(bytes),
            // A row this version cannot read: refuse rather than guess.
            _ => return Err(palisade_signing::Error::store_unavailable()),
        };
        Ok(Some(Credential {
            access_key_id: access_key_id.to_owned(),
            owner,
            scopes: split_scopes(&scopes),
            key,
        }))
    }
}

/// Users for HTTP Basic on `/oauth/authorize`, `/oauth/device` (and `/api/*` when the
/// development switch is on).
#[derive(Clone)]
pub(crate) struct Users {
    db: Db,
}

/// Usernames: 1 to 64 of `A-Z a-z 0-9 . _ @ -`.
pub(crate) fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
}

impl Users {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates or replaces `username`'s password.
    pub(crate) async fn create(&self, username: &str, password: &str) -> Result<(), String> {
        if !valid_username(username) {
            return Err("USER: 1 to 64 characters of A-Z a-z 0-9 . _ @ -".into());
        }
        if password.is_empty() || password.len() > 1024 {
            return Err("password: 1 to 1024 bytes".into());
        }
        let salt = SaltString::from_b64(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            rand::random::<[u8; 16]>(),
        ))
        .map_err(|_| "cannot make a salt".to_owned())?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|_| "cannot hash the password".to_owned())?
            .to_string();
        sql!(
            &self.db,
            execute,
            "INSERT INTO server_users (username, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash",
            username,
            hash,
            clock::unix_now()
        )
        .map_err(|error| format!("database: {error}"))?;
        Ok(())
    }

    /// Checks a password. Unknown users cost the same as wrong passwords, so the answer
    /// time does not reveal which usernames exist.
    pub(crate) async fn verify(&self, username: &str, password: &str) -> DbResult<bool> {
        if !valid_username(username) || password.len() > 1024 {
            return Ok(false);
        }
        let row: Option<(String,)> = sql_as!(
            &self.db,
            (String,),
            fetch_optional,
            "SELECT password_hash FROM server_users WHERE username = $1",
            username
        )?;
        let password = password.to_owned();
        let stored = row.map(|(hash,)| hash);
        // Argon2 is deliberately slow: keep it off the async workers.
        let ok = tokio::task::spawn_blocking(move || {
            let hash = stored.as_deref().unwrap_or(DUMMY_HASH);
            let matches = PasswordHash::new(hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false);
            matches && stored.is_some()
        })
        .await
        .unwrap_or(false);
        Ok(ok)
    }
}

/// An Argon2id hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2lDhUEwVcO1ehcTsbhkjEXbnnu3unqTb1WvH+UrGkLQ";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A database an earlier release left at schema step 1, holding one HMAC credential.
    async fn version_1_database(path: &std::path::Path, master: &MasterKey) -> Db {
        let db = Db::sqlite(path).await.unwrap();
        let Db::Sqlite(pool) = &db else {
            unreachable!("a SQLite path opens SQLite")
        };
        for statement in crate::db::SCHEMA_V1_SQLITE
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            sqlx::query(statement).execute(pool).await.unwrap();
        }
        sqlx::query("CREATE TABLE server_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO server_migrations VALUES (1, 0)")
            .execute(pool)
            .await
            .unwrap();
        let sealed = master.seal("PKOLD", &Secret::from("old-secret")).unwrap();
        sqlx::query("INSERT INTO server_credentials (access_key_id, owner, scopes, sealed_secret, created_at) VALUES ('PKOLD', 'alice', 'orders:read', $1, 0)")
            .bind(sealed.as_bytes().to_vec())
            .execute(pool)
            .await
            .unwrap();
        db
    }

    #[tokio::test]
    async fn step_2_keeps_the_secrets_of_a_version_1_database() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate();
        let db = version_1_database(&dir.path().join("v1.db"), &master).await;
        db.migrate().await.unwrap();
        db.migrate().await.unwrap();
        let store = DbCredentialStore::new(db, master);
        let old = store.credential("PKOLD").await.unwrap().unwrap();
        let KeyMaterial::Sealed(sealed) = &old.key else {
            panic!("an HMAC credential stays a sealed secret: {:?}", old.key);
        };
        assert_eq!(sealed.open().unwrap().expose(), b"old-secret");
        let listed = store.list(None).await.unwrap();
        assert_eq!(listed[0].algorithm, "hmac-sha256");
        // And the new column takes a public key.
        let id = store
            .create_with_public_key("bob", &[], &KeyMaterial::Ed25519([3; 32]))
            .await
            .unwrap();
        let new = store.credential(&id).await.unwrap().unwrap();
        assert!(matches!(new.key, KeyMaterial::Ed25519(k) if k == [3; 32]));
    }

    /// The CLI and the server may open one data directory at once: both migrate, one
    /// after the other, and neither fails on the other's half-done step.
    #[tokio::test]
    async fn two_processes_migrating_one_database_at_once_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let master = MasterKey::generate();
        version_1_database(&path, &master).await;
        let (a, b) = (
            Db::sqlite(&path).await.unwrap(),
            Db::sqlite(&path).await.unwrap(),
        );
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.unwrap();
        rb.unwrap();
        let Db::Sqlite(pool) = &a else { unreachable!() };
        let (steps,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM server_migrations")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(steps, 2);
    }
}
