//! The store: one connection pool over SQLite (the all-in-one default) or PostgreSQL
//! (multi-node), driven by the same SQL and the same migrations.
//!
//! Every service writes portable SQL: `$1`-style placeholders (SQLite accepts them too),
//! `TEXT` for strings and ids, `BIGINT` for integers, booleans (stored 0/1) and timestamps
//! (microseconds since the epoch). That keeps `sqlx::Any` decoding identical on both engines.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use sqlx;
pub use sqlx::any::AnyRow;
pub use sqlx::{Any, Row, Transaction};

/// Migrations of every service, applied in order on start (`ferrostack db migrate` too).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url {url:?}")]
    BadUrl { url: String },
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Which engine a pool talks to; a few statements (upserts, locking) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The shared database handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
}

impl Db {
    /// Connects to `url` (`sqlite:///path/file.db` or `postgres://...`), creating a SQLite file
    /// when missing, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        let db = Self::connect_without_migrating(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    pub async fn connect_without_migrating(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
            });
        };
        let url = match engine {
            Engine::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        };
        let opts = AnyConnectOptions::from_str(&url)
            .map_err(|_| StoreError::BadUrl { url: url.clone() })?
            .disable_statement_logging();
        let max = match engine {
            Engine::Sqlite => 8,
            Engine::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets readers run beside the single writer; busy_timeout makes a
                        // second writer wait instead of failing at once. A 16 MiB page cache
                        // per connection (SQLite's default is 2 MiB): at 10,000 hosts the
                        // scheduler's tables no longer fit the default, and its reads became
                        // a pread per page.
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                             PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; \
                             PRAGMA cache_size=-16384;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Db { pool, engine })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Starts a transaction that takes the write lock at once on SQLite (`BEGIN IMMEDIATE`),
    /// so a read-then-write transaction cannot fail half-way on a lock upgrade.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
    }
}

/// Microseconds since the Unix epoch, the store's timestamp representation.
pub fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// True when `e` is a unique-constraint violation (maps to 409 Conflict).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE constraint failed")
                || d.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

/// True when `e` is a foreign-key violation.
pub fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_foreign_key_violation()
                || d.message().contains("FOREIGN KEY constraint failed")
                || d.code().as_deref() == Some("23503")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_twice_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM domains")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn postgres_when_configured() {
        // Run by the test command with a private PostgreSQL; skipped where none is given.
        let Ok(url) = std::env::var("FERROSTACK_TEST_PG_URL") else {
            return;
        };
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        assert_eq!(db.engine, Engine::Postgres);
    }
}
