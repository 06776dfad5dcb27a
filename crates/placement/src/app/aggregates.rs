//! The aggregates of a provider (`/resource_providers/{uuid}/aggregates`), each operation one
//! transaction. The in-process [`set_provider_aggregates`](PlacementService::set_provider_aggregates)
//! (Nova host aggregates) shares [`providers::set_aggregates`].

use crate::app::{providers, AtGeneration};
use crate::db;
use crate::error::{PlacementError, Result};
use crate::PlacementService;

impl PlacementService {
    /// A provider's aggregates (sorted) with its generation; 404 without the provider.
    pub async fn provider_aggregates(&self, uuid: &str) -> Result<AtGeneration<Vec<String>>> {
        let mut conn = self.db.pool.acquire().await?;
        let p = providers::get(&mut conn, uuid).await?;
        let aggs = db::aggregates::for_provider(&mut conn, uuid).await?;
        Ok(AtGeneration::new(p.generation, aggs))
    }

    /// Replaces a provider's aggregates and bumps its generation, even when nothing changed
    /// (as placement's `PUT` does); with `generation` (1.19) only if the generation is still
    /// that (409 `placement.concurrent_update` otherwise). Returns the new generation.
    pub async fn update_provider_aggregates(
        &self,
        uuid: &str,
        generation: Option<i64>,
        aggregates: &[String],
    ) -> Result<i64> {
        let mut tx = self.db.begin_write().await?;
        if !db::providers::bump_generation(&mut tx, uuid, generation).await? {
            return Err(PlacementError::concurrent(format!(
                "Resource provider's generation already changed. Please update the generation \
                 and try again. (provider {uuid})"
            )));
        }
        providers::set_aggregates(&mut tx, uuid, aggregates).await?;
        let p = providers::get(&mut tx, uuid).await?;
        tx.commit().await?;
        Ok(p.generation)
    }
}
