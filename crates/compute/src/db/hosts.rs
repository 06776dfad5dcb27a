//! Compute services (os-services) and compute nodes (os-hypervisors), written by agents when
//! they register and heartbeat.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};

pub use crate::model::{Node, Service};

const SERVICE_COLS: &str = "id, uuid, host, service_binary, disabled, disabled_reason, \
    forced_down, last_seen_up, created_at, updated_at";
const NODE_COLS: &str = "id, uuid, host, hypervisor_hostname, hypervisor_type, \
    hypervisor_version, vcpus, memory_mb, local_gb, host_ip, cpu_info, uptime_seconds, traits";

fn service_row(r: &AnyRow) -> DbResult<Service> {
    Ok(Service {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        host: r.try_get("host")?,
        binary: r.try_get("service_binary")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        disabled_reason: r.try_get("disabled_reason")?,
        forced_down: r.try_get::<i64, _>("forced_down")? != 0,
        last_seen_up: r.try_get("last_seen_up")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn node_row(r: &AnyRow) -> DbResult<Node> {
    Ok(Node {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        host: r.try_get("host")?,
        hypervisor_hostname: r.try_get("hypervisor_hostname")?,
        hypervisor_type: r.try_get("hypervisor_type")?,
        hypervisor_version: r.try_get("hypervisor_version")?,
        vcpus: r.try_get("vcpus")?,
        memory_mb: r.try_get("memory_mb")?,
        local_gb: r.try_get("local_gb")?,
        host_ip: r.try_get("host_ip")?,
        cpu_info: r.try_get("cpu_info")?,
        uptime_seconds: r.try_get("uptime_seconds")?,
        traits: serde_json::from_str(&r.try_get::<String, _>("traits")?).unwrap_or_default(),
    })
}

pub async fn services(conn: &mut Conn) -> DbResult<Vec<Service>> {
    let rows = sqlx::query(&format!(
        "SELECT {SERVICE_COLS} FROM compute_services ORDER BY id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(service_row).collect()
}

pub async fn service_by_uuid(conn: &mut Conn, uuid: &str) -> DbResult<Option<Service>> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLS} FROM compute_services WHERE uuid = $1"
    ))
    .bind(uuid)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(service_row).transpose()
}

pub async fn service_by_id(conn: &mut Conn, id: i64) -> DbResult<Option<Service>> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLS} FROM compute_services WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(service_row).transpose()
}

pub async fn service_by_host(
    conn: &mut Conn,
    host: &str,
    binary: &str,
) -> DbResult<Option<Service>> {
    let row = sqlx::query(&format!(
        "SELECT {SERVICE_COLS} FROM compute_services WHERE host = $1 AND service_binary = $2"
    ))
    .bind(host)
    .bind(binary)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(service_row).transpose()
}

/// Creates the service row of `host`/`binary` if missing; returns it.
pub async fn ensure_service(
    conn: &mut Conn,
    host: &str,
    binary: &str,
    now: i64,
) -> DbResult<Service> {
    if let Some(s) = service_by_host(conn, host, binary).await? {
        return Ok(s);
    }
    let id = ferrostack_store::next_id(conn, ferrostack_store::IdSeq::ComputeServices).await?;
    sqlx::query(
        "INSERT INTO compute_services (id, uuid, host, service_binary, topic, last_seen_up, \
         created_at, updated_at) VALUES ($5, $1, $2, $3, 'compute', $4, $4, $4)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(host)
    .bind(binary)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    service_by_host(conn, host, binary)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn heartbeat(conn: &mut Conn, host: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE compute_services SET last_seen_up = $2 WHERE host = $1 AND service_binary = 'nova-compute'",
    )
    .bind(host)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_service_status(
    conn: &mut Conn,
    id: i64,
    disabled: Option<(bool, Option<&str>)>,
    forced_down: Option<bool>,
    now: i64,
) -> DbResult<()> {
    if let Some((d, reason)) = disabled {
        sqlx::query(
            "UPDATE compute_services SET disabled = $2, disabled_reason = $3, updated_at = $4 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(d as i64)
        .bind(reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    if let Some(f) = forced_down {
        sqlx::query("UPDATE compute_services SET forced_down = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(f as i64)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn delete_service(conn: &mut Conn, id: i64, host: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM compute_nodes WHERE host = $1")
        .bind(host)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM compute_services WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn nodes(conn: &mut Conn) -> DbResult<Vec<Node>> {
    let rows = sqlx::query(&format!(
        "SELECT {NODE_COLS} FROM compute_nodes ORDER BY id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(node_row).collect()
}

pub async fn node_by_host(conn: &mut Conn, host: &str) -> DbResult<Option<Node>> {
    let row = sqlx::query(&format!(
        "SELECT {NODE_COLS} FROM compute_nodes WHERE host = $1"
    ))
    .bind(host)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(node_row).transpose()
}

/// Creates or refreshes the node of `host` from what its driver reports; returns its uuid
/// (stable: it is the placement resource provider's uuid).
pub async fn upsert_node(
    conn: &mut Conn,
    host: &str,
    info: &ferrostack_virt::HostInfo,
    now: i64,
) -> DbResult<String> {
    let traits = serde_json::to_string(&info.traits).unwrap_or_else(|_| "[]".into());
    if let Some(n) = node_by_host(conn, host).await? {
        sqlx::query(
            "UPDATE compute_nodes SET hypervisor_type = $2, hypervisor_version = $3, vcpus = $4, \
             memory_mb = $5, local_gb = $6, cpu_info = $7, uptime_seconds = $8, traits = $9, \
             updated_at = $10 WHERE id = $1",
        )
        .bind(n.id)
        .bind(&info.hypervisor_type)
        .bind(info.hypervisor_version)
        .bind(info.vcpus)
        .bind(info.memory_mb)
        .bind(info.local_gb)
        .bind(info.cpu_info.to_string())
        .bind(info.uptime_seconds)
        .bind(&traits)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        return Ok(n.uuid);
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let id = ferrostack_store::next_id(conn, ferrostack_store::IdSeq::ComputeNodes).await?;
    sqlx::query(
        "INSERT INTO compute_nodes (id, uuid, host, hypervisor_hostname, hypervisor_type, \
         hypervisor_version, vcpus, memory_mb, local_gb, cpu_info, uptime_seconds, traits, \
         created_at, updated_at) VALUES ($12, $1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $11)",
    )
    .bind(&uuid)
    .bind(host)
    .bind(&info.hypervisor_type)
    .bind(info.hypervisor_version)
    .bind(info.vcpus)
    .bind(info.memory_mb)
    .bind(info.local_gb)
    .bind(info.cpu_info.to_string())
    .bind(info.uptime_seconds)
    .bind(&traits)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(uuid)
}
