//! `network_hosts`: the hosts whose agents run a data plane, and their VXLAN endpoints.

use ferrostack_store::sqlx::{self, Row};

use super::{decode_err, Conn, DbResult};

/// A registered data-plane host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetHost {
    pub host: String,
    pub vtep_ip: std::net::IpAddr,
    pub vtep_port: u16,
    pub created_at: i64,
    pub heartbeat_at: i64,
}

/// Registers `host` (or refreshes its endpoint and heartbeat).
pub async fn upsert(conn: &mut Conn, host: &str, ip: &str, port: u16, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO network_hosts (host, vtep_ip, vtep_port, created_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (host) DO UPDATE SET vtep_ip = $2, vtep_port = $3, heartbeat_at = $4",
    )
    .bind(host)
    .bind(ip)
    .bind(i64::from(port))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list(conn: &mut Conn) -> DbResult<Vec<NetHost>> {
    let rows = sqlx::query(
        "SELECT host, vtep_ip, vtep_port, created_at, heartbeat_at FROM network_hosts ORDER BY host",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let ip: String = r.try_get("vtep_ip")?;
            let port: i64 = r.try_get("vtep_port")?;
            Ok(NetHost {
                host: r.try_get("host")?,
                vtep_ip: ip.parse().map_err(|_| decode_err("vtep_ip", &ip))?,
                vtep_port: u16::try_from(port)
                    .map_err(|_| decode_err("vtep_port", &port.to_string()))?,
                created_at: r.try_get("created_at")?,
                heartbeat_at: r.try_get("heartbeat_at")?,
            })
        })
        .collect()
}

/// The host names a query on ports returns (its one bind is `id`).
pub async fn select_hosts(conn: &mut Conn, sql: &str, id: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query(sql).bind(id).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}
