//! Host aggregates, their hosts and metadata.

use std::collections::BTreeMap;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};
use crate::model::Aggregate;

const COLS: &str = "id, uuid, name, availability_zone, created_at, updated_at";

/// The metadata key Nova mirrors an aggregate's availability zone in.
pub const AZ_KEY: &str = "availability_zone";

fn from_row(r: &AnyRow) -> DbResult<Aggregate> {
    Ok(Aggregate {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        name: r.try_get("name")?,
        availability_zone: r.try_get("availability_zone")?,
        hosts: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

async fn load_details(conn: &mut Conn, aggs: &mut [Aggregate]) -> DbResult<()> {
    if aggs.is_empty() {
        return Ok(());
    }
    let hosts = sqlx::query("SELECT aggregate_id, host FROM aggregate_hosts ORDER BY host")
        .fetch_all(&mut *conn)
        .await?;
    let meta = sqlx::query("SELECT aggregate_id, key, value FROM aggregate_metadata")
        .fetch_all(&mut *conn)
        .await?;
    let mut by_id: BTreeMap<i64, &mut Aggregate> = aggs.iter_mut().map(|a| (a.id, a)).collect();
    for r in &hosts {
        if let Some(a) = by_id.get_mut(&r.try_get::<i64, _>("aggregate_id")?) {
            a.hosts.push(r.try_get("host")?);
        }
    }
    for r in &meta {
        if let Some(a) = by_id.get_mut(&r.try_get::<i64, _>("aggregate_id")?) {
            a.metadata.insert(r.try_get("key")?, r.try_get("value")?);
        }
    }
    Ok(())
}

/// Every aggregate with its hosts and metadata, by id (the scheduler's view).
pub async fn all(conn: &mut Conn) -> DbResult<Vec<Aggregate>> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM aggregates ORDER BY id"))
        .fetch_all(&mut *conn)
        .await?;
    let mut out = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    load_details(conn, &mut out).await?;
    Ok(out)
}

/// The availability zone of `host`: that of a zoned aggregate it is in (Nova keeps a host in
/// one zone; with several, the newest aggregate's, as the scheduler's host states have it).
pub async fn zone_of_host(conn: &mut Conn, host: &str) -> DbResult<Option<String>> {
    sqlx::query_scalar(
        "SELECT a.availability_zone FROM aggregates a JOIN aggregate_hosts h \
         ON h.aggregate_id = a.id WHERE h.host = $1 AND a.availability_zone IS NOT NULL \
         ORDER BY a.id DESC LIMIT 1",
    )
    .bind(host)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn get(conn: &mut Conn, id: i64) -> DbResult<Option<Aggregate>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM aggregates WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut a = [from_row(&row)?];
    load_details(conn, &mut a).await?;
    let [a] = a;
    Ok(Some(a))
}

/// Whether another aggregate than `except` is named `name`.
pub async fn name_taken(conn: &mut Conn, name: &str, except: Option<i64>) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM aggregates WHERE name = $1 AND id <> $2",
    )
    .bind(name)
    .bind(except.unwrap_or(-1))
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// Creates an aggregate with the next id (inside a write transaction).
pub async fn insert(conn: &mut Conn, name: &str, az: Option<&str>) -> DbResult<Aggregate> {
    let id = ferrostack_store::next_id(conn, ferrostack_store::IdSeq::Aggregates).await?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let now = ferrostack_store::now_micros();
    sqlx::query(&format!(
        "INSERT INTO aggregates ({COLS}) VALUES ($1, $2, $3, $4, $5, NULL)"
    ))
    .bind(id)
    .bind(&uuid)
    .bind(name)
    .bind(az)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if let Some(az) = az {
        set_metadata(conn, id, AZ_KEY, Some(az)).await?;
    }
    Ok(get(conn, id).await?.unwrap_or(Aggregate {
        id,
        uuid,
        name: name.into(),
        availability_zone: az.map(str::to_string),
        hosts: vec![],
        metadata: BTreeMap::new(),
        created_at: now,
        updated_at: None,
    }))
}

pub async fn rename(conn: &mut Conn, id: i64, name: &str) -> DbResult<()> {
    sqlx::query("UPDATE aggregates SET name = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(name)
        .bind(ferrostack_store::now_micros())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets (or with `None` removes) one metadata key; the `availability_zone` key also sets the
/// aggregate's zone.
pub async fn set_metadata(
    conn: &mut Conn,
    id: i64,
    key: &str,
    value: Option<&str>,
) -> DbResult<()> {
    sqlx::query("DELETE FROM aggregate_metadata WHERE aggregate_id = $1 AND key = $2")
        .bind(id)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    if let Some(v) = value {
        sqlx::query(
            "INSERT INTO aggregate_metadata (aggregate_id, key, value) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(key)
        .bind(v)
        .execute(&mut *conn)
        .await?;
    }
    if key == AZ_KEY {
        sqlx::query("UPDATE aggregates SET availability_zone = $2 WHERE id = $1")
            .bind(id)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("UPDATE aggregates SET updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(ferrostack_store::now_micros())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: i64) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM aggregates WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn add_host(conn: &mut Conn, id: i64, host: &str) -> DbResult<()> {
    sqlx::query("INSERT INTO aggregate_hosts (aggregate_id, host) VALUES ($1, $2)")
        .bind(id)
        .bind(host)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn remove_host(conn: &mut Conn, id: i64, host: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM aggregate_hosts WHERE aggregate_id = $1 AND host = $2")
        .bind(id)
        .bind(host)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// The availability zone of `host`: that of the aggregates it is in (the first by id when
/// several agree, as they must), else `default_az`. Servers show it as
/// `OS-EXT-AZ:availability_zone`; the scheduler matches requested zones with it.
pub fn zone_of(aggregates: &[Aggregate], host: &str, default_az: &str) -> String {
    aggregates
        .iter()
        .filter(|a| a.hosts.iter().any(|h| h == host))
        .find_map(|a| a.availability_zone.clone())
        .unwrap_or_else(|| default_az.to_string())
}

/// [`zone_of`] reading the aggregates.
pub async fn host_availability_zone(
    conn: &mut Conn,
    host: &str,
    default_az: &str,
) -> DbResult<String> {
    Ok(zone_of(&all(conn).await?, host, default_az))
}
