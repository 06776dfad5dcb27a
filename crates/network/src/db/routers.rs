//! `routers` rows (their interfaces and gateway are ports).

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{json_col, ports, tags, to_json, Conn, DbResult};
use crate::model::{Router, OWNER_ROUTER_GATEWAY};

const COLS: &str = "id, project_id, name, description, admin_state_up, status, gw_network_id, \
    enable_snat, routes, az_hints, revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Router> {
    Ok(Router {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        admin_state_up: r.try_get::<i64, _>("admin_state_up")? != 0,
        status: r.try_get("status")?,
        gw_network_id: r.try_get("gw_network_id")?,
        enable_snat: r.try_get::<i64, _>("enable_snat")? != 0,
        routes: json_col(r, "routes")?,
        az_hints: json_col(r, "az_hints")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        gw_ips: Vec::new(),
        tags: Vec::new(),
    })
}

async fn complete(conn: &mut Conn, routers: &mut [Router]) -> DbResult<()> {
    if routers.is_empty() {
        return Ok(());
    }
    let gw_ports = ports::list(
        conn,
        &ports::PortQuery {
            device_owner: Some(OWNER_ROUTER_GATEWAY),
            ..Default::default()
        },
    )
    .await?;
    tags::fill(conn, routers).await?;
    for r in routers.iter_mut() {
        r.gw_ips = gw_ports
            .iter()
            .filter(|p| p.device_id == r.id)
            .flat_map(|p| p.fixed_ips.clone())
            .collect();
    }
    Ok(())
}

pub async fn insert(conn: &mut Conn, r: &Router) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO routers ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&r.id)
    .bind(&r.project_id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(i64::from(r.admin_state_up))
    .bind(&r.status)
    .bind(&r.gw_network_id)
    .bind(i64::from(r.enable_snat))
    .bind(to_json(&r.routes))
    .bind(to_json(&r.az_hints))
    .bind(r.revision_number)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<Router>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM routers WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![from_row(&row)?];
    complete(conn, &mut v).await?;
    Ok(v.pop())
}

/// Routers in creation order; with `project`, only that project's.
pub async fn list(conn: &mut Conn, project: Option<&str>) -> DbResult<Vec<Router>> {
    let rows = match project {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM routers ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM routers WHERE project_id = $1 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut v = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    complete(conn, &mut v).await?;
    Ok(v)
}

pub async fn update(conn: &mut Conn, r: &Router) -> DbResult<()> {
    sqlx::query(
        "UPDATE routers SET name = $2, description = $3, admin_state_up = $4, status = $5, \
         gw_network_id = $6, enable_snat = $7, routes = $8, revision_number = $9, updated_at = $10 \
         WHERE id = $1",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(i64::from(r.admin_state_up))
    .bind(&r.status)
    .bind(&r.gw_network_id)
    .bind(i64::from(r.enable_snat))
    .bind(to_json(&r.routes))
    .bind(r.revision_number)
    .bind(r.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM routers WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    tags::remove_all(conn, id).await
}
