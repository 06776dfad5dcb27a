//! Auto-allocated topologies (`auto_allocated_topologies`): the network and router
//! get-me-a-network made for a project.

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};

/// (network, router) of `project`'s topology.
pub async fn get(conn: &mut Conn, project: &str) -> DbResult<Option<(String, Option<String>)>> {
    let row = sqlx::query(
        "SELECT network_id, router_id FROM auto_allocated_topologies WHERE project_id = $1",
    )
    .bind(project)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok((r.try_get("network_id")?, r.try_get("router_id")?)))
        .transpose()
}

/// Records `project`'s topology; false when another request recorded one first.
pub async fn insert(
    conn: &mut Conn,
    project: &str,
    network_id: &str,
    router_id: &str,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO auto_allocated_topologies (project_id, network_id, router_id) \
         VALUES ($1, $2, $3) ON CONFLICT (project_id) DO NOTHING",
    )
    .bind(project)
    .bind(network_id)
    .bind(router_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(conn: &mut Conn, project: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM auto_allocated_topologies WHERE project_id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets the topology whose network is `network_id` (the network is being deleted).
pub async fn delete_for_network(conn: &mut Conn, network_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM auto_allocated_topologies WHERE network_id = $1")
        .bind(network_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
