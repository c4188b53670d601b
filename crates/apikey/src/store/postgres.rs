use std::time::SystemTime;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::error::{Error, ErrorKind};
use crate::hash::KeyHash;
use crate::record::{KeyRecord, StoredKey, to_millis};
use crate::store::KeyStore;
use crate::store::sql::{COLUMNS, KeyRow, Migration, checksum_mismatch};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "init",
    sql: include_str!("../../migrations/postgres/0001_init.sql"),
}];

/// Advisory-lock key serialising this crate's migrations across processes
/// (the ASCII of "apikeymg").
const MIGRATION_LOCK: i64 = 0x6170_696b_6579_6d67;

/// A [`KeyStore`] in PostgreSQL (feature `postgres`), through an sqlx pool.
///
/// Tables `apikey_keys` and `apikey_state`; migrations recorded in `apikey_migrations`
/// under an advisory lock, so several servers may start at once.
#[derive(Debug, Clone)]
pub struct PostgresKeyStore {
    pool: PgPool,
}

impl PostgresKeyStore {
    /// Connects to `url` (`postgres://...`) and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let pool = PgPoolOptions::new()
            .connect(url)
            .await
            .map_err(Error::storage)?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps an existing pool. Call [`migrate`](Self::migrate) once before use.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies this crate's pending migrations (idempotent; safe with concurrent callers).
    pub async fn migrate(&self) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(Error::storage)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(Error::storage)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS apikey_migrations (
                version     BIGINT PRIMARY KEY NOT NULL,
                description TEXT NOT NULL,
                checksum    BYTEA NOT NULL,
                applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .execute(&mut *tx)
        .await
        .map_err(Error::storage)?;
        for migration in MIGRATIONS {
            let applied: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT checksum FROM apikey_migrations WHERE version = $1")
                    .bind(migration.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(Error::storage)?;
            match applied {
                Some(checksum) if checksum == migration.checksum() => continue,
                Some(_) => return Err(checksum_mismatch(migration.version)),
                None => {}
            }
            sqlx::raw_sql(migration.sql)
                .execute(&mut *tx)
                .await
                .map_err(Error::storage)?;
            sqlx::query(
                "INSERT INTO apikey_migrations (version, description, checksum) \
                 VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.description)
            .bind(migration.checksum())
            .execute(&mut *tx)
            .await
            .map_err(Error::storage)?;
        }
        tx.commit().await.map_err(Error::storage)
    }

    async fn state(&self, key_id: &str) -> Result<Option<(bool, bool)>, Error> {
        let row: Option<(Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT revoked_at_ms, rotated_to FROM apikey_keys WHERE key_id = $1")
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::storage)?;
        Ok(row.map(|(revoked, rotated)| (revoked.is_some(), rotated.is_some())))
    }
}

async fn insert_row(tx: &mut Transaction<'static, Postgres>, key: &StoredKey) -> Result<(), Error> {
    let row = KeyRow::from_stored(key);
    sqlx::query(&format!(
        "INSERT INTO apikey_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    ))
    .bind(row.key_id)
    .bind(row.key_hash)
    .bind(row.owner)
    .bind(row.environment)
    .bind(row.hint)
    .bind(row.scopes)
    .bind(row.plan_name)
    .bind(row.plan_per_minute)
    .bind(row.plan_per_day)
    .bind(row.plan_burst)
    .bind(row.rate_limit_per_minute)
    .bind(row.allowed_networks)
    .bind(row.created_at_ms)
    .bind(row.expires_at_ms)
    .bind(row.last_used_at_ms)
    .bind(row.revoked_at_ms)
    .bind(row.rotated_from)
    .bind(row.rotated_to)
    .bind(row.grace_until_ms)
    .execute(&mut **tx)
    .await
    .map_err(Error::storage)?;
    Ok(())
}

async fn bump_epoch(tx: &mut Transaction<'static, Postgres>) -> Result<(), Error> {
    sqlx::query("UPDATE apikey_state SET revocation_epoch = revocation_epoch + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(Error::storage)?;
    Ok(())
}

impl KeyStore for PostgresKeyStore {
    async fn insert(&self, key: &StoredKey) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(Error::storage)?;
        insert_row(&mut tx, key).await?;
        tx.commit().await.map_err(Error::storage)
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<StoredKey>, Error> {
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM apikey_keys WHERE key_hash = $1"
        ))
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::storage)?;
        row.map(KeyRow::into_stored).transpose()
    }

    async fn get(&self, key_id: &str) -> Result<Option<KeyRecord>, Error> {
        let row: Option<KeyRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM apikey_keys WHERE key_id = $1"
        ))
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::storage)?;
        Ok(row.map(KeyRow::into_stored).transpose()?.map(|k| k.record))
    }

    async fn list(&self, owner: Option<&str>) -> Result<Vec<KeyRecord>, Error> {
        let rows: Vec<KeyRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM apikey_keys WHERE ($1::text IS NULL OR owner = $1) \
             ORDER BY created_at_ms, key_id"
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await
        .map_err(Error::storage)?;
        rows.into_iter()
            .map(|row| row.into_stored().map(|k| k.record))
            .collect()
    }

    async fn revoke(&self, key_id: &str, now: SystemTime) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await.map_err(Error::storage)?;
        let updated = sqlx::query(
            "UPDATE apikey_keys SET revoked_at_ms = $1 \
             WHERE key_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(to_millis(now))
        .bind(key_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::storage)?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await.map_err(Error::storage)?;
            return match self.state(key_id).await? {
                Some(_) => Ok(false),
                None => Err(Error::new(ErrorKind::NotFound)),
            };
        }
        bump_epoch(&mut tx).await?;
        tx.commit().await.map_err(Error::storage)?;
        Ok(true)
    }

    async fn rotate(
        &self,
        old_key_id: &str,
        new: &StoredKey,
        grace_until: SystemTime,
    ) -> Result<(), Error> {
        let mut tx = self.pool.begin().await.map_err(Error::storage)?;
        let updated = sqlx::query(
            "UPDATE apikey_keys SET rotated_to = $1, grace_until_ms = $2 \
             WHERE key_id = $3 AND revoked_at_ms IS NULL AND rotated_to IS NULL",
        )
        .bind(&new.record.key_id)
        .bind(to_millis(grace_until))
        .bind(old_key_id)
        .execute(&mut *tx)
        .await
        .map_err(Error::storage)?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await.map_err(Error::storage)?;
            return Err(match self.state(old_key_id).await? {
                None => Error::new(ErrorKind::NotFound),
                Some((true, _)) => Error::new(ErrorKind::Revoked),
                Some((false, _)) => Error::new(ErrorKind::AlreadyRotated),
            });
        }
        insert_row(&mut tx, new).await?;
        bump_epoch(&mut tx).await?;
        tx.commit().await.map_err(Error::storage)
    }

    async fn record_last_used(&self, uses: &[(String, SystemTime)]) -> Result<(), Error> {
        if uses.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = uses.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<i64> = uses.iter().map(|(_, at)| to_millis(*at)).collect();
        sqlx::query(
            "UPDATE apikey_keys AS k SET last_used_at_ms = u.at \
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, at) \
             WHERE k.key_id = u.id AND (k.last_used_at_ms IS NULL OR k.last_used_at_ms < u.at)",
        )
        .bind(ids)
        .bind(times)
        .execute(&self.pool)
        .await
        .map_err(Error::storage)?;
        Ok(())
    }

    async fn revocation_epoch(&self) -> Result<u64, Error> {
        let epoch: i64 =
            sqlx::query_scalar("SELECT revocation_epoch FROM apikey_state WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(Error::storage)?;
        u64::try_from(epoch).map_err(|_| Error::storage("negative revocation epoch"))
    }
}
