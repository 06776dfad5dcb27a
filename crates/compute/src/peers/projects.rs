//! What compute needs of identity: whether a project exists (Nova asks Keystone before it
//! stores quotas or flavor access for a project).

use async_trait::async_trait;
use ferrostack_api::ApiError;
use ferrostack_identity::{Identity, IdentityError};

use crate::error::{ComputeError, Result};

#[async_trait]
pub trait Projects: Send + Sync {
    /// Whether identity knows the project `project_id`.
    async fn project_exists(&self, project_id: &str) -> Result<bool>;
}

/// Through identity's application layer, on a connection of its own: never inside a compute
/// transaction, as the answer comes from another service.
#[async_trait]
impl Projects for Identity {
    async fn project_exists(&self, project_id: &str) -> Result<bool> {
        match ferrostack_identity::app::projects::get(self, project_id).await {
            Ok(_) => Ok(true),
            Err(IdentityError::NotFound { .. }) => Ok(false),
            Err(IdentityError::Db(e)) => Err(ComputeError::Db(e)),
            Err(e) => Err(ComputeError::Api(ApiError::from(e))),
        }
    }
}
