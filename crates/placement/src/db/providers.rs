use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{placeholders, Conn, DbResult};
use crate::model::Provider;

const COLUMNS: &str = "uuid, name, generation, parent_uuid, root_uuid, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Provider> {
    Ok(Provider {
        uuid: r.try_get("uuid")?,
        name: r.try_get("name")?,
        generation: r.try_get("generation")?,
        parent_uuid: r.try_get("parent_uuid")?,
        root_uuid: r.try_get("root_uuid")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn get(conn: &mut Conn, uuid: &str) -> DbResult<Option<Provider>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM placement_providers WHERE uuid = $1"
    ))
    .bind(uuid)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub async fn get_by_name(conn: &mut Conn, name: &str) -> DbResult<Option<Provider>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM placement_providers WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// All providers, or only roots.
pub async fn list(conn: &mut Conn, roots_only: bool) -> DbResult<Vec<Provider>> {
    let filter = if roots_only {
        " WHERE parent_uuid IS NULL"
    } else {
        ""
    };
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM placement_providers{filter} ORDER BY created_at, uuid"
    ))
    .fetch_all(conn)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

pub async fn insert(conn: &mut Conn, p: &Provider) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO placement_providers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&p.uuid)
    .bind(&p.name)
    .bind(p.generation)
    .bind(p.parent_uuid.as_deref())
    .bind(&p.root_uuid)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets name and parent (root is moved with [`set_root`]).
pub async fn update(conn: &mut Conn, p: &Provider) -> DbResult<()> {
    sqlx::query(
        "UPDATE placement_providers SET name = $2, parent_uuid = $3, root_uuid = $4, \
         generation = generation + 1, updated_at = $5 WHERE uuid = $1",
    )
    .bind(&p.uuid)
    .bind(&p.name)
    .bind(p.parent_uuid.as_deref())
    .bind(&p.root_uuid)
    .bind(ferrostack_store::now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the providers `uuids` to the tree of `root`.
pub async fn set_root(conn: &mut Conn, uuids: &[String], root: &str) -> DbResult<()> {
    if uuids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE placement_providers SET root_uuid = $1 WHERE uuid IN ({})",
        placeholders(2, uuids.len())
    );
    let mut q = sqlx::query(&sql).bind(root);
    for u in uuids {
        q = q.bind(u);
    }
    q.execute(conn).await?;
    Ok(())
}

/// Bumps the generation when it is still `expected` (or unconditionally with `None`).
/// False when the provider is gone or another writer bumped it first. On PostgreSQL the row
/// stays locked until the transaction ends, which serializes concurrent writers.
pub async fn bump_generation(conn: &mut Conn, uuid: &str, expected: Option<i64>) -> DbResult<bool> {
    let now = ferrostack_store::now_micros();
    let r = match expected {
        Some(g) => {
            sqlx::query(
                "UPDATE placement_providers SET generation = generation + 1, updated_at = $3 \
                 WHERE uuid = $1 AND generation = $2",
            )
            .bind(uuid)
            .bind(g)
            .bind(now)
            .execute(conn)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE placement_providers SET generation = generation + 1, updated_at = $2 \
                 WHERE uuid = $1",
            )
            .bind(uuid)
            .bind(now)
            .execute(conn)
            .await?
        }
    };
    Ok(r.rows_affected() > 0)
}

pub async fn children(conn: &mut Conn, uuid: &str) -> DbResult<Vec<String>> {
    sqlx::query_scalar("SELECT uuid FROM placement_providers WHERE parent_uuid = $1")
        .bind(uuid)
        .fetch_all(conn)
        .await
}

/// `(uuid, parent_uuid)` of every provider in the tree of `root`.
pub async fn tree(conn: &mut Conn, root: &str) -> DbResult<Vec<(String, Option<String>)>> {
    let rows =
        sqlx::query("SELECT uuid, parent_uuid FROM placement_providers WHERE root_uuid = $1")
            .bind(root)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("uuid")?, r.try_get("parent_uuid")?)))
        .collect()
}

pub async fn delete(conn: &mut Conn, uuid: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM placement_providers WHERE uuid = $1")
        .bind(uuid)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}
