//! Resource classes (`/resource_classes`): the standard ones are seeded by the migration and
//! fixed; custom ones (`CUSTOM_*`) are created, renamed (before 1.7) and deleted here, each
//! operation one transaction.

use crate::db;
use crate::error::{codes, on_unique, PlacementError, Result};
use crate::model::{is_custom_name, ResourceClass};
use crate::PlacementService;

fn not_found(name: &str) -> PlacementError {
    PlacementError::NotFound(format!("No such resource class {name}."))
}

/// Placement answers an invalid custom name as a schema error of the body, even when the
/// name came from the path (`PUT /resource_classes/{name}` from 1.7).
fn invalid_name(name: &str) -> PlacementError {
    PlacementError::BadRequest(format!(
        "JSON does not validate: '{name}' does not match '^CUSTOM\\\\_[A-Z0-9_]+$'"
    ))
}

impl PlacementService {
    /// Every resource class, standard ones first (by id).
    pub async fn resource_classes(&self) -> Result<Vec<ResourceClass>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::resource_classes::list(&mut conn).await?)
    }

    /// One resource class; 404 when it does not exist.
    pub async fn resource_class(&self, name: &str) -> Result<ResourceClass> {
        let mut conn = self.db.pool.acquire().await?;
        db::resource_classes::get(&mut conn, name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// Creates the custom class `name` (the caller checked the name); 409
    /// `placement.duplicate_name` when it exists, also when a concurrent create won.
    pub async fn create_class(&self, name: &str) -> Result<()> {
        let exists = || {
            PlacementError::conflict_code(
                codes::DUPLICATE_NAME,
                format!("Conflicting resource class already exists: {name}"),
            )
        };
        let mut tx = self.db.begin_write().await?;
        if db::resource_classes::get(&mut tx, name).await?.is_some() {
            return Err(exists());
        }
        db::resource_classes::insert_custom(&mut tx, name)
            .await
            .map_err(on_unique(codes::DUPLICATE_NAME, exists().to_string()))?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates the class `name` unless it exists (1.7's idempotent `PUT`); true when it was
    /// created. A missing class whose name is not a custom one is a 400.
    pub async fn ensure_class(&self, name: &str) -> Result<bool> {
        let mut tx = self.db.begin_write().await?;
        if db::resource_classes::get(&mut tx, name).await?.is_some() {
            return Ok(false);
        }
        if !is_custom_name(name) {
            return Err(invalid_name(name));
        }
        db::resource_classes::insert_custom(&mut tx, name).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Renames the custom class `name` to `new_name` (the caller checked the new name), with
    /// its inventories and allocations; 404 unknown, 400 standard, 409
    /// `placement.duplicate_name` when `new_name` exists.
    pub async fn rename_class(&self, name: &str, new_name: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let current = db::resource_classes::get(&mut tx, name)
            .await?
            .ok_or_else(|| not_found(name))?;
        if current.standard {
            return Err(PlacementError::BadRequest(format!(
                "Cannot update standard resource class {name}"
            )));
        }
        if db::resource_classes::get(&mut tx, new_name)
            .await?
            .is_some()
        {
            return Err(PlacementError::conflict_code(
                codes::DUPLICATE_NAME,
                format!("Resource class already exists: {new_name}"),
            ));
        }
        db::resource_classes::rename(&mut tx, name, new_name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a custom class; 404 unknown, 400 standard, 409 while an inventory has it.
    pub async fn delete_class(&self, name: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let rc = db::resource_classes::get(&mut tx, name)
            .await?
            .ok_or_else(|| not_found(name))?;
        if rc.standard {
            return Err(PlacementError::BadRequest(format!(
                "Error in delete resource class: Cannot delete standard resource class {name}."
            )));
        }
        if db::inventories::class_in_use(&mut tx, name).await? {
            return Err(PlacementError::Conflict(format!(
                "Error in delete resource class: Cannot delete resource class {name}. Class is in \
                 use in inventory."
            )));
        }
        db::resource_classes::delete(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }
}
