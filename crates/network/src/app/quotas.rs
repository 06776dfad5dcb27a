//! Quotas: per-project limits (built-in defaults, overridden with `PUT /v2.0/quotas/{id}`),
//! checked inside the transaction that creates, with usage counted there.

use std::collections::BTreeMap;

use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::QUOTA_RESOURCES;
use crate::NetworkService;

/// A resource's limit and what the project uses of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub limit: i64,
    pub used: i64,
}

async fn used(conn: &mut db::Conn, project: &str, resource: &str) -> Result<i64> {
    db::quotas::used(conn, project, resource)
        .await?
        .ok_or_else(|| {
            NetworkError::invalid_input(format!(
                "no usage is counted for quota resource {resource}"
            ))
        })
}

impl NetworkService {
    /// Refuses creating one more of `resource` for `project` beyond its limit.
    pub(crate) async fn check_quota(
        &self,
        conn: &mut db::Conn,
        project: &str,
        resource: &str,
    ) -> Result<()> {
        let limits = db::quotas::for_project(conn, project).await?;
        let limit = limits
            .get(resource)
            .copied()
            .or_else(|| {
                QUOTA_RESOURCES
                    .iter()
                    .find(|(r, _)| *r == resource)
                    .map(|(_, l)| *l)
            })
            .ok_or_else(|| {
                NetworkError::invalid_input(format!("no quota is defined for resource {resource}"))
            })?;
        if limit < 0 {
            return Ok(());
        }
        // Counted in the creating transaction: what it already made counts too.
        let have = used(conn, project, resource).await?;
        if have + 1 > limit {
            return Err(NetworkError::over_quota(resource));
        }
        Ok(())
    }

    /// A project's limits: the defaults with its own overrides.
    pub async fn quota_of(&self, project: &str) -> Result<BTreeMap<String, i64>> {
        let mut conn = self.read().await?;
        let own = db::quotas::for_project(&mut conn, project).await?;
        Ok(QUOTA_RESOURCES
            .iter()
            .map(|(r, d)| (r.to_string(), own.get(*r).copied().unwrap_or(*d)))
            .collect())
    }

    pub fn default_quota(&self) -> BTreeMap<String, i64> {
        QUOTA_RESOURCES
            .iter()
            .map(|(r, d)| (r.to_string(), *d))
            .collect()
    }

    pub async fn quota_usage(&self, project: &str) -> Result<BTreeMap<String, Usage>> {
        let limits = self.quota_of(project).await?;
        let mut conn = self.read().await?;
        let mut out = BTreeMap::new();
        for (r, limit) in limits {
            let used = used(&mut conn, project, &r).await?;
            out.insert(r, Usage { limit, used });
        }
        Ok(out)
    }

    /// Projects with limits of their own, with those limits.
    pub async fn quotas_set(&self) -> Result<Vec<(String, BTreeMap<String, i64>)>> {
        let projects = {
            let mut conn = self.read().await?;
            db::quotas::projects(&mut conn).await?
        };
        let mut out = Vec::new();
        for p in projects {
            let q = self.quota_of(&p).await?;
            out.push((p, q));
        }
        Ok(out)
    }

    /// Sets limits; unknown resources and limits below -1 are refused.
    pub async fn set_quota(
        &self,
        project: &str,
        limits: &BTreeMap<String, i64>,
    ) -> Result<BTreeMap<String, i64>> {
        let mut tx = self.write().await?;
        for (r, l) in limits {
            if !QUOTA_RESOURCES.iter().any(|(k, _)| k == r) {
                return Err(NetworkError::invalid_input(format!(
                    "Unrecognized attribute(s) '{r}'"
                )));
            }
            if *l < -1 {
                return Err(NetworkError::invalid_attr(
                    "quota",
                    format!("'{l}' is too small - must be at least '-1'"),
                ));
            }
            db::quotas::set(&mut tx, project, r, *l).await?;
        }
        tx.commit().await?;
        self.quota_of(project).await
    }

    pub async fn reset_quota(&self, project: &str) -> Result<()> {
        let mut tx = self.write().await?;
        db::quotas::clear(&mut tx, project).await?;
        tx.commit().await?;
        Ok(())
    }
}
