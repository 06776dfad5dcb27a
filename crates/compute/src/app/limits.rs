//! `/limits`: a project's absolute limits beside what it uses.

use crate::app::quotas::Usage;
use crate::db;
use crate::error::Result;
use crate::model::QuotaLimits;
use crate::ComputeService;

impl ComputeService {
    /// The project's effective limits and its usage, read on one connection.
    pub async fn project_limits(&self, project_id: &str) -> Result<(QuotaLimits, Usage)> {
        let mut conn = self.db.pool.acquire().await?;
        let limits = db::quotas::limits_for(&mut conn, project_id, "").await?;
        let usage = db::quotas::usage(&mut conn, project_id, None).await?;
        Ok((limits, usage))
    }
}
