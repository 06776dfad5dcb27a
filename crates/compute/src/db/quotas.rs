//! Quota limits (`compute_quotas`) and the usage counts quotas are checked against.
//!
//! Rows: project_id '' is the default quota class (`/os-quota-class-sets/default`), other
//! quota classes are kept as `class:<name>`; user_id '' is a project's own limit, otherwise
//! a limit of one user within the project.

use std::collections::BTreeMap;

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};
use crate::model::{InstanceUsage, QuotaLimits, QUOTA_DEFAULTS};

/// The `project_id` under which a quota class is stored.
pub fn class_key(class: &str) -> String {
    if class == "default" {
        String::new()
    } else {
        format!("class:{class}")
    }
}

/// Limits stored for exactly (`project_id`, `user_id`).
pub async fn stored(
    conn: &mut Conn,
    project_id: &str,
    user_id: &str,
) -> DbResult<BTreeMap<String, i64>> {
    let rows = sqlx::query(
        "SELECT resource, hard_limit FROM compute_quotas WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("resource")?, r.try_get("hard_limit")?)))
        .collect()
}

/// The limits of a quota class: its stored values over Nova's defaults (a class other than
/// `default` falls back to the default class as Nova does).
pub async fn class_limits(conn: &mut Conn, class: &str) -> DbResult<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = QUOTA_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    out.extend(stored(conn, "", "").await?);
    if class != "default" {
        out.extend(stored(conn, &class_key(class), "").await?);
    }
    Ok(out)
}

/// Effective limits of a project and of one user in it: the project's own values over the
/// default class; user rows over the project values. `user_id` may be "" for the project only.
pub async fn limits_for(conn: &mut Conn, project_id: &str, user_id: &str) -> DbResult<QuotaLimits> {
    let mut project = class_limits(conn, "default").await?;
    project.extend(stored(conn, project_id, "").await?);
    let user = if user_id.is_empty() {
        BTreeMap::new()
    } else {
        stored(conn, project_id, user_id).await?
    };
    Ok(QuotaLimits { project, user })
}

/// Sets one limit (insert or replace).
pub async fn set(
    conn: &mut Conn,
    project_id: &str,
    user_id: &str,
    resource: &str,
    limit: i64,
) -> DbResult<()> {
    sqlx::query(
        "DELETE FROM compute_quotas WHERE project_id = $1 AND user_id = $2 AND resource = $3",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(resource)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO compute_quotas (project_id, user_id, resource, hard_limit) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(resource)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Reverts a project (all its users' limits too) or one user in it to the defaults.
pub async fn delete(conn: &mut Conn, project_id: &str, user_id: Option<&str>) -> DbResult<()> {
    match user_id {
        Some(u) => {
            sqlx::query("DELETE FROM compute_quotas WHERE project_id = $1 AND user_id = $2")
                .bind(project_id)
                .bind(u)
                .execute(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("DELETE FROM compute_quotas WHERE project_id = $1")
                .bind(project_id)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(())
}

/// Instances, cores and RAM of the non-deleted instances of a project, or of one user in it.
pub async fn instance_usage(
    conn: &mut Conn,
    project_id: &str,
    user_id: Option<&str>,
) -> DbResult<InstanceUsage> {
    let sql =
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, \
               CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r FROM instances \
               WHERE project_id = $1 AND deleted = 0 AND (user_id = $2 OR $3 = 1)";
    let row = sqlx::query(sql)
        .bind(project_id)
        .bind(user_id.unwrap_or_default())
        .bind(i64::from(user_id.is_none()))
        .fetch_one(&mut *conn)
        .await?;
    Ok(InstanceUsage {
        instances: row.try_get("n")?,
        cores: row.try_get("c")?,
        ram: row.try_get("r")?,
    })
}

/// Key pairs of a user (Nova counts key pairs per user).
pub async fn key_pair_count(conn: &mut Conn, user_id: &str) -> DbResult<i64> {
    super::keypairs::count(conn, user_id).await
}

/// Server groups of a project, or of one user in it.
pub async fn server_group_count(
    conn: &mut Conn,
    project_id: &str,
    user_id: Option<&str>,
) -> DbResult<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM server_groups \
         WHERE project_id = $1 AND (user_id = $2 OR $3 = 1)",
    )
    .bind(project_id)
    .bind(user_id.unwrap_or_default())
    .bind(i64::from(user_id.is_none()))
    .fetch_one(&mut *conn)
    .await
}

/// Non-deleted members of a server group (checked against `server_group_members`).
pub async fn server_group_member_count(conn: &mut Conn, group_id: &str) -> DbResult<i64> {
    sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM server_group_members m \
         JOIN instances i ON i.uuid = m.instance_id \
         WHERE m.group_id = $1 AND i.deleted = 0",
    )
    .bind(group_id)
    .fetch_one(&mut *conn)
    .await
}

/// Usage per resource of a project (or a user in it), for quota detail and `/limits`.
pub async fn usage(
    conn: &mut Conn,
    project_id: &str,
    user_id: Option<&str>,
) -> DbResult<BTreeMap<String, i64>> {
    let i = instance_usage(conn, project_id, user_id).await?;
    let mut out = BTreeMap::new();
    out.insert("instances".to_string(), i.instances);
    out.insert("cores".to_string(), i.cores);
    out.insert("ram".to_string(), i.ram);
    out.insert(
        "server_groups".to_string(),
        server_group_count(conn, project_id, user_id).await?,
    );
    if let Some(u) = user_id {
        out.insert("key_pairs".to_string(), key_pair_count(conn, u).await?);
    }
    Ok(out)
}
