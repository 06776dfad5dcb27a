//! Consumers, their allocations, and usage sums.

use std::collections::BTreeMap;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{placeholders, Conn, DbResult};
use crate::model::{AllocationRow, Consumer, ProjectUsage};

fn consumer_from_row(r: &AnyRow) -> DbResult<Consumer> {
    Ok(Consumer {
        uuid: r.try_get("uuid")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        generation: r.try_get("generation")?,
        consumer_type: r.try_get("consumer_type")?,
    })
}

fn alloc_from_row(r: &AnyRow) -> DbResult<AllocationRow> {
    Ok(AllocationRow {
        consumer_uuid: r.try_get("consumer_uuid")?,
        provider_uuid: r.try_get("provider_uuid")?,
        resource_class: r.try_get("resource_class")?,
        used: r.try_get("used")?,
    })
}

pub async fn consumer(conn: &mut Conn, uuid: &str) -> DbResult<Option<Consumer>> {
    sqlx::query(
        "SELECT uuid, project_id, user_id, generation, consumer_type FROM placement_consumers \
         WHERE uuid = $1",
    )
    .bind(uuid)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(consumer_from_row)
    .transpose()
}

/// Consumers of `uuids` (for generations in listings).
pub async fn consumers(conn: &mut Conn, uuids: &[String]) -> DbResult<Vec<Consumer>> {
    if uuids.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT uuid, project_id, user_id, generation, consumer_type FROM placement_consumers \
         WHERE uuid IN ({})",
        placeholders(1, uuids.len())
    );
    let mut q = sqlx::query(&sql);
    for u in uuids {
        q = q.bind(u);
    }
    q.fetch_all(conn)
        .await?
        .iter()
        .map(consumer_from_row)
        .collect()
}

pub async fn insert_consumer(conn: &mut Conn, c: &Consumer) -> DbResult<()> {
    let now = ferrostack_store::now_micros();
    sqlx::query(
        "INSERT INTO placement_consumers (uuid, project_id, user_id, generation, consumer_type, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&c.uuid)
    .bind(&c.project_id)
    .bind(&c.user_id)
    .bind(c.generation)
    .bind(c.consumer_type.as_deref())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets project, user and type and bumps the generation, when it is still `expected` (any
/// generation with `None`). False when the consumer is gone or was changed concurrently; on
/// PostgreSQL the row stays locked until the transaction ends.
pub async fn update_consumer(
    conn: &mut Conn,
    c: &Consumer,
    expected: Option<i64>,
) -> DbResult<bool> {
    let now = ferrostack_store::now_micros();
    let sql = format!(
        "UPDATE placement_consumers SET project_id = $2, user_id = $3, consumer_type = \
         COALESCE($4, consumer_type), generation = generation + 1, updated_at = $5 \
         WHERE uuid = $1{}",
        if expected.is_some() {
            " AND generation = $6"
        } else {
            ""
        }
    );
    let mut q = sqlx::query(&sql)
        .bind(&c.uuid)
        .bind(&c.project_id)
        .bind(&c.user_id)
        .bind(c.consumer_type.as_deref())
        .bind(now);
    if let Some(g) = expected {
        q = q.bind(g);
    }
    Ok(q.execute(conn).await?.rows_affected() > 0)
}

pub async fn delete_consumer(conn: &mut Conn, uuid: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM placement_allocations WHERE consumer_uuid = $1")
        .bind(uuid)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM placement_consumers WHERE uuid = $1")
        .bind(uuid)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every consumer that has allocations, with its type (None when it was given none).
pub async fn consumers_with_allocations(
    conn: &mut Conn,
) -> DbResult<Vec<(String, Option<String>)>> {
    sqlx::query_as(
        "SELECT c.uuid, c.consumer_type FROM placement_consumers c WHERE EXISTS \
         (SELECT 1 FROM placement_allocations a WHERE a.consumer_uuid = c.uuid) ORDER BY c.uuid",
    )
    .fetch_all(&mut *conn)
    .await
}

pub async fn for_consumer(conn: &mut Conn, uuid: &str) -> DbResult<Vec<AllocationRow>> {
    sqlx::query(
        "SELECT consumer_uuid, provider_uuid, resource_class, used FROM placement_allocations \
         WHERE consumer_uuid = $1 ORDER BY provider_uuid, resource_class",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await?
    .iter()
    .map(alloc_from_row)
    .collect()
}

pub async fn for_provider(conn: &mut Conn, uuid: &str) -> DbResult<Vec<AllocationRow>> {
    sqlx::query(
        "SELECT consumer_uuid, provider_uuid, resource_class, used FROM placement_allocations \
         WHERE provider_uuid = $1 ORDER BY consumer_uuid, resource_class",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await?
    .iter()
    .map(alloc_from_row)
    .collect()
}

pub async fn delete_for_consumer(conn: &mut Conn, uuid: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM placement_allocations WHERE consumer_uuid = $1")
        .bind(uuid)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts `rows` with one statement.
pub async fn insert_many(conn: &mut Conn, rows: &[AllocationRow]) -> DbResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let b = i * 4 + 2; // $1 is the timestamp
            format!("(${b}, ${}, ${}, ${}, $1, $1)", b + 1, b + 2, b + 3)
        })
        .collect();
    let sql = format!(
        "INSERT INTO placement_allocations (consumer_uuid, provider_uuid, resource_class, used, \
         created_at, updated_at) VALUES {}",
        values.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(ferrostack_store::now_micros());
    for a in rows {
        q = q
            .bind(&a.consumer_uuid)
            .bind(&a.provider_uuid)
            .bind(&a.resource_class)
            .bind(a.used);
    }
    q.execute(conn).await?;
    Ok(())
}

/// Amount allocated per (provider, class) on `providers` (all providers when `None`).
pub async fn usage(
    conn: &mut Conn,
    providers: Option<&[String]>,
) -> DbResult<Vec<(String, String, i64)>> {
    let filter = match providers {
        Some([]) => return Ok(vec![]),
        Some(p) => format!(" WHERE provider_uuid IN ({})", placeholders(1, p.len())),
        None => String::new(),
    };
    let sql = format!(
        "SELECT provider_uuid, resource_class, CAST(COALESCE(SUM(used), 0) AS BIGINT) AS used \
         FROM placement_allocations{filter} GROUP BY provider_uuid, resource_class"
    );
    let mut q = sqlx::query(&sql);
    for p in providers.unwrap_or_default() {
        q = q.bind(p);
    }
    q.fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("provider_uuid")?,
                r.try_get("resource_class")?,
                r.try_get("used")?,
            ))
        })
        .collect()
}

/// Whether the provider has any allocation.
pub async fn provider_has_allocations(conn: &mut Conn, uuid: &str) -> DbResult<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM placement_allocations WHERE provider_uuid = $1")
            .bind(uuid)
            .fetch_one(conn)
            .await?;
    Ok(n > 0)
}

pub async fn project_usage(
    conn: &mut Conn,
    project_id: &str,
    user_id: Option<&str>,
) -> DbResult<ProjectUsage> {
    let user_filter = if user_id.is_some() {
        " AND c.user_id = $2"
    } else {
        ""
    };
    let sql = format!(
        "SELECT c.consumer_type, a.resource_class, CAST(COALESCE(SUM(a.used), 0) AS BIGINT) AS used \
         FROM placement_allocations a JOIN placement_consumers c ON c.uuid = a.consumer_uuid \
         WHERE c.project_id = $1{user_filter} GROUP BY c.consumer_type, a.resource_class"
    );
    let mut q = sqlx::query(&sql).bind(project_id);
    if let Some(u) = user_id {
        q = q.bind(u);
    }
    let mut by_type: BTreeMap<Option<String>, BTreeMap<String, i64>> = BTreeMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        let t: Option<String> = r.try_get("consumer_type")?;
        by_type
            .entry(t)
            .or_default()
            .insert(r.try_get("resource_class")?, r.try_get("used")?);
    }
    let sql = format!(
        "SELECT c.consumer_type, COUNT(*) AS n FROM placement_consumers c \
         WHERE c.project_id = $1{user_filter} GROUP BY c.consumer_type"
    );
    let mut q = sqlx::query(&sql).bind(project_id);
    if let Some(u) = user_id {
        q = q.bind(u);
    }
    let mut consumers_by_type = BTreeMap::new();
    for r in q.fetch_all(conn).await? {
        consumers_by_type.insert(r.try_get("consumer_type")?, r.try_get::<i64, _>("n")?);
    }
    Ok(ProjectUsage {
        by_type,
        consumers_by_type,
    })
}
