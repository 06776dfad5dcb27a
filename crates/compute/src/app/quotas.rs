//! Quota sets (per project, or per user within a project) and quota classes: reading the
//! effective limits and usage, and changing limits within Nova's rules (a limit is not set
//! below what is already used, nor a user's above its project's).

use std::collections::BTreeMap;

use crate::db;
use crate::error::{ComputeError, Result};
use crate::ComputeService;

/// Limits by resource (-1: unlimited).
pub type Limits = BTreeMap<String, i64>;
/// Usage by resource.
pub type Usage = BTreeMap<String, i64>;

/// The resources Nova does not hold to their usage when a limit is lowered.
const NOT_HELD_TO_USAGE: [&str; 2] = ["key_pairs", "server_group_members"];

/// What one unlimited (-1) limit compares as.
fn unlimited_as_max(x: i64) -> i64 {
    if x == -1 {
        i64::MAX
    } else {
        x
    }
}

/// Nova's checks of requested limits against `usage` and, for a user's limits, the project's
/// `project_limits` (`None` for a project's own limits).
fn check_requested(
    requested: &Limits,
    usage: &Usage,
    project_limits: Option<&Limits>,
) -> Result<()> {
    for (resource, &limit) in requested {
        let minimum = if NOT_HELD_TO_USAGE.contains(&resource.as_str()) {
            0
        } else {
            usage.get(resource).copied().unwrap_or(0)
        };
        if unlimited_as_max(limit) < unlimited_as_max(minimum) {
            return Err(ComputeError::BadRequest(format!(
                "Quota limit {limit} for {resource} must be greater than or equal to \
                 already used and reserved {minimum}."
            )));
        }
        // A user's limit cannot exceed its project's.
        let maximum = project_limits.map_or(-1, |p| p.get(resource).copied().unwrap_or(-1));
        if unlimited_as_max(limit) > unlimited_as_max(maximum) {
            return Err(ComputeError::BadRequest(format!(
                "Quota limit {limit} for {resource} must be less than or equal to {maximum}."
            )));
        }
    }
    Ok(())
}

impl ComputeService {
    /// Effective limits of the project, or of a user in it (the user's own rows over the
    /// project's, over the default class, over Nova's defaults).
    pub async fn quota_limits(&self, project_id: &str, user_id: Option<&str>) -> Result<Limits> {
        let mut conn = self.db.pool.acquire().await?;
        let limits =
            db::quotas::limits_for(&mut conn, project_id, user_id.unwrap_or_default()).await?;
        let mut out = limits.project;
        out.extend(limits.user);
        Ok(out)
    }

    /// What the project (or a user in it) uses of each counted resource; `key_pairs` only
    /// for a user (key pairs belong to users).
    pub async fn quota_usage(&self, project_id: &str, user_id: Option<&str>) -> Result<Usage> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::quotas::usage(&mut conn, project_id, user_id).await?)
    }

    /// The limits of a quota class (`default` is the one projects fall back to).
    pub async fn quota_class(&self, class: &str) -> Result<Limits> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::quotas::class_limits(&mut conn, class).await?)
    }

    /// Sets limits of the project, or of a user in it, and returns the effective limits
    /// after. Unless `force`, each limit must be at least what is in use and, for a user, at
    /// most the project's limit (400 otherwise, nothing written). The checks read usage in
    /// the write transaction, so a concurrent create cannot slip below a lowered limit.
    pub async fn update_quotas(
        &self,
        project_id: &str,
        user_id: Option<&str>,
        requested: &Limits,
        force: bool,
    ) -> Result<Limits> {
        let mut tx = self.db.begin_write().await?;
        if !force {
            let project_limits = db::quotas::limits_for(&mut tx, project_id, "")
                .await?
                .project;
            let usage = db::quotas::usage(&mut tx, project_id, user_id).await?;
            check_requested(
                requested,
                &usage,
                user_id.is_some().then_some(&project_limits),
            )?;
        }
        for (resource, limit) in requested {
            db::quotas::set(
                &mut tx,
                project_id,
                user_id.unwrap_or_default(),
                resource,
                *limit,
            )
            .await?;
        }
        tx.commit().await?;
        self.quota_limits(project_id, user_id).await
    }

    /// Reverts the project (its users' limits too) or one user in it to the defaults.
    pub async fn delete_quotas(&self, project_id: &str, user_id: Option<&str>) -> Result<()> {
        let mut conn = self.db.writer.acquire().await?;
        db::quotas::delete(&mut conn, project_id, user_id).await?;
        Ok(())
    }

    /// Sets limits of a quota class and returns the class's limits after.
    pub async fn update_quota_class(&self, class: &str, requested: &Limits) -> Result<Limits> {
        let key = db::quotas::class_key(class);
        let mut tx = self.db.begin_write().await?;
        for (resource, limit) in requested {
            db::quotas::set(&mut tx, &key, "", resource, *limit).await?;
        }
        tx.commit().await?;
        self.quota_class(class).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn limits_are_held_to_usage_and_to_the_project() {
        let usage = map(&[("instances", 3), ("key_pairs", 5)]);
        // Below usage: refused; unlimited is above anything.
        assert!(check_requested(&map(&[("instances", 2)]), &usage, None).is_err());
        assert!(check_requested(&map(&[("instances", -1)]), &usage, None).is_ok());
        // Key pairs are not held to their usage.
        assert!(check_requested(&map(&[("key_pairs", 1)]), &usage, None).is_ok());
        // A user's limit stays within its project's.
        let project = map(&[("instances", 5)]);
        let err = check_requested(&map(&[("instances", 6)]), &usage, Some(&project));
        assert!(
            matches!(&err, Err(ComputeError::BadRequest(m)) if m.ends_with("less than or equal to 5.")),
            "{err:?}"
        );
        assert!(check_requested(&map(&[("instances", -1)]), &usage, Some(&project)).is_err());
        assert!(check_requested(&map(&[("instances", 5)]), &usage, Some(&project)).is_ok());
    }
}
