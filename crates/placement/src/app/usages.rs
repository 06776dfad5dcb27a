//! Usages: of a provider (`/resource_providers/{uuid}/usages`) and of a project
//! (`/usages`, per consumer type from 1.38).

use std::collections::BTreeMap;

use crate::app::{provider_usages, providers, AtGeneration};
use crate::db;
use crate::error::Result;
use crate::model::ProjectUsage;
use crate::PlacementService;

impl PlacementService {
    /// The usage of every inventory class of a provider (0 when unused) with its generation;
    /// 404 without the provider.
    pub async fn provider_usage(&self, uuid: &str) -> Result<AtGeneration<BTreeMap<String, i64>>> {
        let mut conn = self.db.pool.acquire().await?;
        let p = providers::get(&mut conn, uuid).await?;
        let usages = provider_usages(&mut conn, uuid).await?;
        Ok(AtGeneration::new(p.generation, usages))
    }

    /// What the consumers of a project (and, with `user_id`, of that user) hold, per
    /// consumer type and class.
    pub async fn project_usage(
        &self,
        project_id: &str,
        user_id: Option<&str>,
    ) -> Result<ProjectUsage> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::allocations::project_usage(&mut conn, project_id, user_id).await?)
    }
}
