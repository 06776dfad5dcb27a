//! Subnets: CIDR, gateway and pool validation (with `ipam`), DNS servers and host routes,
//! deletion refused while ports hold its addresses.

use std::net::IpAddr;

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;
use ipnet::IpNet;

use super::{listing_scope, new_id};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::{HostRoute, Ipv6Mode, Network, Pool, Subnet};
use crate::NetworkService;

/// Most DNS servers and host routes a subnet may have (Neutron's defaults).
pub const MAX_DNS_NAMESERVERS: usize = 5;
pub const MAX_HOST_ROUTES: usize = 20;

/// A gateway as asked: not given (the default one), none (`null`), or this address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gateway {
    #[default]
    Default,
    None,
    Ip(IpAddr),
}

#[derive(Debug, Default, Clone)]
pub struct NewSubnet {
    pub project_id: Option<String>,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    /// The CIDR asked for; with a pool, optional (a block of the pool is picked).
    pub cidr: Option<IpNet>,
    /// The subnet pool to take the CIDR from.
    pub pool: Option<super::subnetpools::PoolRequest>,
    pub gateway: Gateway,
    pub enable_dhcp: bool,
    pub ipv6_ra_mode: Option<Ipv6Mode>,
    pub ipv6_address_mode: Option<Ipv6Mode>,
    pub dns_nameservers: Vec<IpAddr>,
    pub host_routes: Vec<HostRoute>,
    pub allocation_pools: Option<Vec<Pool>>,
}

#[derive(Debug, Default, Clone)]
pub struct SubnetChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)`: remove the gateway.
    pub gateway_ip: Option<Option<IpAddr>>,
    pub enable_dhcp: Option<bool>,
    pub dns_nameservers: Option<Vec<IpAddr>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub allocation_pools: Option<Vec<Pool>>,
}

fn check_lists(cidr: &IpNet, dns: &[IpAddr], routes: &[HostRoute]) -> Result<()> {
    if dns.len() > MAX_DNS_NAMESERVERS {
        return Err(NetworkError::bad_request(
            "DNSNameServersExhausted",
            format!(
                "Unable to complete operation for {cidr}. The number of DNS nameservers exceeds the limit {MAX_DNS_NAMESERVERS}."
            ),
        ));
    }
    for (i, d) in dns.iter().enumerate() {
        if dns[..i].contains(d) {
            return Err(NetworkError::invalid_attr(
                "dns_nameservers",
                format!("Duplicate nameserver '{d}'"),
            ));
        }
    }
    if routes.len() > MAX_HOST_ROUTES {
        return Err(NetworkError::bad_request(
            "HostRoutesExhausted",
            format!(
                "Unable to complete operation for {cidr}. The number of host routes exceeds the limit {MAX_HOST_ROUTES}."
            ),
        ));
    }
    for r in routes {
        if r.destination.addr().is_ipv4() != cidr.addr().is_ipv4()
            || r.nexthop.is_ipv4() != cidr.addr().is_ipv4()
        {
            return Err(NetworkError::invalid_input(format!(
                "Host route {} via {} is not of the subnet's IP version",
                r.destination, r.nexthop
            )));
        }
    }
    Ok(())
}

/// Checks a gateway against the subnet: inside it, not its network or broadcast address, and
/// outside the pools.
fn check_gateway(cidr: &IpNet, gw: IpAddr, pools: &[Pool]) -> Result<()> {
    if !cidr.contains(&gw) || ipam::is_reserved(cidr, gw) {
        return Err(NetworkError::invalid_input(
            "Gateway is not valid on subnet",
        ));
    }
    if let Some(p) = ipam::pool_containing(pools, gw) {
        return Err(NetworkError::conflict(
            "GatewayConflictWithAllocationPools",
            format!(
                "Gateway ip {gw} conflicts with allocation pool {}-{}",
                p.start, p.end
            ),
        ));
    }
    Ok(())
}

impl NetworkService {
    /// The subnet when the caller sees it (its project's, or on a network it sees); 404
    /// otherwise.
    pub async fn find_subnet(&self, id: &str, auth: &AuthContext) -> Result<(Subnet, Network)> {
        let mut conn = self.read().await?;
        let s = db::subnets::get(&mut conn, id)
            .await?
            .ok_or_else(|| NetworkError::subnet_not_found(id))?;
        let n = db::networks::get(&mut conn, &s.network_id)
            .await?
            .ok_or_else(|| NetworkError::subnet_not_found(id))?;
        if auth.project_id() != Some(s.project_id.as_str()) && !Self::network_visible(&n, auth) {
            return Err(NetworkError::subnet_not_found(id));
        }
        Ok((s, n))
    }

    pub async fn list_subnets(&self, auth: &AuthContext) -> Result<Vec<Subnet>> {
        let mut conn = self.read().await?;
        Ok(db::subnets::list(&mut conn, listing_scope(auth)).await?)
    }

    pub async fn create_subnet(&self, auth: &AuthContext, req: NewSubnet) -> Result<Subnet> {
        let project = super::owner_for(auth, req.project_id.as_deref())?;
        let net = self.find_network(&req.network_id, auth).await?;
        if !auth.is_admin && net.project_id != project {
            return Err(NetworkError::policy("rule:create_subnet"));
        }
        self.create_subnet_in(project, req).await
    }

    /// Creates a subnet of `project` (the caller is already authorized).
    pub(crate) async fn create_subnet_in(&self, project: String, req: NewSubnet) -> Result<Subnet> {
        let mut tx = self.write().await?;
        let (cidr, subnetpool_id) = match (&req.cidr, &req.pool) {
            (Some(c), None) => (*c, None),
            (cidr, Some(pool)) => {
                let (c, id) = self
                    .cidr_from_pool(&mut tx, &project, req.ip_version, *cidr, pool)
                    .await?;
                (c, Some(id))
            }
            (None, None) => return Err(NetworkError::bad_request(
                "BadRequest",
                "Bad subnets request: a cidr must be specified in the absence of a subnet pool.",
            )),
        };
        let version = if cidr.addr().is_ipv4() { 4 } else { 6 };
        if req.ip_version != version {
            return Err(NetworkError::invalid_input(format!(
                "Cidr {cidr} does not match ip_version {}",
                req.ip_version
            )));
        }
        if version == 4 && (req.ipv6_ra_mode.is_some() || req.ipv6_address_mode.is_some()) {
            return Err(NetworkError::invalid_input(
                "ipv6_ra_mode and ipv6_address_mode are only valid for IPv6 subnets",
            ));
        }
        if let (Some(ra), Some(addr)) = (req.ipv6_ra_mode, req.ipv6_address_mode) {
            if ra != addr {
                return Err(NetworkError::invalid_input(format!(
                    "ipv6_ra_mode set to '{}' with ipv6_address_mode set to '{}' is not valid. If both attributes are set, they must be the same value",
                    ra.as_str(),
                    addr.as_str()
                )));
            }
        }
        let slaac = matches!(
            req.ipv6_address_mode,
            Some(Ipv6Mode::Slaac | Ipv6Mode::Dhcpv6Stateless)
        );
        if slaac && cidr.prefix_len() != 64 {
            return Err(NetworkError::invalid_input(format!(
                "Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64"
            )));
        }
        check_lists(&cidr, &req.dns_nameservers, &req.host_routes)?;
        let gateway = match req.gateway {
            Gateway::Default => ipam::default_gateway(&cidr),
            Gateway::None => None,
            Gateway::Ip(ip) => Some(ip),
        };
        let pools = match &req.allocation_pools {
            Some(p) => {
                ipam::validate_pools(&cidr, p)
                    .map_err(|e| NetworkError::bad_request("InvalidAllocationPool", e.0))?;
                p.clone()
            }
            None => ipam::default_pools(&cidr, gateway),
        };
        if let Some(gw) = gateway {
            check_gateway(&cidr, gw, &pools)?;
        }

        db::lock_row(&mut tx, "networks", &req.network_id).await?;
        let net = db::networks::get(&mut tx, &req.network_id)
            .await?
            .ok_or_else(|| NetworkError::network_not_found(&req.network_id))?;
        self.check_quota(&mut tx, &project, "subnet").await?;
        for other in db::subnets::for_network(&mut tx, &net.id).await? {
            if ipam::overlaps(&other.cidr, &cidr) {
                return Err(NetworkError::invalid_input(format!(
                    "Requested subnet with cidr: {cidr} for network: {} overlaps with another subnet",
                    net.id
                )));
            }
        }
        let now = now_micros();
        let s = Subnet {
            id: new_id(),
            project_id: project,
            network_id: net.id.clone(),
            name: req.name,
            description: req.description,
            cidr,
            gateway_ip: gateway,
            enable_dhcp: req.enable_dhcp,
            ipv6_ra_mode: req.ipv6_ra_mode,
            ipv6_address_mode: req.ipv6_address_mode,
            subnetpool_id,
            dns_nameservers: req.dns_nameservers,
            host_routes: req.host_routes,
            allocation_pools: pools,
            revision_number: 1,
            created_at: now,
            updated_at: now,
            tags: Vec::new(),
        };
        db::subnets::insert(&mut tx, &s).await?;
        db::networks::bump_revision(&mut tx, &net.id, now).await?;
        tx.commit().await?;
        self.wake_network(&s.network_id).await;
        Ok(s)
    }

    pub async fn update_subnet(
        &self,
        id: &str,
        changes: SubnetChanges,
        if_match: Option<i64>,
    ) -> Result<Subnet> {
        let mut tx = self.write().await?;
        let mut s = db::subnets::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::subnet_not_found(id))?;
        Self::check_revision(if_match, s.revision_number)?;
        if let Some(v) = changes.name {
            s.name = v;
        }
        if let Some(v) = changes.description {
            s.description = v;
        }
        if let Some(v) = changes.enable_dhcp {
            s.enable_dhcp = v;
        }
        if let Some(v) = changes.dns_nameservers {
            s.dns_nameservers = v;
        }
        if let Some(v) = changes.host_routes {
            s.host_routes = v;
        }
        check_lists(&s.cidr, &s.dns_nameservers, &s.host_routes)?;
        if let Some(pools) = changes.allocation_pools {
            ipam::validate_pools(&s.cidr, &pools)
                .map_err(|e| NetworkError::bad_request("InvalidAllocationPool", e.0))?;
            s.allocation_pools = pools;
        }
        if let Some(gw) = changes.gateway_ip {
            if let Some(ip) = gw {
                if ip.is_ipv4() != s.cidr.addr().is_ipv4() {
                    return Err(NetworkError::invalid_input(
                        "Gateway is not valid on subnet",
                    ));
                }
                // The new gateway must not be an address a port holds.
                if Some(ip) != s.gateway_ip {
                    if let Some(holder) = db::ports::holder_of(&mut tx, id, ip).await? {
                        return Err(NetworkError::conflict(
                            "GatewayIpInUse",
                            format!("Gateway ip {ip} conflicts with allocation of port {holder}."),
                        ));
                    }
                }
            }
            s.gateway_ip = gw;
        }
        if let Some(gw) = s.gateway_ip {
            check_gateway(&s.cidr, gw, &s.allocation_pools)?;
        }
        s.revision_number += 1;
        s.updated_at = now_micros();
        db::subnets::update(&mut tx, &s).await?;
        db::networks::bump_revision(&mut tx, &s.network_id, s.updated_at).await?;
        tx.commit().await?;
        self.wake_network(&s.network_id).await;
        Ok(s)
    }

    /// Deletes a subnet; refused while ports other than DHCP's hold its addresses. An
    /// auto-address subnet (SLAAC, DHCPv6 stateless) is refused only while a router
    /// interface holds one: the other ports just lose their addresses of it, as in Neutron.
    pub async fn delete_subnet(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let s = db::subnets::get(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::subnet_not_found(id))?;
        let holders = db::ports::on_subnet(&mut tx, id).await?;
        let auto = super::ports::is_auto_address(&s);
        let blocks = |owner: &str| {
            if auto {
                owner.starts_with(crate::model::OWNER_ROUTER_INTERFACE)
            } else {
                owner != crate::model::OWNER_DHCP
            }
        };
        if holders.iter().any(|(_, owner)| blocks(owner)) {
            return Err(NetworkError::conflict(
                "SubnetInUse",
                format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."),
            ));
        }
        if auto {
            db::ports::release_subnet(&mut tx, id, now_micros()).await?;
        } else {
            // Only DHCP ports are left holding its addresses (checked above).
            for (port, _) in &holders {
                db::ports::delete(&mut tx, port).await?;
            }
        }
        db::subnets::delete(&mut tx, id).await?;
        db::networks::bump_revision(&mut tx, &s.network_id, now_micros()).await?;
        tx.commit().await?;
        self.wake_network(&s.network_id).await;
        Ok(())
    }
}
