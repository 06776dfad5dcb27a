//! Ports: MAC and address allocation (one transaction per create, bulk creates included, that
//! picks again when another controller took the same address first), security groups and
//! address pairs, updates, deletion.

use std::collections::HashSet;
use std::net::IpAddr;

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;
use rand::Rng;

use super::{is_service_owner, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::{
    AddressPair, DhcpOpt, FixedIp, Ipv6Mode, Network, Port, PortStatus, Subnet, OWNER_FLOATING_IP,
    OWNER_ROUTER_GATEWAY, OWNER_ROUTER_INTERFACE,
};
use crate::NetworkService;

/// One entry of `fixed_ips` in a request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IpRequest {
    pub subnet_id: Option<String>,
    pub ip_address: Option<IpAddr>,
}

#[derive(Debug, Clone, Default)]
pub struct NewPort {
    pub project_id: Option<String>,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub mac_address: Option<String>,
    /// `None`: addresses chosen by the service.
    pub fixed_ips: Option<Vec<IpRequest>>,
    pub device_id: String,
    pub device_owner: String,
    /// `None`: the project's default group (when port security is on).
    pub security_groups: Option<Vec<String>>,
    /// `None`: the network's setting.
    pub port_security_enabled: Option<bool>,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    pub binding_host_id: String,
    pub binding_vnic_type: String,
    pub binding_profile: serde_json::Map<String, serde_json::Value>,
    pub dns_name: String,
}

#[derive(Debug, Clone, Default)]
pub struct PortChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub mac_address: Option<String>,
    pub fixed_ips: Option<Vec<IpRequest>>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub port_security_enabled: Option<bool>,
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    pub extra_dhcp_opts: Option<Vec<DhcpOpt>>,
    pub binding_host_id: Option<String>,
    pub binding_vnic_type: Option<String>,
    pub binding_profile: Option<serde_json::Map<String, serde_json::Value>>,
    pub dns_name: Option<String>,
}

/// VNIC types a port may ask for; only `normal` (a tap) is wired by this cloud's hosts.
pub const VNIC_TYPES: [&str; 9] = [
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
];

/// Device owners only the service gives its own ports (router interfaces and gateways,
/// floating IPs): which ports a router has is read from them, so the port API may not set
/// them.
pub fn check_owner_settable(device_owner: &str) -> Result<()> {
    if [
        OWNER_ROUTER_INTERFACE,
        OWNER_ROUTER_GATEWAY,
        OWNER_FLOATING_IP,
    ]
    .contains(&device_owner)
    {
        return Err(NetworkError::bad_request(
            "BadRequest",
            format!(
                "Bad port request: device_owner {device_owner} is reserved for ports the networking service makes (router interfaces, gateways, floating IPs)."
            ),
        ));
    }
    Ok(())
}

/// Checks a MAC as Neutron does: six hex octets, unicast, not all zeros; lower-cased.
pub fn parse_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let bytes: Vec<u8> = parts
        .iter()
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    if bytes[0] & 1 == 1 || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

/// A MAC with OpenStack's `fa:16:3e` prefix and three random octets.
fn random_mac() -> String {
    let mut r = rand::thread_rng();
    format!(
        "fa:16:3e:{:02x}:{:02x}:{:02x}",
        r.gen::<u8>(),
        r.gen::<u8>(),
        r.gen::<u8>()
    )
}

/// Why a create must be done again: another writer took a MAC or an address first.
enum Attempt {
    Failed(NetworkError),
    Raced,
}

impl From<NetworkError> for Attempt {
    fn from(e: NetworkError) -> Self {
        Attempt::Failed(e)
    }
}

impl From<ferrostack_store::sqlx::Error> for Attempt {
    fn from(e: ferrostack_store::sqlx::Error) -> Self {
        // Another writer took the address or MAC first, or PostgreSQL broke a deadlock between
        // bulk creates locking subnets in different orders: pick again.
        if ferrostack_store::is_unique_violation(&e) || ferrostack_store::is_retryable_conflict(&e)
        {
            Attempt::Raced
        } else {
            Attempt::Failed(e.into())
        }
    }
}

/// Times a create is tried when other writers keep taking the addresses it picked.
const ATTEMPTS: usize = 8;

impl NetworkService {
    /// Whether the caller sees the port: a cloud admin, its project, or the network's owner.
    pub fn port_visible(p: &Port, net_owner: &str, auth: &AuthContext) -> bool {
        auth.is_admin
            || auth.project_id() == Some(p.project_id.as_str())
            || auth.project_id() == Some(net_owner)
    }

    /// The port with its network's owner when the caller sees it; 404 otherwise.
    pub async fn find_port(&self, id: &str, auth: &AuthContext) -> Result<(Port, Network)> {
        let mut conn = self.read().await?;
        let p = db::ports::get(&mut conn, id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(id))?;
        let n = db::networks::get(&mut conn, &p.network_id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(id))?;
        if !Self::port_visible(&p, &n.project_id, auth) {
            return Err(NetworkError::port_not_found(id));
        }
        Ok((p, n))
    }

    /// Ports the caller sees, narrowed by network and device when given.
    pub async fn list_ports(
        &self,
        auth: &AuthContext,
        network_id: Option<&str>,
        device_id: Option<&str>,
    ) -> Result<Vec<Port>> {
        let mut conn = self.read().await?;
        Ok(db::ports::list(
            &mut conn,
            &db::ports::PortQuery {
                visible_to: super::listing_scope(auth),
                network_id,
                device_id,
                ..Default::default()
            },
        )
        .await?)
    }

    /// Creates ports, all or none (a bulk create is one transaction).
    pub async fn create_ports(&self, auth: &AuthContext, reqs: Vec<NewPort>) -> Result<Vec<Port>> {
        for _ in 0..ATTEMPTS {
            match self.try_create_ports(auth, &reqs).await {
                Ok(ports) => {
                    let nets: std::collections::BTreeSet<&str> =
                        ports.iter().map(|p| p.network_id.as_str()).collect();
                    for n in nets {
                        self.wake_network(n).await;
                    }
                    return Ok(ports);
                }
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Raced) => continue,
            }
        }
        Err(NetworkError::conflict(
            "IpAddressGenerationFailure",
            "Unable to allocate addresses: other requests kept taking them first; retry.",
        ))
    }

    async fn try_create_ports(
        &self,
        auth: &AuthContext,
        reqs: &[NewPort],
    ) -> std::result::Result<Vec<Port>, Attempt> {
        let mut tx = self.write().await?;
        // Lock every subnet the creates may take addresses from, in one order (network id,
        // then creation), so bulk creates naming networks in different orders queue instead of
        // deadlocking (PostgreSQL; the later per-port locks are already held).
        let mut nets: Vec<&str> = reqs.iter().map(|r| r.network_id.as_str()).collect();
        nets.sort_unstable();
        nets.dedup();
        for n in nets {
            for s in db::subnets::for_network(&mut tx, n).await? {
                db::lock_row(&mut tx, "subnets", &s.id).await?;
            }
        }
        let mut out = Vec::with_capacity(reqs.len());
        for req in reqs {
            let project = super::owner_for(auth, req.project_id.as_deref())?;
            self.check_quota(&mut tx, &project, "port").await?;
            let port = self.build_port(&mut tx, auth, project, req).await?;
            out.push(port);
        }
        tx.commit().await.map_err(NetworkError::from)?;
        Ok(out)
    }

    async fn build_port(
        &self,
        tx: &mut db::Conn,
        auth: &AuthContext,
        project: String,
        req: &NewPort,
    ) -> std::result::Result<Port, Attempt> {
        let net = db::networks::get(tx, &req.network_id)
            .await?
            .filter(|n| Self::network_visible(n, auth))
            .ok_or_else(|| NetworkError::network_not_found(&req.network_id))?;
        if !auth.is_admin && !net.usable_by(&project) {
            return Err(NetworkError::policy("create_port").into());
        }
        check_owner_settable(&req.device_owner)?;
        let id = new_id();
        let mac = match &req.mac_address {
            Some(m) => {
                let m = parse_mac(m).ok_or_else(|| {
                    NetworkError::invalid_attr(
                        "mac_address",
                        format!("'{m}' is not a valid MAC address"),
                    )
                })?;
                if mac_in_use(tx, &net.id, &m).await? {
                    return Err(mac_conflict(&net.id, &m).into());
                }
                m
            }
            None => random_mac(),
        };
        let port_security = req
            .port_security_enabled
            .unwrap_or(net.port_security_enabled);
        let groups = self
            .groups_for(
                tx,
                auth,
                &project,
                port_security,
                &req.device_owner,
                req.security_groups.as_deref(),
            )
            .await?;
        check_pairs(port_security, &req.allowed_address_pairs)?;
        check_vnic(&req.binding_vnic_type)?;
        let now = now_micros();
        let mut port = Port {
            id: id.clone(),
            project_id: project,
            network_id: net.id.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            mac_address: mac,
            admin_state_up: req.admin_state_up,
            status: PortStatus::Down,
            device_id: req.device_id.clone(),
            device_owner: req.device_owner.clone(),
            binding_host_id: req.binding_host_id.clone(),
            binding_vnic_type: req.binding_vnic_type.clone(),
            binding_profile: req.binding_profile.clone(),
            port_security_enabled: port_security,
            allowed_address_pairs: Vec::new(),
            extra_dhcp_opts: req.extra_dhcp_opts.clone(),
            dns_name: req.dns_name.clone(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
            fixed_ips: Vec::new(),
            security_groups: groups,
            tags: Vec::new(),
        };
        port.allowed_address_pairs = with_port_mac(&req.allowed_address_pairs, &port.mac_address);
        db::ports::insert(tx, &port).await?;
        port.fixed_ips = allocate(tx, &net, &port, req.fixed_ips.as_deref()).await?;
        db::ports::set_security_groups(tx, &port.id, &port.security_groups).await?;
        Ok(port)
    }

    /// The groups a port gets: those asked for (each the project's, or any for an admin),
    /// else the project's default group; none for service ports or without port security.
    async fn groups_for(
        &self,
        tx: &mut db::Conn,
        auth: &AuthContext,
        project: &str,
        port_security: bool,
        device_owner: &str,
        asked: Option<&[String]>,
    ) -> Result<Vec<String>> {
        match asked {
            Some(list) if !list.is_empty() => {
                if !port_security {
                    return Err(NetworkError::bad_request(
                        "PortSecurityAndIPRequiredForSecurityGroups",
                        "Port security must be enabled and port must have an IP address in order to use security groups.",
                    ));
                }
                let mut out: Vec<String> = Vec::new();
                for g in list {
                    let group = db::security_groups::get(tx, g).await?;
                    match group {
                        Some(sg) if auth.is_admin || sg.project_id == project => {
                            if !out.contains(&sg.id) {
                                out.push(sg.id)
                            }
                        }
                        _ => return Err(NetworkError::security_group_not_found(g)),
                    }
                }
                out.sort();
                Ok(out)
            }
            Some(_) => Ok(Vec::new()),
            None if !port_security || is_service_owner(device_owner) => Ok(Vec::new()),
            None => Ok(vec![self.ensure_default_group(tx, project).await?]),
        }
    }

    pub async fn update_port(
        &self,
        auth: &AuthContext,
        id: &str,
        changes: PortChanges,
        if_match: Option<i64>,
    ) -> Result<Port> {
        for _ in 0..ATTEMPTS {
            match self.try_update_port(auth, id, &changes, if_match).await {
                Ok(p) => {
                    self.wake_network(&p.network_id).await;
                    return Ok(p);
                }
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Raced) => continue,
            }
        }
        Err(NetworkError::conflict(
            "IpAddressGenerationFailure",
            "Unable to allocate addresses: other requests kept taking them first; retry.",
        ))
    }

    async fn try_update_port(
        &self,
        auth: &AuthContext,
        id: &str,
        c: &PortChanges,
        if_match: Option<i64>,
    ) -> std::result::Result<Port, Attempt> {
        let mut tx = self.write().await?;
        let mut p = db::ports::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(id))?;
        Self::check_revision(if_match, p.revision_number)?;
        let net = db::networks::get(&mut tx, &p.network_id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(id))?;
        if let Some(v) = &c.name {
            p.name = v.clone();
        }
        if let Some(v) = &c.description {
            p.description = v.clone();
        }
        if let Some(v) = c.admin_state_up {
            p.admin_state_up = v;
        }
        if let Some(v) = &c.device_id {
            p.device_id = v.clone();
        }
        if let Some(v) = &c.device_owner {
            if *v != p.device_owner {
                check_owner_settable(v)?;
                check_owner_settable(&p.device_owner)?;
            }
            p.device_owner = v.clone();
        }
        if let Some(v) = &c.dns_name {
            p.dns_name = v.clone();
        }
        if let Some(m) = &c.mac_address {
            let m = parse_mac(m).ok_or_else(|| {
                NetworkError::invalid_attr(
                    "mac_address",
                    format!("'{m}' is not a valid MAC address"),
                )
            })?;
            if m != p.mac_address {
                if !p.binding_host_id.is_empty() {
                    return Err(NetworkError::conflict(
                        "PortBound",
                        format!("Unable to complete operation on port {id}, port is already bound, port type: bridge, old_mac {}, new_mac {m}.", p.mac_address),
                    )
                    .into());
                }
                if mac_in_use(&mut tx, &p.network_id, &m).await? {
                    return Err(mac_conflict(&p.network_id, &m).into());
                }
                p.mac_address = m;
            }
        }
        if let Some(v) = c.port_security_enabled {
            p.port_security_enabled = v;
        }
        if let Some(v) = &c.binding_host_id {
            p.binding_host_id = v.clone();
        }
        if let Some(v) = &c.binding_vnic_type {
            check_vnic(v)?;
            p.binding_vnic_type = v.clone();
        }
        if let Some(v) = &c.binding_profile {
            p.binding_profile = v.clone();
        }
        if let Some(v) = &c.extra_dhcp_opts {
            p.extra_dhcp_opts = v.clone();
        }
        if let Some(v) = &c.allowed_address_pairs {
            p.allowed_address_pairs = with_port_mac(v, &p.mac_address);
        }
        check_pairs(p.port_security_enabled, &p.allowed_address_pairs)?;
        match &c.security_groups {
            Some(asked) => {
                let project = p.project_id.clone();
                p.security_groups = self
                    .groups_for(
                        &mut tx,
                        auth,
                        &project,
                        p.port_security_enabled,
                        &p.device_owner,
                        Some(asked),
                    )
                    .await?;
            }
            None if !p.port_security_enabled && !p.security_groups.is_empty() => {
                return Err(NetworkError::conflict(
                    "PortSecurityPortHasSecurityGroup",
                    "Port has security group associated. Cannot disable port security or ip address until security group is removed",
                )
                .into());
            }
            None => {}
        }
        if let Some(reqs) = &c.fixed_ips {
            db::ports::delete_ips(&mut tx, id).await?;
            p.fixed_ips = allocate(&mut tx, &net, &p, Some(reqs)).await?;
            // A floating IP forwarding to an address the port gives up would forward to
            // whoever gets it next.
            for f in db::floating_ips::for_port(&mut tx, id).await? {
                if let Some(fixed) = f.fixed_ip_address {
                    if !p.fixed_ips.iter().any(|x| x.ip_address == fixed) {
                        return Err(NetworkError::bad_request(
                            "BadRequest",
                            format!(
                                "Bad port request: Cannot update the fixed IPs of port {id}: its address {fixed} has floating IP {} (disassociate it first).",
                                f.id
                            ),
                        )
                        .into());
                    }
                }
            }
        }
        p.revision_number += 1;
        p.updated_at = now_micros();
        db::ports::update(&mut tx, &p).await?;
        db::ports::set_security_groups(&mut tx, id, &p.security_groups).await?;
        tx.commit().await.map_err(NetworkError::from)?;
        Ok(p)
    }

    pub async fn delete_port(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let p = db::ports::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::port_not_found(id))?;
        // A router's or a floating IP's port goes with what it serves, not on its own.
        if [
            OWNER_ROUTER_INTERFACE,
            OWNER_ROUTER_GATEWAY,
            OWNER_FLOATING_IP,
        ]
        .contains(&p.device_owner.as_str())
        {
            return Err(NetworkError::conflict(
                "ServicePortInUse",
                format!(
                    "Port {id} cannot be deleted directly via the port API: has device owner {}.",
                    p.device_owner
                ),
            ));
        }
        self.release_floating_ips_of(&mut tx, id).await?;
        // Its host is woken too (it is no longer bound there once the row is gone).
        let host = p.binding_host_id.clone();
        let forwarded = db::port_forwardings::floating_ips_to_port(&mut tx, id).await?;
        db::ports::delete(&mut tx, id).await?;
        let mut routers = Vec::new();
        for fip in &forwarded {
            routers.extend(self.release_forwarding_router(&mut tx, fip).await?);
        }
        tx.commit().await?;
        for r in &routers {
            self.wake_router(r).await;
        }
        self.wake_network(&p.network_id).await;
        if let Some(wake) = self.host_waker.get().filter(|_| !host.is_empty()) {
            wake(&host);
        }
        if p.device_owner.starts_with("compute:") && !p.device_id.is_empty() {
            if let Some(gone) = self.port_gone.get() {
                gone(&p.device_id, id);
            }
        }
        Ok(())
    }
}

impl NetworkService {
    /// A port the service makes for itself (router interface or gateway, floating IP,
    /// DHCP) on `net` for `project`: no security groups, addresses as asked or picked.
    pub(crate) async fn service_port(
        &self,
        tx: &mut db::Conn,
        net: &Network,
        project: &str,
        device_owner: &str,
        device_id: &str,
        ips: Option<&[IpRequest]>,
    ) -> Result<Port> {
        let now = now_micros();
        let mut port = Port {
            id: new_id(),
            project_id: project.to_string(),
            network_id: net.id.clone(),
            name: String::new(),
            description: String::new(),
            mac_address: random_mac(),
            admin_state_up: true,
            status: PortStatus::Down,
            device_id: device_id.to_string(),
            device_owner: device_owner.to_string(),
            binding_host_id: String::new(),
            binding_vnic_type: "normal".into(),
            binding_profile: Default::default(),
            port_security_enabled: false,
            allowed_address_pairs: Vec::new(),
            extra_dhcp_opts: Vec::new(),
            dns_name: String::new(),
            revision_number: 1,
            created_at: now,
            updated_at: now,
            fixed_ips: Vec::new(),
            security_groups: Vec::new(),
            tags: Vec::new(),
        };
        db::ports::insert(tx, &port).await?;
        port.fixed_ips = match allocate(tx, net, &port, ips).await {
            Ok(f) => f,
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Raced) => {
                return Err(NetworkError::conflict(
                    "IpAddressGenerationFailure",
                    "Another request took the address at the same time; retry.",
                ))
            }
        };
        Ok(port)
    }
}

async fn mac_in_use(tx: &mut db::Conn, network_id: &str, mac: &str) -> Result<bool> {
    let ports = db::ports::list(
        tx,
        &db::ports::PortQuery {
            network_id: Some(network_id),
            ..Default::default()
        },
    )
    .await?;
    Ok(ports.iter().any(|p| p.mac_address == mac))
}

fn mac_conflict(network_id: &str, mac: &str) -> NetworkError {
    NetworkError::conflict(
        "MacAddressInUse",
        format!("Unable to complete operation for network {network_id}. The mac address {mac} is in use."),
    )
}

fn check_pairs(port_security: bool, pairs: &[AddressPair]) -> Result<()> {
    if !pairs.is_empty() && !port_security {
        return Err(NetworkError::conflict(
            "AddressPairAndPortSecurityRequired",
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        ));
    }
    for (i, p) in pairs.iter().enumerate() {
        if ipam::parse_prefix(&p.ip_address).is_err() {
            return Err(NetworkError::invalid_attr(
                "allowed_address_pairs",
                format!("'{}' is not a valid IP address", p.ip_address),
            ));
        }
        if pairs[..i].iter().any(|q| q == p) {
            return Err(NetworkError::bad_request(
                "DuplicateAddressPairInRequest",
                format!(
                    "Request contains duplicate address pair: mac_address {} ip_address {}.",
                    p.mac_address, p.ip_address
                ),
            ));
        }
    }
    Ok(())
}

/// Address pairs without a MAC take the port's.
fn with_port_mac(pairs: &[AddressPair], mac: &str) -> Vec<AddressPair> {
    pairs
        .iter()
        .map(|p| AddressPair {
            ip_address: p.ip_address.clone(),
            mac_address: if p.mac_address.is_empty() {
                mac.to_string()
            } else {
                p.mac_address.clone()
            },
        })
        .collect()
}

fn check_vnic(v: &str) -> Result<()> {
    if VNIC_TYPES.contains(&v) {
        Ok(())
    } else {
        Err(NetworkError::invalid_attr(
            "binding:vnic_type",
            format!("'{v}' is not in {VNIC_TYPES:?}"),
        ))
    }
}

/// Whether a subnet's addresses are derived from MACs (SLAAC, DHCPv6 stateless): every
/// port on its network gets one, and it can go without the ports.
pub(crate) fn is_auto_address(s: &Subnet) -> bool {
    matches!(
        s.ipv6_address_mode,
        Some(Ipv6Mode::Slaac | Ipv6Mode::Dhcpv6Stateless)
    )
}

/// Takes the addresses of a port (already inserted) on `net` and records them: those asked
/// for, else one of the first IPv4 subnet with room, one of the first stateful IPv6 subnet
/// with room, and the SLAAC address of each SLAAC subnet.
async fn allocate(
    tx: &mut db::Conn,
    net: &Network,
    port: &Port,
    asked: Option<&[IpRequest]>,
) -> std::result::Result<Vec<FixedIp>, Attempt> {
    let subnets = db::subnets::for_network(tx, &net.id).await?;
    for s in &subnets {
        db::lock_row(tx, "subnets", &s.id).await?;
    }
    let router_port = port.device_owner.starts_with("network:router_");
    let mut out: Vec<FixedIp> = Vec::new();
    match asked {
        None => {
            let mut have_v4 = false;
            let mut have_v6 = false;
            let mut wanted = false;
            for s in &subnets {
                if is_auto_address(s) {
                    if let ipnet::IpNet::V6(p) = &s.cidr {
                        if let Some(ip) = ipam::eui64(p, &port.mac_address) {
                            out.push(FixedIp {
                                subnet_id: s.id.clone(),
                                ip_address: ip,
                            });
                        }
                    }
                    continue;
                }
                let v4 = s.cidr.addr().is_ipv4();
                if (v4 && have_v4) || (!v4 && have_v6) {
                    continue;
                }
                wanted = true;
                if let Some(ip) = free_ip(tx, s, router_port).await? {
                    out.push(FixedIp {
                        subnet_id: s.id.clone(),
                        ip_address: ip,
                    });
                    if v4 {
                        have_v4 = true;
                    } else {
                        have_v6 = true;
                    }
                }
            }
            if wanted && !have_v4 && !have_v6 {
                return Err(exhausted(&net.id).into());
            }
        }
        Some(list) => {
            for r in list {
                let fip = resolve(tx, net, &subnets, port, r, router_port).await?;
                if out.iter().any(|o| o == &fip) {
                    return Err(NetworkError::invalid_input(format!(
                        "Duplicate IP address '{}'",
                        fip.ip_address
                    ))
                    .into());
                }
                out.push(fip);
            }
        }
    }
    for f in &out {
        db::ports::insert_ip(tx, &net.id, &f.subnet_id, f.ip_address, &port.id).await?;
    }
    out.sort_by_key(|a| a.ip_address);
    Ok(out)
}

fn exhausted(network_id: &str) -> NetworkError {
    NetworkError::conflict(
        "IpAddressGenerationFailure",
        format!("No more IP addresses available on network {network_id}."),
    )
}

/// The lowest free address of a subnet's pools (its gateway is never free but for a router).
async fn free_ip(tx: &mut db::Conn, s: &Subnet, router_port: bool) -> Result<Option<IpAddr>> {
    let mut used: HashSet<IpAddr> = db::ports::used_ips(tx, &s.id).await?;
    if let (Some(gw), false) = (s.gateway_ip, router_port) {
        used.insert(gw);
    }
    Ok(ipam::first_free(&s.allocation_pools, &used))
}

/// One asked-for address, checked: on a subnet of the network, inside it, not reserved, free.
async fn resolve(
    tx: &mut db::Conn,
    net: &Network,
    subnets: &[Subnet],
    port: &Port,
    r: &IpRequest,
    router_port: bool,
) -> std::result::Result<FixedIp, Attempt> {
    let subnet = match (&r.subnet_id, r.ip_address) {
        (Some(sid), _) => subnets.iter().find(|s| &s.id == sid).ok_or_else(|| {
            NetworkError::invalid_input(format!(
                "Failed to create port on network {}, because fixed_ips included invalid subnet {sid}",
                net.id
            ))
        })?,
        (None, Some(ip)) => subnets
            .iter()
            .find(|s| s.cidr.contains(&ip))
            .ok_or_else(|| {
                NetworkError::invalid_input(format!(
                    "IP address {ip} is not a valid IP for any of the subnets on the specified network"
                ))
            })?,
        (None, None) => {
            return Err(NetworkError::invalid_input(
                "Exactly one of subnet_id or ip_address is required in each fixed_ips entry",
            )
            .into())
        }
    };
    match r.ip_address {
        Some(ip) => {
            if !subnet.cidr.contains(&ip) || ipam::is_reserved(&subnet.cidr, ip) {
                return Err(NetworkError::invalid_input(format!(
                    "IP address {ip} is not a valid IP for the specified subnet"
                ))
                .into());
            }
            let taken = db::ports::holder_of(tx, &subnet.id, ip).await?.is_some()
                || (Some(ip) == subnet.gateway_ip && !router_port);
            if taken {
                return Err(NetworkError::conflict(
                    "IpAddressAlreadyAllocated",
                    format!("IP address {ip} already allocated in subnet {}", subnet.id),
                )
                .into());
            }
            Ok(FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip,
            })
        }
        None if is_auto_address(subnet) => match &subnet.cidr {
            ipnet::IpNet::V6(p) => ipam::eui64(p, &port.mac_address)
                .map(|ip| FixedIp {
                    subnet_id: subnet.id.clone(),
                    ip_address: ip,
                })
                .ok_or_else(|| exhausted(&net.id).into()),
            ipnet::IpNet::V4(_) => Err(exhausted(&net.id).into()),
        },
        None => match free_ip(tx, subnet, router_port).await? {
            Some(ip) => Ok(FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip,
            }),
            None => Err(exhausted(&net.id).into()),
        },
    }
}
