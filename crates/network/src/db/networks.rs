//! `networks` rows.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{decode_err, json_col, tags, to_json, Conn, DbResult};
use crate::model::{Network, NetworkType, Segment};

const COLS: &str = "id, project_id, name, description, admin_state_up, status, shared, router_external, \
    is_default, mtu, port_security_enabled, network_type, physical_network, segmentation_id, az_hints, \
    revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Network> {
    let t: String = r.try_get("network_type")?;
    let physnet: String = r.try_get("physical_network")?;
    let seg: i64 = r.try_get("segmentation_id")?;
    let network_type = NetworkType::parse(&t).ok_or_else(|| decode_err("network_type", &t))?;
    Ok(Network {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        admin_state_up: r.try_get::<i64, _>("admin_state_up")? != 0,
        status: r.try_get("status")?,
        shared: r.try_get::<i64, _>("shared")? != 0,
        router_external: r.try_get::<i64, _>("router_external")? != 0,
        is_default: r.try_get::<i64, _>("is_default")? != 0,
        mtu: r.try_get("mtu")?,
        port_security_enabled: r.try_get::<i64, _>("port_security_enabled")? != 0,
        segment: Segment {
            network_type,
            physical_network: (!physnet.is_empty()).then_some(physnet),
            segmentation_id: (network_type != NetworkType::Flat).then_some(seg),
        },
        az_hints: json_col(r, "az_hints")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        subnets: Vec::new(),
        tags: Vec::new(),
        rbac: Vec::new(),
    })
}

/// Fills each network's subnet ids and tags.
async fn complete(conn: &mut Conn, nets: &mut [Network]) -> DbResult<()> {
    if nets.is_empty() {
        return Ok(());
    }
    let rows = if nets.len() == 1 {
        sqlx::query(
            "SELECT id, network_id FROM subnets WHERE network_id = $1 ORDER BY created_at, id",
        )
        .bind(&nets[0].id)
        .fetch_all(&mut *conn)
        .await?
    } else {
        sqlx::query("SELECT id, network_id FROM subnets ORDER BY created_at, id")
            .fetch_all(&mut *conn)
            .await?
    };
    let mut by: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in rows {
        by.entry(r.try_get("network_id")?)
            .or_default()
            .push(r.try_get("id")?);
    }
    tags::fill(conn, nets).await?;
    let one = (nets.len() == 1).then(|| nets[0].id.clone());
    let mut rbac: std::collections::HashMap<String, Vec<crate::model::RbacPolicy>> =
        Default::default();
    for p in super::rbac::list(conn, one.as_deref()).await? {
        rbac.entry(p.object_id.clone()).or_default().push(p);
    }
    for n in nets.iter_mut() {
        n.subnets = by.remove(&n.id).unwrap_or_default();
        n.rbac = rbac.remove(&n.id).unwrap_or_default();
    }
    Ok(())
}

pub async fn insert(conn: &mut Conn, n: &Network) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO networks ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18)"
    ))
    .bind(&n.id)
    .bind(&n.project_id)
    .bind(&n.name)
    .bind(&n.description)
    .bind(i64::from(n.admin_state_up))
    .bind(&n.status)
    .bind(i64::from(n.shared))
    .bind(i64::from(n.router_external))
    .bind(i64::from(n.is_default))
    .bind(n.mtu)
    .bind(i64::from(n.port_security_enabled))
    .bind(n.segment.network_type.as_str())
    .bind(n.segment.physical_network.clone().unwrap_or_default())
    .bind(n.segment.segmentation_id.unwrap_or(0))
    .bind(to_json(&n.az_hints))
    .bind(n.revision_number)
    .bind(n.created_at)
    .bind(n.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<Network>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM networks WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut nets = vec![from_row(&row)?];
    complete(conn, &mut nets).await?;
    Ok(nets.pop())
}

/// Networks in creation order; with `project`, only those of that project, shared ones and
/// external ones (what a project sees).
pub async fn list(conn: &mut Conn, project: Option<&str>) -> DbResult<Vec<Network>> {
    let rows = match project {
        None => {
            sqlx::query(&format!("SELECT {COLS} FROM networks ORDER BY created_at, id"))
                .fetch_all(&mut *conn)
                .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM networks WHERE project_id = $1 OR shared = 1 OR router_external = 1 \
                 OR id IN (SELECT object_id FROM network_rbacs WHERE target_project = $1) \
                 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut nets = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    complete(conn, &mut nets).await?;
    Ok(nets)
}

/// Writes the changeable columns and the new revision and time.
pub async fn update(conn: &mut Conn, n: &Network) -> DbResult<()> {
    sqlx::query(
        "UPDATE networks SET name = $2, description = $3, admin_state_up = $4, shared = $5, \
         router_external = $6, is_default = $7, mtu = $8, port_security_enabled = $9, \
         revision_number = $10, updated_at = $11 WHERE id = $1",
    )
    .bind(&n.id)
    .bind(&n.name)
    .bind(&n.description)
    .bind(i64::from(n.admin_state_up))
    .bind(i64::from(n.shared))
    .bind(i64::from(n.router_external))
    .bind(i64::from(n.is_default))
    .bind(n.mtu)
    .bind(i64::from(n.port_security_enabled))
    .bind(n.revision_number)
    .bind(n.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Bumps a network's revision (a subnet of it was added, changed or removed).
pub async fn bump_revision(conn: &mut Conn, id: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE networks SET revision_number = revision_number + 1, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    super::rbac::delete_for(conn, id).await?;
    super::auto_allocated::delete_for_network(conn, id).await?;
    sqlx::query("DELETE FROM networks WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    tags::remove_all(conn, id).await
}

/// Segmentation ids of a type already taken (to pick a free VNI).
pub async fn used_segments(conn: &mut Conn, network_type: NetworkType) -> DbResult<Vec<i64>> {
    let rows = sqlx::query("SELECT segmentation_id FROM networks WHERE network_type = $1")
        .bind(network_type.as_str())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.try_get("segmentation_id")).collect()
}
