//! `ports` rows, their addresses (`ip_allocations`) and groups (`port_security_groups`).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{decode_err, json_col, placeholders, tags, to_json, Conn, DbResult};
use crate::model::{FixedIp, Port, PortStatus};

const COLS: &str = "id, project_id, network_id, name, description, mac_address, admin_state_up, status, \
    device_id, device_owner, binding_host_id, binding_vnic_type, binding_profile, port_security_enabled, \
    allowed_address_pairs, extra_dhcp_opts, dns_name, revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Port> {
    let status: String = r.try_get("status")?;
    Ok(Port {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        network_id: r.try_get("network_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        mac_address: r.try_get("mac_address")?,
        admin_state_up: r.try_get::<i64, _>("admin_state_up")? != 0,
        status: PortStatus::parse(&status).ok_or_else(|| decode_err("status", &status))?,
        device_id: r.try_get("device_id")?,
        device_owner: r.try_get("device_owner")?,
        binding_host_id: r.try_get("binding_host_id")?,
        binding_vnic_type: r.try_get("binding_vnic_type")?,
        binding_profile: json_col(r, "binding_profile")?,
        port_security_enabled: r.try_get::<i64, _>("port_security_enabled")? != 0,
        allowed_address_pairs: json_col(r, "allowed_address_pairs")?,
        extra_dhcp_opts: json_col(r, "extra_dhcp_opts")?,
        dns_name: r.try_get("dns_name")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        fixed_ips: Vec::new(),
        security_groups: Vec::new(),
        tags: Vec::new(),
    })
}

/// Fills addresses, groups and tags of `ports`.
async fn complete(conn: &mut Conn, ports: &mut [Port]) -> DbResult<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = ports.iter().map(|p| p.id.as_str()).collect();
    // A few ports: ask for theirs; many: read all (one scan beats a huge IN list).
    let few = ids.len() <= 50;
    let (ip_sql, sg_sql) = if few {
        let ph = placeholders(1, ids.len());
        (
            format!("SELECT port_id, subnet_id, ip_address FROM ip_allocations WHERE port_id IN ({ph})"),
            format!("SELECT port_id, security_group_id FROM port_security_groups WHERE port_id IN ({ph})"),
        )
    } else {
        (
            "SELECT port_id, subnet_id, ip_address FROM ip_allocations".to_string(),
            "SELECT port_id, security_group_id FROM port_security_groups".to_string(),
        )
    };
    let mut q = sqlx::query(&ip_sql);
    if few {
        for id in &ids {
            q = q.bind(*id);
        }
    }
    let mut ips: HashMap<String, Vec<FixedIp>> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        let ip: String = r.try_get("ip_address")?;
        ips.entry(r.try_get("port_id")?).or_default().push(FixedIp {
            subnet_id: r.try_get("subnet_id")?,
            ip_address: ip.parse().map_err(|_| decode_err("ip_address", &ip))?,
        });
    }
    let mut q = sqlx::query(&sg_sql);
    if few {
        for id in &ids {
            q = q.bind(*id);
        }
    }
    let mut sgs: HashMap<String, Vec<String>> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        sgs.entry(r.try_get("port_id")?)
            .or_default()
            .push(r.try_get("security_group_id")?);
    }
    tags::fill(conn, ports).await?;
    for p in ports.iter_mut() {
        let mut f = ips.remove(&p.id).unwrap_or_default();
        f.sort_by_key(|a| a.ip_address);
        p.fixed_ips = f;
        let mut g = sgs.remove(&p.id).unwrap_or_default();
        g.sort();
        p.security_groups = g;
    }
    Ok(())
}

pub async fn insert(conn: &mut Conn, p: &Port) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO ports ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20)"
    ))
    .bind(&p.id)
    .bind(&p.project_id)
    .bind(&p.network_id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.mac_address)
    .bind(i64::from(p.admin_state_up))
    .bind(p.status.as_str())
    .bind(&p.device_id)
    .bind(&p.device_owner)
    .bind(&p.binding_host_id)
    .bind(&p.binding_vnic_type)
    .bind(to_json(&p.binding_profile))
    .bind(i64::from(p.port_security_enabled))
    .bind(to_json(&p.allowed_address_pairs))
    .bind(to_json(&p.extra_dhcp_opts))
    .bind(&p.dns_name)
    .bind(p.revision_number)
    .bind(p.created_at)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Gives `ip` of `subnet_id` to a port; fails with a unique violation when it is taken.
pub async fn insert_ip(
    conn: &mut Conn,
    network_id: &str,
    subnet_id: &str,
    ip: IpAddr,
    port_id: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO ip_allocations (subnet_id, ip_address, port_id, network_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(subnet_id)
    .bind(ip.to_string())
    .bind(port_id)
    .bind(network_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete_ips(conn: &mut Conn, port_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM ip_allocations WHERE port_id = $1")
        .bind(port_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Takes `subnet_id`'s addresses from every port holding one (an auto-address subnet going
/// away), bumping those ports' revisions.
pub async fn release_subnet(conn: &mut Conn, subnet_id: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE ports SET revision_number = revision_number + 1, updated_at = $2 \
         WHERE id IN (SELECT port_id FROM ip_allocations WHERE subnet_id = $1)",
    )
    .bind(subnet_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM ip_allocations WHERE subnet_id = $1")
        .bind(subnet_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The addresses of a subnet held by ports.
pub async fn used_ips(conn: &mut Conn, subnet_id: &str) -> DbResult<HashSet<IpAddr>> {
    let rows = sqlx::query("SELECT ip_address FROM ip_allocations WHERE subnet_id = $1")
        .bind(subnet_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            let s: String = r.try_get("ip_address")?;
            s.parse().map_err(|_| decode_err("ip_address", &s))
        })
        .collect()
}

/// The port holding `ip` on `subnet_id`, if any.
pub async fn holder_of(conn: &mut Conn, subnet_id: &str, ip: IpAddr) -> DbResult<Option<String>> {
    let row =
        sqlx::query("SELECT port_id FROM ip_allocations WHERE subnet_id = $1 AND ip_address = $2")
            .bind(subnet_id)
            .bind(ip.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| r.try_get("port_id")).transpose()
}

/// Ports holding an address of `subnet_id`, with their device owners.
pub async fn on_subnet(conn: &mut Conn, subnet_id: &str) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT p.id, p.device_owner FROM ports p JOIN ip_allocations a ON a.port_id = p.id \
         WHERE a.subnet_id = $1",
    )
    .bind(subnet_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("device_owner")?)))
        .collect()
}

pub async fn set_security_groups(
    conn: &mut Conn,
    port_id: &str,
    groups: &[String],
) -> DbResult<()> {
    sqlx::query("DELETE FROM port_security_groups WHERE port_id = $1")
        .bind(port_id)
        .execute(&mut *conn)
        .await?;
    for g in groups {
        sqlx::query(
            "INSERT INTO port_security_groups (port_id, security_group_id) VALUES ($1, $2)",
        )
        .bind(port_id)
        .bind(g)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<Port>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM ports WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut ports = vec![from_row(&row)?];
    complete(conn, &mut ports).await?;
    Ok(ports.pop())
}

/// What a port listing is narrowed to in SQL (the rest is filtered by the API layer).
#[derive(Debug, Default, Clone)]
pub struct PortQuery<'a> {
    /// Only ports a project sees: its own and those on its networks.
    pub visible_to: Option<&'a str>,
    pub network_id: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub device_owner: Option<&'a str>,
    /// Only ports bound to this host.
    pub binding_host: Option<&'a str>,
    /// Only ports in this security group.
    pub security_group: Option<&'a str>,
}

pub async fn list(conn: &mut Conn, q: &PortQuery<'_>) -> DbResult<Vec<Port>> {
    let mut sql = format!("SELECT {COLS} FROM ports WHERE 1 = 1");
    let mut binds: Vec<&str> = Vec::new();
    if let Some(p) = q.visible_to {
        binds.push(p);
        let n = binds.len();
        sql.push_str(&format!(
            " AND (project_id = ${n} OR network_id IN (SELECT id FROM networks WHERE project_id = ${n}))"
        ));
    }
    if let Some(n_id) = q.network_id {
        binds.push(n_id);
        sql.push_str(&format!(" AND network_id = ${}", binds.len()));
    }
    if let Some(d) = q.device_id {
        binds.push(d);
        sql.push_str(&format!(" AND device_id = ${}", binds.len()));
    }
    if let Some(o) = q.device_owner {
        binds.push(o);
        sql.push_str(&format!(" AND device_owner = ${}", binds.len()));
    }
    if let Some(h) = q.binding_host {
        binds.push(h);
        sql.push_str(&format!(" AND binding_host_id = ${}", binds.len()));
    }
    if let Some(g) = q.security_group {
        binds.push(g);
        sql.push_str(&format!(
            " AND id IN (SELECT port_id FROM port_security_groups WHERE security_group_id = ${})",
            binds.len()
        ));
    }
    sql.push_str(" ORDER BY created_at, id");
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(&mut *conn).await?;
    let mut ports = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    complete(conn, &mut ports).await?;
    Ok(ports)
}

pub async fn update(conn: &mut Conn, p: &Port) -> DbResult<()> {
    sqlx::query(
        "UPDATE ports SET name = $2, description = $3, mac_address = $4, admin_state_up = $5, status = $6, \
         device_id = $7, device_owner = $8, binding_host_id = $9, binding_vnic_type = $10, \
         binding_profile = $11, port_security_enabled = $12, allowed_address_pairs = $13, \
         extra_dhcp_opts = $14, dns_name = $15, revision_number = $16, updated_at = $17 WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.mac_address)
    .bind(i64::from(p.admin_state_up))
    .bind(p.status.as_str())
    .bind(&p.device_id)
    .bind(&p.device_owner)
    .bind(&p.binding_host_id)
    .bind(&p.binding_vnic_type)
    .bind(to_json(&p.binding_profile))
    .bind(i64::from(p.port_security_enabled))
    .bind(to_json(&p.allowed_address_pairs))
    .bind(to_json(&p.extra_dhcp_opts))
    .bind(&p.dns_name)
    .bind(p.revision_number)
    .bind(p.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    delete_ips(conn, id).await?;
    // Forwardings to it go with it, as in Neutron.
    super::port_forwardings::delete_to_port(conn, id).await?;
    sqlx::query("DELETE FROM port_security_groups WHERE port_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM ports WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    tags::remove_all(conn, id).await
}

/// Ports on a network, with their device owners.
pub async fn on_network(conn: &mut Conn, network_id: &str) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT id, device_owner FROM ports WHERE network_id = $1")
        .bind(network_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("device_owner")?)))
        .collect()
}

/// The hosts the ports of a network are bound to, with the ports' device owners (each pair
/// once): who carries the network, without reading its ports whole.
pub async fn hosts_on_network(
    conn: &mut Conn,
    network_id: &str,
) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT DISTINCT binding_host_id, device_owner FROM ports WHERE network_id = $1",
    )
    .bind(network_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("binding_host_id")?, r.try_get("device_owner")?)))
        .collect()
}

/// The MACs of a network's ports bound to hosts other than `host`, with those hosts: the
/// VXLAN forwarding entries `host` needs.
pub async fn remote_macs(
    conn: &mut Conn,
    network_id: &str,
    host: &str,
) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT binding_host_id, mac_address FROM ports \
         WHERE network_id = $1 AND binding_host_id <> '' AND binding_host_id <> $2",
    )
    .bind(network_id)
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("binding_host_id")?, r.try_get("mac_address")?)))
        .collect()
}

/// One address of a port, as a DHCP server's static entry needs it.
#[derive(Debug, Clone)]
pub struct AddressEntry {
    pub port_id: String,
    pub mac_address: String,
    pub dns_name: String,
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

/// Every address of a network's ports (one entry per address), without reading the ports
/// whole.
pub async fn addresses_on_network(
    conn: &mut Conn,
    network_id: &str,
) -> DbResult<Vec<AddressEntry>> {
    let rows = sqlx::query(
        "SELECT p.id, p.mac_address, p.dns_name, a.subnet_id, a.ip_address \
         FROM ports p JOIN ip_allocations a ON a.port_id = p.id WHERE p.network_id = $1 \
         ORDER BY p.id, a.ip_address",
    )
    .bind(network_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let ip: String = r.try_get("ip_address")?;
        out.push(AddressEntry {
            port_id: r.try_get("id")?,
            mac_address: r.try_get("mac_address")?,
            dns_name: r.try_get("dns_name")?,
            subnet_id: r.try_get("subnet_id")?,
            ip_address: ip.parse().map_err(|_| decode_err("ip_address", &ip))?,
        });
    }
    Ok(out)
}

/// The addresses of a security group's members, as a rule naming the group as its remote
/// sees them: every fixed IP and the address pairs (as stored: an address or a CIDR) of each
/// port in the group, without reading the ports whole.
pub async fn group_member_addresses(
    conn: &mut Conn,
    group_id: &str,
) -> DbResult<(Vec<IpAddr>, Vec<String>)> {
    let rows = sqlx::query(
        "SELECT a.ip_address FROM ip_allocations a \
         JOIN port_security_groups g ON g.port_id = a.port_id WHERE g.security_group_id = $1",
    )
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut ips = Vec::with_capacity(rows.len());
    for r in &rows {
        let ip: String = r.try_get("ip_address")?;
        ips.push(ip.parse().map_err(|_| decode_err("ip_address", &ip))?);
    }
    let rows = sqlx::query(
        "SELECT p.allowed_address_pairs FROM ports p \
         JOIN port_security_groups g ON g.port_id = p.id \
         WHERE g.security_group_id = $1 AND p.allowed_address_pairs <> '[]'",
    )
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut pairs = Vec::new();
    for r in &rows {
        let list: Vec<crate::model::AddressPair> = json_col(r, "allowed_address_pairs")?;
        pairs.extend(list.into_iter().map(|a| a.ip_address));
    }
    Ok((ips, pairs))
}

/// Whether any port uses the security group.
pub async fn group_in_use(conn: &mut Conn, group_id: &str) -> DbResult<bool> {
    let row = sqlx::query(
        "SELECT port_id FROM port_security_groups WHERE security_group_id = $1 LIMIT 1",
    )
    .bind(group_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// Sets a port's status (what its host reported), without a new revision.
pub async fn set_status(conn: &mut Conn, id: &str, status: PortStatus, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE ports SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The routers that have ports, each with the host its ports are bound to ("" when none).
pub async fn router_hosts(conn: &mut Conn) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT DISTINCT device_id, binding_host_id FROM ports \
         WHERE device_owner IN ('network:router_interface', 'network:router_gateway') \
         ORDER BY device_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The routers whose ports are bound to `host`.
pub async fn routers_on(conn: &mut Conn, host: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT device_id FROM ports WHERE binding_host_id = $1 \
         AND device_owner IN ('network:router_interface', 'network:router_gateway') \
         ORDER BY device_id",
    )
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// The routers with a port not bound to a host that reported since `alive_since` (unbound
/// ones among them): those to schedule again.
pub async fn stranded_routers(conn: &mut Conn, alive_since: i64) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT device_id FROM ports \
         WHERE device_owner IN ('network:router_interface', 'network:router_gateway') \
         AND binding_host_id NOT IN (SELECT host FROM network_hosts WHERE heartbeat_at > $1) \
         ORDER BY device_id",
    )
    .bind(alive_since)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// Binds every port of router `router_id` to `host` (a new revision for those that move).
pub async fn bind_router_ports(
    conn: &mut Conn,
    router_id: &str,
    host: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE ports SET binding_host_id = $1, revision_number = revision_number + 1, \
         updated_at = $2 WHERE device_id = $3 AND binding_host_id <> $1 \
         AND device_owner IN ('network:router_interface', 'network:router_gateway')",
    )
    .bind(host)
    .bind(now)
    .bind(router_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
