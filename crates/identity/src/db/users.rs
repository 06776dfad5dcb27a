use ferrostack_store::now_micros;
use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::{flag, get_bool, DbResult};
use crate::model::{extra_from_text, extra_to_text, User};

const COLS: &str = "id, name, domain_id, enabled, password_hash, password_expires_at, \
                    default_project_id, extra, failed_auth_count, failed_auth_at";

fn from_row(r: &AnyRow) -> DbResult<User> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        domain_id: r.try_get("domain_id")?,
        enabled: get_bool(r, "enabled")?,
        password_hash: r.try_get("password_hash")?,
        password_expires_at: r.try_get("password_expires_at")?,
        default_project_id: r.try_get("default_project_id")?,
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
        failed_auth_count: r.try_get("failed_auth_count")?,
        failed_auth_at: r.try_get("failed_auth_at")?,
    })
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(ex: E, u: &User) -> DbResult<()> {
    let now = now_micros();
    sqlx::query(
        "INSERT INTO users (id, name, domain_id, enabled, password_hash, password_expires_at, \
         password_created_at, default_project_id, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&u.id)
    .bind(&u.name)
    .bind(&u.domain_id)
    .bind(flag(u.enabled))
    .bind(&u.password_hash)
    .bind(u.password_expires_at)
    .bind(now)
    .bind(&u.default_project_id)
    .bind(extra_to_text(&u.extra))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Updates the profile fields (not the password).
pub async fn update<'e, E: Executor<'e, Database = Any>>(ex: E, u: &User) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET name = $2, enabled = $3, default_project_id = $4, extra = $5 WHERE id = $1",
    )
    .bind(&u.id)
    .bind(&u.name)
    .bind(flag(u.enabled))
    .bind(&u.default_project_id)
    .bind(extra_to_text(&u.extra))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn set_password<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
    hash: &str,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, password_created_at = $3, failed_auth_count = 0 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(hash)
    .bind(now_micros())
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn record_failed_auth<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET failed_auth_count = failed_auth_count + 1, failed_auth_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now_micros())
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn record_success<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET failed_auth_count = 0, failed_auth_at = NULL, last_active_at = $2 \
         WHERE id = $1 AND (failed_auth_count <> 0 OR last_active_at IS NULL)",
    )
    .bind(id)
    .bind(now_micros())
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<Option<User>> {
    let q = format!("SELECT {COLS} FROM users WHERE id = $1");
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
) -> DbResult<Option<User>> {
    let q = format!("SELECT {COLS} FROM users WHERE domain_id = $1 AND name = $2");
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
) -> DbResult<Vec<User>> {
    let q = format!(
        "SELECT {COLS} FROM users WHERE ($1 = '' OR domain_id = $1) AND ($2 = '' OR name = $2) \
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

pub async fn list_in_group<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    group_id: &str,
) -> DbResult<Vec<User>> {
    let q = format!(
        "SELECT {COLS} FROM users WHERE id IN (SELECT user_id FROM user_groups WHERE group_id = $1) \
         ORDER BY name, id"
    );
    sqlx::query(&q)
        .bind(group_id)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn delete<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn count_in_domain<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    domain_id: &str,
) -> DbResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE domain_id = $1")
        .bind(domain_id)
        .fetch_one(ex)
        .await
}
