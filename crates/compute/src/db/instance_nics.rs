//! `instance_nics`: each instance's ports, in the order its guest sees them.

use std::collections::HashMap;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};
use crate::model::InstanceNic;

/// The NICs of a new instance, at positions 0, 1, ... in order.
pub async fn insert(conn: &mut Conn, instance_uuid: &str, nics: &[InstanceNic]) -> DbResult<()> {
    for (i, n) in nics.iter().enumerate() {
        let at = InstanceNic {
            position: u32::try_from(i).unwrap_or(u32::MAX),
            ..n.clone()
        };
        insert_one(conn, instance_uuid, &at).await?;
    }
    Ok(())
}

/// One NIC, at its position (an attached interface).
pub async fn insert_one(conn: &mut Conn, instance_uuid: &str, n: &InstanceNic) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO instance_nics (instance_uuid, position, port_id, network_id, mac, mtu, preserve) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(instance_uuid)
    .bind(i64::from(n.position))
    .bind(&n.port_id)
    .bind(&n.network_id)
    .bind(&n.mac)
    .bind(i64::from(n.mtu))
    .bind(i64::from(n.preserve))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes the instance's NIC of port `port_id` (a detached interface).
pub async fn delete_one(conn: &mut Conn, instance_uuid: &str, port_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM instance_nics WHERE instance_uuid = $1 AND port_id = $2")
        .bind(instance_uuid)
        .bind(port_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn from_row(r: &AnyRow) -> DbResult<(String, InstanceNic)> {
    let mtu: i64 = r.try_get("mtu")?;
    let position: i64 = r.try_get("position")?;
    Ok((
        r.try_get("instance_uuid")?,
        InstanceNic {
            position: u32::try_from(position).unwrap_or(u32::MAX),
            port_id: r.try_get("port_id")?,
            network_id: r.try_get("network_id")?,
            mac: r.try_get("mac")?,
            mtu: u32::try_from(mtu).unwrap_or(1500),
            preserve: r.try_get::<i64, _>("preserve")? != 0,
        },
    ))
}

pub async fn of_instance(conn: &mut Conn, instance_uuid: &str) -> DbResult<Vec<InstanceNic>> {
    let rows = sqlx::query(
        "SELECT instance_uuid, position, port_id, network_id, mac, mtu, preserve FROM instance_nics \
         WHERE instance_uuid = $1 ORDER BY position",
    )
    .bind(instance_uuid)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| from_row(r).map(|x| x.1)).collect()
}

/// The NICs of the instances `uuids`, by instance.
pub async fn of_instances(
    conn: &mut Conn,
    uuids: &[&str],
) -> DbResult<HashMap<String, Vec<InstanceNic>>> {
    let mut out: HashMap<String, Vec<InstanceNic>> = HashMap::new();
    for chunk in uuids.chunks(200) {
        let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT instance_uuid, position, port_id, network_id, mac, mtu, preserve FROM instance_nics \
             WHERE instance_uuid IN ({}) ORDER BY instance_uuid, position",
            ph.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for u in chunk {
            q = q.bind(*u);
        }
        for r in &q.fetch_all(&mut *conn).await? {
            let (uuid, nic) = from_row(r)?;
            out.entry(uuid).or_default().push(nic);
        }
    }
    Ok(out)
}

pub async fn delete_of(conn: &mut Conn, instance_uuid: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM instance_nics WHERE instance_uuid = $1")
        .bind(instance_uuid)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
