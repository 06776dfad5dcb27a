//! The store: one connection pool over SQLite (the all-in-one default) or PostgreSQL
//! (multi-node), driven by the same SQL and the same migrations.
//!
//! Every service writes portable SQL: `$1`-style placeholders (SQLite accepts them too),
//! `TEXT` for strings and ids, `BIGINT` for integers, booleans (stored 0/1) and timestamps
//! (microseconds since the epoch). That keeps `sqlx::Any` decoding identical on both engines.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

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
///
/// Reads go to `pool`; every write goes to `writer` (a write transaction from
/// [`Db::begin_write`], or a single statement on `&db.writer`). On SQLite the writer is one
/// connection handed out in arrival order, so writers queue in this process, each waiting only
/// for the writer before it, instead of spinning on SQLite's file lock (`busy_timeout`) where
/// an unlucky one could wait 10 s and fail. The reader connections are `query_only`: a write
/// that does not go through the writer fails at once instead of contending. On PostgreSQL
/// both are the same pool (row locks order what must be ordered).
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub writer: AnyPool,
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
        match engine {
            Engine::Sqlite => {
                // The writer first: it creates the file and switches it to WAL.
                let writer = pool_options(engine, 1, Role::Writer)
                    .connect_with(opts.clone())
                    .await
                    .map_err(StoreError::Connect)?;
                let pool = pool_options(engine, 8, Role::Reader)
                    .connect_with(opts)
                    .await
                    .map_err(StoreError::Connect)?;
                Ok(Db {
                    pool,
                    writer,
                    engine,
                })
            }
            Engine::Postgres => {
                let pool = pool_options(engine, 16, Role::Writer)
                    .connect_with(opts)
                    .await
                    .map_err(StoreError::Connect)?;
                Ok(Db {
                    writer: pool.clone(),
                    pool,
                    engine,
                })
            }
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(StoreError::Migrate)?;
        if self.engine == Engine::Postgres {
            // The sequences behind `next_id`, moved past every id already in use (also those
            // written before they existed). `nextval` keeps this safe while another
            // controller hands out ids.
            let mut conn = self.writer.acquire().await.map_err(StoreError::Connect)?;
            for seq in IdSeq::ALL {
                let (table, name) = (seq.table(), seq.sequence());
                conn.execute(format!("CREATE SEQUENCE IF NOT EXISTS {name}").as_str())
                    .await
                    .map_err(StoreError::Connect)?;
                conn.execute(
                    format!(
                        "SELECT setval('{name}', GREATEST((SELECT COALESCE(MAX(id), 0) + 1 \
                         FROM {table}), {floor}, nextval('{name}')), false)",
                        floor = seq.floor()
                    )
                    .as_str(),
                )
                .await
                .map_err(StoreError::Connect)?;
            }
        }
        Ok(())
    }

    /// Starts a write transaction on the writer. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction cannot fail half-way on a lock
    /// upgrade. Keep it short: no HTTP calls, file or image IO, driver calls or waits for
    /// other services while it is open, and never a second `begin_write` inside it (on
    /// SQLite that waits for itself).
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.writer.begin().await,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Reader,
    Writer,
}

fn pool_options(engine: Engine, max: u32, role: Role) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    // WAL lets readers run beside the single writer. busy_timeout only matters
                    // for another process on the same file (`ferrostack db migrate`, a
                    // benchmark's loader): writers of this process queue for the writer. A
                    // 16 MiB page cache per connection (SQLite's default is 2 MiB): at 10,000
                    // hosts the scheduler's tables no longer fit the default, and its reads
                    // became a pread per page.
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                         PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; \
                         PRAGMA cache_size=-16384;",
                    )
                    .await?;
                    if role == Role::Reader {
                        conn.execute("PRAGMA query_only=ON;").await?;
                    }
                }
                Ok(())
            })
        })
        .after_release(move |conn, _meta| {
            Box::pin(async move {
                // A connection must never go back to the pool inside a transaction: a future
                // dropped while `BEGIN` ran (the statement goes on in SQLite's worker thread)
                // would leave it there, holding SQLite's write lock, and every later
                // `begin_with` on it would fail. The ping waits for whatever that worker still
                // has queued; such a connection is closed (which rolls back) instead.
                if engine == Engine::Sqlite {
                    conn.ping().await?;
                }
                if conn.is_in_transaction() {
                    tracing::warn!("a connection came back inside a transaction: closed");
                    return Ok(false);
                }
                Ok(true)
            })
        })
}

/// The tables whose integer ids the store hands out ([`next_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSeq {
    InstanceActions,
    InstanceActionEvents,
    InstanceFaults,
    Migrations,
    Keypairs,
    Aggregates,
    ComputeServices,
    ComputeNodes,
    /// Custom resource classes (from 10000; the standard ones have fixed ids below).
    ResourceClasses,
}

impl IdSeq {
    const ALL: [IdSeq; 9] = [
        IdSeq::InstanceActions,
        IdSeq::InstanceActionEvents,
        IdSeq::InstanceFaults,
        IdSeq::Migrations,
        IdSeq::Keypairs,
        IdSeq::Aggregates,
        IdSeq::ComputeServices,
        IdSeq::ComputeNodes,
        IdSeq::ResourceClasses,
    ];

    pub fn table(self) -> &'static str {
        match self {
            IdSeq::InstanceActions => "instance_actions",
            IdSeq::InstanceActionEvents => "instance_action_events",
            IdSeq::InstanceFaults => "instance_faults",
            IdSeq::Migrations => "migrations",
            IdSeq::Keypairs => "keypairs",
            IdSeq::Aggregates => "aggregates",
            IdSeq::ComputeServices => "compute_services",
            IdSeq::ComputeNodes => "compute_nodes",
            IdSeq::ResourceClasses => "placement_resource_classes",
        }
    }

    fn sequence(self) -> String {
        format!("{}_id_seq", self.table())
    }

    /// The smallest id handed out.
    fn floor(self) -> i64 {
        match self {
            IdSeq::ResourceClasses => 10_000,
            _ => 1,
        }
    }
}

/// The SQL expression of the next id of `seq`'s table, for an `INSERT ... VALUES` in the
/// caller's write transaction (one round trip less than [`next_id`]; with `RETURNING id` the
/// caller learns it).
pub fn id_expr(conn: &sqlx::AnyConnection, seq: IdSeq) -> String {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        format!("nextval('{}')", seq.sequence())
    } else {
        sqlite_next(seq)
    }
}

/// `MAX(id) + 1` on SQLite, as a sub-select of its own: wrapped in any other expression, the
/// `MAX(id)` would no longer be read off the primary key's index but scan the whole table.
fn sqlite_next(seq: IdSeq) -> String {
    let next = format!("(SELECT COALESCE(MAX(id), 0) + 1 FROM {})", seq.table());
    if seq.floor() > 1 {
        format!("MAX({next}, {})", seq.floor())
    } else {
        next
    }
}

/// The next id of `seq`'s table, for a row inserted in the caller's write transaction. On
/// SQLite, `MAX(id) + 1` (the one writer makes that safe); on PostgreSQL a sequence, since
/// concurrent transactions would read the same `MAX(id)` and one insert would fail.
pub async fn next_id(conn: &mut sqlx::AnyConnection, seq: IdSeq) -> Result<i64, sqlx::Error> {
    let sql = if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        format!("SELECT CAST(nextval('{}') AS BIGINT)", seq.sequence())
    } else {
        format!("SELECT CAST({} AS BIGINT)", sqlite_next(seq))
    };
    sqlx::query_scalar(&sql).fetch_one(conn).await
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

/// True when PostgreSQL gave up a transaction to break a deadlock or a serialization conflict
/// (40P01, 40001): doing the whole transaction again is the cure.
pub fn is_retryable_conflict(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("40P01" | "40001")),
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

    /// A write whose caller gives up while `BEGIN IMMEDIATE` waits for SQLite's lock (another
    /// connection holds it) used to leave the pooled connection inside a transaction for good:
    /// every later write failed with "attempted to call begin_with at non-zero transaction
    /// depth" (or waited on the lock it held itself).
    #[tokio::test]
    async fn a_write_abandoned_in_begin_leaves_no_transaction_behind() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (n BIGINT)")
            .execute(&db.writer)
            .await
            .unwrap();
        for wait_ms in [0u64, 1, 2, 5, 10, 30] {
            let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
            other.execute("BEGIN IMMEDIATE").await.unwrap();
            let gave_up =
                tokio::time::timeout(Duration::from_millis(wait_ms), db.begin_write()).await;
            assert!(
                gave_up.is_err(),
                "the lock is held: BEGIN cannot have finished"
            );
            other.execute("ROLLBACK").await.unwrap();
            other.close().await.unwrap();
            let mut tx = tokio::time::timeout(Duration::from_secs(20), db.begin_write())
                .await
                .expect("the next write waits forever")
                .expect("the next write fails");
            sqlx::query("INSERT INTO t (n) VALUES ($1)")
                .bind(i64::try_from(wait_ms).unwrap())
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        let n: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM t")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 6);
    }

    /// Reader connections refuse writes, so a write that bypasses the writer fails loudly
    /// instead of contending for SQLite's lock.
    #[tokio::test]
    async fn readers_are_query_only_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        assert!(sqlx::query("CREATE TABLE r (n BIGINT)")
            .execute(&db.pool)
            .await
            .is_err());
        sqlx::query("CREATE TABLE r (n BIGINT)")
            .execute(&db.writer)
            .await
            .unwrap();
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
