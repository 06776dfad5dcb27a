//! `network_rbacs` rows.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{decode_err, Conn, DbResult};
use crate::model::{RbacAction, RbacPolicy};

const COLS: &str =
    "id, project_id, object_id, action, target_project, revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<RbacPolicy> {
    let action: String = r.try_get("action")?;
    Ok(RbacPolicy {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        object_id: r.try_get("object_id")?,
        action: RbacAction::parse(&action).ok_or_else(|| decode_err("action", &action))?,
        target_project: r.try_get("target_project")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut Conn, p: &RbacPolicy) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO network_rbacs (object_type, {COLS}) VALUES ('network', $1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&p.id)
    .bind(&p.project_id)
    .bind(&p.object_id)
    .bind(p.action.as_str())
    .bind(&p.target_project)
    .bind(p.revision_number)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<RbacPolicy>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM network_rbacs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every policy, or those of one network.
pub async fn list(conn: &mut Conn, object_id: Option<&str>) -> DbResult<Vec<RbacPolicy>> {
    let rows = match object_id {
        Some(o) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM network_rbacs WHERE object_id = $1 ORDER BY created_at, id"
            ))
            .bind(o)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM network_rbacs ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

pub async fn update_target(conn: &mut Conn, p: &RbacPolicy) -> DbResult<()> {
    sqlx::query(
        "UPDATE network_rbacs SET target_project = $2, revision_number = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.target_project)
    .bind(p.revision_number)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM network_rbacs WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes a network's `*` shared entry (its `shared` flag turned off).
pub async fn delete_entry(
    conn: &mut Conn,
    object_id: &str,
    action: RbacAction,
    target: &str,
) -> DbResult<()> {
    sqlx::query(
        "DELETE FROM network_rbacs WHERE object_id = $1 AND action = $2 AND target_project = $3",
    )
    .bind(object_id)
    .bind(action.as_str())
    .bind(target)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete_for(conn: &mut Conn, object_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM network_rbacs WHERE object_id = $1")
        .bind(object_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
