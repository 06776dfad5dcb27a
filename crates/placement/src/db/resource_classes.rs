use ferrostack_store::sqlx::{self, Row};

use super::{placeholders, Conn, DbResult};
use crate::model::ResourceClass;

pub async fn list(conn: &mut Conn) -> DbResult<Vec<ResourceClass>> {
    let rows = sqlx::query("SELECT name, standard FROM placement_resource_classes ORDER BY id")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ResourceClass {
                name: r.try_get("name")?,
                standard: r.try_get::<i64, _>("standard")? != 0,
            })
        })
        .collect()
}

pub async fn get(conn: &mut Conn, name: &str) -> DbResult<Option<ResourceClass>> {
    let row = sqlx::query("SELECT name, standard FROM placement_resource_classes WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(ResourceClass {
            name: r.try_get("name")?,
            standard: r.try_get::<i64, _>("standard")? != 0,
        })
    })
    .transpose()
}

/// Which of `names` do not exist.
pub async fn missing(conn: &mut Conn, names: &[String]) -> DbResult<Vec<String>> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT name FROM placement_resource_classes WHERE name IN ({})",
        placeholders(1, names.len())
    );
    let mut q = sqlx::query_scalar::<_, String>(&sql);
    for n in names {
        q = q.bind(n);
    }
    let found = q.fetch_all(conn).await?;
    Ok(names
        .iter()
        .filter(|n| !found.contains(n))
        .cloned()
        .collect())
}

/// Inserts a custom class with the next custom id (inside a write transaction).
pub async fn insert_custom(conn: &mut Conn, name: &str) -> DbResult<()> {
    let id = ferrostack_store::next_id(conn, ferrostack_store::IdSeq::ResourceClasses).await?;
    let now = ferrostack_store::now_micros();
    sqlx::query(
        "INSERT INTO placement_resource_classes (name, id, standard, created_at, updated_at) \
         VALUES ($1, $2, 0, $3, $3)",
    )
    .bind(name)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Renames a custom class (microversions before 1.7), with its inventories and allocations.
pub async fn rename(conn: &mut Conn, from: &str, to: &str) -> DbResult<()> {
    let now = ferrostack_store::now_micros();
    // Insert the new name first so the references can move over, then drop the old one.
    let id: i64 = sqlx::query_scalar("SELECT id FROM placement_resource_classes WHERE name = $1")
        .bind(from)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("UPDATE placement_resource_classes SET id = -id WHERE name = $1")
        .bind(from)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO placement_resource_classes (name, id, standard, created_at, updated_at) \
         VALUES ($1, $2, 0, $3, $3)",
    )
    .bind(to)
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for table in ["placement_inventories", "placement_allocations"] {
        sqlx::query(&format!(
            "UPDATE {table} SET resource_class = $2 WHERE resource_class = $1"
        ))
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM placement_resource_classes WHERE name = $1")
        .bind(from)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, name: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM placement_resource_classes WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}
