//! SQL of the identity service, one module per resource. Nothing outside `db/` writes SQL.
//! Functions take any executor (`&AnyPool`, or `&mut *tx` inside a transaction); reads that need
//! several statements take a connection.

pub mod app_creds;
pub mod assignments;
pub mod catalog;
pub mod domains;
pub mod groups;
pub mod limits;
pub mod projects;
pub mod revocations;
pub mod roles;
pub mod users;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

pub use ferrostack_store::sqlx::AnyConnection as Conn;
pub type DbResult<T> = Result<T, sqlx::Error>;

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn get_bool(row: &AnyRow, col: &str) -> DbResult<bool> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

/// Empty string columns stand for "none" where a NOT NULL column keeps a unique index working.
pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Bumps the identity generation: cached token validations made before it are dropped.
pub async fn bump_generation(conn: &mut Conn) -> DbResult<i64> {
    sqlx::query("UPDATE identity_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    current_generation(conn).await
}

pub async fn current_generation<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    ex: E,
) -> DbResult<i64> {
    sqlx::query_scalar("SELECT generation FROM identity_generation WHERE id = 1")
        .fetch_one(ex)
        .await
}
