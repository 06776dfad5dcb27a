//! What a new cloud starts with: the external network `public`, on the physical network of
//! the same name (which the all-in-one's hosts attach to a namespace standing for the outside
//! world), with a subnet whose pool floating IPs and router gateways come from.

use super::networks::NewNetwork;
use super::subnets::{Gateway, NewSubnet};
use crate::db;
use crate::error::{NetworkError, Result};
use crate::model::{NetworkType, Pool};
use crate::NetworkService;

/// The external network's name and addresses (DevStack's `PUBLIC_NETWORK_*` defaults).
pub const PUBLIC_NETWORK: &str = "public";
pub const PUBLIC_CIDR: &str = "172.24.4.0/24";
pub const PUBLIC_GATEWAY: &str = "172.24.4.1";
pub const PUBLIC_POOL: (&str, &str) = ("172.24.4.10", "172.24.4.250");

impl NetworkService {
    /// Creates `public` (owned by `admin_project`) when the cloud has no network of that name
    /// that is external; returns its id either way.
    pub async fn ensure_public_network(&self, admin_project: &str) -> Result<String> {
        let existing = {
            let mut conn = self.read().await?;
            let nets = db::networks::list(&mut conn, None).await?;
            nets.iter()
                .find(|n| n.name == PUBLIC_NETWORK && n.router_external)
                .map(|n| (n.id.clone(), n.subnets.is_empty()))
        };
        // A first start stopped between the two steps left the network without its subnet.
        let net_id = match existing {
            Some((id, false)) => return Ok(id),
            Some((id, true)) => id,
            None => self.create_public(admin_project).await?,
        };
        self.create_public_subnet(admin_project, &net_id).await?;
        Ok(net_id)
    }

    async fn create_public(&self, admin_project: &str) -> Result<String> {
        let net = self
            .create_network_in(
                admin_project.to_string(),
                NewNetwork {
                    name: PUBLIC_NETWORK.into(),
                    description: "The outside world (a namespace on this machine)".into(),
                    admin_state_up: true,
                    router_external: true,
                    is_default: true,
                    port_security_enabled: true,
                    network_type: Some(NetworkType::Flat),
                    physical_network: Some(PUBLIC_NETWORK.into()),
                    ..Default::default()
                },
            )
            .await?;
        Ok(net.id)
    }

    async fn create_public_subnet(&self, admin_project: &str, net_id: &str) -> Result<()> {
        let parse = |s: &str| {
            s.parse::<std::net::IpAddr>()
                .map_err(|_| NetworkError::invalid_input(format!("bad built-in address {s}")))
        };
        self.create_subnet_in(
            admin_project.to_string(),
            NewSubnet {
                network_id: net_id.to_string(),
                name: "public-subnet".into(),
                ip_version: 4,
                cidr: Some(PUBLIC_CIDR.parse().map_err(|_| {
                    NetworkError::invalid_input(format!("bad built-in CIDR {PUBLIC_CIDR}"))
                })?),
                gateway: Gateway::Ip(parse(PUBLIC_GATEWAY)?),
                enable_dhcp: false,
                allocation_pools: Some(vec![Pool {
                    start: parse(PUBLIC_POOL.0)?,
                    end: parse(PUBLIC_POOL.1)?,
                }]),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }
}
