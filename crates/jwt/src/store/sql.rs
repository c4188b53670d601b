//! SQLite and PostgreSQL stores. The SQL is the same text for both engines (`$n`
//! parameters, `TEXT` and `BIGINT` columns), so one macro implements both.

use sqlx::Row as _;

use super::{
    AccessRecord, ClientRecord, CodeOutcome, CodeRecord, DeviceRecord, DeviceStatus, FamilyRecord,
    OAuthStore, RefreshRecord,
};
use crate::error::{Error, Result};

/// Migrations, applied in order and recorded in `palisade_jwt_migrations`, a table no
/// other crate uses (sqlx's shared `_sqlx_migrations` is avoided on purpose).
const MIGRATIONS: &[(i64, &[&str])] = &[(
    1,
    &[
        "CREATE TABLE IF NOT EXISTS oauth_clients (
            client_id TEXT PRIMARY KEY,
            secret_hash TEXT,
            name TEXT NOT NULL,
            grant_types TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jwt_refresh_families (
            family_id TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            scope TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            revoked_at BIGINT)",
        "CREATE TABLE IF NOT EXISTS jwt_refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            family_id TEXT NOT NULL,
            parent_hash TEXT,
            issued_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            used_at BIGINT,
            replaced_by TEXT,
            retry_blob TEXT)",
        "CREATE INDEX IF NOT EXISTS jwt_refresh_tokens_family ON jwt_refresh_tokens (family_id)",
        "CREATE TABLE IF NOT EXISTS jwt_family_access_tokens (
            jti TEXT PRIMARY KEY,
            family_id TEXT NOT NULL,
            expires_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS jwt_family_access_tokens_family ON jwt_family_access_tokens (family_id)",
        "CREATE TABLE IF NOT EXISTS oauth_authorization_codes (
            code_hash TEXT PRIMARY KEY,
            client_id TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            scope TEXT NOT NULL,
            subject TEXT NOT NULL,
            code_challenge TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            used_at BIGINT,
            family_id TEXT)",
        "CREATE TABLE IF NOT EXISTS oauth_device_codes (
            device_code_hash TEXT PRIMARY KEY,
            user_code TEXT NOT NULL UNIQUE,
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            interval_secs BIGINT NOT NULL,
            last_poll BIGINT,
            status TEXT NOT NULL,
            subject TEXT)",
    ],
)];

fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_db(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn opt_from_db(v: Option<i64>) -> Option<u64> {
    v.map(from_db)
}

fn list_to_db(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn list_from_db(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

macro_rules! sql_store {
    ($(#[$doc:meta])* $name:ident, $pool:ty, $lock:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pool: $pool,
        }

        impl $name {
            /// Wraps a pool and applies this crate's migrations (idempotent; recorded in
            /// `palisade_jwt_migrations`).
            pub async fn new(pool: $pool) -> Result<Self> {
                let store = Self { pool };
                store.migrate().await?;
                Ok(store)
            }

            async fn migrate(&self) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(Error::storage)?;
                if let Some(lock) = $lock {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(Error::storage)?;
                }
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS palisade_jwt_migrations (
                        version BIGINT PRIMARY KEY,
                        applied_at BIGINT NOT NULL)",
                )
                .execute(&mut *tx)
                .await
                .map_err(Error::storage)?;
                for (version, statements) in MIGRATIONS {
                    let applied = sqlx::query("SELECT version FROM palisade_jwt_migrations WHERE version = $1")
                        .bind(*version)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(Error::storage)?
                        .is_some();
                    if applied {
                        continue;
                    }
                    for statement in *statements {
                        sqlx::query(statement).execute(&mut *tx).await.map_err(Error::storage)?;
                    }
                    sqlx::query("INSERT INTO palisade_jwt_migrations (version, applied_at) VALUES ($1, 0)")
                        .bind(*version)
                        .execute(&mut *tx)
                        .await
                        .map_err(Error::storage)?;
                }
                tx.commit().await.map_err(Error::storage)
            }

            /// The pool.
            pub fn pool(&self) -> &$pool {
                &self.pool
            }
        }

        impl OAuthStore for $name {
            async fn put_client(&self, c: ClientRecord) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(Error::storage)?;
                sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1")
                    .bind(&c.client_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::storage)?;
                sqlx::query(
                    "INSERT INTO oauth_clients (client_id, secret_hash, name, grant_types, redirect_uris, scopes, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&c.client_id)
                .bind(&c.secret_hash)
                .bind(&c.name)
                .bind(list_to_db(&c.grant_types))
                .bind(list_to_db(&c.redirect_uris))
                .bind(list_to_db(&c.scopes))
                .bind(to_db(c.created_at))
                .execute(&mut *tx)
                .await
                .map_err(Error::storage)?;
                tx.commit().await.map_err(Error::storage)
            }

            async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
                let row = sqlx::query(
                    "SELECT client_id, secret_hash, name, grant_types, redirect_uris, scopes, created_at
                     FROM oauth_clients WHERE client_id = $1",
                )
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage)?;
                row.map(|row| -> std::result::Result<ClientRecord, sqlx::Error> {
                    Ok(ClientRecord {
                        client_id: row.try_get("client_id")?,
                        secret_hash: row.try_get("secret_hash")?,
                        name: row.try_get("name")?,
                        grant_types: list_from_db(&row.try_get::<String, _>("grant_types")?),
                        redirect_uris: list_from_db(&row.try_get::<String, _>("redirect_uris")?),
                        scopes: list_from_db(&row.try_get::<String, _>("scopes")?),
                        created_at: from_db(row.try_get("created_at")?),
                    })
                })
                .transpose()
                .map_err(Error::storage)
            }

            async fn create_family(&self, f: FamilyRecord, first: RefreshRecord, access: AccessRecord) -> Result<()> {
                let mut tx = self.pool.begin().await.map_err(Error::storage)?;
                sqlx::query(
                    "INSERT INTO jwt_refresh_families (family_id, client_id, subject, scope, created_at, expires_at, revoked_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&f.family_id)
                .bind(&f.client_id)
                .bind(&f.subject)
                .bind(&f.scope)
                .bind(to_db(f.created_at))
                .bind(to_db(f.expires_at))
                .bind(f.revoked_at.map(to_db))
                .execute(&mut *tx)
                .await
                .map_err(Error::storage)?;
                insert_refresh!(&mut *tx, &first);
                insert_access!(&mut *tx, &access);
                tx.commit().await.map_err(Error::storage)
            }

            async fn get_refresh(&self, token_hash: &str) -> Result<Option<(RefreshRecord, FamilyRecord)>> {
                let row = sqlx::query(
                    "SELECT t.token_hash, t.family_id, t.parent_hash, t.issued_at, t.expires_at, t.used_at,
                            t.replaced_by, t.retry_blob, f.client_id, f.subject, f.scope,
                            f.created_at AS f_created_at, f.expires_at AS f_expires_at, f.revoked_at
                     FROM jwt_refresh_tokens t JOIN jwt_refresh_families f ON f.family_id = t.family_id
                     WHERE t.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage)?;
                row.map(|row| -> std::result::Result<(RefreshRecord, FamilyRecord), sqlx::Error> {
                    let family_id: String = row.try_get("family_id")?;
                    Ok((
                        RefreshRecord {
                            token_hash: row.try_get("token_hash")?,
                            family_id: family_id.clone(),
                            parent_hash: row.try_get("parent_hash")?,
                            issued_at: from_db(row.try_get("issued_at")?),
                            expires_at: from_db(row.try_get("expires_at")?),
                            used_at: opt_from_db(row.try_get("used_at")?),
                            replaced_by: row.try_get("replaced_by")?,
                            retry_blob: row.try_get("retry_blob")?,
                        },
                        FamilyRecord {
                            family_id,
                            client_id: row.try_get("client_id")?,
                            subject: row.try_get("subject")?,
                            scope: row.try_get("scope")?,
                            created_at: from_db(row.try_get("f_created_at")?),
                            expires_at: from_db(row.try_get("f_expires_at")?),
                            revoked_at: opt_from_db(row.try_get("revoked_at")?),
                        },
                    ))
                })
                .transpose()
                .map_err(Error::storage)
            }

            async fn rotate_refresh(
                &self,
                old_hash: &str,
                new: RefreshRecord,
                retry_blob: Option<String>,
                access: AccessRecord,
                now: u64,
            ) -> Result<bool> {
                let mut tx = self.pool.begin().await.map_err(Error::storage)?;
                // The compare-and-swap: a concurrent rotation of the same token blocks on
                // the row and then finds `used_at` set, so exactly one wins.
                let updated = sqlx::query(
                    "UPDATE jwt_refresh_tokens SET used_at = $1, replaced_by = $2, retry_blob = $3
                     WHERE token_hash = $4 AND used_at IS NULL
                       AND EXISTS (SELECT 1 FROM jwt_refresh_families f
                                   WHERE f.family_id = jwt_refresh_tokens.family_id AND f.revoked_at IS NULL)",
                )
                .bind(to_db(now))
                .bind(&new.token_hash)
                .bind(&retry_blob)
                .bind(old_hash)
                .execute(&mut *tx)
                .await
                .map_err(Error::storage)?
                .rows_affected();
                if updated != 1 {
                    tx.rollback().await.map_err(Error::storage)?;
                    return Ok(false);
                }
                insert_refresh!(&mut *tx, &new);
                insert_access!(&mut *tx, &access);
                tx.commit().await.map_err(Error::storage)?;
                Ok(true)
            }

            async fn revoke_family(&self, family_id: &str, now: u64) -> Result<Vec<AccessRecord>> {
                sqlx::query(
                    "UPDATE jwt_refresh_families SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
                )
                .bind(to_db(now))
                .bind(family_id)
                .execute(&self.pool)
                .await
                .map_err(Error::storage)?;
                let rows = sqlx::query(
                    "SELECT jti, family_id, expires_at FROM jwt_family_access_tokens
                     WHERE family_id = $1 AND expires_at > $2",
                )
                .bind(family_id)
                .bind(to_db(now))
                .fetch_all(&self.pool)
                .await
                .map_err(Error::storage)?;
                rows.into_iter()
                    .map(|row| -> std::result::Result<AccessRecord, sqlx::Error> {
                        Ok(AccessRecord {
                            jti: row.try_get("jti")?,
                            family_id: row.try_get("family_id")?,
                            expires_at: from_db(row.try_get("expires_at")?),
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(Error::storage)
            }

            async fn put_code(&self, c: CodeRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO oauth_authorization_codes
                     (code_hash, client_id, redirect_uri, scope, subject, code_challenge, expires_at, used_at, family_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&c.code_hash)
                .bind(&c.client_id)
                .bind(&c.redirect_uri)
                .bind(&c.scope)
                .bind(&c.subject)
                .bind(&c.code_challenge)
                .bind(to_db(c.expires_at))
                .bind(c.used_at.map(to_db))
                .bind(&c.family_id)
                .execute(&self.pool)
                .await
                .map_err(Error::storage)?;
                Ok(())
            }

            async fn consume_code(&self, code_hash: &str, family_id: &str, now: u64) -> Result<CodeOutcome> {
                let updated = sqlx::query(
                    "UPDATE oauth_authorization_codes SET used_at = $1, family_id = $2
                     WHERE code_hash = $3 AND used_at IS NULL",
                )
                .bind(to_db(now))
                .bind(family_id)
                .bind(code_hash)
                .execute(&self.pool)
                .await
                .map_err(Error::storage)?
                .rows_affected();
                let row = sqlx::query(
                    "SELECT code_hash, client_id, redirect_uri, scope, subject, code_challenge, expires_at, used_at, family_id
                     FROM oauth_authorization_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage)?;
                let Some(row) = row else { return Ok(CodeOutcome::Missing) };
                let record = (|| -> std::result::Result<CodeRecord, sqlx::Error> {
                    Ok(CodeRecord {
                        code_hash: row.try_get("code_hash")?,
                        client_id: row.try_get("client_id")?,
                        redirect_uri: row.try_get("redirect_uri")?,
                        scope: row.try_get("scope")?,
                        subject: row.try_get("subject")?,
                        code_challenge: row.try_get("code_challenge")?,
                        expires_at: from_db(row.try_get("expires_at")?),
                        used_at: opt_from_db(row.try_get("used_at")?),
                        family_id: row.try_get("family_id")?,
                    })
                })()
                .map_err(Error::storage)?;
                Ok(if updated == 1 { CodeOutcome::Fresh(record) } else { CodeOutcome::Reused(record) })
            }

            async fn put_device(&self, d: DeviceRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO oauth_device_codes
                     (device_code_hash, user_code, client_id, scope, expires_at, interval_secs, last_poll, status, subject)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&d.device_code_hash)
                .bind(&d.user_code)
                .bind(&d.client_id)
                .bind(&d.scope)
                .bind(to_db(d.expires_at))
                .bind(to_db(d.interval))
                .bind(d.last_poll.map(to_db))
                .bind(d.status.as_str())
                .bind(&d.subject)
                .execute(&self.pool)
                .await
                .map_err(Error::storage)?;
                Ok(())
            }

            async fn get_device(&self, device_code_hash: &str) -> Result<Option<DeviceRecord>> {
                let row = sqlx::query(
                    "SELECT device_code_hash, user_code, client_id, scope, expires_at, interval_secs, last_poll, status, subject
                     FROM oauth_device_codes WHERE device_code_hash = $1",
                )
                .bind(device_code_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage)?;
                row.map(|row| -> std::result::Result<DeviceRecord, sqlx::Error> {
                    Ok(DeviceRecord {
                        device_code_hash: row.try_get("device_code_hash")?,
                        user_code: row.try_get("user_code")?,
                        client_id: row.try_get("client_id")?,
                        scope: row.try_get("scope")?,
                        expires_at: from_db(row.try_get("expires_at")?),
                        interval: from_db(row.try_get("interval_secs")?),
                        last_poll: opt_from_db(row.try_get("last_poll")?),
                        status: DeviceStatus::parse(&row.try_get::<String, _>("status")?),
                        subject: row.try_get("subject")?,
                    })
                })
                .transpose()
                .map_err(Error::storage)
            }

            async fn record_device_poll(&self, device_code_hash: &str, polled_at: u64, interval: u64) -> Result<()> {
                sqlx::query("UPDATE oauth_device_codes SET last_poll = $1, interval_secs = $2 WHERE device_code_hash = $3")
                    .bind(to_db(polled_at))
                    .bind(to_db(interval))
                    .bind(device_code_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(Error::storage)?;
                Ok(())
            }

            async fn decide_device(&self, user_code: &str, approved: bool, subject: &str, now: u64) -> Result<bool> {
                let status = if approved { DeviceStatus::Approved } else { DeviceStatus::Denied };
                let updated = sqlx::query(
                    "UPDATE oauth_device_codes SET status = $1, subject = $2
                     WHERE user_code = $3 AND status = 'pending' AND expires_at > $4",
                )
                .bind(status.as_str())
                .bind(subject)
                .bind(user_code)
                .bind(to_db(now))
                .execute(&self.pool)
                .await
                .map_err(Error::storage)?
                .rows_affected();
                Ok(updated == 1)
            }

            async fn consume_device(&self, device_code_hash: &str) -> Result<bool> {
                let updated = sqlx::query(
                    "UPDATE oauth_device_codes SET status = 'consumed'
                     WHERE device_code_hash = $1 AND status = 'approved'",
                )
                .bind(device_code_hash)
                .execute(&self.pool)
                .await
                .map_err(Error::storage)?
                .rows_affected();
                Ok(updated == 1)
            }

            async fn purge_expired(&self, now: u64) -> Result<()> {
                let now = to_db(now);
                for statement in [
                    "DELETE FROM oauth_authorization_codes WHERE expires_at <= $1",
                    "DELETE FROM oauth_device_codes WHERE expires_at <= $1",
                    "DELETE FROM jwt_family_access_tokens WHERE expires_at <= $1",
                    "DELETE FROM jwt_refresh_tokens WHERE expires_at <= $1",
                    "DELETE FROM jwt_refresh_tokens WHERE family_id IN
                        (SELECT family_id FROM jwt_refresh_families WHERE expires_at <= $1)",
                    "DELETE FROM jwt_refresh_families WHERE expires_at <= $1",
                ] {
                    sqlx::query(statement).bind(now).execute(&self.pool).await.map_err(Error::storage)?;
                }
                Ok(())
            }
        }
    };
}

macro_rules! insert_refresh {
    ($exec:expr, $r:expr) => {{
        let r: &RefreshRecord = $r;
        sqlx::query(
            "INSERT INTO jwt_refresh_tokens
             (token_hash, family_id, parent_hash, issued_at, expires_at, used_at, replaced_by, retry_blob)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.token_hash)
        .bind(&r.family_id)
        .bind(&r.parent_hash)
        .bind(to_db(r.issued_at))
        .bind(to_db(r.expires_at))
        .bind(r.used_at.map(to_db))
        .bind(&r.replaced_by)
        .bind(&r.retry_blob)
        .execute($exec)
        .await
        .map_err(Error::storage)?;
    }};
}

macro_rules! insert_access {
    ($exec:expr, $a:expr) => {{
        let a: &AccessRecord = $a;
        sqlx::query(
            "INSERT INTO jwt_family_access_tokens (jti, family_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(&a.jti)
        .bind(&a.family_id)
        .bind(to_db(a.expires_at))
        .execute($exec)
        .await
        .map_err(Error::storage)?;
    }};
}

#[cfg(feature = "sqlite")]
sql_store!(
    /// A SQLite [`OAuthStore`] (the server's default, a file in its data directory).
    /// Tables are prefixed `oauth_`/`jwt_`.
    SqliteStore,
    sqlx::SqlitePool,
    None::<&str>
);

#[cfg(feature = "postgres")]
sql_store!(
    /// A PostgreSQL [`OAuthStore`] for several instances. Tables are prefixed
    /// `oauth_`/`jwt_`; migrations run under an advisory lock.
    PostgresStore,
    sqlx::PgPool,
    Some("SELECT pg_advisory_xact_lock(7164150021)")
);
