//! Floating IPs: an address of an external network (a port of no project on it), forwarded
//! to a fixed address of a port reachable through a router whose gateway is on that network.

use std::net::IpAddr;

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use super::ports::IpRequest;
use super::{listing_scope, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::{FloatingIp, FloatingIpStatus, Port, OWNER_FLOATING_IP, OWNER_ROUTER_INTERFACE};
use crate::NetworkService;

#[derive(Debug, Clone, Default)]
pub struct NewFloatingIp {
    pub project_id: Option<String>,
    pub floating_network_id: String,
    pub floating_ip_address: Option<IpAddr>,
    pub subnet_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<IpAddr>,
    pub description: String,
}

#[derive(Debug, Clone, Default)]
pub struct FloatingIpChanges {
    /// `Some(None)`: disassociate.
    pub port_id: Option<Option<String>>,
    pub fixed_ip_address: Option<IpAddr>,
    pub description: Option<String>,
}

pub fn floating_ip_not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "FloatingIPNotFound",
        format!("Floating IP {id} could not be found"),
    )
}

impl NetworkService {
    pub async fn find_floating_ip(&self, id: &str, auth: &AuthContext) -> Result<FloatingIp> {
        let mut conn = self.read().await?;
        match db::floating_ips::get(&mut conn, id).await? {
            Some(f) if auth.is_admin || auth.project_id() == Some(f.project_id.as_str()) => Ok(f),
            _ => Err(floating_ip_not_found(id)),
        }
    }

    pub async fn list_floating_ips(&self, auth: &AuthContext) -> Result<Vec<FloatingIp>> {
        let mut conn = self.read().await?;
        Ok(db::floating_ips::list(&mut conn, listing_scope(auth)).await?)
    }

    pub async fn create_floating_ip(
        &self,
        auth: &AuthContext,
        req: NewFloatingIp,
    ) -> Result<FloatingIp> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        let mut tx = self.write().await?;
        let net = db::networks::get(&mut tx, &req.floating_network_id)
            .await?
            .filter(|n| Self::network_visible(n, auth))
            .ok_or_else(|| NetworkError::network_not_found(&req.floating_network_id))?;
        if !net.external_for(&project) {
            return Err(NetworkError::bad_request(
                "BadRequest",
                format!(
                    "Bad floatingip request: Network {} is not a valid external network.",
                    net.id
                ),
            ));
        }
        self.check_quota(&mut tx, &project, "floatingip").await?;
        let id = new_id();
        let ip_req = match (req.floating_ip_address, &req.subnet_id) {
            (None, None) => {
                let subnets = db::subnets::for_network(&mut tx, &net.id).await?;
                let v4 = subnets.iter().find(|s| s.cidr.addr().is_ipv4()).ok_or_else(|| {
                    NetworkError::bad_request(
                        "BadRequest",
                        format!("Bad floatingip request: Network {} does not contain any IPv4 subnet.", net.id),
                    )
                })?;
                vec![IpRequest {
                    subnet_id: Some(v4.id.clone()),
                    ip_address: None,
                }]
            }
            (ip, subnet) => vec![IpRequest {
                subnet_id: subnet.clone(),
                ip_address: ip,
            }],
        };
        let fport = self
            .service_port(&mut tx, &net, "", OWNER_FLOATING_IP, &id, Some(&ip_req))
            .await?;
        let address = fport
            .fixed_ips
            .first()
            .map(|f| f.ip_address)
            .ok_or_else(|| {
                NetworkError::conflict(
                    "IpAddressGenerationFailure",
                    format!("No more IP addresses available on network {}.", net.id),
                )
            })?;
        let now = now_micros();
        let mut f = FloatingIp {
            id,
            project_id: project,
            floating_network_id: net.id.clone(),
            floating_ip_address: address,
            floating_port_id: fport.id,
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            status: FloatingIpStatus::Down,
            description: req.description,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            tags: Vec::new(),
        };
        if let Some(pid) = &req.port_id {
            self.associate(&mut tx, auth, &mut f, pid, req.fixed_ip_address)
                .await?;
        }
        db::floating_ips::insert(&mut tx, &f).await?;
        tx.commit().await?;
        if let Some(r) = &f.router_id {
            self.wake_router(r).await;
        }
        Ok(f)
    }

    /// Points `f` at a fixed address of `port_id`: the port is the floating IP's project's
    /// (or any for an admin), and a router with a gateway on the floating IP's network has
    /// an interface on that address's subnet.
    async fn associate(
        &self,
        tx: &mut db::Conn,
        auth: &AuthContext,
        f: &mut FloatingIp,
        port_id: &str,
        fixed: Option<IpAddr>,
    ) -> Result<()> {
        let port: Port = db::ports::get(tx, port_id)
            .await?
            .filter(|p| auth.is_admin || p.project_id == f.project_id)
            .ok_or_else(|| NetworkError::port_not_found(port_id))?;
        if super::is_service_owner(&port.device_owner) {
            return Err(NetworkError::bad_request(
                "BadRequest",
                format!("Bad floatingip request: Port {port_id} has owner {} and therefore cannot be assigned a floating IP.", port.device_owner),
            ));
        }
        if fixed.is_some_and(|ip| !ip.is_ipv4()) {
            return Err(NetworkError::bad_request(
                "BadRequest",
                "Bad floatingip request: Cannot process floating IP association with a fixed IP that is not an IPv4 address.",
            ));
        }
        let candidates: Vec<_> = port
            .fixed_ips
            .iter()
            .filter(|x| x.ip_address.is_ipv4())
            .collect();
        let chosen = match fixed {
            Some(ip) => port.fixed_ips.iter().find(|x| x.ip_address == ip).ok_or_else(|| {
                NetworkError::bad_request(
                    "BadRequest",
                    format!("Bad floatingip request: Port {port_id} does not have fixed ip {ip}."),
                )
            })?,
            None => match candidates.as_slice() {
                [one] => *one,
                [] => {
                    return Err(NetworkError::bad_request(
                        "BadRequest",
                        format!("Bad floatingip request: Port {port_id} does not have any IPv4 address."),
                    ))
                }
                _ => {
                    return Err(NetworkError::bad_request(
                        "BadRequest",
                        format!("Bad floatingip request: Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP."),
                    ))
                }
            },
        };
        // Another floating IP of this network on the same address?
        for other in db::floating_ips::for_port(tx, port_id).await? {
            if other.id != f.id
                && other.fixed_ip_address == Some(chosen.ip_address)
                && other.floating_network_id == f.floating_network_id
            {
                return Err(NetworkError::conflict(
                    "FloatingIPPortAlreadyAssociated",
                    format!(
                        "Cannot associate floating IP {} ({}) with port {port_id} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.",
                        f.floating_ip_address, f.id, chosen.ip_address, f.floating_network_id
                    ),
                ));
            }
        }
        if !db::port_forwardings::of_floating_ip(tx, &f.id)
            .await?
            .is_empty()
        {
            return Err(NetworkError::conflict(
                "FipInUseByPortForwarding",
                format!(
                    "Floating IP {} has port forwardings: it cannot also be associated with a port.",
                    f.id
                ),
            ));
        }
        let router = router_reaching(tx, &f.floating_network_id, &port, &chosen.subnet_id).await?;
        f.port_id = Some(port_id.to_string());
        f.fixed_ip_address = Some(chosen.ip_address);
        f.router_id = Some(router);
        Ok(())
    }

    pub async fn update_floating_ip(
        &self,
        auth: &AuthContext,
        id: &str,
        c: FloatingIpChanges,
        if_match: Option<i64>,
    ) -> Result<FloatingIp> {
        let mut tx = self.write().await?;
        let mut f = db::floating_ips::get(&mut tx, id)
            .await?
            .ok_or_else(|| floating_ip_not_found(id))?;
        Self::check_revision(if_match, f.revision_number)?;
        let router_before = f.router_id.clone();
        if let Some(d) = c.description {
            f.description = d;
        }
        match c.port_id {
            Some(Some(pid)) => {
                self.associate(&mut tx, auth, &mut f, &pid, c.fixed_ip_address)
                    .await?
            }
            // Port forwardings keep their router (and the floating IP its status).
            Some(None) if f.port_id.is_some() => {
                f.port_id = None;
                f.fixed_ip_address = None;
                f.router_id = None;
                f.status = FloatingIpStatus::Down;
            }
            Some(None) => {}
            None => {}
        }
        f.revision_number += 1;
        f.updated_at = now_micros();
        if let Err(e) = db::floating_ips::update(&mut tx, &f).await {
            if ferrostack_store::is_unique_violation(&e) {
                return Err(NetworkError::conflict(
                    "FloatingIPPortAlreadyAssociated",
                    "That fixed IP already has a floating IP on this external network.",
                ));
            }
            return Err(e.into());
        }
        tx.commit().await?;
        for r in router_before.iter().chain(f.router_id.iter()) {
            self.wake_router(r).await;
        }
        Ok(f)
    }

    pub async fn delete_floating_ip(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let f = db::floating_ips::get(&mut tx, id)
            .await?
            .ok_or_else(|| floating_ip_not_found(id))?;
        db::port_forwardings::delete_of_floating_ip(&mut tx, id).await?;
        db::floating_ips::delete(&mut tx, id).await?;
        db::ports::delete(&mut tx, &f.floating_port_id).await?;
        tx.commit().await?;
        if let Some(r) = &f.router_id {
            self.wake_router(r).await;
        }
        Ok(())
    }

    /// Disassociates the floating IPs of a port being deleted (Neutron does the same).
    pub(crate) async fn release_floating_ips_of(
        &self,
        tx: &mut db::Conn,
        port_id: &str,
    ) -> Result<()> {
        for mut f in db::floating_ips::for_port(tx, port_id).await? {
            f.port_id = None;
            f.fixed_ip_address = None;
            f.router_id = None;
            f.status = FloatingIpStatus::Down;
            f.revision_number += 1;
            f.updated_at = now_micros();
            db::floating_ips::update(tx, &f).await?;
        }
        Ok(())
    }
}

/// The router through which port `port`'s address on `subnet_id` reaches external network
/// `floating_network`: its gateway is on that network and an interface on the subnet.
pub(crate) async fn router_reaching(
    tx: &mut db::Conn,
    floating_network: &str,
    port: &Port,
    subnet_id: &str,
) -> Result<String> {
    let routers = db::routers::list(tx, None).await?;
    let ifaces = db::ports::list(
        tx,
        &db::ports::PortQuery {
            device_owner: Some(OWNER_ROUTER_INTERFACE),
            network_id: Some(&port.network_id),
            ..Default::default()
        },
    )
    .await?;
    routers
        .iter()
        .find(|r| {
            r.gw_network_id.as_deref() == Some(floating_network)
                && ifaces.iter().any(|i| {
                    i.device_id == r.id && i.fixed_ips.iter().any(|x| x.subnet_id == subnet_id)
                })
        })
        .map(|r| r.id.clone())
        .ok_or_else(|| {
            NetworkError::not_found(
                "ExternalGatewayForFloatingIPNotFound",
                format!(
                    "External network {floating_network} is not reachable from subnet {subnet_id}.  Therefore, cannot associate Port {} with a Floating IP.",
                    port.id
                ),
            )
        })
}
