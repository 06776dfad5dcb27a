//! `port_forwardings` rows.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};
use crate::model::PortForwarding;

const COLS: &str = "id, floatingip_id, internal_port_id, internal_ip_address, internal_port, \
    external_port, protocol, description";

fn port(r: &AnyRow, col: &str) -> DbResult<u16> {
    let v: i64 = r.try_get(col)?;
    u16::try_from(v).map_err(|_| super::decode_err(col, &v.to_string()))
}

fn from_row(r: &AnyRow) -> DbResult<PortForwarding> {
    let ip: String = r.try_get("internal_ip_address")?;
    Ok(PortForwarding {
        id: r.try_get("id")?,
        floatingip_id: r.try_get("floatingip_id")?,
        internal_port_id: r.try_get("internal_port_id")?,
        internal_ip_address: ip
            .parse()
            .map_err(|_| super::decode_err("internal_ip_address", &ip))?,
        internal_port: port(r, "internal_port")?,
        external_port: port(r, "external_port")?,
        protocol: r.try_get("protocol")?,
        description: r.try_get("description")?,
    })
}

pub async fn insert(conn: &mut Conn, p: &PortForwarding) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO port_forwardings ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&p.id)
    .bind(&p.floatingip_id)
    .bind(&p.internal_port_id)
    .bind(p.internal_ip_address.to_string())
    .bind(i64::from(p.internal_port))
    .bind(i64::from(p.external_port))
    .bind(&p.protocol)
    .bind(&p.description)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes every column but the ids.
pub async fn update(conn: &mut Conn, p: &PortForwarding) -> DbResult<()> {
    sqlx::query(
        "UPDATE port_forwardings SET internal_port_id = $2, internal_ip_address = $3, \
         internal_port = $4, external_port = $5, protocol = $6, description = $7 WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.internal_port_id)
    .bind(p.internal_ip_address.to_string())
    .bind(i64::from(p.internal_port))
    .bind(i64::from(p.external_port))
    .bind(&p.protocol)
    .bind(&p.description)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The port forwardings of floating IP `fip`, by id.
pub async fn of_floating_ip(conn: &mut Conn, fip: &str) -> DbResult<Vec<PortForwarding>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM port_forwardings WHERE floatingip_id = $1 ORDER BY id"
    ))
    .bind(fip)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM port_forwardings WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_of_floating_ip(conn: &mut Conn, fip: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM port_forwardings WHERE floatingip_id = $1")
        .bind(fip)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The floating IPs with forwardings to port `port_id` (being deleted: they go too).
pub async fn floating_ips_to_port(conn: &mut Conn, port_id: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT floatingip_id FROM port_forwardings WHERE internal_port_id = $1",
    )
    .bind(port_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| r.try_get("floatingip_id")).collect()
}

pub async fn delete_to_port(conn: &mut Conn, port_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM port_forwardings WHERE internal_port_id = $1")
        .bind(port_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
