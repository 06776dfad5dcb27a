//! Networks: create with a segment (a free VNI for tenant networks), visibility, updates,
//! deletion with the subnets and service ports it carries.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use super::{listing_scope, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::{Network, NetworkType, RbacAction, Segment};
use crate::NetworkService;

/// What a create asks for; `None` fields take Neutron's defaults.
#[derive(Debug, Default, Clone)]
pub struct NewNetwork {
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub shared: bool,
    pub router_external: bool,
    pub is_default: bool,
    pub mtu: Option<i64>,
    pub port_security_enabled: bool,
    pub network_type: Option<NetworkType>,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
    pub az_hints: Vec<String>,
}

/// The changes of an update; `None`: unchanged.
#[derive(Debug, Default, Clone)]
pub struct NetworkChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    pub router_external: Option<bool>,
    pub is_default: Option<bool>,
    pub mtu: Option<i64>,
    pub port_security_enabled: Option<bool>,
}

impl NetworkService {
    /// Whether the caller sees the network: a cloud admin, its project, or anyone when it is
    /// shared or external.
    pub fn network_visible(n: &Network, auth: &AuthContext) -> bool {
        let project = auth.project_id().unwrap_or("");
        auth.is_admin || n.usable_by(project) || n.external_for(project)
    }

    /// The network when the caller sees it; 404 otherwise (as when it does not exist).
    pub async fn find_network(&self, id: &str, auth: &AuthContext) -> Result<Network> {
        let mut conn = self.read().await?;
        match db::networks::get(&mut conn, id).await? {
            Some(n) if Self::network_visible(&n, auth) => Ok(n),
            _ => Err(NetworkError::network_not_found(id)),
        }
    }

    pub async fn list_networks(&self, auth: &AuthContext) -> Result<Vec<Network>> {
        let mut conn = self.read().await?;
        Ok(db::networks::list(&mut conn, listing_scope(auth)).await?)
    }

    /// The segment a new network gets: the one asked for (checked), else a free VNI.
    async fn segment_for(&self, conn: &mut db::Conn, req: &NewNetwork) -> Result<Segment> {
        let t = req.network_type.unwrap_or(NetworkType::Vxlan);
        let physnets = &self.config.physical_networks;
        match t {
            NetworkType::Vxlan => {
                if req.physical_network.is_some() {
                    return Err(NetworkError::invalid_input(
                        "provider:physical_network specified for vxlan network",
                    ));
                }
                let used: std::collections::HashSet<i64> = db::networks::used_segments(conn, t)
                    .await?
                    .into_iter()
                    .collect();
                let (lo, hi) = self.config.vni_range;
                let vni = match req.segmentation_id {
                    Some(v) if !(1..=16_777_215).contains(&v) => {
                        return Err(NetworkError::invalid_input(format!(
                            "segmentation_id {v} out of range (1 through 16777215)"
                        )))
                    }
                    Some(v) if used.contains(&v) => {
                        return Err(NetworkError::conflict(
                            "TunnelIdInUse",
                            format!("Unable to create the network. The tunnel ID {v} is in use."),
                        ))
                    }
                    Some(v) => v,
                    None => (lo..=hi).find(|v| !used.contains(v)).ok_or_else(|| {
                        NetworkError::new(
                            http::StatusCode::SERVICE_UNAVAILABLE,
                            "NoNetworkAvailable",
                            "Unable to create the network. No tenant network is available for allocation.",
                        )
                    })?,
                };
                Ok(Segment {
                    network_type: t,
                    physical_network: None,
                    segmentation_id: Some(vni),
                })
            }
            NetworkType::Flat | NetworkType::Vlan => {
                let physnet = req.physical_network.clone().ok_or_else(|| {
                    NetworkError::invalid_input(format!(
                        "physical_network required for {} provider network",
                        t.as_str()
                    ))
                })?;
                if !physnets.contains(&physnet) {
                    return Err(NetworkError::invalid_input(format!(
                        "physical_network '{physnet}' unknown for {} provider network",
                        t.as_str()
                    )));
                }
                let seg = match (t, req.segmentation_id) {
                    (NetworkType::Flat, Some(_)) => {
                        return Err(NetworkError::invalid_input(
                            "segmentation_id specified for flat provider network",
                        ))
                    }
                    (NetworkType::Flat, None) => None,
                    (_, Some(v)) if !(1..=4094).contains(&v) => {
                        return Err(NetworkError::invalid_input(
                            "segmentation_id out of range (1 through 4094)",
                        ))
                    }
                    (_, Some(v)) => Some(v),
                    (_, None) => {
                        return Err(NetworkError::invalid_input(
                            "segmentation_id required for VLAN provider network",
                        ))
                    }
                };
                Ok(Segment {
                    network_type: t,
                    physical_network: Some(physnet),
                    segmentation_id: seg,
                })
            }
        }
    }

    fn max_mtu(&self, t: NetworkType) -> i64 {
        match t {
            NetworkType::Vxlan => self.config.physical_mtu - 50,
            _ => self.config.physical_mtu,
        }
    }

    pub async fn create_network(&self, auth: &AuthContext, req: NewNetwork) -> Result<Network> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        self.create_network_in(project, req).await
    }

    /// Creates a network of `project` (the caller is already authorized). A segment picked
    /// for it that another controller took first is picked again.
    pub(crate) async fn create_network_in(
        &self,
        project: String,
        req: NewNetwork,
    ) -> Result<Network> {
        for _ in 0..5 {
            match self.try_create_network(project.clone(), req.clone()).await {
                Err(NetworkError::Neutron {
                    kind: "SegmentInUse",
                    ..
                }) if req.segmentation_id.is_none() => continue,
                other => return other,
            }
        }
        Err(NetworkError::conflict(
            "SegmentInUse",
            "Unable to create the network: other requests kept taking its segment; retry.",
        ))
    }

    async fn try_create_network(&self, project: String, req: NewNetwork) -> Result<Network> {
        let mut tx = self.write().await?;
        self.check_quota(&mut tx, &project, "network").await?;
        let segment = self.segment_for(&mut tx, &req).await?;
        let max = self.max_mtu(segment.network_type);
        let mtu = match req.mtu {
            Some(m) if m > max => {
                return Err(NetworkError::invalid_input(format!(
                    "Requested MTU is too big, maximum is {max}"
                )))
            }
            Some(m) if m < 68 => {
                return Err(NetworkError::invalid_attr(
                    "mtu",
                    format!("'{m}' is too small - must be at least '68'"),
                ))
            }
            Some(m) => m,
            None => max,
        };
        let now = now_micros();
        let n = Network {
            id: new_id(),
            project_id: project,
            name: req.name,
            description: req.description,
            admin_state_up: req.admin_state_up,
            status: "ACTIVE".into(),
            shared: req.shared,
            router_external: req.router_external,
            is_default: req.is_default,
            mtu,
            port_security_enabled: req.port_security_enabled,
            segment,
            az_hints: req.az_hints,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            subnets: Vec::new(),
            tags: Vec::new(),
            rbac: Vec::new(),
        };
        if n.is_default {
            self.check_single_default(&mut tx, &n.id).await?;
        }
        let insert = db::networks::insert(&mut tx, &n).await;
        if insert.is_ok() && n.shared {
            db::rbac::insert(&mut tx, &super::rbac::everyone(&n, now)).await?;
        }
        if let Err(e) = insert {
            if ferrostack_store::is_unique_violation(&e) {
                return Err(NetworkError::conflict(
                    "SegmentInUse",
                    "Unable to create the network: its segment is in use.",
                ));
            }
            return Err(e.into());
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Only one external network may be the default (`is_default`).
    async fn check_single_default(&self, conn: &mut db::Conn, this: &str) -> Result<()> {
        let nets = db::networks::list(conn, None).await?;
        if let Some(other) = nets.iter().find(|n| n.is_default && n.id != this) {
            return Err(NetworkError::conflict(
                "DefaultExternalNetworkExists",
                format!(
                    "Unable to update the network: a default external network ({}) already exists.",
                    other.id
                ),
            ));
        }
        Ok(())
    }

    pub async fn update_network(
        &self,
        id: &str,
        changes: NetworkChanges,
        if_match: Option<i64>,
    ) -> Result<Network> {
        let mut tx = self.write().await?;
        let mut n = db::networks::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(id))?;
        Self::check_revision(if_match, n.revision_number)?;
        if let Some(v) = changes.name {
            n.name = v;
        }
        if let Some(v) = changes.description {
            n.description = v;
        }
        if let Some(v) = changes.admin_state_up {
            n.admin_state_up = v;
        }
        if let Some(v) = changes.shared {
            if !v && n.shared {
                // Unsharing is refused while other projects have ports on it.
                let ports = db::ports::list(
                    &mut tx,
                    &db::ports::PortQuery {
                        network_id: Some(id),
                        ..Default::default()
                    },
                )
                .await?;
                let own_entry = |project: &str| {
                    n.rbac.iter().any(|r| {
                        r.action == RbacAction::AccessAsShared && r.target_project == project
                    })
                };
                if ports.iter().any(|p| {
                    p.project_id != n.project_id
                        && !p.project_id.is_empty()
                        && !own_entry(&p.project_id)
                }) {
                    return Err(NetworkError::conflict(
                        "InvalidSharedSetting",
                        format!("Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."),
                    ));
                }
            }
            let has_everyone = n
                .rbac
                .iter()
                .any(|e| e.action == RbacAction::AccessAsShared && e.target_project == "*");
            if v && !has_everyone {
                db::rbac::insert(&mut tx, &super::rbac::everyone(&n, now_micros())).await?;
            } else if !v && has_everyone {
                db::rbac::delete_entry(&mut tx, id, RbacAction::AccessAsShared, "*").await?;
            }
            n.shared = v;
        }
        if let Some(v) = changes.router_external {
            if !v && n.router_external {
                let ports = db::ports::on_network(&mut tx, id).await?;
                if ports.iter().any(|(_, owner)| {
                    owner == crate::model::OWNER_ROUTER_GATEWAY
                        || owner == crate::model::OWNER_FLOATING_IP
                }) {
                    return Err(NetworkError::conflict(
                        "ExternalNetworkInUse",
                        format!("External network {id} cannot be updated, because it is used by router gateways or floating IPs"),
                    ));
                }
                n.is_default = false;
            }
            n.router_external = v;
        }
        if let Some(v) = changes.is_default {
            if v && !n.router_external {
                return Err(NetworkError::invalid_input(
                    "Only an external network can be the default",
                ));
            }
            n.is_default = v;
            if v {
                self.check_single_default(&mut tx, id).await?;
            }
        }
        if let Some(m) = changes.mtu {
            let max = self.max_mtu(n.segment.network_type);
            if m > max || m < 68 {
                return Err(NetworkError::invalid_input(format!(
                    "Requested MTU is out of range (68 through {max})"
                )));
            }
            n.mtu = m;
        }
        if let Some(v) = changes.port_security_enabled {
            n.port_security_enabled = v;
        }
        n.revision_number += 1;
        n.updated_at = now_micros();
        db::networks::update(&mut tx, &n).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Deletes a network with its subnets and its service ports (DHCP); refused while other
    /// ports are on it.
    pub async fn delete_network(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let net = db::networks::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(id))?;
        // An external network takes its floating IPs with it (as Neutron does); router
        // gateways on it still keep it.
        if net.router_external {
            for f in db::floating_ips::list(&mut tx, None).await? {
                if f.floating_network_id == id {
                    db::floating_ips::delete(&mut tx, &f.id).await?;
                    db::ports::delete(&mut tx, &f.floating_port_id).await?;
                }
            }
        }
        let ports = db::ports::on_network(&mut tx, id).await?;
        if ports.iter().any(|(_, owner)| owner != "network:dhcp") {
            return Err(NetworkError::conflict(
                "NetworkInUse",
                format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
            ));
        }
        for (port, _) in &ports {
            db::ports::delete(&mut tx, port).await?;
        }
        for s in db::subnets::for_network(&mut tx, id).await? {
            db::subnets::delete(&mut tx, &s.id).await?;
        }
        db::networks::delete(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
