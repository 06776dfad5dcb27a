//! Migrations as `/os-migrations` (admin) and `/servers/{id}/migrations` show them: read
//! only, the move actions ([`crate::app::moves`]) write them.

use crate::db::server_migrations::{self as db, LIVE_IN_PROGRESS};
use crate::error::{ComputeError, Result};
use crate::instance::Instance;
use crate::ComputeService;

/// A migration as the listings show it, and the listings' filters (all optional; `host`
/// matches source or destination).
pub use crate::db::server_migrations::{Filters as MigrationFilters, Migration};

/// A live migration still in progress (Nova's in-progress statuses): the only migrations
/// `/servers/{id}/migrations` shows.
pub fn is_live_in_progress(m: &Migration) -> bool {
    m.migration_type == "live-migration" && LIVE_IN_PROGRESS.contains(&m.status.as_str())
}

impl ComputeService {
    /// Migrations matching `filters`, newest first: those after `marker` (a migration uuid;
    /// 400 when it is not in the listing), at most `limit`.
    pub async fn list_migrations(
        &self,
        filters: &MigrationFilters,
        marker: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<Migration>> {
        let all = {
            let mut conn = self.db.pool.acquire().await?;
            db::list(&mut conn, filters).await?
        };
        let start = match marker {
            Some(m) => {
                all.iter().position(|x| x.uuid == m).ok_or_else(|| {
                    ComputeError::BadRequest(format!("Marker {m} could not be found."))
                })? + 1
            }
            None => 0,
        };
        Ok(all
            .into_iter()
            .skip(start)
            .take(limit.unwrap_or(usize::MAX))
            .collect())
    }

    /// The live migrations of `inst` in progress, newest first.
    pub async fn live_migrations_in_progress(&self, inst: &Instance) -> Result<Vec<Migration>> {
        let mut conn = self.db.pool.acquire().await?;
        let all = db::list(
            &mut conn,
            &MigrationFilters {
                instance_uuid: Some(inst.uuid.clone()),
                migration_type: Some("live-migration".into()),
                ..Default::default()
            },
        )
        .await?;
        Ok(all.into_iter().filter(is_live_in_progress).collect())
    }

    /// The live migration `id` (as the caller wrote it) of `inst`, while in progress: 404
    /// for an unknown id, another kind of migration or a finished one, each with Nova's
    /// message.
    pub async fn live_migration_in_progress(&self, inst: &Instance, id: &str) -> Result<Migration> {
        let server = &inst.uuid;
        let not_found = || {
            ComputeError::NotFound(format!(
                "In-progress live migration {id} is not found for server {server}."
            ))
        };
        let num = id.parse::<i64>().map_err(|_| not_found())?;
        let m = {
            let mut conn = self.db.pool.acquire().await?;
            db::get_for_instance(&mut conn, &inst.uuid, num).await?
        }
        .ok_or_else(not_found)?;
        if m.migration_type != "live-migration" {
            return Err(ComputeError::NotFound(format!(
                "Migration {id} for server {server} is not live-migration."
            )));
        }
        if !LIVE_IN_PROGRESS.contains(&m.status.as_str()) {
            return Err(ComputeError::NotFound(format!(
                "Live migration {id} for server {server} is not in progress."
            )));
        }
        Ok(m)
    }
}
