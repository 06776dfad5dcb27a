//! `floating_ips` rows.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{decode_err, tags, Conn, DbResult};
use crate::model::{FloatingIp, FloatingIpStatus};

const COLS: &str =
    "id, project_id, floating_network_id, floating_ip_address, floating_port_id, port_id, \
    fixed_ip_address, router_id, status, description, revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<FloatingIp> {
    let fip: String = r.try_get("floating_ip_address")?;
    let fixed: Option<String> = r.try_get("fixed_ip_address")?;
    let status: String = r.try_get("status")?;
    Ok(FloatingIp {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        floating_network_id: r.try_get("floating_network_id")?,
        floating_ip_address: fip
            .parse()
            .map_err(|_| decode_err("floating_ip_address", &fip))?,
        floating_port_id: r.try_get("floating_port_id")?,
        port_id: r.try_get("port_id")?,
        fixed_ip_address: match fixed {
            None => None,
            Some(f) => Some(f.parse().map_err(|_| decode_err("fixed_ip_address", &f))?),
        },
        router_id: r.try_get("router_id")?,
        status: FloatingIpStatus::parse(&status).ok_or_else(|| decode_err("status", &status))?,
        description: r.try_get("description")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        tags: Vec::new(),
    })
}

async fn with_tags(conn: &mut Conn, rows: Vec<AnyRow>) -> DbResult<Vec<FloatingIp>> {
    let mut v = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    tags::fill(conn, &mut v).await?;
    Ok(v)
}

pub async fn insert(conn: &mut Conn, f: &FloatingIp) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO floating_ips ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&f.id)
    .bind(&f.project_id)
    .bind(&f.floating_network_id)
    .bind(f.floating_ip_address.to_string())
    .bind(&f.floating_port_id)
    .bind(&f.port_id)
    .bind(f.fixed_ip_address.map(|a| a.to_string()))
    .bind(&f.router_id)
    .bind(f.status.as_str())
    .bind(&f.description)
    .bind(f.revision_number)
    .bind(f.created_at)
    .bind(f.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<FloatingIp>> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM floating_ips WHERE id = $1"))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(with_tags(conn, rows).await?.pop())
}

/// Floating IPs in creation order; with `project`, only that project's.
pub async fn list(conn: &mut Conn, project: Option<&str>) -> DbResult<Vec<FloatingIp>> {
    let rows = match project {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM floating_ips ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM floating_ips WHERE project_id = $1 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    with_tags(conn, rows).await
}

/// Floating IPs forwarding to a port.
pub async fn for_port(conn: &mut Conn, port_id: &str) -> DbResult<Vec<FloatingIp>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM floating_ips WHERE port_id = $1"
    ))
    .bind(port_id)
    .fetch_all(&mut *conn)
    .await?;
    with_tags(conn, rows).await
}

/// Floating IPs routed by a router.
pub async fn for_router(conn: &mut Conn, router_id: &str) -> DbResult<Vec<FloatingIp>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM floating_ips WHERE router_id = $1"
    ))
    .bind(router_id)
    .fetch_all(&mut *conn)
    .await?;
    with_tags(conn, rows).await
}

pub async fn update(conn: &mut Conn, f: &FloatingIp) -> DbResult<()> {
    sqlx::query(
        "UPDATE floating_ips SET port_id = $2, fixed_ip_address = $3, router_id = $4, status = $5, \
         description = $6, revision_number = $7, updated_at = $8 WHERE id = $1",
    )
    .bind(&f.id)
    .bind(&f.port_id)
    .bind(f.fixed_ip_address.map(|a| a.to_string()))
    .bind(&f.router_id)
    .bind(f.status.as_str())
    .bind(&f.description)
    .bind(f.revision_number)
    .bind(f.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM floating_ips WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    tags::remove_all(conn, id).await
}

/// Sets a floating IP's status (what its router's host reported), without a new revision.
pub async fn set_status(
    conn: &mut Conn,
    id: &str,
    status: FloatingIpStatus,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE floating_ips SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
