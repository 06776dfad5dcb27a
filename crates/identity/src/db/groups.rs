use ferrostack_store::now_micros;
use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::DbResult;
use crate::model::{extra_from_text, extra_to_text, Group};

const COLS: &str = "id, name, domain_id, description, extra";

fn from_row(r: &AnyRow) -> DbResult<Group> {
    Ok(Group {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        domain_id: r.try_get("domain_id")?,
        description: r.try_get("description")?,
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
    })
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(ex: E, g: &Group) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO groups (id, name, domain_id, description, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.domain_id)
    .bind(&g.description)
    .bind(extra_to_text(&g.extra))
    .bind(now_micros())
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn update<'e, E: Executor<'e, Database = Any>>(ex: E, g: &Group) -> DbResult<()> {
    sqlx::query("UPDATE groups SET name = $2, description = $3, extra = $4 WHERE id = $1")
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(extra_to_text(&g.extra))
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<Option<Group>> {
    let q = format!("SELECT {COLS} FROM groups WHERE id = $1");
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
    domain_id: &str,
    name: &str,
) -> DbResult<Option<Group>> {
    let q = format!("SELECT {COLS} FROM groups WHERE domain_id = $1 AND name = $2");
    sqlx::query(&q)
        .bind(domain_id)
        .bind(name)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    domain_id: Option<&str>,
    name: Option<&str>,
) -> DbResult<Vec<Group>> {
    let q = format!(
        "SELECT {COLS} FROM groups WHERE ($1 = '' OR domain_id = $1) AND ($2 = '' OR name = $2) \
         ORDER BY name, id"
    );
    sqlx::query(&q)
        .bind(domain_id.unwrap_or(""))
        .bind(name.unwrap_or(""))
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn list_for_user<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    user_id: &str,
) -> DbResult<Vec<Group>> {
    let q = format!(
        "SELECT {COLS} FROM groups WHERE id IN (SELECT group_id FROM user_groups WHERE user_id = $1) \
         ORDER BY name, id"
    );
    sqlx::query(&q)
        .bind(user_id)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn group_ids_for_user<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    user_id: &str,
) -> DbResult<Vec<String>> {
    sqlx::query_scalar("SELECT group_id FROM user_groups WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(ex)
        .await
}

pub async fn user_ids_in_group<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    group_id: &str,
) -> DbResult<Vec<String>> {
    sqlx::query_scalar("SELECT user_id FROM user_groups WHERE group_id = $1")
        .bind(group_id)
        .fetch_all(ex)
        .await
}

pub async fn add_member<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    group_id: &str,
    user_id: &str,
) -> DbResult<()> {
    // Adding an existing member is not an error (PUT is idempotent).
    sqlx::query(
        "INSERT INTO user_groups (user_id, group_id) SELECT $1, $2 WHERE NOT EXISTS \
         (SELECT 1 FROM user_groups WHERE user_id = $1 AND group_id = $2)",
    )
    .bind(user_id)
    .bind(group_id)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn is_member<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    group_id: &str,
    user_id: &str,
) -> DbResult<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM user_groups WHERE user_id = $1 AND group_id = $2")
            .bind(user_id)
            .bind(group_id)
            .fetch_one(ex)
            .await?;
    Ok(n > 0)
}

pub async fn remove_member<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    group_id: &str,
    user_id: &str,
) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM user_groups WHERE user_id = $1 AND group_id = $2")
        .bind(user_id)
        .bind(group_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn delete<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM groups WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}
