//! The allocation audit: placement's allocations of compute's consumers checked against the
//! instances and migrations, in both directions, as Nova's `nova-manage placement audit
//! --delete` and `heal_allocations` do.
//!
//! Allocations are given back in the same transaction that deletes or moves an instance, so
//! the audit should find nothing; it is the safety net for what an older version, a bug or an
//! operator's hand left behind. Every controller runs it at start and then periodically; what
//! it changes, it logs.
//! - An `INSTANCE` consumer whose instance is deleted, unknown or on no host, and a `MIGRATION`
//!   consumer whose migration no longer holds its source host's resources, lose their
//!   allocations.
//! - A live instance on a host with no allocations gets its flavor's, on its host (unless that
//!   would exceed the host's capacity: then it is only reported).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferrostack_placement::app::consumer_type;
use ferrostack_placement::Allocation;
use ferrostack_store::now_micros;

use crate::db::{hosts, instances, migrations};
use crate::error::Result;
use crate::scheduler::Resources;
use crate::ComputeService;

/// Instances changed more recently than this are left to the operation in flight.
const HEAL_GRACE: Duration = Duration::from_secs(60);

/// What one audit pass changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Consumers (uuid, type) whose allocations were removed.
    pub removed: Vec<(String, String)>,
    /// Instances that were given back their allocations.
    pub healed: Vec<String>,
    /// Instances without allocations that could not be healed, and why.
    pub unhealed: Vec<(String, String)>,
}

impl AuditReport {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.healed.is_empty() && self.unhealed.is_empty()
    }
}

impl ComputeService {
    /// One audit pass, in one write transaction.
    pub async fn audit_allocations(&self) -> Result<AuditReport> {
        let mut report = AuditReport::default();
        let mut tx = self.db.begin_write().await?;
        // Consumers first: a claim commits with its instance's placement, so any consumer
        // read here has its instance visible to the reads below (also on PostgreSQL, where
        // each statement sees what committed before it).
        let consumers: HashMap<String, Option<String>> = self
            .placement
            .consumers_in(&mut tx)
            .await?
            .into_iter()
            .collect();
        let placed: HashMap<String, String> =
            instances::host_map(&mut tx).await?.into_iter().collect();
        let holding: HashSet<String> = migrations::holding_uuids(&mut tx)
            .await?
            .into_iter()
            .collect();
        for (uuid, kind) in &consumers {
            let orphan = match kind.as_deref() {
                Some(consumer_type::INSTANCE) => !placed.contains_key(uuid),
                Some(consumer_type::MIGRATION) => !holding.contains(uuid),
                _ => false, // not compute's
            };
            if orphan {
                self.placement.remove_allocations_in(&mut tx, uuid).await?;
                report
                    .removed
                    .push((uuid.clone(), kind.clone().unwrap_or_default()));
            }
        }
        let cutoff = now_micros() - i64::try_from(HEAL_GRACE.as_micros()).unwrap_or(i64::MAX);
        let mut missing: Vec<(&String, &String)> = placed
            .iter()
            .filter(|(uuid, _)| !consumers.contains_key(*uuid))
            .collect();
        missing.sort();
        for (uuid, host) in missing {
            let Some(inst) = instances::get(&mut tx, uuid, false).await? else {
                continue;
            };
            if inst.updated_at.unwrap_or(inst.created_at) > cutoff {
                continue;
            }
            let Some(node) = hosts::node_by_host(&mut tx, host).await? else {
                report
                    .unhealed
                    .push((uuid.clone(), format!("host {host} has no compute node")));
                continue;
            };
            let alloc = [Allocation {
                provider_uuid: node.uuid.clone(),
                resources: Resources::for_flavor(&inst.flavor).by_class(),
            }];
            match self
                .placement
                .claim_in(&mut tx, uuid, None, &inst.project_id, &inst.user_id, &alloc)
                .await
            {
                Ok(()) => report.healed.push(uuid.clone()),
                Err(e) => report.unhealed.push((uuid.clone(), e.to_string())),
            }
        }
        tx.commit().await?;
        if !report.removed.is_empty() || !report.healed.is_empty() {
            self.hosts.invalidate().await;
        }
        Ok(report)
    }

    /// Runs the audit now and then every `every`, logging what it changed.
    pub fn spawn_allocation_audit(
        self: &Arc<Self>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match me.audit_allocations().await {
                    Ok(r) if r.is_empty() => {}
                    Ok(r) => {
                        for (uuid, kind) in &r.removed {
                            tracing::warn!(consumer = %uuid, consumer_type = %kind, "allocation audit: removed the allocations of a consumer that no longer exists");
                        }
                        for uuid in &r.healed {
                            tracing::warn!(instance = %uuid, "allocation audit: an instance had no allocations; its flavor's were claimed on its host");
                        }
                        for (uuid, why) in &r.unhealed {
                            tracing::error!(instance = %uuid, reason = %why, "allocation audit: an instance has no allocations and none could be claimed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "allocation audit failed"),
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}
