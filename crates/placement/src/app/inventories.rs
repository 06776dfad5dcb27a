//! Setting a provider's inventories (the whole set or one class), refusing to drop a class
//! that is allocated. Runs in the caller's write transaction, after the caller checked and
//! bumped the provider generation.

use std::collections::BTreeMap;

use crate::app::capacity;
use crate::db::{self, Conn};
use crate::error::{codes, PlacementError, Result};
use crate::Inventory;

/// What to do when a new inventory's capacity is below what is already allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BelowUsage {
    /// 409 `placement.inventory.inuse` (the HTTP API).
    Refuse,
    /// Accept and log: a compute node reports what its hardware has (the agents' sync).
    Warn,
}

pub fn in_use(rcs: &[String], uuid: &str) -> PlacementError {
    PlacementError::conflict_code(
        codes::INVENTORY_INUSE,
        format!(
            "update conflict: Inventory for '{}' on resource provider '{uuid}' in use.",
            rcs.join(", ")
        ),
    )
}

/// Checks that the classes exist (400 naming the first unknown one).
pub async fn check_classes(conn: &mut Conn, uuid: &str, classes: &[String]) -> Result<()> {
    if let Some(rc) = db::resource_classes::missing(conn, classes).await?.first() {
        return Err(PlacementError::BadRequest(format!(
            "Unknown resource class in inventory for resource provider {uuid}: No such \
             resource class {rc}."
        )));
    }
    Ok(())
}

/// Usage of each class on the provider.
pub async fn usage_of(conn: &mut Conn, uuid: &str) -> Result<BTreeMap<String, i64>> {
    Ok(db::allocations::usage(conn, Some(&[uuid.to_string()]))
        .await?
        .into_iter()
        .map(|(_, rc, u)| (rc, u))
        .collect())
}

/// Replaces all inventories of `uuid` with `desired`. Returns whether anything changed.
pub async fn set_all(
    conn: &mut Conn,
    uuid: &str,
    desired: &BTreeMap<String, Inventory>,
    below: BelowUsage,
) -> Result<bool> {
    let classes: Vec<String> = desired.keys().cloned().collect();
    check_classes(conn, uuid, &classes).await?;
    let current = db::inventories::for_provider(conn, uuid).await?;
    let usage = usage_of(conn, uuid).await?;
    let removed: Vec<String> = current
        .keys()
        .filter(|rc| !desired.contains_key(*rc))
        .cloned()
        .collect();
    let removed_in_use: Vec<String> = removed
        .iter()
        .filter(|rc| usage.get(*rc).copied().unwrap_or(0) > 0)
        .cloned()
        .collect();
    if !removed_in_use.is_empty() {
        return Err(in_use(&removed_in_use, uuid));
    }
    let mut changed = !removed.is_empty();
    for rc in &removed {
        db::inventories::delete(conn, uuid, rc).await?;
    }
    for (rc, inv) in desired {
        if current.get(rc) == Some(inv) {
            continue;
        }
        check_below_usage(uuid, rc, inv, usage.get(rc).copied().unwrap_or(0), below)?;
        db::inventories::upsert(conn, uuid, rc, inv).await?;
        changed = true;
    }
    Ok(changed)
}

pub fn check_below_usage(
    uuid: &str,
    rc: &str,
    inv: &Inventory,
    used: i64,
    below: BelowUsage,
) -> Result<()> {
    if capacity::capacity(inv) >= used {
        return Ok(());
    }
    match below {
        BelowUsage::Refuse => Err(in_use(&[rc.to_string()], uuid)),
        BelowUsage::Warn => {
            tracing::warn!(
                provider = uuid,
                rc,
                used,
                capacity = capacity::capacity(inv),
                "inventory capacity is below current usage"
            );
            Ok(())
        }
    }
}
