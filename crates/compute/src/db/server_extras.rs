//! Server sub-resources: single metadata items and tags, system metadata, console tokens.
//! (Whole-set replacement of metadata and tags is in `instances.rs`.)

use std::collections::BTreeMap;

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};

/// Sets (insert or replace) metadata items, keeping the others.
pub async fn upsert_metadata(
    conn: &mut Conn,
    uuid: &str,
    items: &BTreeMap<String, String>,
) -> DbResult<()> {
    for (k, v) in items {
        sqlx::query("DELETE FROM instance_metadata WHERE instance_uuid = $1 AND key = $2")
            .bind(uuid)
            .bind(k)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO instance_metadata (instance_uuid, key, value) VALUES ($1, $2, $3)",
        )
        .bind(uuid)
        .bind(k)
        .bind(v)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Marks an instance changed (its `updated_at`), as Nova's `instance.save()` does.
pub async fn touch(conn: &mut Conn, uuid: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE instances SET updated_at = $2 WHERE uuid = $1")
        .bind(uuid)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes one metadata item; false when there was none.
pub async fn delete_metadata(conn: &mut Conn, uuid: &str, key: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM instance_metadata WHERE instance_uuid = $1 AND key = $2")
        .bind(uuid)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Adds one tag; false when the server already had it.
pub async fn add_tag(conn: &mut Conn, uuid: &str, tag: &str) -> DbResult<bool> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM instance_tags WHERE instance_uuid = $1 AND tag = $2",
    )
    .bind(uuid)
    .bind(tag)
    .fetch_one(&mut *conn)
    .await?;
    if exists > 0 {
        return Ok(false);
    }
    sqlx::query("INSERT INTO instance_tags (instance_uuid, tag) VALUES ($1, $2)")
        .bind(uuid)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Removes one tag; false when the server did not have it.
pub async fn delete_tag(conn: &mut Conn, uuid: &str, tag: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM instance_tags WHERE instance_uuid = $1 AND tag = $2")
        .bind(uuid)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// One system metadata value.
pub async fn system_metadata(conn: &mut Conn, uuid: &str, key: &str) -> DbResult<Option<String>> {
    sqlx::query_scalar(
        "SELECT value FROM instance_system_metadata WHERE instance_uuid = $1 AND key = $2",
    )
    .bind(uuid)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
}

/// Sets (or with `None` removes) one system metadata value.
pub async fn set_system_metadata(
    conn: &mut Conn,
    uuid: &str,
    key: &str,
    value: Option<&str>,
) -> DbResult<()> {
    sqlx::query("DELETE FROM instance_system_metadata WHERE instance_uuid = $1 AND key = $2")
        .bind(uuid)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    if let Some(v) = value {
        sqlx::query(
            "INSERT INTO instance_system_metadata (instance_uuid, key, value) VALUES ($1, $2, $3)",
        )
        .bind(uuid)
        .bind(key)
        .bind(v)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A console authorization: what a token grants access to.
#[derive(Debug, Clone)]
pub struct ConsoleAuth {
    pub instance_uuid: String,
    pub console_type: String,
    pub host: String,
    pub port: i64,
    pub internal_access_path: Option<String>,
    pub access_url_base: String,
    pub expires: i64,
}

/// Takes a console authorization: returns it (when unexpired) and deletes it, so a token opens
/// one console connection only.
pub async fn take_console_auth(
    conn: &mut Conn,
    token_hash: &str,
    now: i64,
) -> DbResult<Option<ConsoleAuth>> {
    let found = console_auth(conn, token_hash, now).await?;
    let gone = sqlx::query("DELETE FROM console_auth_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut *conn)
        .await?;
    // Two connections racing for one token: only the one whose delete counted gets it.
    Ok(found.filter(|_| gone.rows_affected() > 0))
}

/// Stores a console authorization under the hash of its token; drops expired ones.
pub async fn insert_console_auth(
    conn: &mut Conn,
    token_hash: &str,
    a: &ConsoleAuth,
    now: i64,
) -> DbResult<()> {
    sqlx::query("DELETE FROM console_auth_tokens WHERE expires < $1")
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO console_auth_tokens (token_hash, instance_uuid, console_type, host, port, \
         internal_access_path, access_url_base, expires, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token_hash)
    .bind(&a.instance_uuid)
    .bind(&a.console_type)
    .bind(&a.host)
    .bind(a.port)
    .bind(&a.internal_access_path)
    .bind(&a.access_url_base)
    .bind(a.expires)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The unexpired console authorization of a token hash.
pub async fn console_auth(
    conn: &mut Conn,
    token_hash: &str,
    now: i64,
) -> DbResult<Option<ConsoleAuth>> {
    let row = sqlx::query(
        "SELECT instance_uuid, console_type, host, port, internal_access_path, access_url_base, \
         expires FROM console_auth_tokens WHERE token_hash = $1 AND expires >= $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(ConsoleAuth {
            instance_uuid: r.try_get("instance_uuid")?,
            console_type: r.try_get("console_type")?,
            host: r.try_get("host")?,
            port: r.try_get("port")?,
            internal_access_path: r.try_get("internal_access_path")?,
            access_url_base: r.try_get("access_url_base")?,
            expires: r.try_get("expires")?,
        })
    })
    .transpose()
}
