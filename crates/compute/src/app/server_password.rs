//! The server password (`/servers/{id}/os-server-password`): what the guest posted to the
//! metadata service (encrypted with its key pair), kept in system metadata.

use crate::db::server_extras as db;
use crate::error::Result;
use crate::instance::Instance;
use crate::ComputeService;

/// The system metadata key of the password os-server-password shows.
pub const PASSWORD_KEY: &str = "password";

impl ComputeService {
    /// The password os-server-password shows ("" when none).
    pub async fn server_password(&self, inst: &Instance) -> Result<String> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::system_metadata(&mut conn, &inst.uuid, PASSWORD_KEY)
            .await?
            .unwrap_or_default())
    }

    /// Sets (the metadata service's POST) or clears (`None`) the server password; the
    /// guest's own password does not change.
    pub async fn set_server_password(&self, inst: &Instance, password: Option<&str>) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        db::set_system_metadata(&mut tx, &inst.uuid, PASSWORD_KEY, password).await?;
        tx.commit().await?;
        Ok(())
    }
}
