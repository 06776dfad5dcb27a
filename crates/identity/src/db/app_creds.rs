use ferrostack_store::now_micros;
use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{flag, get_bool, Conn, DbResult};
use crate::model::ApplicationCredential;

const COLS: &str =
    "id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted";

fn from_row(r: &AnyRow) -> DbResult<ApplicationCredential> {
    Ok(ApplicationCredential {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        user_id: r.try_get("user_id")?,
        project_id: r.try_get("project_id")?,
        secret_hash: r.try_get("secret_hash")?,
        description: r.try_get("description")?,
        expires_at: r.try_get("expires_at")?,
        unrestricted: get_bool(r, "unrestricted")?,
        role_ids: Vec::new(),
    })
}

async fn with_roles(
    conn: &mut Conn,
    mut ac: ApplicationCredential,
) -> DbResult<ApplicationCredential> {
    ac.role_ids = sqlx::query_scalar(
        "SELECT role_id FROM application_credential_roles WHERE application_credential_id = $1",
    )
    .bind(&ac.id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ac)
}

pub async fn insert(conn: &mut Conn, ac: &ApplicationCredential) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO application_credentials (id, name, user_id, project_id, secret_hash, description, \
         expires_at, unrestricted, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&ac.id)
    .bind(&ac.name)
    .bind(&ac.user_id)
    .bind(&ac.project_id)
    .bind(&ac.secret_hash)
    .bind(&ac.description)
    .bind(ac.expires_at)
    .bind(flag(ac.unrestricted))
    .bind(now_micros())
    .execute(&mut *conn)
    .await?;
    for r in &ac.role_ids {
        sqlx::query(
            "INSERT INTO application_credential_roles (application_credential_id, role_id) VALUES ($1, $2)",
        )
        .bind(&ac.id)
        .bind(r)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<ApplicationCredential>> {
    let q = format!("SELECT {COLS} FROM application_credentials WHERE id = $1");
    match sqlx::query(&q).bind(id).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some(with_roles(conn, from_row(&r)?).await?)),
        None => Ok(None),
    }
}

pub async fn get_by_name(
    conn: &mut Conn,
    user_id: &str,
    name: &str,
) -> DbResult<Option<ApplicationCredential>> {
    let q = format!("SELECT {COLS} FROM application_credentials WHERE user_id = $1 AND name = $2");
    match sqlx::query(&q)
        .bind(user_id)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
    {
        Some(r) => Ok(Some(with_roles(conn, from_row(&r)?).await?)),
        None => Ok(None),
    }
}

pub async fn list_for_user(conn: &mut Conn, user_id: &str) -> DbResult<Vec<ApplicationCredential>> {
    let q = format!("SELECT {COLS} FROM application_credentials WHERE user_id = $1 ORDER BY name");
    let rows = sqlx::query(&q).bind(user_id).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(with_roles(conn, from_row(r)?).await?);
    }
    Ok(out)
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM application_credentials WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Deletes every application credential of a user (Keystone does so when the user is disabled).
pub async fn delete_for_user(conn: &mut Conn, user_id: &str) -> DbResult<u64> {
    let r = sqlx::query("DELETE FROM application_credentials WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}
