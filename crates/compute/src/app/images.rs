//! The compute image proxy (`/images`): the image service decides everything but Nova's own
//! limit on image metadata.

use crate::db::quotas;
use crate::error::{ComputeError, Result};
use crate::ComputeService;

impl ComputeService {
    /// 403 unless an image with `count` properties fits the project's `metadata_items`
    /// limit (Nova's image metadata quota).
    pub async fn check_image_metadata_quota(&self, project_id: &str, count: usize) -> Result<()> {
        let limit = {
            let mut conn = self.db.pool.acquire().await?;
            quotas::limits_for(&mut conn, project_id, "")
                .await?
                .limit("metadata_items")
        };
        if limit >= 0 && i64::try_from(count).unwrap_or(i64::MAX) > limit {
            return Err(ComputeError::Forbidden(
                "Image metadata limit exceeded".into(),
            ));
        }
        Ok(())
    }
}
