//! Traits (`/traits`: standard ones from os-traits, custom ones `CUSTOM_*`) and the traits of
//! a provider (`/resource_providers/{uuid}/traits`), each operation one transaction.

use crate::app::{providers, AtGeneration};
use crate::db;
use crate::error::{PlacementError, Result};
use crate::model::{is_custom_name, NameFilter};
use crate::PlacementService;

fn not_found(name: &str) -> PlacementError {
    PlacementError::NotFound(format!("No such trait(s): {name}."))
}

/// Placement's 400 for a trait name that is not a valid custom one.
fn invalid_trait() -> PlacementError {
    PlacementError::BadRequest(
        "The trait is invalid. A valid trait must be no longer than 255 characters, start \
         with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" \
         and \"_\""
            .into(),
    )
}

/// The provider generation moved since the client read it.
fn generation_conflict(uuid: &str) -> PlacementError {
    PlacementError::concurrent(format!(
        "Resource provider's generation already changed. Please update the generation \
         and try again. (provider {uuid})"
    ))
}

impl PlacementService {
    /// Trait names matching `name`, and with `associated` only those some provider has (or
    /// has not), sorted.
    pub async fn list_traits(
        &self,
        name: &NameFilter,
        associated: Option<bool>,
    ) -> Result<Vec<String>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::traits::list(&mut conn, name, associated).await?)
    }

    /// Whether the trait is a standard one; 404 when it does not exist.
    pub async fn get_trait(&self, name: &str) -> Result<bool> {
        let mut conn = self.db.pool.acquire().await?;
        db::traits::get(&mut conn, name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// Creates the custom trait `name` unless it exists; true when it was created. A name
    /// that is not `CUSTOM_[A-Z0-9_]+` is a 400, whether or not it exists.
    pub async fn ensure_trait(&self, name: &str) -> Result<bool> {
        if !is_custom_name(name) {
            return Err(invalid_trait());
        }
        let mut tx = self.db.begin_write().await?;
        if db::traits::get(&mut tx, name).await?.is_some() {
            return Ok(false);
        }
        db::traits::insert_custom(&mut tx, name).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a custom trait; 404 unknown, 400 standard, 409 while a provider has it.
    pub async fn delete_trait(&self, name: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        match db::traits::get(&mut tx, name).await? {
            None => return Err(not_found(name)),
            Some(true) => {
                return Err(PlacementError::BadRequest(format!(
                    "Cannot delete standard trait {name}."
                )))
            }
            Some(false) => {}
        }
        if db::traits::in_use(&mut tx, name).await? {
            return Err(PlacementError::Conflict(format!(
                "The trait {name} is in use by a resource provider."
            )));
        }
        db::traits::delete(&mut tx, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A provider's traits (sorted) with its generation; 404 without the provider.
    pub async fn provider_traits(&self, uuid: &str) -> Result<AtGeneration<Vec<String>>> {
        let mut conn = self.db.pool.acquire().await?;
        let p = providers::get(&mut conn, uuid).await?;
        let traits = db::traits::for_provider(&mut conn, uuid).await?;
        Ok(AtGeneration::new(p.generation, traits))
    }

    /// Replaces a provider's traits when its generation is still `generation` (409
    /// `placement.concurrent_update` otherwise); every trait must exist (400). Returns the
    /// new generation.
    pub async fn set_provider_traits(
        &self,
        uuid: &str,
        generation: i64,
        traits: &[String],
    ) -> Result<i64> {
        let mut tx = self.db.begin_write().await?;
        if !db::providers::bump_generation(&mut tx, uuid, Some(generation)).await? {
            return Err(generation_conflict(uuid));
        }
        providers::set_traits(&mut tx, uuid, traits).await?;
        tx.commit().await?;
        Ok(generation + 1)
    }

    /// Removes every trait of a provider and bumps its generation; 404 without the provider.
    pub async fn clear_provider_traits(&self, uuid: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        providers::get(&mut tx, uuid).await?;
        providers::set_traits(&mut tx, uuid, &[]).await?;
        db::providers::bump_generation(&mut tx, uuid, None).await?;
        tx.commit().await?;
        Ok(())
    }
}
