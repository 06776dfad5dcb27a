//! Unified limits: registered (defaults per service/region/resource) and project/domain limits.

use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::{non_empty, DbResult};
use crate::model::{Limit, RegisteredLimit};

fn registered_from_row(r: &AnyRow) -> DbResult<RegisteredLimit> {
    Ok(RegisteredLimit {
        id: r.try_get("id")?,
        service_id: r.try_get("service_id")?,
        region_id: non_empty(r.try_get("region_id")?),
        resource_name: r.try_get("resource_name")?,
        default_limit: r.try_get("default_limit")?,
        description: r.try_get("description")?,
    })
}

fn limit_from_row(r: &AnyRow) -> DbResult<Limit> {
    Ok(Limit {
        id: r.try_get("id")?,
        project_id: non_empty(r.try_get("project_id")?),
        domain_id: non_empty(r.try_get("domain_id")?),
        service_id: r.try_get("service_id")?,
        region_id: non_empty(r.try_get("region_id")?),
        resource_name: r.try_get("resource_name")?,
        resource_limit: r.try_get("resource_limit")?,
        description: r.try_get("description")?,
    })
}

pub async fn insert_registered<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    l: &RegisteredLimit,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO registered_limits (id, service_id, region_id, resource_name, default_limit, description) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&l.id)
    .bind(&l.service_id)
    .bind(l.region_id.as_deref().unwrap_or(""))
    .bind(&l.resource_name)
    .bind(l.default_limit)
    .bind(&l.description)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update_registered<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    l: &RegisteredLimit,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE registered_limits SET service_id = $2, region_id = $3, resource_name = $4, \
         default_limit = $5, description = $6 WHERE id = $1",
    )
    .bind(&l.id)
    .bind(&l.service_id)
    .bind(l.region_id.as_deref().unwrap_or(""))
    .bind(&l.resource_name)
    .bind(l.default_limit)
    .bind(&l.description)
    .execute(ex)
    .await?;
    Ok(())
}

const RCOLS: &str = "id, service_id, region_id, resource_name, default_limit, description";

pub async fn get_registered<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<Option<RegisteredLimit>> {
    let q = format!("SELECT {RCOLS} FROM registered_limits WHERE id = $1");
    sqlx::query(&q)
        .bind(id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(registered_from_row)
        .transpose()
}

pub async fn list_registered<'e, E: Executor<'e, Database = Any>>(
    ex: E,
) -> DbResult<Vec<RegisteredLimit>> {
    let q = format!("SELECT {RCOLS} FROM registered_limits ORDER BY service_id, resource_name");
    sqlx::query(&q)
        .fetch_all(ex)
        .await?
        .iter()
        .map(registered_from_row)
        .collect()
}

pub async fn delete_registered<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM registered_limits WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Whether project or domain limits exist for a registered limit's resource (then it cannot be
/// deleted or renamed, as in Keystone).
pub async fn limits_reference<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    l: &RegisteredLimit,
) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM limits WHERE service_id = $1 AND region_id = $2 AND resource_name = $3",
    )
    .bind(&l.service_id)
    .bind(l.region_id.as_deref().unwrap_or(""))
    .bind(&l.resource_name)
    .fetch_one(ex)
    .await?;
    Ok(n > 0)
}

pub async fn insert_limit<'e, E: Executor<'e, Database = Any>>(ex: E, l: &Limit) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO limits (id, project_id, domain_id, service_id, region_id, resource_name, \
         resource_limit, description) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&l.id)
    .bind(l.project_id.as_deref().unwrap_or(""))
    .bind(l.domain_id.as_deref().unwrap_or(""))
    .bind(&l.service_id)
    .bind(l.region_id.as_deref().unwrap_or(""))
    .bind(&l.resource_name)
    .bind(l.resource_limit)
    .bind(&l.description)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update_limit<'e, E: Executor<'e, Database = Any>>(ex: E, l: &Limit) -> DbResult<()> {
    sqlx::query("UPDATE limits SET resource_limit = $2, description = $3 WHERE id = $1")
        .bind(&l.id)
        .bind(l.resource_limit)
        .bind(&l.description)
        .execute(ex)
        .await?;
    Ok(())
}

const LCOLS: &str =
    "id, project_id, domain_id, service_id, region_id, resource_name, resource_limit, description";

pub async fn get_limit<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<Option<Limit>> {
    let q = format!("SELECT {LCOLS} FROM limits WHERE id = $1");
    sqlx::query(&q)
        .bind(id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(limit_from_row)
        .transpose()
}

pub async fn list_limits<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<Vec<Limit>> {
    let q = format!("SELECT {LCOLS} FROM limits ORDER BY service_id, resource_name");
    sqlx::query(&q)
        .fetch_all(ex)
        .await?
        .iter()
        .map(limit_from_row)
        .collect()
}

pub async fn delete_limit<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM limits WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Deletes the limits of a project (or, with a domain id, of a domain), as Keystone does when
/// the project or domain is deleted.
pub async fn delete_for_owner<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    owner_id: &str,
) -> DbResult<u64> {
    let r = sqlx::query("DELETE FROM limits WHERE project_id = $1 OR domain_id = $1")
        .bind(owner_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}
