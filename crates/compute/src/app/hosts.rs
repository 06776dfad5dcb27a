//! Hosts (`os-hosts`, deprecated in Nova): a compute host's node, what its instances use in
//! all and per project, and the names of the compute hosts.

use crate::app::services::COMPUTE_BINARY;
use crate::db;
use crate::error::{ComputeError, Result};
use crate::model::{HostUsage, Node};
use crate::ComputeService;

/// What one project's instances on a host use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectUsage {
    pub project_id: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    /// Root and ephemeral disks, GiB.
    pub disk_gb: i64,
}

/// A compute host's resources and their use.
#[derive(Debug, Clone)]
pub struct HostReport {
    pub node: Node,
    /// All placed instances of the host (root disks only, as Nova's `used_now`).
    pub used_now: HostUsage,
    /// Per project, by project id.
    pub per_project: Vec<ProjectUsage>,
}

impl ComputeService {
    /// The compute node of `host`, or Nova's 404 ("Compute host x could not be found.").
    pub async fn compute_node(&self, host: &str) -> Result<Node> {
        let mut conn = self.db.pool.acquire().await?;
        db::hosts::node_by_host(&mut conn, host)
            .await?
            .ok_or_else(|| {
                ComputeError::NotFound(format!("Compute host {host} could not be found."))
            })
    }

    /// The compute host's totals and use, or the 404 of [`Self::compute_node`].
    pub async fn host_report(&self, host: &str) -> Result<HostReport> {
        let node = self.compute_node(host).await?;
        let mut conn = self.db.pool.acquire().await?;
        let per_project = db::instances::usage_on_host_by_project(&mut conn, host)
            .await?
            .into_iter()
            .map(|(project_id, vcpus, memory_mb, disk_gb)| ProjectUsage {
                project_id,
                vcpus,
                memory_mb,
                disk_gb,
            })
            .collect();
        let (instances, vcpus, memory_mb, local_gb) = db::instances::usage_by_host(&mut conn)
            .await?
            .remove(host)
            .unwrap_or_default();
        Ok(HostReport {
            node,
            used_now: HostUsage {
                instances,
                vcpus,
                memory_mb,
                local_gb,
            },
            per_project,
        })
    }

    /// The hosts with a compute service, disabled ones included, sorted and once each.
    pub async fn compute_host_names(&self) -> Result<Vec<String>> {
        let mut conn = self.db.pool.acquire().await?;
        let mut hosts: Vec<String> = db::hosts::services(&mut conn)
            .await?
            .into_iter()
            .filter(|s| s.binary == COMPUTE_BINARY)
            .map(|s| s.host)
            .collect();
        hosts.sort();
        hosts.dedup();
        Ok(hosts)
    }
}
