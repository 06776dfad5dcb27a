use ferrostack_store::now_micros;
use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::{flag, get_bool, DbResult};
use crate::model::{extra_from_text, extra_to_text, Domain};

const COLS: &str = "id, name, description, enabled, extra";

fn from_row(r: &AnyRow) -> DbResult<Domain> {
    Ok(Domain {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        enabled: get_bool(r, "enabled")?,
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
    })
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(ex: E, d: &Domain) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO domains (id, name, description, enabled, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(flag(d.enabled))
    .bind(extra_to_text(&d.extra))
    .bind(now_micros())
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update<'e, E: Executor<'e, Database = Any>>(ex: E, d: &Domain) -> DbResult<()> {
    sqlx::query(
        "UPDATE domains SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(flag(d.enabled))
    .bind(extra_to_text(&d.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<Option<Domain>> {
    let q = format!("SELECT {COLS} FROM domains WHERE id = $1");
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
    name: &str,
) -> DbResult<Option<Domain>> {
    let q = format!("SELECT {COLS} FROM domains WHERE name = $1");
    sqlx::query(&q)
        .bind(name)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<Vec<Domain>> {
    let q = format!("SELECT {COLS} FROM domains ORDER BY name");
    sqlx::query(&q)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn delete<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM domains WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}
