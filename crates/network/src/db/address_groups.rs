//! `address_groups` rows.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{json_col, to_json, Conn, DbResult};
use crate::model::AddressGroup;

const COLS: &str =
    "id, project_id, name, description, addresses, revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<AddressGroup> {
    Ok(AddressGroup {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        addresses: json_col(r, "addresses")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut Conn, g: &AddressGroup) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO address_groups ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&g.id)
    .bind(&g.project_id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(to_json(&g.addresses))
    .bind(g.revision_number)
    .bind(g.created_at)
    .bind(g.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<AddressGroup>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM address_groups WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Groups in creation order; with `project`, that project's.
pub async fn list(conn: &mut Conn, project: Option<&str>) -> DbResult<Vec<AddressGroup>> {
    let rows = match project {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM address_groups ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM address_groups WHERE project_id = $1 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// Writes the changeable columns (name, description, addresses) with the new revision.
pub async fn update(conn: &mut Conn, g: &AddressGroup) -> DbResult<()> {
    sqlx::query(
        "UPDATE address_groups SET name = $2, description = $3, addresses = $4, \
         revision_number = $5, updated_at = $6 WHERE id = $1",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(to_json(&g.addresses))
    .bind(g.revision_number)
    .bind(g.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM address_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The security groups with a rule naming address group `id` as its remote.
pub async fn referring_groups(conn: &mut Conn, id: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT security_group_id FROM security_group_rules \
         WHERE remote_address_group_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| r.try_get("security_group_id"))
        .collect()
}
