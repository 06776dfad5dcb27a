//! `subnetpools` rows.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{json_col, tags, to_json, Conn, DbResult};
use crate::model::SubnetPool;

const COLS: &str = "id, project_id, name, description, ip_version, prefixes, default_prefixlen, \
    min_prefixlen, max_prefixlen, shared, is_default, default_quota, revision_number, created_at, updated_at";

fn small(r: &AnyRow, col: &str) -> DbResult<u8> {
    let v: i64 = r.try_get(col)?;
    u8::try_from(v).map_err(|_| super::decode_err(col, &v.to_string()))
}

fn from_row(r: &AnyRow) -> DbResult<SubnetPool> {
    Ok(SubnetPool {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        ip_version: small(r, "ip_version")?,
        prefixes: json_col(r, "prefixes")?,
        default_prefixlen: small(r, "default_prefixlen")?,
        min_prefixlen: small(r, "min_prefixlen")?,
        max_prefixlen: small(r, "max_prefixlen")?,
        shared: r.try_get::<i64, _>("shared")? != 0,
        is_default: r.try_get::<i64, _>("is_default")? != 0,
        default_quota: r.try_get("default_quota")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        tags: Vec::new(),
    })
}

async fn with_tags(conn: &mut Conn, rows: Vec<AnyRow>) -> DbResult<Vec<SubnetPool>> {
    let mut v = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    tags::fill(conn, &mut v).await?;
    Ok(v)
}

pub async fn insert(conn: &mut Conn, p: &SubnetPool) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO subnetpools ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ))
    .bind(&p.id)
    .bind(&p.project_id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(i64::from(p.ip_version))
    .bind(to_json(&p.prefixes))
    .bind(i64::from(p.default_prefixlen))
    .bind(i64::from(p.min_prefixlen))
    .bind(i64::from(p.max_prefixlen))
    .bind(i64::from(p.shared))
    .bind(i64::from(p.is_default))
    .bind(p.default_quota)
    .bind(p.revision_number)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<SubnetPool>> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM subnetpools WHERE id = $1"))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(with_tags(conn, rows).await?.pop())
}

/// Pools in creation order; with `project`, that project's and shared ones.
pub async fn list(conn: &mut Conn, project: Option<&str>) -> DbResult<Vec<SubnetPool>> {
    let rows = match project {
        None => {
            sqlx::query(&format!("SELECT {COLS} FROM subnetpools ORDER BY created_at, id"))
                .fetch_all(&mut *conn)
                .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM subnetpools WHERE project_id = $1 OR shared = 1 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    with_tags(conn, rows).await
}

pub async fn update(conn: &mut Conn, p: &SubnetPool) -> DbResult<()> {
    sqlx::query(
        "UPDATE subnetpools SET name = $2, description = $3, prefixes = $4, default_prefixlen = $5, \
         min_prefixlen = $6, max_prefixlen = $7, is_default = $8, default_quota = $9, \
         revision_number = $10, updated_at = $11 WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(to_json(&p.prefixes))
    .bind(i64::from(p.default_prefixlen))
    .bind(i64::from(p.min_prefixlen))
    .bind(i64::from(p.max_prefixlen))
    .bind(i64::from(p.is_default))
    .bind(p.default_quota)
    .bind(p.revision_number)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM subnetpools WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    tags::remove_all(conn, id).await
}

/// Subnets allocated from the pool (their CIDRs).
pub async fn subnet_cidrs(conn: &mut Conn, id: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query("SELECT cidr FROM subnets WHERE subnetpool_id = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get("cidr")).collect()
}
