//! Usage (`os-simple-tenant-usage`): the instances that ran during a period, deleted ones
//! included (usage is billed after deletion too), and the hours each ran in it.

use crate::db;
use crate::error::Result;
use crate::model::UsageInstance;
use crate::ComputeService;

const HOUR_MICROS: f64 = 3_600_000_000.0;

/// Hours `i` ran between `start` and `stop` (microseconds), as Nova's `_hours_for`: from its
/// launch or the start, whichever is later, to its termination or the stop, whichever is
/// earlier; 0 when it never launched or ran outside the period.
pub fn hours_in(i: &UsageInstance, start: i64, stop: i64) -> f64 {
    let Some(launched) = i.launched_at else {
        return 0.0;
    };
    if i.terminated_at.is_some_and(|t| t < start) || launched > stop {
        return 0.0;
    }
    let from = launched.max(start);
    let to = i.terminated_at.map_or(stop, |t| t.min(stop));
    (to - from) as f64 / HOUR_MICROS
}

impl ComputeService {
    /// Instances not terminated before `start` and launched before `stop` (Nova's
    /// `get_active_by_window_joined`), of one project or (`None`) all, by creation.
    pub async fn usage_instances(
        &self,
        start: i64,
        stop: i64,
        project_id: Option<&str>,
    ) -> Result<Vec<UsageInstance>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::usage::active_in_window(&mut conn, start, stop, project_id).await?)
    }
}
