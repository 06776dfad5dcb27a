//! Projects as compute sees them: identity owns them, compute only asks whether one exists
//! (Nova asks Keystone). [`ComputeService::project_exists`] is the one place that asks, through
//! compute's [`crate::peers::Projects`].

use crate::error::{ComputeError, Result};
use crate::ComputeService;

impl ComputeService {
    /// Whether identity knows the project `project_id` (never asked inside a compute
    /// transaction: the answer comes from another service).
    pub async fn project_exists(&self, project_id: &str) -> Result<bool> {
        self.projects.project_exists(project_id).await
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
