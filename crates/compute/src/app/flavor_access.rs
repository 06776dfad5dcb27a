//! Private flavors' access lists: which projects may see and boot a private flavor.

use crate::app::flavors::not_found;
use crate::db;
use crate::error::{ComputeError, Result};
use crate::ComputeService;

/// A change of a flavor's access list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange {
    /// Give the project access. `refuse_public`: 409 for a public flavor (Nova from 2.7;
    /// before, the row is added and has no effect).
    Add { refuse_public: bool },
    /// Take the project's access away.
    Remove,
}

impl ComputeService {
    /// The projects given access to the private flavor `id`; 404 for an unknown flavor or a
    /// public one (which has no list).
    pub async fn flavor_access(&self, id: &str) -> Result<Vec<String>> {
        let mut conn = self.db.pool.acquire().await?;
        let flavor = db::flavors::get(&mut conn, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if flavor.is_public {
            return Err(ComputeError::NotFound(
                "Access list not available for public flavors.".into(),
            ));
        }
        Ok(db::flavors::access_list(&mut conn, id).await?)
    }

    /// Adds or removes `project_id` on the access list of flavor `id` and returns the list
    /// after the change. Checked in Nova's order: the project must exist (400), then the
    /// flavor (404); adding twice is 409, removing what is not there 404.
    pub async fn change_flavor_access(
        &self,
        id: &str,
        project_id: &str,
        change: AccessChange,
    ) -> Result<Vec<String>> {
        self.require_project(project_id).await?;
        let mut tx = self.db.begin_write().await?;
        let flavor = db::flavors::get(&mut tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        match change {
            AccessChange::Add { refuse_public } => {
                if flavor.is_public && refuse_public {
                    return Err(ComputeError::Conflict(
                        "Can not add access to a public flavor.".into(),
                    ));
                }
                if !db::flavors::add_access(&mut tx, id, project_id).await? {
                    return Err(ComputeError::Conflict(format!(
                        "Flavor access already exists for flavor {id} and project \
                         {project_id} combination."
                    )));
                }
            }
            AccessChange::Remove => {
                if !db::flavors::remove_access(&mut tx, id, project_id).await? {
                    return Err(ComputeError::NotFound(format!(
                        "Flavor access not found for {id} / {project_id} combination."
                    )));
                }
            }
        }
        let projects = db::flavors::access_list(&mut tx, id).await?;
        tx.commit().await?;
        Ok(projects)
    }
}
