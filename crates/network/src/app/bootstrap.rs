//! What a new cloud starts with: the external network `public`, on the physical network of
//! the same name (which the all-in-one's hosts attach to a namespace standing for the outside
//! world), with a subnet whose pool floating IPs and router gateways come from; and the
//! shared default IPv4 subnet pool that get-me-a-network takes projects' subnets from.

use super::networks::NewNetwork;
use super::subnetpools::NewSubnetPool;
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

/// The default subnet pool (DevStack's name; a range apart from the 10.0.0.0/24 people type).
pub const DEFAULT_POOL_NAME: &str = "shared-default-subnetpool-v4";
pub const DEFAULT_POOL_PREFIX: &str = "10.128.0.0/16";
pub const DEFAULT_POOL_PREFIXLEN: u8 = 26;

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

    /// Creates the shared default IPv4 subnet pool (owned by `admin_project`) when the cloud
    /// has no default IPv4 pool.
    pub async fn ensure_default_subnetpool(&self, admin_project: &str) -> Result<()> {
        let has_default = {
            let mut conn = self.read().await?;
            db::subnetpools::list(&mut conn, None)
                .await?
                .iter()
                .any(|p| p.is_default && p.ip_version == 4)
        };
        if has_default {
            return Ok(());
        }
        let prefix = DEFAULT_POOL_PREFIX.parse().map_err(|_| {
            NetworkError::invalid_input(format!("bad built-in CIDR {DEFAULT_POOL_PREFIX}"))
        })?;
        self.create_subnetpool_in(
            admin_project.to_string(),
            NewSubnetPool {
                name: DEFAULT_POOL_NAME.into(),
                description: "Where get-me-a-network takes projects' subnets from".into(),
                prefixes: vec![prefix],
                default_prefixlen: Some(DEFAULT_POOL_PREFIXLEN),
                shared: true,
                is_default: true,
                ..Default::default()
            },
        )
        .await?;
        Ok(())
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
