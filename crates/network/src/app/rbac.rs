//! RBAC policies on networks: share one with a project (or all, which is its `shared` flag),
//! or make it external for a project. Removing access a project still uses is refused.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use super::new_id;
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::{Network, RbacAction, RbacPolicy};
use crate::NetworkService;

#[derive(Debug, Clone)]
pub struct NewRbacPolicy {
    pub project_id: Option<String>,
    pub object_id: String,
    pub action: RbacAction,
    pub target_project: String,
}

pub fn rbac_not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "RbacPolicyNotFound",
        format!("RBAC policy on object {id} not found for the caller."),
    )
}

/// The `*` shared entry a shared network carries.
pub(crate) fn everyone(n: &Network, now: i64) -> RbacPolicy {
    RbacPolicy {
        id: new_id(),
        project_id: n.project_id.clone(),
        object_id: n.id.clone(),
        action: RbacAction::AccessAsShared,
        target_project: "*".into(),
        revision_number: 1,
        created_at: now,
        updated_at: now,
    }
}

/// Sets a network's `shared` flag to whether an access_as_shared '*' entry exists (after an
/// entry was created, retargeted or deleted).
async fn sync_shared_flag(tx: &mut db::Conn, network_id: &str) -> Result<()> {
    let Some(net) = db::networks::get(tx, network_id).await? else {
        return Ok(());
    };
    let everyone = net
        .rbac
        .iter()
        .any(|e| e.action == RbacAction::AccessAsShared && e.target_project == "*");
    if everyone != net.shared {
        let now = now_micros();
        db::networks::update(
            tx,
            &Network {
                shared: everyone,
                revision_number: net.revision_number + 1,
                updated_at: now,
                ..net
            },
        )
        .await?;
    }
    Ok(())
}

impl NetworkService {
    /// Policies the caller sees: those its project made (all for an admin).
    pub async fn list_rbac(&self, auth: &AuthContext) -> Result<Vec<RbacPolicy>> {
        let mut conn = self.read().await?;
        let all = db::rbac::list(&mut conn, None).await?;
        Ok(all
            .into_iter()
            .filter(|p| auth.is_admin || auth.project_id() == Some(p.project_id.as_str()))
            .collect())
    }

    pub async fn find_rbac(&self, id: &str, auth: &AuthContext) -> Result<RbacPolicy> {
        let mut conn = self.read().await?;
        match db::rbac::get(&mut conn, id).await? {
            Some(p) if auth.is_admin || auth.project_id() == Some(p.project_id.as_str()) => Ok(p),
            _ => Err(rbac_not_found(id)),
        }
    }

    pub async fn create_rbac(&self, auth: &AuthContext, req: NewRbacPolicy) -> Result<RbacPolicy> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        let mut tx = self.write().await?;
        let net = db::networks::get(&mut tx, &req.object_id)
            .await?
            .filter(|n| auth.is_admin || auth.project_id() == Some(n.project_id.as_str()))
            .ok_or_else(|| NetworkError::network_not_found(&req.object_id))?;
        self.check_quota(&mut tx, &project, "rbac_policy").await?;
        let now = now_micros();
        let p = RbacPolicy {
            id: new_id(),
            project_id: project,
            object_id: net.id.clone(),
            action: req.action,
            target_project: req.target_project,
            revision_number: 1,
            created_at: now,
            updated_at: now,
        };
        if let Err(e) = db::rbac::insert(&mut tx, &p).await {
            if ferrostack_store::is_unique_violation(&e) {
                return Err(NetworkError::conflict(
                    "DuplicateRbacPolicy",
                    "An RBAC policy already exists with those values.",
                ));
            }
            return Err(e.into());
        }
        // Sharing with everyone is the network's `shared` flag.
        sync_shared_flag(&mut tx, &p.object_id).await?;
        tx.commit().await?;
        Ok(p)
    }

    pub async fn update_rbac(&self, id: &str, target_project: String) -> Result<RbacPolicy> {
        let mut tx = self.write().await?;
        let mut p = db::rbac::get(&mut tx, id)
            .await?
            .ok_or_else(|| rbac_not_found(id))?;
        let old = p.clone();
        p.target_project = target_project;
        p.revision_number += 1;
        p.updated_at = now_micros();
        self.check_not_in_use(&mut tx, &old, Some(&p)).await?;
        if let Err(e) = db::rbac::update_target(&mut tx, &p).await {
            if ferrostack_store::is_unique_violation(&e) {
                return Err(NetworkError::conflict(
                    "DuplicateRbacPolicy",
                    "An RBAC policy already exists with those values.",
                ));
            }
            return Err(e.into());
        }
        sync_shared_flag(&mut tx, &p.object_id).await?;
        tx.commit().await?;
        Ok(p)
    }

    pub async fn delete_rbac(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let p = db::rbac::get(&mut tx, id)
            .await?
            .ok_or_else(|| rbac_not_found(id))?;
        self.check_not_in_use(&mut tx, &p, None).await?;
        db::rbac::delete(&mut tx, id).await?;
        sync_shared_flag(&mut tx, &p.object_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Refuses taking away (or narrowing to `replacement`) access that a project other than
    /// the network's owner still uses: its ports on the network (shared), its routers'
    /// gateways or floating IPs on it (external).
    async fn check_not_in_use(
        &self,
        tx: &mut db::Conn,
        p: &RbacPolicy,
        replacement: Option<&RbacPolicy>,
    ) -> Result<()> {
        let Some(net) = db::networks::get(tx, &p.object_id).await? else {
            return Ok(());
        };
        let others: Vec<&RbacPolicy> = net
            .rbac
            .iter()
            .filter(|r| r.id != p.id && r.action == p.action)
            .collect();
        let still_allowed = |project: &str| {
            project == net.project_id
                || others.iter().any(|r| r.applies_to(project))
                || replacement.is_some_and(|r| r.applies_to(project))
                || (p.action == RbacAction::AccessAsExternal && net.router_external)
        };
        let in_use = match p.action {
            RbacAction::AccessAsShared => db::ports::list(
                tx,
                &db::ports::PortQuery {
                    network_id: Some(&net.id),
                    ..Default::default()
                },
            )
            .await?
            .into_iter()
            // Every project's port counts, its router interfaces too (only ports of no
            // project, the service's own, do not).
            .filter(|port| !port.project_id.is_empty())
            .any(|port| p.applies_to(&port.project_id) && !still_allowed(&port.project_id)),
            RbacAction::AccessAsExternal => {
                let routers = db::routers::list(tx, None).await?;
                let fips = db::floating_ips::list(tx, None).await?;
                routers.iter().any(|r| {
                    r.gw_network_id.as_deref() == Some(net.id.as_str())
                        && p.applies_to(&r.project_id)
                        && !still_allowed(&r.project_id)
                }) || fips.iter().any(|f| {
                    f.floating_network_id == net.id
                        && p.applies_to(&f.project_id)
                        && !still_allowed(&f.project_id)
                })
            }
        };
        if in_use {
            return Err(NetworkError::conflict(
                "RbacPolicyInUse",
                format!("RBAC policy on object {} cannot be removed because other objects depend on it.", net.id),
            ));
        }
        Ok(())
    }
}
