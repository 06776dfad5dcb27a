//! Server groups and their members.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};
use crate::model::ServerGroup;

const COLS: &str = "id, name, project_id, user_id, policy, rules, created_at";

fn from_row(r: &AnyRow) -> DbResult<ServerGroup> {
    let rules: serde_json::Value =
        serde_json::from_str(&r.try_get::<String, _>("rules")?).unwrap_or_default();
    Ok(ServerGroup {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        policy: r.try_get("policy")?,
        max_server_per_host: rules["max_server_per_host"].as_i64(),
        members: Vec::new(),
        created_at: r.try_get("created_at")?,
    })
}

async fn load_members(conn: &mut Conn, g: &mut ServerGroup) -> DbResult<()> {
    g.members = sqlx::query_scalar(
        "SELECT instance_id FROM server_group_members WHERE group_id = $1 ORDER BY instance_id",
    )
    .bind(&g.id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(())
}

/// A group with its members (the scheduler's lookup for group policies).
pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<ServerGroup>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM server_groups WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut g = from_row(&row)?;
    load_members(conn, &mut g).await?;
    Ok(Some(g))
}

/// Groups of one project (or all), with members, oldest first.
pub async fn list(conn: &mut Conn, project_id: Option<&str>) -> DbResult<Vec<ServerGroup>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM server_groups WHERE project_id = $1 OR $2 = 1 \
         ORDER BY created_at, id"
    ))
    .bind(project_id.unwrap_or_default())
    .bind(i64::from(project_id.is_none()))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    for g in &mut out {
        load_members(conn, g).await?;
    }
    Ok(out)
}

/// The group an instance belongs to, if any.
pub async fn for_instance(conn: &mut Conn, instance_id: &str) -> DbResult<Option<ServerGroup>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT group_id FROM server_group_members WHERE instance_id = $1")
            .bind(instance_id)
            .fetch_optional(&mut *conn)
            .await?;
    match id {
        Some(id) => get(conn, &id).await,
        None => Ok(None),
    }
}

pub async fn insert(conn: &mut Conn, g: &ServerGroup) -> DbResult<()> {
    let rules = match g.max_server_per_host {
        Some(n) => serde_json::json!({ "max_server_per_host": n }),
        None => serde_json::json!({}),
    };
    sqlx::query(&format!(
        "INSERT INTO server_groups ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.project_id)
    .bind(&g.user_id)
    .bind(&g.policy)
    .bind(rules.to_string())
    .bind(g.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM server_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Adds an instance to a group (servers create with the `group` scheduler hint).
pub async fn add_member(conn: &mut Conn, group_id: &str, instance_id: &str) -> DbResult<()> {
    sqlx::query("INSERT INTO server_group_members (group_id, instance_id) VALUES ($1, $2)")
        .bind(group_id)
        .bind(instance_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes a deleted instance from whatever group it was in.
pub async fn remove_member(conn: &mut Conn, instance_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM server_group_members WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Which of `ids` are non-deleted instances (groups show only live members).
pub async fn live_instances(conn: &mut Conn, ids: &[String]) -> DbResult<Vec<String>> {
    let mut out = Vec::new();
    for id in ids {
        let n: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM instances WHERE uuid = $1 AND deleted = 0",
        )
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        if n > 0 {
            out.push(id.clone());
        }
    }
    Ok(out)
}
