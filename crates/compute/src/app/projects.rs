//! Projects as compute sees them: identity owns them, compute only asks whether one exists
//! (Nova asks Keystone). [`ComputeService::project_exists`] is the one place that asks, so
//! that the question can become a call through a trait once identity is reached by one.

use crate::error::{ComputeError, Result};
use crate::ComputeService;

impl ComputeService {
    /// Whether identity knows the project `project_id`. Today identity's tables are in the
    /// same database, so this reads them on a connection of its own (never inside a compute
    /// transaction: the answer comes from another service).
    pub async fn project_exists(&self, project_id: &str) -> Result<bool> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(
            ferrostack_identity::db::projects::get(&mut conn, project_id)
                .await?
                .is_some(),
        )
    }

    /// Nova's 400 for a project identity does not know ("Project ID x is not a valid
    /// project."), as quota sets and flavor access answer it.
    pub async fn require_project(&self, project_id: &str) -> Result<()> {
        if !self.project_exists(project_id).await? {
            return Err(ComputeError::BadRequest(format!(
                "Project ID {project_id} is not a valid project."
            )));
        }
        Ok(())
    }
}
