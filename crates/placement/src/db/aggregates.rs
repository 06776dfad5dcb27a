use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};

pub async fn for_provider(conn: &mut Conn, uuid: &str) -> DbResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT aggregate FROM placement_provider_aggregates WHERE provider_uuid = $1 \
         ORDER BY aggregate",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await
}

/// `(provider, aggregate)` of every provider.
pub async fn all(conn: &mut Conn) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT provider_uuid, aggregate FROM placement_provider_aggregates")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("provider_uuid")?, r.try_get("aggregate")?)))
        .collect()
}

/// Replaces the provider's aggregates.
pub async fn set_for_provider(conn: &mut Conn, uuid: &str, aggs: &[String]) -> DbResult<()> {
    sqlx::query("DELETE FROM placement_provider_aggregates WHERE provider_uuid = $1")
        .bind(uuid)
        .execute(&mut *conn)
        .await?;
    for a in aggs {
        sqlx::query(
            "INSERT INTO placement_provider_aggregates (provider_uuid, aggregate) VALUES ($1, $2)",
        )
        .bind(uuid)
        .bind(a)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
