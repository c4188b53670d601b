//! The server's own tables (users, signing credentials, orders, webhooks and their
//! deliveries) on SQLite or PostgreSQL, with their own migration bookkeeping.
//!
//! The crates own their tables (`apikey_migrations`, the OAuth store's); this module only
//! touches tables prefixed `server_`, recorded in `server_migrations`, so the
//! bookkeeping of the three cannot collide. Every query is parameterized.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A database error, kept short: the caller turns it into a 503 or a CLI message
/// without internals.
#[derive(Debug)]
pub(crate) struct DbError(pub(crate) String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        Self(error.to_string())
    }
}

pub(crate) type DbResult<T> = Result<T, DbError>;

/// The connection pool of the configured engine.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs one parameterized statement on whichever engine is configured. Placeholders
/// are `$1, $2, ...` in order of first use, which both engines accept.
macro_rules! sql {
    ($db:expr, $method:ident, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => sqlx::query($sql)$(.bind($arg))*.$method(pool).await.map(|r| r.rows_affected()),
            $crate::db::Db::Postgres(pool) => sqlx::query($sql)$(.bind($arg))*.$method(pool).await.map(|r| r.rows_affected()),
        }
    };
}

/// Like `sql!` for queries returning rows of the tuple type `$ty`.
macro_rules! sql_as {
    ($db:expr, $ty:ty, $method:ident, $sql:expr $(, $arg:expr)* $(,)?) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => sqlx::query_as::<_, $ty>($sql)$(.bind($arg))*.$method(pool).await,
            $crate::db::Db::Postgres(pool) => sqlx::query_as::<_, $ty>($sql)$(.bind($arg))*.$method(pool).await,
        }
    };
}

pub(crate) use {sql, sql_as};

/// The pending schema steps of [`MIGRATIONS`] (each statement of the engine's script, in
/// order, then the step's row in `server_migrations`) on one connection, inside the
/// caller's transaction. A macro, as the two engines' connections are different types.
macro_rules! migrate_on {
    ($conn:expr, $engine:ident) => {
        async {
            let conn = $conn;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS server_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *conn)
            .await?;
            let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM server_migrations")
                .fetch_all(&mut *conn)
                .await?;
            for migration in MIGRATIONS {
                if applied.iter().any(|(v,)| *v == migration.version) {
                    continue;
                }
                for statement in migration.$engine.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                sqlx::query("INSERT INTO server_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(migration.version)
                    .bind(crate::clock::unix_now())
                    .execute(&mut *conn)
                    .await?;
            }
            DbResult::Ok(())
        }
        .await
    };
}

/// One schema step per engine (the two differ only in the binary column type).
struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: SCHEMA_V1_SQLITE,
        postgres: SCHEMA_V1_POSTGRES,
    },
    Migration {
        version: 2,
        sqlite: SCHEMA_V2_SQLITE,
        postgres: SCHEMA_V2_POSTGRES,
    },
];

/// Public-key signing credentials (RFC 9421 `ed25519`, `ecdsa-p256-sha256`): the key in
/// `public_key`, its algorithm in `algorithm`; their `sealed_secret` stays empty.
const SCHEMA_V2_SQLITE: &str = "
ALTER TABLE server_credentials ADD COLUMN public_key BLOB;
ALTER TABLE server_credentials ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'hmac-sha256';
";

const SCHEMA_V2_POSTGRES: &str = "
ALTER TABLE server_credentials ADD COLUMN IF NOT EXISTS public_key BYTEA;
ALTER TABLE server_credentials ADD COLUMN IF NOT EXISTS algorithm TEXT NOT NULL DEFAULT 'hmac-sha256';
";

pub(crate) const SCHEMA_V1_SQLITE: &str = "
CREATE TABLE IF NOT EXISTS server_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS server_credentials (
    access_key_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    scopes TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS server_orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_orders_owner ON server_orders (owner, seq);
CREATE TABLE IF NOT EXISTS server_webhooks (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    sealed_secret BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_webhooks_owner ON server_webhooks (owner);
CREATE TABLE IF NOT EXISTS server_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_deliveries_due ON server_deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS server_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

const SCHEMA_V1_POSTGRES: &str = "
CREATE TABLE IF NOT EXISTS server_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS server_credentials (
    access_key_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    scopes TEXT NOT NULL,
    sealed_secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS server_orders (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_orders_owner ON server_orders (owner, seq);
CREATE TABLE IF NOT EXISTS server_webhooks (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    sealed_secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_webhooks_owner ON server_webhooks (owner);
CREATE TABLE IF NOT EXISTS server_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_deliveries_due ON server_deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS server_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
";

impl Db {
    /// Opens SQLite at `path` (WAL, synchronous FULL so an acknowledged write survives
    /// a crash of the process or the machine).
    pub(crate) async fn sqlite(path: &std::path::Path) -> DbResult<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self::Sqlite(pool))
    }

    /// Connects to PostgreSQL.
    pub(crate) async fn postgres(url: &str) -> DbResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(3))
            .connect(url)
            .await?;
        Ok(Self::Postgres(pool))
    }

    /// Applies the server's schema steps not applied yet, all in one transaction (DDL is
    /// transactional on both engines), so a step is either recorded with its changes or
    /// absent with none of them. Safe to run from several processes at once: SQLite's
    /// `BEGIN IMMEDIATE` and PostgreSQL's advisory lock let one migrator in at a time,
    /// and the applied steps are read inside.
    pub(crate) async fn migrate(&self) -> DbResult<()> {
        match self {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                let result = migrate_on!(&mut *conn, sqlite);
                let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
                sqlx::query(end).execute(&mut *conn).await?;
                result
            }
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock(7361029)")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("BEGIN").execute(&mut *conn).await?;
                let result = migrate_on!(&mut *conn, postgres);
                let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
                let ended = sqlx::query(end).execute(&mut *conn).await;
                sqlx::query("SELECT pg_advisory_unlock(7361029)")
                    .execute(&mut *conn)
                    .await?;
                ended?;
                result
            }
        }
    }

    /// Whether the database answers (for `/health`).
    pub(crate) async fn ping(&self) -> DbResult<()> {
        // BIGINT on both: PostgreSQL's plain `1` is an INT4, which does not decode as i64.
        sql_as!(self, (i64,), fetch_one, "SELECT CAST(1 AS BIGINT)")?;
        Ok(())
    }

    /// A named random secret shared by every instance on this database, created on
    /// first use.
    pub(crate) async fn secret(&self, name: &str) -> DbResult<Vec<u8>> {
        if let Some((value,)) = sql_as!(
            self,
            (Vec<u8>,),
            fetch_optional,
            "SELECT value FROM server_secrets WHERE name = $1",
            name
        )? {
            return Ok(value);
        }
        let fresh: [u8; 32] = rand::random();
        sql!(
            self,
            execute,
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            name,
            fresh.to_vec()
        )?;
        let (value,) = sql_as!(
            self,
            (Vec<u8>,),
            fetch_one,
            "SELECT value FROM server_secrets WHERE name = $1",
            name
        )?;
        Ok(value)
    }
}
