//! Routers: the gateway on an external network (a port of no project, with an address of the
//! external subnet), interfaces on subnets (ports holding the subnet's gateway address, or a
//! port given), static routes, deletion refused while interfaces remain.

use std::net::IpAddr;

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use super::ports::IpRequest;
use super::{listing_scope, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::{Port, Route, Router, Subnet, OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE};
use crate::NetworkService;

/// A gateway as asked: the external network, SNAT, and the addresses wanted on it.
#[derive(Debug, Clone, Default)]
pub struct GatewayRequest {
    pub network_id: String,
    pub enable_snat: Option<bool>,
    pub fixed_ips: Option<Vec<IpRequest>>,
}

#[derive(Debug, Clone, Default)]
pub struct NewRouter {
    pub project_id: Option<String>,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub gateway: Option<GatewayRequest>,
    pub az_hints: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RouterChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    /// `Some(None)`: remove the gateway.
    pub gateway: Option<Option<GatewayRequest>>,
    pub routes: Option<Vec<Route>>,
}

/// What an interface call names: a subnet (a new port) or an existing port.
#[derive(Debug, Clone)]
pub enum InterfaceRef {
    Subnet(String),
    Port(String),
}

/// The answer of add/remove interface.
#[derive(Debug, Clone)]
pub struct InterfaceInfo {
    pub router_id: String,
    pub project_id: String,
    pub port_id: String,
    pub network_id: String,
    pub subnet_id: String,
    pub subnet_ids: Vec<String>,
}

fn bad_router(msg: impl std::fmt::Display) -> NetworkError {
    NetworkError::bad_request("BadRequest", format!("Bad router request: {msg}."))
}

impl NetworkService {
    pub async fn find_router(&self, id: &str, auth: &AuthContext) -> Result<Router> {
        let mut conn = self.read().await?;
        match db::routers::get(&mut conn, id).await? {
            Some(r) if auth.is_admin || auth.project_id() == Some(r.project_id.as_str()) => Ok(r),
            _ => Err(router_not_found(id)),
        }
    }

    pub async fn list_routers(&self, auth: &AuthContext) -> Result<Vec<Router>> {
        let mut conn = self.read().await?;
        Ok(db::routers::list(&mut conn, listing_scope(auth)).await?)
    }

    /// The interface ports of a router.
    pub async fn router_interfaces(&self, router_id: &str) -> Result<Vec<Port>> {
        let mut conn = self.read().await?;
        interfaces(&mut conn, router_id).await
    }

    pub async fn create_router(&self, auth: &AuthContext, req: NewRouter) -> Result<Router> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        let mut tx = self.write().await?;
        self.check_quota(&mut tx, &project, "router").await?;
        let now = now_micros();
        let mut r = Router {
            id: new_id(),
            project_id: project,
            name: req.name,
            description: req.description,
            admin_state_up: req.admin_state_up,
            status: "ACTIVE".into(),
            gw_network_id: None,
            enable_snat: true,
            routes: Vec::new(),
            az_hints: req.az_hints,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            gw_ips: Vec::new(),
            tags: Vec::new(),
        };
        db::routers::insert(&mut tx, &r).await?;
        let has_gateway = req.gateway.is_some();
        if let Some(gw) = req.gateway {
            self.set_gateway(&mut tx, &mut r, gw).await?;
            db::routers::update(&mut tx, &r).await?;
        }
        tx.commit().await?;
        if has_gateway {
            self.router_changed(&r.id, &[]).await;
        }
        Ok(r)
    }

    /// Puts the router's gateway on `gw.network_id` (an external network), replacing the old
    /// gateway port when the network or the addresses change.
    async fn set_gateway(
        &self,
        tx: &mut db::Conn,
        r: &mut Router,
        gw: GatewayRequest,
    ) -> Result<()> {
        let net = db::networks::get(tx, &gw.network_id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(&gw.network_id))?;
        if !net.external_for(&r.project_id) {
            return Err(bad_router(format!(
                "Network {} is not an external network",
                net.id
            )));
        }
        let same_net = r.gw_network_id.as_deref() == Some(net.id.as_str());
        if !same_net || gw.fixed_ips.is_some() {
            self.clear_gateway(tx, r).await?;
            let ips = match &gw.fixed_ips {
                Some(list) => Some(list.clone()),
                // One IPv4 address of the external network (not every subnet of it).
                None => {
                    let subnets = db::subnets::for_network(tx, &net.id).await?;
                    subnets
                        .iter()
                        .find(|s| s.cidr.addr().is_ipv4())
                        .or(subnets.first())
                        .map(|s| {
                            vec![IpRequest {
                                subnet_id: Some(s.id.clone()),
                                ip_address: None,
                            }]
                        })
                }
            };
            let port = self
                .service_port(tx, &net, "", OWNER_ROUTER_GATEWAY, &r.id, ips.as_deref())
                .await?;
            r.gw_ips = port.fixed_ips;
            r.gw_network_id = Some(net.id.clone());
        }
        if let Some(snat) = gw.enable_snat {
            r.enable_snat = snat;
        }
        Ok(())
    }

    /// Removes the gateway (its port); refused while floating IPs go through it.
    async fn clear_gateway(&self, tx: &mut db::Conn, r: &mut Router) -> Result<()> {
        if r.gw_network_id.is_none() {
            return Ok(());
        }
        let fips = db::floating_ips::for_router(tx, &r.id).await?;
        if let Some(f) = fips.first() {
            return Err(NetworkError::conflict(
                "RouterExternalGatewayInUseByFloatingIp",
                format!(
                    "Gateway cannot be updated for router {}, since a gateway to external network {} is required by one or more floating IPs ({}).",
                    r.id,
                    r.gw_network_id.clone().unwrap_or_default(),
                    f.id
                ),
            ));
        }
        for p in gateway_ports(tx, &r.id).await? {
            db::ports::delete(tx, &p.id).await?;
        }
        r.gw_network_id = None;
        r.gw_ips.clear();
        r.enable_snat = true;
        Ok(())
    }

    pub async fn update_router(
        &self,
        id: &str,
        c: RouterChanges,
        if_match: Option<i64>,
    ) -> Result<Router> {
        let was_on = self.router_hosts_now(id).await;
        let mut tx = self.write().await?;
        let mut r = db::routers::get(&mut tx, id)
            .await?
            .ok_or_else(|| router_not_found(id))?;
        Self::check_revision(if_match, r.revision_number)?;
        if let Some(v) = c.name {
            r.name = v;
        }
        if let Some(v) = c.description {
            r.description = v;
        }
        if let Some(v) = c.admin_state_up {
            r.admin_state_up = v;
        }
        match c.gateway {
            Some(Some(gw)) => self.set_gateway(&mut tx, &mut r, gw).await?,
            Some(None) => self.clear_gateway(&mut tx, &mut r).await?,
            None => {}
        }
        if let Some(routes) = c.routes {
            let ifaces = interfaces(&mut tx, id).await?;
            let subnets = interface_subnets(&mut tx, &ifaces).await?;
            for route in &routes {
                check_route(&r, route, &subnets, &ifaces)?;
            }
            r.routes = routes;
        }
        r.revision_number += 1;
        r.updated_at = now_micros();
        db::routers::update(&mut tx, &r).await?;
        tx.commit().await?;
        self.router_changed(id, &was_on).await;
        Ok(r)
    }

    /// Deletes a router and its gateway port; refused while it has interfaces.
    pub async fn delete_router(&self, id: &str) -> Result<()> {
        let was_on = self.router_hosts_now(id).await;
        let mut tx = self.write().await?;
        let mut r = db::routers::get(&mut tx, id)
            .await?
            .ok_or_else(|| router_not_found(id))?;
        if !interfaces(&mut tx, id).await?.is_empty() {
            return Err(NetworkError::conflict(
                "RouterInUse",
                format!("Router {id} still has ports"),
            ));
        }
        self.clear_gateway(&mut tx, &mut r).await?;
        db::routers::delete(&mut tx, id).await?;
        tx.commit().await?;
        self.wake_hosts(&was_on);
        Ok(())
    }

    pub async fn add_interface(
        &self,
        auth: &AuthContext,
        router_id: &str,
        what: InterfaceRef,
    ) -> Result<InterfaceInfo> {
        let mut tx = self.write().await?;
        let r = db::routers::get(&mut tx, router_id)
            .await?
            .ok_or_else(|| router_not_found(router_id))?;
        let existing = interfaces(&mut tx, router_id).await?;
        let attached = interface_subnets(&mut tx, &existing).await?;
        let port = match what {
            InterfaceRef::Subnet(sid) => {
                let s = db::subnets::get(&mut tx, &sid)
                    .await?
                    .ok_or_else(|| NetworkError::subnet_not_found(&sid))?;
                let net = db::networks::get(&mut tx, &s.network_id)
                    .await?
                    .filter(|n| Self::network_visible(n, auth))
                    .ok_or_else(|| NetworkError::subnet_not_found(&sid))?;
                // A subnet of another project only when its network is shared with the
                // router's project by name (a global share is not enough: the interface
                // takes the gateway address of everyone on it), as Neutron decides.
                let targeted = net.rbac.iter().any(|e| {
                    e.action == crate::model::RbacAction::AccessAsShared
                        && e.target_project == r.project_id
                });
                if !auth.is_admin && s.project_id != r.project_id && !targeted {
                    return Err(bad_router(format!(
                        "Cannot add interface to router because subnet {} is not owned by project making the request",
                        s.id
                    )));
                }
                let Some(gw) = s.gateway_ip else {
                    return Err(bad_router(
                        "Subnet for router interface must have a gateway IP",
                    ));
                };
                if attached.iter().any(|a| a.id == s.id) {
                    return Err(bad_router(format!(
                        "Router already has a port on subnet {}",
                        s.id
                    )));
                }
                check_overlap(&s, &attached)?;
                if let Some(holder) = db::ports::holder_of(&mut tx, &s.id, gw).await? {
                    return Err(NetworkError::conflict(
                        "IpAddressInUse",
                        format!("Unable to complete operation for network {}. The IP address {gw} is in use by port {holder}.", net.id),
                    ));
                }
                self.service_port(
                    &mut tx,
                    &net,
                    &r.project_id,
                    OWNER_ROUTER_INTERFACE,
                    &r.id,
                    Some(&[IpRequest {
                        subnet_id: Some(s.id.clone()),
                        ip_address: Some(gw),
                    }]),
                )
                .await?
            }
            InterfaceRef::Port(pid) => {
                let mut p = db::ports::get(&mut tx, &pid)
                    .await?
                    .filter(|p| auth.is_admin || auth.project_id() == Some(p.project_id.as_str()))
                    .ok_or_else(|| NetworkError::port_not_found(&pid))?;
                if !p.device_id.is_empty() || !p.device_owner.is_empty() {
                    return Err(NetworkError::conflict(
                        "PortInUse",
                        format!(
                            "Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.",
                            p.network_id, p.device_id
                        ),
                    ));
                }
                if p.fixed_ips.is_empty() {
                    return Err(bad_router("Router port must have at least one fixed IP"));
                }
                for f in &p.fixed_ips {
                    let s = db::subnets::get(&mut tx, &f.subnet_id)
                        .await?
                        .ok_or_else(|| NetworkError::subnet_not_found(&f.subnet_id))?;
                    if attached.iter().any(|a| a.id == s.id) {
                        return Err(bad_router(format!(
                            "Router already has a port on subnet {}",
                            s.id
                        )));
                    }
                    check_overlap(&s, &attached)?;
                }
                p.device_owner = OWNER_ROUTER_INTERFACE.into();
                p.device_id = r.id.clone();
                p.security_groups.clear();
                p.revision_number += 1;
                p.updated_at = now_micros();
                db::ports::update(&mut tx, &p).await?;
                db::ports::set_security_groups(&mut tx, &p.id, &[]).await?;
                p
            }
        };
        db::routers::update(
            &mut tx,
            &Router {
                revision_number: r.revision_number + 1,
                updated_at: now_micros(),
                ..r.clone()
            },
        )
        .await?;
        tx.commit().await?;
        self.router_changed(router_id, &[]).await;
        Ok(info(&r, &port, None))
    }

    pub async fn remove_interface(
        &self,
        auth: &AuthContext,
        router_id: &str,
        what: InterfaceRef,
    ) -> Result<InterfaceInfo> {
        let was_on = self.router_hosts_now(router_id).await;
        let mut tx = self.write().await?;
        let r = db::routers::get(&mut tx, router_id)
            .await?
            .ok_or_else(|| router_not_found(router_id))?;
        let ifaces = interfaces(&mut tx, router_id).await?;
        let (port, subnet) = match &what {
            InterfaceRef::Port(pid) => {
                let p = ifaces
                    .iter()
                    .find(|p| &p.id == pid)
                    .cloned()
                    .ok_or_else(|| {
                        NetworkError::not_found(
                            "RouterInterfaceNotFound",
                            format!("Router {router_id} does not have an interface with id {pid}"),
                        )
                    })?;
                (p, None)
            }
            InterfaceRef::Subnet(sid) => {
                let p = ifaces
                    .iter()
                    .find(|p| p.fixed_ips.iter().any(|f| &f.subnet_id == sid))
                    .cloned()
                    .ok_or_else(|| {
                        NetworkError::not_found(
                            "RouterInterfaceNotFoundForSubnet",
                            format!("Router {router_id} has no interface on subnet {sid}"),
                        )
                    })?;
                (p, Some(sid.clone()))
            }
        };
        let _ = auth;
        // Floating IPs that reach their ports through this interface keep it.
        let subnets: Vec<String> = port.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect();
        for f in db::floating_ips::for_router(&mut tx, router_id).await? {
            let Some(fixed) = f.fixed_ip_address else {
                continue;
            };
            for sid in &subnets {
                if let Some(s) = db::subnets::get(&mut tx, sid).await? {
                    if s.cidr.contains(&fixed) {
                        return Err(NetworkError::conflict(
                            "RouterInterfaceInUseByFloatingIP",
                            format!("Router interface for subnet {sid} on router {router_id} cannot be deleted, as it is required by one or more floating IPs."),
                        ));
                    }
                }
            }
        }
        for route in &r.routes {
            for sid in &subnets {
                if let Some(s) = db::subnets::get(&mut tx, sid).await? {
                    if s.cidr.contains(&route.nexthop) {
                        return Err(NetworkError::conflict(
                            "RouterInterfaceInUseByRoute",
                            format!("Router interface for subnet {sid} on router {router_id} cannot be deleted, as it is required by one or more routes."),
                        ));
                    }
                }
            }
        }
        db::ports::delete(&mut tx, &port.id).await?;
        db::routers::update(
            &mut tx,
            &Router {
                revision_number: r.revision_number + 1,
                updated_at: now_micros(),
                ..r.clone()
            },
        )
        .await?;
        tx.commit().await?;
        self.router_changed(router_id, &was_on).await;
        Ok(info(&r, &port, subnet))
    }
}

fn router_not_found(id: &str) -> NetworkError {
    NetworkError::not_found("RouterNotFound", format!("Router {id} could not be found"))
}

fn info(r: &Router, p: &Port, subnet: Option<String>) -> InterfaceInfo {
    let subnet_ids: Vec<String> = p.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect();
    InterfaceInfo {
        router_id: r.id.clone(),
        project_id: r.project_id.clone(),
        port_id: p.id.clone(),
        network_id: p.network_id.clone(),
        subnet_id: subnet.unwrap_or_else(|| subnet_ids.first().cloned().unwrap_or_default()),
        subnet_ids,
    }
}

async fn interfaces(conn: &mut db::Conn, router_id: &str) -> Result<Vec<Port>> {
    Ok(db::ports::list(
        conn,
        &db::ports::PortQuery {
            device_id: Some(router_id),
            device_owner: Some(OWNER_ROUTER_INTERFACE),
            ..Default::default()
        },
    )
    .await?)
}

async fn gateway_ports(conn: &mut db::Conn, router_id: &str) -> Result<Vec<Port>> {
    Ok(db::ports::list(
        conn,
        &db::ports::PortQuery {
            device_id: Some(router_id),
            device_owner: Some(OWNER_ROUTER_GATEWAY),
            ..Default::default()
        },
    )
    .await?)
}

async fn interface_subnets(conn: &mut db::Conn, ifaces: &[Port]) -> Result<Vec<Subnet>> {
    let mut out = Vec::new();
    for p in ifaces {
        for f in &p.fixed_ips {
            if let Some(s) = db::subnets::get(conn, &f.subnet_id).await? {
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn check_overlap(s: &Subnet, attached: &[Subnet]) -> Result<()> {
    if let Some(o) = attached.iter().find(|a| ipam::overlaps(&a.cidr, &s.cidr)) {
        return Err(bad_router(format!(
            "Cidr {} of subnet {} overlaps with cidr {} of subnet {}",
            s.cidr, s.id, o.cidr, o.id
        )));
    }
    Ok(())
}

/// A static route's next hop must be on a subnet the router is attached to, and not one of
/// the router's own addresses.
fn check_route(r: &Router, route: &Route, subnets: &[Subnet], ifaces: &[Port]) -> Result<()> {
    let own: Vec<IpAddr> = ifaces
        .iter()
        .flat_map(|p| p.fixed_ips.iter().map(|f| f.ip_address))
        .chain(r.gw_ips.iter().map(|f| f.ip_address))
        .collect();
    if own.contains(&route.nexthop) {
        return Err(NetworkError::bad_request(
            "InvalidRoutes",
            format!("Invalid format for routes: {route:?}, the nexthop is used by router"),
        ));
    }
    if !subnets.iter().any(|s| s.cidr.contains(&route.nexthop)) {
        return Err(NetworkError::bad_request(
            "InvalidRoutes",
            format!(
                "Invalid format for routes: [{{'destination': '{}', 'nexthop': '{}'}}], the nexthop is not connected with router",
                route.destination, route.nexthop
            ),
        ));
    }
    Ok(())
}
