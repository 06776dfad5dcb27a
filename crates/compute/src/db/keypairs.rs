//! Key pairs of users.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};
use crate::model::Keypair;

const COLS: &str = "id, user_id, name, type, public_key, fingerprint, created_at";

fn from_row(r: &AnyRow) -> DbResult<Keypair> {
    Ok(Keypair {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        key_type: r.try_get("type")?,
        public_key: r.try_get("public_key")?,
        fingerprint: r.try_get("fingerprint")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The key pair `name` of `user_id` (servers look up `key_name` with it).
pub async fn get(conn: &mut Conn, user_id: &str, name: &str) -> DbResult<Option<Keypair>> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM keypairs WHERE user_id = $1 AND name = $2"
    ))
    .bind(user_id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// The user's key pairs ordered by name (Nova pages them by name).
pub async fn list(conn: &mut Conn, user_id: &str) -> DbResult<Vec<Keypair>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM keypairs WHERE user_id = $1 ORDER BY name"
    ))
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn count(conn: &mut Conn, user_id: &str) -> DbResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM keypairs WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await
}

/// Inserts `k` with the next id (run inside a write transaction); returns the id.
pub async fn insert(conn: &mut Conn, k: &Keypair) -> DbResult<i64> {
    let id = ferrostack_store::next_id(conn, ferrostack_store::IdSeq::Keypairs).await?;
    sqlx::query(&format!(
        "INSERT INTO keypairs ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(id)
    .bind(&k.user_id)
    .bind(&k.name)
    .bind(&k.key_type)
    .bind(&k.public_key)
    .bind(&k.fingerprint)
    .bind(k.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn delete(conn: &mut Conn, user_id: &str, name: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM keypairs WHERE user_id = $1 AND name = $2")
        .bind(user_id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}
