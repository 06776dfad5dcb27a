//! Hypervisors (`os-hypervisors`): each compute node with its host's compute service and what
//! the instances placed there use.

use crate::app::services::COMPUTE_BINARY;
use crate::db;
use crate::error::Result;
use crate::model::{HostUsage, Node, Service};
use crate::ComputeService;

/// A compute node as `os-hypervisors` shows it.
#[derive(Debug, Clone)]
pub struct Hypervisor {
    pub node: Node,
    /// The compute service of the node's host (none once deleted).
    pub service: Option<Service>,
    /// What the instances placed on the host use.
    pub usage: HostUsage,
}

impl ComputeService {
    /// Every compute node by id, with its service and usage, read on one connection.
    pub async fn hypervisors(&self) -> Result<Vec<Hypervisor>> {
        let mut conn = self.db.pool.acquire().await?;
        let nodes = db::hosts::nodes(&mut conn).await?;
        let services = db::hosts::services(&mut conn).await?;
        let usage = db::instances::usage_by_host(&mut conn).await?;
        Ok(nodes
            .into_iter()
            .map(|node| {
                let service = services
                    .iter()
                    .find(|s| s.host == node.host && s.binary == COMPUTE_BINARY)
                    .cloned();
                let (instances, vcpus, memory_mb, local_gb) =
                    usage.get(&node.host).copied().unwrap_or_default();
                Hypervisor {
                    node,
                    service,
                    usage: HostUsage {
                        instances,
                        vcpus,
                        memory_mb,
                        local_gb,
                    },
                }
            })
            .collect())
    }

    /// (instance uuid, host) of every placed, non-deleted instance.
    pub async fn placed_instances(&self) -> Result<Vec<(String, String)>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::instances::host_map(&mut conn).await?)
    }
}
