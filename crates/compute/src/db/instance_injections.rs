//! Sealed injections (`instance_injections`): personality files and the admin password of
//! an instance's create or rebuild, until its host has built the guest with them.

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};

/// Records (or replaces) the injection of `instance_uuid` for its operation at `generation`.
pub async fn put(
    conn: &mut Conn,
    instance_uuid: &str,
    generation: i64,
    sealed: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query("DELETE FROM instance_injections WHERE instance_uuid = $1")
        .bind(instance_uuid)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO instance_injections (instance_uuid, generation, sealed, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(instance_uuid)
    .bind(generation)
    .bind(sealed)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The injections of the instances placed on `host`: (instance uuid, generation, sealed).
pub async fn on_host(conn: &mut Conn, host: &str) -> DbResult<Vec<(String, i64, String)>> {
    let rows = sqlx::query(
        "SELECT j.instance_uuid, j.generation, j.sealed FROM instance_injections j \
         JOIN instances i ON i.uuid = j.instance_uuid WHERE i.host = $1",
    )
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
}

/// Drops the injection of `instance_uuid` made for an operation at or before `generation`
/// (its guest was built, or the operation ended otherwise).
pub async fn drop_up_to(conn: &mut Conn, instance_uuid: &str, generation: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM instance_injections WHERE instance_uuid = $1 AND generation <= $2")
        .bind(instance_uuid)
        .bind(generation)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
