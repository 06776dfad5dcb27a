use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::{Conn, DbResult};
use crate::model::{Image, Status, Visibility};

const COLS: &str = "id, name, status, visibility, protected, os_hidden, disk_format, container_format, \
    min_disk, min_ram, size, virtual_size, checksum, os_hash_algo, os_hash_value, owner, properties, \
    location, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Image> {
    let status: String = r.try_get("status")?;
    let visibility: String = r.try_get("visibility")?;
    Ok(Image {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        status: Status::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad status {status}").into()))?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad visibility {visibility}").into()))?,
        protected: r.try_get::<i64, _>("protected")? != 0,
        os_hidden: r.try_get::<i64, _>("os_hidden")? != 0,
        disk_format: r.try_get("disk_format")?,
        container_format: r.try_get("container_format")?,
        min_disk: r.try_get("min_disk")?,
        min_ram: r.try_get("min_ram")?,
        size: r.try_get("size")?,
        virtual_size: r.try_get("virtual_size")?,
        checksum: r.try_get("checksum")?,
        os_hash_algo: r.try_get("os_hash_algo")?,
        os_hash_value: r.try_get("os_hash_value")?,
        owner: r.try_get("owner")?,
        properties: serde_json::from_str(&r.try_get::<String, _>("properties")?)
            .unwrap_or_default(),
        tags: Vec::new(),
        location: r.try_get("location")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

async fn load_tags(conn: &mut Conn, images: &mut [Image]) -> DbResult<()> {
    if images.is_empty() {
        return Ok(());
    }
    let rows = if images.len() == 1 {
        sqlx::query("SELECT image_id, tag FROM image_tags WHERE image_id = $1 ORDER BY tag")
            .bind(&images[0].id)
            .fetch_all(&mut *conn)
            .await?
    } else {
        sqlx::query("SELECT image_id, tag FROM image_tags ORDER BY tag")
            .fetch_all(&mut *conn)
            .await?
    };
    let mut by: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in rows {
        by.entry(r.try_get("image_id")?)
            .or_default()
            .push(r.try_get("tag")?);
    }
    for i in images {
        if let Some(t) = by.remove(&i.id) {
            i.tags = t;
        }
    }
    Ok(())
}

pub async fn insert(conn: &mut Conn, i: &Image) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO images ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20)"
    ))
    .bind(&i.id)
    .bind(&i.name)
    .bind(i.status.as_str())
    .bind(i.visibility.as_str())
    .bind(i64::from(i.protected))
    .bind(i64::from(i.os_hidden))
    .bind(&i.disk_format)
    .bind(&i.container_format)
    .bind(i.min_disk)
    .bind(i.min_ram)
    .bind(i.size)
    .bind(i.virtual_size)
    .bind(&i.checksum)
    .bind(&i.os_hash_algo)
    .bind(&i.os_hash_value)
    .bind(&i.owner)
    .bind(serde_json::Value::Object(i.properties.clone()).to_string())
    .bind(&i.location)
    .bind(i.created_at)
    .bind(i.updated_at)
    .execute(&mut *conn)
    .await?;
    set_tags(conn, &i.id, &i.tags).await
}

/// Writes every mutable attribute of `i` (not status/data: see `set_status`, `set_data`).
pub async fn update(conn: &mut Conn, i: &Image) -> DbResult<()> {
    sqlx::query(
        "UPDATE images SET name = $2, visibility = $3, protected = $4, os_hidden = $5, disk_format = $6, \
         container_format = $7, min_disk = $8, min_ram = $9, properties = $10, updated_at = $11, \
         owner = $12 WHERE id = $1",
    )
    .bind(&i.id)
    .bind(&i.name)
    .bind(i.visibility.as_str())
    .bind(i64::from(i.protected))
    .bind(i64::from(i.os_hidden))
    .bind(&i.disk_format)
    .bind(&i.container_format)
    .bind(i.min_disk)
    .bind(i.min_ram)
    .bind(serde_json::Value::Object(i.properties.clone()).to_string())
    .bind(ferrostack_store::now_micros())
    .bind(&i.owner)
    .execute(&mut *conn)
    .await?;
    set_tags(conn, &i.id, &i.tags).await
}

pub async fn set_tags(conn: &mut Conn, image_id: &str, tags: &[String]) -> DbResult<()> {
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(image_id)
        .execute(&mut *conn)
        .await?;
    for t in tags {
        sqlx::query("INSERT INTO image_tags (image_id, tag) VALUES ($1, $2)")
            .bind(image_id)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Moves an image from one of `from` to `to`; false when it was in none of them (a concurrent
/// change won), so state transitions are compare-and-set.
pub async fn transition<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
    from: &[Status],
    to: Status,
) -> DbResult<bool> {
    let list: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let q = format!(
        "UPDATE images SET status = $2, updated_at = $3 WHERE id = $1 AND deleted = 0 AND status IN ({})",
        list.join(", ")
    );
    let r = sqlx::query(&q)
        .bind(id)
        .bind(to.as_str())
        .bind(ferrostack_store::now_micros())
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Records uploaded data and makes the image active, if it is still `saving`/`importing`.
#[allow(clippy::too_many_arguments)]
pub async fn set_data<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    id: &str,
    location: &str,
    size: i64,
    virtual_size: Option<i64>,
    checksum: &str,
    sha512: &str,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE images SET status = 'active', location = $2, size = $3, virtual_size = $4, checksum = $5, \
         os_hash_algo = 'sha512', os_hash_value = $6, updated_at = $7 \
         WHERE id = $1 AND deleted = 0 AND status IN ('saving', 'importing')",
    )
    .bind(id)
    .bind(location)
    .bind(size)
    .bind(virtual_size)
    .bind(checksum)
    .bind(sha512)
    .bind(ferrostack_store::now_micros())
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<Image>> {
    let q = format!("SELECT {COLS} FROM images WHERE id = $1 AND deleted = 0");
    let Some(row) = sqlx::query(&q).bind(id).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut v = [from_row(&row)?];
    load_tags(conn, &mut v).await?;
    let [i] = v;
    Ok(Some(i))
}

/// All live images; the application layer filters by visibility and query (an identity-sized
/// catalogue of images is small enough to filter in memory; indexes keep the scan cheap).
pub async fn list(conn: &mut Conn) -> DbResult<Vec<Image>> {
    let q =
        format!("SELECT {COLS} FROM images WHERE deleted = 0 ORDER BY created_at DESC, id DESC");
    let rows = sqlx::query(&q).fetch_all(&mut *conn).await?;
    let mut out = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    load_tags(conn, &mut out).await?;
    Ok(out)
}

pub async fn mark_deleted<'e, E: Executor<'e, Database = Any>>(ex: E, id: &str) -> DbResult<bool> {
    let r = sqlx::query("UPDATE images SET deleted = 1, status = 'deleted', updated_at = $2 WHERE id = $1 AND deleted = 0")
        .bind(id)
        .bind(ferrostack_store::now_micros())
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Count and total size of a project's images (for quotas).
pub async fn usage<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    owner: &str,
) -> DbResult<(i64, i64)> {
    let r = sqlx::query("SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS total FROM images WHERE owner = $1 AND deleted = 0")
        .bind(owner)
        .fetch_one(ex)
        .await?;
    Ok((r.try_get("n")?, r.try_get("total")?))
}

/// Images stuck mid-upload (after a crash): back to `queued`. That includes `uploading`:
/// staged data lives in memory and in the staging directory, which is cleaned at start.
pub async fn reset_interrupted<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<u64> {
    let r = sqlx::query("UPDATE images SET status = 'queued' WHERE deleted = 0 AND status IN ('saving', 'importing', 'uploading')")
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}
