use std::collections::BTreeMap;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};
use crate::Inventory;

fn from_row(r: &AnyRow) -> DbResult<(String, Inventory)> {
    Ok((
        r.try_get("resource_class")?,
        Inventory {
            total: r.try_get("total")?,
            reserved: r.try_get("reserved")?,
            min_unit: r.try_get("min_unit")?,
            max_unit: r.try_get("max_unit")?,
            step_size: r.try_get("step_size")?,
            allocation_ratio: r.try_get("allocation_ratio")?,
        },
    ))
}

const COLUMNS: &str =
    "resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio";

pub async fn for_provider(conn: &mut Conn, uuid: &str) -> DbResult<BTreeMap<String, Inventory>> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM placement_inventories WHERE provider_uuid = $1"
    ))
    .bind(uuid)
    .fetch_all(conn)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Every inventory of every provider (or of root providers only), as `(provider, class, inv)`.
pub async fn all(conn: &mut Conn, roots_only: bool) -> DbResult<Vec<(String, String, Inventory)>> {
    let sql = if roots_only {
        format!(
            "SELECT i.provider_uuid, {} FROM placement_inventories i \
             JOIN placement_providers p ON p.uuid = i.provider_uuid WHERE p.parent_uuid IS NULL",
            COLUMNS
                .split(", ")
                .map(|c| format!("i.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("SELECT provider_uuid, {COLUMNS} FROM placement_inventories")
    };
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            let (rc, inv) = from_row(r)?;
            Ok((r.try_get("provider_uuid")?, rc, inv))
        })
        .collect()
}

pub async fn upsert(conn: &mut Conn, uuid: &str, rc: &str, inv: &Inventory) -> DbResult<()> {
    let now = ferrostack_store::now_micros();
    sqlx::query(
        "INSERT INTO placement_inventories (provider_uuid, resource_class, total, reserved, \
         min_unit, max_unit, step_size, allocation_ratio, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
         ON CONFLICT (provider_uuid, resource_class) DO UPDATE SET total = $3, reserved = $4, \
         min_unit = $5, max_unit = $6, step_size = $7, allocation_ratio = $8, updated_at = $9",
    )
    .bind(uuid)
    .bind(rc)
    .bind(inv.total)
    .bind(inv.reserved)
    .bind(inv.min_unit)
    .bind(inv.max_unit)
    .bind(inv.step_size)
    .bind(inv.allocation_ratio)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, uuid: &str, rc: &str) -> DbResult<bool> {
    let r = sqlx::query(
        "DELETE FROM placement_inventories WHERE provider_uuid = $1 AND resource_class = $2",
    )
    .bind(uuid)
    .bind(rc)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Whether any provider has inventory of `rc`.
pub async fn class_in_use(conn: &mut Conn, rc: &str) -> DbResult<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM placement_inventories WHERE resource_class = $1")
            .bind(rc)
            .fetch_one(conn)
            .await?;
    Ok(n > 0)
}
