//! `subnets` rows.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{decode_err, json_col, tags, to_json, Conn, DbResult};
use crate::model::{Ipv6Mode, Subnet};

const COLS: &str = "id, project_id, network_id, name, description, ip_version, cidr, gateway_ip, \
    enable_dhcp, ipv6_ra_mode, ipv6_address_mode, subnetpool_id, dns_nameservers, host_routes, \
    allocation_pools, revision_number, created_at, updated_at";

fn mode(r: &AnyRow, col: &str) -> DbResult<Option<Ipv6Mode>> {
    match r.try_get::<Option<String>, _>(col)? {
        None => Ok(None),
        Some(s) => Ipv6Mode::parse(&s)
            .map(Some)
            .ok_or_else(|| decode_err(col, &s)),
    }
}

fn from_row(r: &AnyRow) -> DbResult<Subnet> {
    let cidr: String = r.try_get("cidr")?;
    let gw: Option<String> = r.try_get("gateway_ip")?;
    Ok(Subnet {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        network_id: r.try_get("network_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        cidr: cidr.parse().map_err(|_| decode_err("cidr", &cidr))?,
        gateway_ip: match gw {
            None => None,
            Some(g) => Some(g.parse().map_err(|_| decode_err("gateway_ip", &g))?),
        },
        enable_dhcp: r.try_get::<i64, _>("enable_dhcp")? != 0,
        ipv6_ra_mode: mode(r, "ipv6_ra_mode")?,
        ipv6_address_mode: mode(r, "ipv6_address_mode")?,
        subnetpool_id: r.try_get("subnetpool_id")?,
        dns_nameservers: json_col(r, "dns_nameservers")?,
        host_routes: json_col(r, "host_routes")?,
        allocation_pools: json_col(r, "allocation_pools")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        tags: Vec::new(),
    })
}

async fn with_tags(conn: &mut Conn, rows: Vec<AnyRow>) -> DbResult<Vec<Subnet>> {
    let mut subnets = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    tags::fill(conn, &mut subnets).await?;
    Ok(subnets)
}

pub async fn insert(conn: &mut Conn, s: &Subnet) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO subnets ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18)"
    ))
    .bind(&s.id)
    .bind(&s.project_id)
    .bind(&s.network_id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(i64::from(s.ip_version()))
    .bind(s.cidr.to_string())
    .bind(s.gateway_ip.map(|g| g.to_string()))
    .bind(i64::from(s.enable_dhcp))
    .bind(s.ipv6_ra_mode.map(|m| m.as_str()))
    .bind(s.ipv6_address_mode.map(|m| m.as_str()))
    .bind(&s.subnetpool_id)
    .bind(to_json(&s.dns_nameservers))
    .bind(to_json(&s.host_routes))
    .bind(to_json(&s.allocation_pools))
    .bind(s.revision_number)
    .bind(s.created_at)
    .bind(s.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<Subnet>> {
    let rows = sqlx::query(&format!("SELECT {COLS} FROM subnets WHERE id = $1"))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(with_tags(conn, rows).await?.pop())
}

pub async fn for_network(conn: &mut Conn, network_id: &str) -> DbResult<Vec<Subnet>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM subnets WHERE network_id = $1 ORDER BY created_at, id"
    ))
    .bind(network_id)
    .fetch_all(&mut *conn)
    .await?;
    with_tags(conn, rows).await
}

/// Subnets in creation order; with `project`, those of networks that project sees.
pub async fn list(conn: &mut Conn, project: Option<&str>) -> DbResult<Vec<Subnet>> {
    let rows = match project {
        None => {
            sqlx::query(&format!("SELECT {COLS} FROM subnets ORDER BY created_at, id"))
                .fetch_all(&mut *conn)
                .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {} FROM subnets s WHERE s.project_id = $1 OR s.network_id IN \
                 (SELECT id FROM networks WHERE project_id = $1 OR shared = 1 OR router_external = 1 \
                 OR id IN (SELECT object_id FROM network_rbacs WHERE target_project = $1)) \
                 ORDER BY s.created_at, s.id",
                COLS.split(", ")
                    .map(|c| format!("s.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    with_tags(conn, rows).await
}

pub async fn update(conn: &mut Conn, s: &Subnet) -> DbResult<()> {
    sqlx::query(
        "UPDATE subnets SET name = $2, description = $3, gateway_ip = $4, enable_dhcp = $5, \
         dns_nameservers = $6, host_routes = $7, allocation_pools = $8, revision_number = $9, \
         updated_at = $10 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.gateway_ip.map(|g| g.to_string()))
    .bind(i64::from(s.enable_dhcp))
    .bind(to_json(&s.dns_nameservers))
    .bind(to_json(&s.host_routes))
    .bind(to_json(&s.allocation_pools))
    .bind(s.revision_number)
    .bind(s.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM subnets WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    tags::remove_all(conn, id).await
}
