//! What compute needs of the networking service (Nova's side of Neutron): servers' ports
//! (made or taken at create, bound to the host the server runs on, given back when it goes,
//! wired or not), and for hosts' agents the networking each data plane should carry, the
//! hosts' tunnel endpoints and what they report wired.

use std::net::IpAddr;

use async_trait::async_trait;
use ferrostack_agent_api::{HostNetworking, NetworkingReport, Vtep};
use ferrostack_api::{ApiError, AuthContext};
use ferrostack_network::app::server_ports as sp;
use ferrostack_network::{NetworkError, NetworkService};

use crate::error::{ComputeError, Result};
use crate::model::InstanceNic;

/// One NIC a new server asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NicRequest {
    /// A new port on a network, with this address when given.
    Network {
        id: String,
        fixed_ip: Option<IpAddr>,
    },
    /// A port the caller made.
    Port(String),
}

/// A NIC a server was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNic {
    pub nic: InstanceNic,
    pub network_name: String,
    pub ips: Vec<IpAddr>,
}

/// A network as the compute API's proxies show it: id, name and its subnets' CIDRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkView {
    pub id: String,
    pub name: String,
    pub cidrs: Vec<String>,
}

/// A server's port as the compute API shows it (`os-interface`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    pub status: String,
    /// (subnet, address)
    pub fixed_ips: Vec<(String, IpAddr)>,
}

#[async_trait]
pub trait Networking: Send + Sync {
    /// The ports of server `device_id`.
    async fn server_ports(&self, device_id: &str) -> Result<Vec<PortView>>;
    /// Adds the caller's security group `name` to the server's ports `ports` (`add`), or
    /// takes it off them.
    async fn change_server_group(
        &self,
        auth: &AuthContext,
        device_id: &str,
        ports: &[String],
        name: &str,
        add: bool,
    ) -> Result<()>;
    /// The networks a server of the caller's goes on when it names none.
    async fn server_networks(&self, auth: &AuthContext) -> Result<Vec<String>>;
    /// Every network the caller sees (the `os-networks` proxy).
    async fn visible_networks(&self, auth: &AuthContext) -> Result<Vec<NetworkView>>;
    /// The network get-me-a-network made (or makes now) for the caller's project.
    async fn auto_allocated_network(&self, auth: &AuthContext) -> Result<String>;
    /// Makes or takes the ports of server `device_id`: all, or none and the error.
    async fn allocate(
        &self,
        auth: &AuthContext,
        device_id: &str,
        device_owner: &str,
        requests: &[NicRequest],
        security_groups: &[String],
    ) -> Result<Vec<ServerNic>>;
    /// Gives back a server's ports (made ones deleted, brought ones unbound and kept).
    async fn release(&self, device_id: &str, nics: &[InstanceNic]);
    /// Whether the ports `ports` of a guest on `host` are wired there (ACTIVE; true for a
    /// host without a data plane).
    async fn ports_active(&self, ports: &[String], host: &str) -> Result<bool>;
    /// `host` runs a data plane whose VXLAN tunnels end at `vtep`.
    async fn register_host(&self, host: &str, vtep: Vtep) -> Result<()>;
    /// What `host`'s data plane should carry: the ports bound to it, and `guests`' ports,
    /// which are bound to it (`own`) or carried during a move (`moving`).
    async fn host_networking(
        &self,
        host: &str,
        own: &[String],
        moving: &[String],
    ) -> Result<HostNetworking>;
    /// What `host`'s data plane wired.
    async fn apply_host_report(&self, host: &str, report: &NetworkingReport) -> Result<()>;
    /// The server whose port on `network_id` holds `address`.
    async fn server_at(
        &self,
        network_id: &str,
        address: std::net::IpAddr,
    ) -> Result<Option<String>>;
}

/// A networking error as Nova words it for a server create.
fn from_network(e: NetworkError) -> ComputeError {
    match e {
        NetworkError::Db(e) => ComputeError::Db(e),
        NetworkError::Api(e) => ComputeError::Api(e),
        NetworkError::Neutron {
            status,
            kind,
            message,
        } => match kind {
            "NetworkNotFound"
            | "SecurityGroupNotFound"
            | "InvalidInput"
            | "HTTPBadRequest"
            | "IpAddressAlreadyAllocated"
            | "InvalidIpForNetwork"
            | "InvalidIpForSubnet" => ComputeError::BadRequest(message),
            "PortNotFound" => ComputeError::BadRequest(message.replacen("Port ", "Port id ", 1)),
            "PortInUse" => ComputeError::Conflict(message),
            "IpAddressGenerationFailure" => {
                ComputeError::BadRequest(format!("No fixed IP addresses available: {message}"))
            }
            "OverQuota" => ComputeError::QuotaExceeded("Maximum number of ports exceeded".into()),
            _ => ComputeError::Api(ApiError::new(status, message)),
        },
    }
}

fn to_server_nic(n: sp::ServerNic) -> ServerNic {
    ServerNic {
        nic: InstanceNic {
            position: 0,
            port_id: n.port_id,
            network_id: n.network_id,
            mac: n.mac,
            mtu: n.mtu,
            preserve: n.preserve,
        },
        network_name: n.network_name,
        ips: n.ips,
    }
}

/// Through the networking service's application layer, on its own connections: never inside
/// a compute transaction.
#[async_trait]
impl Networking for NetworkService {
    async fn server_ports(&self, device_id: &str) -> Result<Vec<PortView>> {
        Ok(self
            .server_port_list(device_id)
            .await
            .map_err(from_network)?
            .into_iter()
            .map(|p| PortView {
                port_id: p.id,
                network_id: p.network_id,
                mac: p.mac_address,
                status: p.status.as_str().to_string(),
                fixed_ips: p
                    .fixed_ips
                    .into_iter()
                    .map(|f| (f.subnet_id, f.ip_address))
                    .collect(),
            })
            .collect())
    }

    async fn change_server_group(
        &self,
        auth: &AuthContext,
        device_id: &str,
        ports: &[String],
        name: &str,
        add: bool,
    ) -> Result<()> {
        NetworkService::change_server_group(self, auth, device_id, ports, name, add)
            .await
            .map_err(|e| match e {
                NetworkError::Neutron {
                    kind: "SecurityGroupNotFound",
                    ..
                } => ComputeError::NotFound(format!(
                    "Security group {name} not found for project {}.",
                    auth.project_id().unwrap_or("")
                )),
                e => from_network(e),
            })
    }

    async fn server_networks(&self, auth: &AuthContext) -> Result<Vec<String>> {
        Ok(NetworkService::server_networks(self, auth)
            .await
            .map_err(from_network)?
            .into_iter()
            .map(|n| n.id)
            .collect())
    }

    async fn visible_networks(&self, auth: &AuthContext) -> Result<Vec<NetworkView>> {
        let subnets = self.list_subnets(auth).await.map_err(from_network)?;
        Ok(self
            .list_networks(auth)
            .await
            .map_err(from_network)?
            .into_iter()
            .map(|n| NetworkView {
                cidrs: subnets
                    .iter()
                    .filter(|s| s.network_id == n.id)
                    .map(|s| s.cidr.to_string())
                    .collect(),
                id: n.id,
                name: n.name,
            })
            .collect())
    }

    async fn auto_allocated_network(&self, auth: &AuthContext) -> Result<String> {
        let project = auth.project_id().unwrap_or("");
        NetworkService::auto_allocated_network(self, auth, project)
            .await
            .map_err(|e| match e {
                NetworkError::Neutron {
                    kind: "AutoAllocationFailure",
                    ..
                } => ComputeError::BadRequest(format!(
                    "Unable to automatically allocate a network for project {project}"
                )),
                e => from_network(e),
            })
    }

    async fn allocate(
        &self,
        auth: &AuthContext,
        device_id: &str,
        device_owner: &str,
        requests: &[NicRequest],
        security_groups: &[String],
    ) -> Result<Vec<ServerNic>> {
        let requests: Vec<sp::NicRequest> = requests
            .iter()
            .map(|r| match r {
                NicRequest::Network { id, fixed_ip } => sp::NicRequest::Network {
                    id: id.clone(),
                    fixed_ip: *fixed_ip,
                },
                NicRequest::Port(p) => sp::NicRequest::Port(p.clone()),
            })
            .collect();
        Ok(self
            .allocate_server_ports(auth, device_id, device_owner, &requests, security_groups)
            .await
            .map_err(from_network)?
            .into_iter()
            .map(to_server_nic)
            .collect())
    }

    async fn release(&self, device_id: &str, nics: &[InstanceNic]) {
        let nics: Vec<sp::ServerNic> = nics
            .iter()
            .map(|n| sp::ServerNic {
                port_id: n.port_id.clone(),
                network_id: n.network_id.clone(),
                network_name: String::new(),
                mac: n.mac.clone(),
                mtu: n.mtu,
                ips: Vec::new(),
                preserve: n.preserve,
            })
            .collect();
        self.release_server_ports(device_id, &nics).await
    }

    async fn ports_active(&self, ports: &[String], host: &str) -> Result<bool> {
        self.ports_are_active(ports, host)
            .await
            .map_err(from_network)
    }

    async fn register_host(&self, host: &str, vtep: Vtep) -> Result<()> {
        NetworkService::register_host(self, host, vtep)
            .await
            .map_err(from_network)
    }

    async fn host_networking(
        &self,
        host: &str,
        own: &[String],
        moving: &[String],
    ) -> Result<HostNetworking> {
        if !own.is_empty() {
            self.bind_server_ports(own, host)
                .await
                .map_err(from_network)?;
        }
        NetworkService::host_networking(self, host, moving)
            .await
            .map_err(from_network)
    }

    async fn apply_host_report(&self, host: &str, report: &NetworkingReport) -> Result<()> {
        NetworkService::apply_host_report(self, host, report)
            .await
            .map_err(from_network)
    }

    async fn server_at(
        &self,
        network_id: &str,
        address: std::net::IpAddr,
    ) -> Result<Option<String>> {
        NetworkService::server_at(self, network_id, address)
            .await
            .map_err(from_network)
    }
}
