//! Ports of servers, as the compute service asks for them (Nova's side of Neutron): the
//! networks a server may be put on, ports made or taken for a new server, bound to the host
//! it runs on, and released when it goes. The caller is the server's creator: what it may not
//! see answers as missing, as through the API.

use std::net::IpAddr;

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use super::ports::{IpRequest, NewPort};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::Network;
use crate::NetworkService;

/// One NIC a server asks for: a network (with an address on it, maybe) or an existing port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicRequest {
    Network {
        id: String,
        fixed_ip: Option<IpAddr>,
    },
    Port(String),
}

/// A NIC given to a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNic {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac: String,
    pub mtu: u32,
    pub ips: Vec<IpAddr>,
    /// The server's creator brought the port: it stays when the server goes.
    pub preserve: bool,
}

impl NetworkService {
    /// The networks a server of the caller's goes on when it names none: its project's own
    /// (up ones: a get-me-a-network topology being built is down) and the shared ones, never
    /// external ones.
    pub async fn server_networks(&self, auth: &AuthContext) -> Result<Vec<Network>> {
        let project = auth.project_id().unwrap_or("");
        Ok(self
            .list_networks(auth)
            .await?
            .into_iter()
            .filter(|n| {
                (n.project_id == project && !n.router_external && n.admin_state_up) || n.shared
            })
            .collect())
    }

    /// Makes (or takes) the ports of server `device_id`, in order. All or nothing: when one
    /// cannot be had, the ones made are deleted and the ones taken given back.
    pub async fn allocate_server_ports(
        &self,
        auth: &AuthContext,
        device_id: &str,
        device_owner: &str,
        requests: &[NicRequest],
        security_groups: &[String],
    ) -> Result<Vec<ServerNic>> {
        let mut done: Vec<ServerNic> = Vec::new();
        for r in requests {
            match self
                .one_server_port(auth, device_id, device_owner, r, security_groups)
                .await
            {
                Ok(nic) => done.push(nic),
                Err(e) => {
                    self.release_server_ports(device_id, &done).await;
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    async fn one_server_port(
        &self,
        auth: &AuthContext,
        device_id: &str,
        device_owner: &str,
        r: &NicRequest,
        security_groups: &[String],
    ) -> Result<ServerNic> {
        match r {
            NicRequest::Network { id, fixed_ip } => {
                let net = self.find_network(id, auth).await?;
                let groups = if net.port_security_enabled {
                    Some(self.group_ids_by_name(auth, security_groups).await?)
                } else {
                    None
                };
                let port = self
                    .create_ports(
                        auth,
                        vec![NewPort {
                            network_id: net.id.clone(),
                            admin_state_up: true,
                            fixed_ips: fixed_ip.map(|ip| {
                                vec![IpRequest {
                                    subnet_id: None,
                                    ip_address: Some(ip),
                                }]
                            }),
                            device_id: device_id.to_string(),
                            device_owner: device_owner.to_string(),
                            security_groups: groups,
                            binding_vnic_type: "normal".into(),
                            ..Default::default()
                        }],
                    )
                    .await?
                    .pop()
                    .ok_or_else(|| NetworkError::network_not_found(id))?;
                Ok(nic(port, &net, false))
            }
            NicRequest::Port(id) => {
                let (port, net) = self.find_port(id, auth).await?;
                // Only the server's own project's ports (as Nova: PortNotUsable, admins too).
                if auth.project_id() != Some(port.project_id.as_str()) {
                    return Err(NetworkError::bad_request(
                        "PortNotUsable",
                        format!("Port {id} not usable for instance {device_id}."),
                    ));
                }
                // Taken only if still free, in one transaction (two creates naming it race).
                let taken = self
                    .change_port(id, |p| {
                        if !p.device_id.is_empty() || !p.device_owner.is_empty() {
                            return false;
                        }
                        p.device_id = device_id.to_string();
                        p.device_owner = device_owner.to_string();
                        true
                    })
                    .await?;
                if !taken {
                    return Err(NetworkError::conflict(
                        "PortInUse",
                        format!("Port {id} is still in use."),
                    ));
                }
                let (port, _) = self.find_port(&port.id, auth).await?;
                self.wake_network(&net.id).await;
                Ok(nic(port, &net, true))
            }
        }
    }

    /// The ids of the caller's groups named `names` (`default`: its default group).
    async fn group_ids_by_name(&self, auth: &AuthContext, names: &[String]) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_caller_default_group(auth).await?;
        let project = auth.project_id().unwrap_or("");
        let groups = self.list_groups(auth).await?;
        let mut ids = Vec::new();
        for name in names {
            let found = groups
                .iter()
                .find(|g| g.project_id == project && (g.name == *name || g.id == *name))
                .ok_or_else(|| {
                    NetworkError::not_found(
                        "SecurityGroupNotFound",
                        format!("Security group {name} not found."),
                    )
                })?;
            if !ids.contains(&found.id) {
                ids.push(found.id.clone());
            }
        }
        Ok(ids)
    }

    /// The server whose port on network `network_id` holds `address` (a compute port's
    /// device): who a metadata request from that address on that network comes from.
    pub async fn server_at(
        &self,
        network_id: &str,
        address: std::net::IpAddr,
    ) -> Result<Option<String>> {
        let mut conn = self.read().await?;
        for s in db::subnets::for_network(&mut conn, network_id).await? {
            if !s.cidr.contains(&address) {
                continue;
            }
            let Some(port_id) = db::ports::holder_of(&mut conn, &s.id, address).await? else {
                continue;
            };
            if let Some(p) = db::ports::get(&mut conn, &port_id).await? {
                if p.device_owner.starts_with("compute:") && !p.device_id.is_empty() {
                    return Ok(Some(p.device_id));
                }
            }
        }
        Ok(None)
    }

    /// The ports of server `device_id`.
    pub async fn server_port_list(&self, device_id: &str) -> Result<Vec<crate::model::Port>> {
        let mut conn = self.read().await?;
        Ok(db::ports::list(
            &mut conn,
            &db::ports::PortQuery {
                device_id: Some(device_id),
                ..Default::default()
            },
        )
        .await?)
    }

    /// Adds the caller's group `name` to the ports `ports` of server `device_id` (`add`), or
    /// takes it off them, as Nova's addSecurityGroup and removeSecurityGroup. Returns the
    /// group's name as found.
    pub async fn change_server_group(
        &self,
        auth: &AuthContext,
        device_id: &str,
        ports: &[String],
        name: &str,
        add: bool,
    ) -> Result<()> {
        let group = self
            .group_ids_by_name(auth, &[name.to_string()])
            .await?
            .pop()
            .ok_or_else(|| {
                NetworkError::not_found(
                    "SecurityGroupNotFound",
                    format!("Security group {name} not found."),
                )
            })?;
        let mut tx = self.write().await?;
        let mut found = Vec::new();
        for id in ports {
            if let Some(p) = db::ports::get(&mut tx, id).await? {
                found.push(p);
            }
        }
        if found.is_empty()
            || found
                .iter()
                .any(|p| !p.port_security_enabled || p.fixed_ips.is_empty())
        {
            return Err(NetworkError::bad_request(
                "BadRequest",
                "Network requires port_security_enabled and subnet associated in order to apply security groups.",
            ));
        }
        let has = |p: &crate::model::Port| p.security_groups.contains(&group);
        if add && found.iter().all(has) {
            return Err(NetworkError::bad_request(
                "BadRequest",
                format!(
                    "Security group {group} is already associated with the instance {device_id}"
                ),
            ));
        }
        if !add && !found.iter().any(has) {
            return Err(NetworkError::bad_request(
                "BadRequest",
                format!("Security group {name} not associated with the instance {device_id}"),
            ));
        }
        let now = now_micros();
        let mut networks = std::collections::BTreeSet::new();
        for mut p in found {
            let mut groups = p.security_groups.clone();
            if add {
                if !groups.contains(&group) {
                    groups.push(group.clone());
                }
            } else {
                groups.retain(|g| *g != group);
            }
            db::ports::set_security_groups(&mut tx, &p.id, &groups).await?;
            p.revision_number += 1;
            p.updated_at = now;
            db::ports::update(&mut tx, &p).await?;
            networks.insert(p.network_id.clone());
        }
        tx.commit().await?;
        for n in &networks {
            self.wake_network(n).await;
        }
        Ok(())
    }

    /// Binds a server's ports to the host it runs on (`binding:host_id`); a port gone
    /// meanwhile is skipped.
    pub async fn bind_server_ports(&self, ports: &[String], host: &str) -> Result<()> {
        for id in ports {
            // Read first: the binding is almost always right already, and a write would
            // queue every agent's pass on the one writer.
            let bound = match self.read().await {
                Ok(mut conn) => db::ports::get(&mut conn, id)
                    .await?
                    .is_none_or(|p| p.binding_host_id == host),
                Err(_) => false,
            };
            if bound {
                continue;
            }
            self.change_port(id, |p| {
                if p.binding_host_id == host {
                    return false;
                }
                p.binding_host_id = host.to_string();
                true
            })
            .await?;
        }
        Ok(())
    }

    /// Gives back a server's ports: the ones made for it are deleted, the ones its creator
    /// brought are unbound and kept. Failures are logged (a port left is visible and can be
    /// deleted through the API).
    /// Only ports still `device_id`'s are touched (one reassigned since is someone else's).
    pub async fn release_server_ports(&self, device_id: &str, nics: &[ServerNic]) {
        for n in nics {
            let outcome = if n.preserve {
                self.change_port(&n.port_id, |p| {
                    if p.device_id != device_id {
                        return false;
                    }
                    p.device_id.clear();
                    p.device_owner.clear();
                    p.binding_host_id.clear();
                    p.status = crate::model::PortStatus::Down;
                    true
                })
                .await
                .map(drop)
            } else if !self.port_of_device(&n.port_id, device_id).await {
                Ok(())
            } else {
                match self.delete_port(&n.port_id).await {
                    Err(NetworkError::Neutron {
                        kind: "PortNotFound",
                        ..
                    }) => Ok(()),
                    other => other,
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(port = %n.port_id, error = %e, "releasing a server's port failed");
            }
        }
    }

    /// Whether port `id` is (still) `device_id`'s.
    async fn port_of_device(&self, id: &str, device_id: &str) -> bool {
        match self.read().await {
            Ok(mut conn) => {
                matches!(db::ports::get(&mut conn, id).await, Ok(Some(p)) if p.device_id == device_id)
            }
            Err(_) => false,
        }
    }

    /// Applies `change` to port `id` under its row lock (when it says it changed something),
    /// with a new revision; a port that does not exist is left alone. True when changed.
    async fn change_port(
        &self,
        id: &str,
        change: impl FnOnce(&mut crate::model::Port) -> bool,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        db::lock_row(&mut tx, "ports", id).await?;
        let Some(mut p) = db::ports::get(&mut tx, id).await? else {
            return Ok(false);
        };
        if !change(&mut p) {
            return Ok(false);
        }
        p.revision_number += 1;
        p.updated_at = now_micros();
        db::ports::update(&mut tx, &p).await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn nic(port: crate::model::Port, net: &Network, preserve: bool) -> ServerNic {
    ServerNic {
        port_id: port.id,
        network_id: net.id.clone(),
        network_name: net.name.clone(),
        mac: port.mac_address,
        mtu: u32::try_from(net.mtu).unwrap_or(1500),
        ips: port.fixed_ips.iter().map(|f| f.ip_address).collect(),
        preserve,
    }
}
