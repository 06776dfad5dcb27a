//! `network_quotas`: limits set per project (defaults are built in, `model::QUOTA_RESOURCES`).

use std::collections::HashMap;

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};

/// The table each quota resource is counted in (rows with the project's `project_id`).
const COUNTED_IN: [(&str, &str); 9] = [
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("router", "routers"),
    ("floatingip", "floating_ips"),
    ("security_group", "security_groups"),
    ("security_group_rule", "security_group_rules"),
    ("subnetpool", "subnetpools"),
    ("rbac_policy", "network_rbacs"),
];

/// What a project has of a quota resource; `None` for a resource no table counts.
pub async fn used(conn: &mut Conn, project: &str, resource: &str) -> DbResult<Option<i64>> {
    let Some((_, table)) = COUNTED_IN.iter().find(|(r, _)| *r == resource) else {
        return Ok(None);
    };
    let n = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE project_id = $1"
    ))
    .bind(project)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    Ok(Some(n))
}

pub async fn for_project(conn: &mut Conn, project: &str) -> DbResult<HashMap<String, i64>> {
    let rows =
        sqlx::query("SELECT resource, quota_limit FROM network_quotas WHERE project_id = $1")
            .bind(project)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("resource")?, r.try_get("quota_limit")?)))
        .collect()
}

/// Projects that have limits of their own.
pub async fn projects(conn: &mut Conn) -> DbResult<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT project_id FROM network_quotas ORDER BY project_id")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get("project_id")).collect()
}

pub async fn set(conn: &mut Conn, project: &str, resource: &str, limit: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO network_quotas (project_id, resource, quota_limit) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, resource) DO UPDATE SET quota_limit = excluded.quota_limit",
    )
    .bind(project)
    .bind(resource)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn clear(conn: &mut Conn, project: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM network_quotas WHERE project_id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
