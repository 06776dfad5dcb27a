//! A provider's inventories: reading them, and setting them (the whole set or one class)
//! under the provider generation, refusing to drop or shrink a class below what is allocated.
//! The free functions run in the caller's write transaction (the agents' sync uses them too);
//! the `PlacementService` methods are the operations of `/resource_providers/{uuid}/inventories`,
//! each one transaction.

use std::collections::BTreeMap;

use crate::app::{capacity, providers, AtGeneration};
use crate::db::{self, Conn};
use crate::error::{codes, PlacementError, Result};
use crate::{Inventory, PlacementService};

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

/// A provider's generation changed since the client read it.
fn generation_conflict() -> PlacementError {
    PlacementError::concurrent("resource provider generation conflict")
}

impl PlacementService {
    /// All inventories of a provider with its generation; 404 without the provider.
    pub async fn inventories(
        &self,
        uuid: &str,
    ) -> Result<AtGeneration<BTreeMap<String, Inventory>>> {
        let mut conn = self.db.pool.acquire().await?;
        let p = providers::get(&mut conn, uuid).await?;
        let invs = db::inventories::for_provider(&mut conn, uuid).await?;
        Ok(AtGeneration::new(p.generation, invs))
    }

    /// One inventory of a provider with the provider's generation; 404 without the provider or
    /// without an inventory of class `rc`.
    pub async fn inventory(&self, uuid: &str, rc: &str) -> Result<AtGeneration<Inventory>> {
        let AtGeneration {
            generation,
            mut value,
        } = self.inventories(uuid).await?;
        let inv = value.remove(rc).ok_or_else(|| {
            PlacementError::NotFound(format!("No inventory of class {rc} for {uuid}"))
        })?;
        Ok(AtGeneration::new(generation, inv))
    }

    /// Adds an inventory of class `rc` (which must exist: 400; and not be there yet: 409
    /// `placement.concurrent_update`) and bumps the provider generation, which it returns.
    pub async fn create_inventory(&self, uuid: &str, rc: &str, inv: &Inventory) -> Result<i64> {
        let mut tx = self.db.begin_write().await?;
        if db::resource_classes::get(&mut tx, rc).await?.is_none() {
            return Err(PlacementError::BadRequest(format!(
                "Unable to create inventory for resource provider {uuid}: No such resource class {rc}."
            )));
        }
        if db::inventories::for_provider(&mut tx, uuid)
            .await?
            .contains_key(rc)
        {
            return Err(PlacementError::concurrent(format!(
                "Update conflict: Inventory for '{rc}' on resource provider '{uuid}' already exists."
            )));
        }
        db::inventories::upsert(&mut tx, uuid, rc, inv).await?;
        db::providers::bump_generation(&mut tx, uuid, None).await?;
        let p = providers::get(&mut tx, uuid).await?;
        tx.commit().await?;
        Ok(p.generation)
    }

    /// Replaces every inventory of a provider when its generation is still `generation`
    /// (409 `placement.concurrent_update` otherwise). A class that is dropped or shrunk below
    /// its usage is refused (409 `placement.inventory.inuse`). Returns the new generation.
    pub async fn replace_inventories(
        &self,
        uuid: &str,
        generation: i64,
        desired: &BTreeMap<String, Inventory>,
    ) -> Result<i64> {
        let mut tx = self.db.begin_write().await?;
        if !db::providers::bump_generation(&mut tx, uuid, Some(generation)).await? {
            return Err(generation_conflict());
        }
        set_all(&mut tx, uuid, desired, BelowUsage::Refuse).await?;
        tx.commit().await?;
        Ok(generation + 1)
    }

    /// Changes the existing inventory of class `rc` when the provider generation is still
    /// `generation`; 400 without such an inventory, 409 below its usage. Returns the new
    /// generation.
    pub async fn update_inventory(
        &self,
        uuid: &str,
        rc: &str,
        generation: i64,
        inv: &Inventory,
    ) -> Result<i64> {
        let mut tx = self.db.begin_write().await?;
        if !db::providers::bump_generation(&mut tx, uuid, Some(generation)).await? {
            return Err(generation_conflict());
        }
        if !db::inventories::for_provider(&mut tx, uuid)
            .await?
            .contains_key(rc)
        {
            return Err(PlacementError::BadRequest(format!(
                "No inventory record with resource class for resource provider {uuid}: No \
                 inventory of class {rc} found."
            )));
        }
        let used = usage_of(&mut tx, uuid).await?.get(rc).copied().unwrap_or(0);
        check_below_usage(uuid, rc, inv, used, BelowUsage::Refuse)?;
        db::inventories::upsert(&mut tx, uuid, rc, inv).await?;
        tx.commit().await?;
        Ok(generation + 1)
    }

    /// Removes the inventory of class `rc` unless something is allocated from it (409), and
    /// bumps the provider generation (unconditionally: placement's DELETE takes none); 404
    /// without such an inventory.
    pub async fn delete_inventory(&self, uuid: &str, rc: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let used = usage_of(&mut tx, uuid).await?.get(rc).copied().unwrap_or(0);
        if used > 0 {
            return Err(PlacementError::concurrent(format!(
                "Unable to delete inventory of class {rc}: Inventory for '{rc}' on resource \
                 provider '{uuid}' in use."
            )));
        }
        if !db::inventories::delete(&mut tx, uuid, rc).await? {
            return Err(PlacementError::NotFound(format!(
                "No inventory of class {rc} found for delete"
            )));
        }
        db::providers::bump_generation(&mut tx, uuid, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes every inventory of a provider unless one is in use (409, and nothing is
    /// removed), and bumps the provider generation.
    pub async fn delete_inventories(&self, uuid: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        set_all(&mut tx, uuid, &BTreeMap::new(), BelowUsage::Refuse).await?;
        db::providers::bump_generation(&mut tx, uuid, None).await?;
        tx.commit().await?;
        Ok(())
    }
}
