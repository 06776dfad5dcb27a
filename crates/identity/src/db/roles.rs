use ferrostack_store::now_micros;
use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::{non_empty, DbResult};
use crate::model::{extra_from_text, extra_to_text, Role};

const COLS: &str = "id, name, domain_id, description, extra";

fn from_row(r: &AnyRow) -> DbResult<Role> {
    Ok(Role {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        domain_id: non_empty(r.try_get("domain_id")?),
        description: r.try_get("description")?,
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
    })
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(ex: E, r: &Role) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO roles (id, name, domain_id, description, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(r.domain_id.as_deref().unwrap_or(""))
    .bind(&r.description)
    .bind(extra_to_text(&r.extra))
    .bind(now_micros())
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update<'e, E: Executor<'e, Database = Any>>(ex: E, r: &Role) -> DbResult<()> {
    sqlx::query("UPDATE roles SET name = $2, description = $3, extra = $4 WHERE id = $1")
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.description)
        .bind(extra_to_text(&r.extra))
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<Option<Role>> {
    let q = format!("SELECT {COLS} FROM roles WHERE id = $1");
    sqlx::query(&q)
        .bind(id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn get_by_name<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    domain_id: Option<&str>,
    name: &str,
) -> DbResult<Option<Role>> {
    let q = format!("SELECT {COLS} FROM roles WHERE domain_id = $1 AND name = $2");
    sqlx::query(&q)
        .bind(domain_id.unwrap_or(""))
        .bind(name)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Roles of one domain (`Some`) or the global roles (`None`).
pub async fn list<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    domain_id: Option<&str>,
) -> DbResult<Vec<Role>> {
    let q = format!("SELECT {COLS} FROM roles WHERE domain_id = $1 ORDER BY name, id");
    sqlx::query(&q)
        .bind(domain_id.unwrap_or(""))
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn list_all<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<Vec<Role>> {
    let q = format!("SELECT {COLS} FROM roles ORDER BY name, id");
    sqlx::query(&q)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn delete<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// All implied-role rules as (prior, implied) pairs.
pub async fn implied_rules<'e, E: Executor<'e, Database = Any>>(
    ex: E,
) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT prior_role_id, implied_role_id FROM implied_roles")
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("prior_role_id")?, r.try_get("implied_role_id")?)))
        .collect()
}

pub async fn add_implied<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    prior: &str,
    implied: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO implied_roles (prior_role_id, implied_role_id) SELECT $1, $2 WHERE NOT EXISTS \
         (SELECT 1 FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2)",
    )
    .bind(prior)
    .bind(implied)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn remove_implied<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    prior: &str,
    implied: &str,
) -> DbResult<bool> {
    let r =
        sqlx::query("DELETE FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2")
            .bind(prior)
            .bind(implied)
            .execute(ex)
            .await?;
    Ok(r.rows_affected() > 0)
}
