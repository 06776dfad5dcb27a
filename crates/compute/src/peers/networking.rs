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

/// A security group as Nova's proxy shows it: its ingress rules in Nova's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub project_id: String,
    pub rules: Vec<RuleView>,
}

/// An ingress rule in Nova's terms: protocol, port range (ICMP type and code; tcp/udp without
/// ports are 1-65535, other protocols -1), and either a CIDR or a remote group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleView {
    pub id: String,
    pub parent_group_id: String,
    pub ip_protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub cidr: Option<String>,
    /// (name, project) of the remote group.
    pub group: Option<(String, String)>,
}

/// A new rule as Nova's proxy takes it, already validated as Nova does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NovaRule {
    pub parent_group_id: String,
    pub ip_protocol: Option<String>,
    pub from_port: Option<i64>,
    pub to_port: Option<i64>,
    pub cidr: Option<ipnet::IpNet>,
    pub group_id: Option<String>,
}

/// A floating IP as Nova's proxy shows it (`os-floating-ips`): its pool is its external
/// network's name, its instance the device of the port it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatingIpView {
    pub id: String,
    pub ip: IpAddr,
    /// Its external network's name (its id when unnamed).
    pub pool_name: String,
    pub fixed_ip: Option<IpAddr>,
    pub instance_id: Option<String>,
    /// The port it points at.
    pub port_id: Option<String>,
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
    /// The caller's project's security groups (`os-security-groups`).
    /// With `all_projects` (an admin's `all_tenants`), every project's.
    async fn security_groups(
        &self,
        auth: &AuthContext,
        all_projects: bool,
    ) -> Result<Vec<GroupView>>;
    async fn security_group(&self, auth: &AuthContext, id: &str) -> Result<GroupView>;
    /// Creates a group (`id` None) or renames one.
    async fn save_security_group(
        &self,
        auth: &AuthContext,
        id: Option<&str>,
        name: &str,
        description: &str,
    ) -> Result<GroupView>;
    async fn delete_security_group(&self, auth: &AuthContext, id: &str) -> Result<()>;
    async fn create_security_group_rule(
        &self,
        auth: &AuthContext,
        rule: NovaRule,
    ) -> Result<RuleView>;
    async fn delete_security_group_rule(&self, auth: &AuthContext, id: &str) -> Result<()>;
    /// The groups of server `device_id`'s ports.
    async fn server_security_groups(
        &self,
        auth: &AuthContext,
        device_id: &str,
    ) -> Result<Vec<GroupView>>;
    /// The caller's project's floating IPs (`os-floating-ips`).
    async fn floating_ips(&self, auth: &AuthContext) -> Result<Vec<FloatingIpView>>;
    /// One of the caller's floating IPs, by id or (`by_address`) by address; None when the
    /// caller has no such floating IP.
    async fn floating_ip(
        &self,
        auth: &AuthContext,
        id: Option<&str>,
        by_address: Option<IpAddr>,
    ) -> Result<Option<FloatingIpView>>;
    /// A new floating IP from external network `pool` (a name or an id; none: the only
    /// external network the caller sees).
    async fn allocate_floating_ip(
        &self,
        auth: &AuthContext,
        pool: Option<&str>,
    ) -> Result<FloatingIpView>;
    async fn release_floating_ip(&self, auth: &AuthContext, id: &str) -> Result<()>;
    /// The names of the external networks the caller sees (`os-floating-ip-pools`).
    async fn floating_ip_pools(&self, auth: &AuthContext) -> Result<Vec<String>>;
    /// Points floating IP `id` at `port`'s address `fixed` (`to`), or at nothing.
    async fn point_floating_ip(
        &self,
        auth: &AuthContext,
        id: &str,
        to: Option<(&str, IpAddr)>,
    ) -> Result<()>;
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

    async fn security_groups(
        &self,
        auth: &AuthContext,
        all_projects: bool,
    ) -> Result<Vec<GroupView>> {
        self.ensure_caller_default_group(auth)
            .await
            .map_err(group_error)?;
        let project = auth.project_id().unwrap_or("");
        let groups = self.list_groups(auth).await.map_err(group_error)?;
        Ok(sorted_views(
            &groups,
            groups
                .iter()
                .filter(|g| all_projects || g.project_id == project),
        ))
    }

    async fn security_group(&self, auth: &AuthContext, id: &str) -> Result<GroupView> {
        let g = self.find_group(id, auth).await.map_err(group_error)?;
        let all = self.list_groups(auth).await.map_err(group_error)?;
        Ok(group_view(&g, &all))
    }

    async fn save_security_group(
        &self,
        auth: &AuthContext,
        id: Option<&str>,
        name: &str,
        description: &str,
    ) -> Result<GroupView> {
        use ferrostack_network::app::security_groups::{GroupChanges, NewGroup};
        let g = match id {
            None => self
                .create_group(
                    auth,
                    NewGroup {
                        project_id: None,
                        name: name.to_string(),
                        description: description.to_string(),
                        stateful: true,
                    },
                )
                .await
                .map_err(group_error)?,
            Some(id) => {
                self.find_group(id, auth).await.map_err(group_error)?;
                self.update_group(
                    id,
                    GroupChanges {
                        name: Some(name.to_string()),
                        description: Some(description.to_string()),
                        stateful: None,
                    },
                    None,
                )
                .await
                .map_err(group_error)?
            }
        };
        let all = self.list_groups(auth).await.map_err(group_error)?;
        Ok(group_view(&g, &all))
    }

    async fn delete_security_group(&self, auth: &AuthContext, id: &str) -> Result<()> {
        self.find_group(id, auth).await.map_err(group_error)?;
        self.delete_group(auth, id).await.map_err(group_error)
    }

    async fn create_security_group_rule(
        &self,
        auth: &AuthContext,
        rule: NovaRule,
    ) -> Result<RuleView> {
        use ferrostack_network::app::security_groups::NewRule;
        use ferrostack_network::model::{Direction, EtherType};
        let parent = self
            .find_group(&rule.parent_group_id, auth)
            .await
            .map_err(group_error)?;
        if let Some(g) = &rule.group_id {
            self.find_group(g, auth).await.map_err(group_error)?;
        }
        let icmp = rule.ip_protocol.as_deref() == Some("icmp");
        let port = |p: Option<i64>| p.filter(|v| !(icmp && *v == -1));
        let made = self
            .create_rules(
                auth,
                vec![NewRule {
                    project_id: None,
                    security_group_id: parent.id.clone(),
                    direction: Direction::Ingress,
                    ethertype: match rule.cidr {
                        Some(ipnet::IpNet::V6(_)) => EtherType::V6,
                        _ => EtherType::V4,
                    },
                    protocol: rule.ip_protocol.clone(),
                    port_range_min: port(rule.from_port),
                    port_range_max: port(rule.to_port),
                    remote_ip_prefix: rule.cidr.filter(|_| rule.group_id.is_none()),
                    remote_group_id: rule.group_id.clone(),
                    remote_address_group_id: None,
                    description: String::new(),
                }],
            )
            .await
            .map_err(group_error)?;
        let all = self.list_groups(auth).await.map_err(group_error)?;
        made.first()
            .map(|r| rule_view(r, &all))
            .ok_or_else(|| ComputeError::BadRequest("No rule was made".into()))
    }

    async fn delete_security_group_rule(&self, auth: &AuthContext, id: &str) -> Result<()> {
        self.find_rule(id, auth).await.map_err(group_error)?;
        self.delete_rule(id).await.map_err(group_error)
    }

    async fn server_security_groups(
        &self,
        auth: &AuthContext,
        device_id: &str,
    ) -> Result<Vec<GroupView>> {
        let ports = self
            .server_port_list(device_id)
            .await
            .map_err(from_network)?;
        let ids: std::collections::BTreeSet<&str> = ports
            .iter()
            .flat_map(|p| p.security_groups.iter().map(String::as_str))
            .collect();
        let all = self
            .list_groups(&admin_view(auth))
            .await
            .map_err(group_error)?;
        Ok(sorted_views(
            &all,
            all.iter().filter(|g| ids.contains(g.id.as_str())),
        ))
    }

    async fn floating_ips(&self, auth: &AuthContext) -> Result<Vec<FloatingIpView>> {
        let mut out = Vec::new();
        for f in own_floating_ips(self, auth).await? {
            out.push(floating_view(self, auth, f).await?);
        }
        Ok(out)
    }

    async fn floating_ip(
        &self,
        auth: &AuthContext,
        id: Option<&str>,
        by_address: Option<IpAddr>,
    ) -> Result<Option<FloatingIpView>> {
        // An admin finds any project's (as Nova shows and associates them); the list is
        // the project's own.
        let candidates = if auth.is_admin {
            self.list_floating_ips(&admin_view(auth))
                .await
                .map_err(from_network)?
        } else {
            own_floating_ips(self, auth).await?
        };
        let found = candidates.into_iter().find(|f| {
            id.is_none_or(|id| f.id == id) && by_address.is_none_or(|a| f.floating_ip_address == a)
        });
        match found {
            Some(f) => Ok(Some(floating_view(self, auth, f).await?)),
            None => Ok(None),
        }
    }

    async fn allocate_floating_ip(
        &self,
        auth: &AuthContext,
        pool: Option<&str>,
    ) -> Result<FloatingIpView> {
        let project = auth.project_id().unwrap_or("").to_string();
        let external: Vec<_> = self
            .list_networks(auth)
            .await
            .map_err(from_network)?
            .into_iter()
            .filter(|n| n.external_for(&project))
            .collect();
        let matching: Vec<_> = match pool {
            Some(p) => external
                .iter()
                .filter(|n| n.id == p || n.name == p)
                .collect(),
            None => external.iter().collect(),
        };
        let net = match (matching.as_slice(), pool) {
            ([n], _) => *n,
            // No pool named and no single external network: Nova's default pool is not
            // there either.
            ([], _) | (_, None) => {
                return Err(ComputeError::NotFound("Floating IP pool not found.".into()))
            }
            (_, Some(p)) => {
                return Err(ComputeError::Conflict(format!(
                    "Multiple floating IP pools matches found for name '{p}'"
                )))
            }
        };
        let f = self
            .create_floating_ip(
                auth,
                ferrostack_network::app::floating_ips::NewFloatingIp {
                    floating_network_id: net.id.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| match e {
                NetworkError::Neutron {
                    kind: "IpAddressGenerationFailure" | "ExternalIpAddressExhausted",
                    ..
                } => ComputeError::NotFound(match pool {
                    Some(p) => format!("No more floating IPs in pool {p}."),
                    None => "No more floating IPs available.".into(),
                }),
                NetworkError::Neutron {
                    kind: "OverQuota", ..
                } => ComputeError::Forbidden(match pool {
                    Some(p) => format!("IP allocation over quota in pool {p}."),
                    None => "IP allocation over quota.".into(),
                }),
                e => floating_error(e),
            })?;
        floating_view(self, auth, f).await
    }

    async fn release_floating_ip(&self, auth: &AuthContext, id: &str) -> Result<()> {
        let f = self.find_floating_ip(id, auth).await.map_err(|e| match e {
            NetworkError::Neutron { status, .. } if status == http::StatusCode::NOT_FOUND => {
                ComputeError::NotFound(format!("Floating IP not found for ID {id}"))
            }
            e => from_network(e),
        })?;
        self.delete_floating_ip(&f.id).await.map_err(floating_error)
    }

    async fn floating_ip_pools(&self, auth: &AuthContext) -> Result<Vec<String>> {
        let project = auth.project_id().unwrap_or("").to_string();
        Ok(self
            .list_networks(auth)
            .await
            .map_err(from_network)?
            .into_iter()
            .filter(|n| n.external_for(&project))
            .map(|n| if n.name.is_empty() { n.id } else { n.name })
            .collect())
    }

    async fn point_floating_ip(
        &self,
        auth: &AuthContext,
        id: &str,
        to: Option<(&str, IpAddr)>,
    ) -> Result<()> {
        let changes = ferrostack_network::app::floating_ips::FloatingIpChanges {
            port_id: Some(to.map(|(p, _)| p.to_string())),
            fixed_ip_address: to.map(|(_, ip)| ip),
            description: None,
        };
        self.update_floating_ip(auth, id, changes, None)
            .await
            .map(drop)
            .map_err(floating_error)
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

/// Nova's view of floating IP `f`.
async fn floating_view(
    svc: &NetworkService,
    auth: &AuthContext,
    f: ferrostack_network::model::FloatingIp,
) -> Result<FloatingIpView> {
    let admin = admin_view(auth);
    let pool_name = match svc.find_network(&f.floating_network_id, &admin).await {
        Ok(n) if !n.name.is_empty() => n.name,
        _ => f.floating_network_id.clone(),
    };
    let instance_id = match &f.port_id {
        Some(p) => svc
            .find_port(p, &admin)
            .await
            .ok()
            .map(|(port, _)| port.device_id)
            .filter(|d| !d.is_empty()),
        None => None,
    };
    Ok(FloatingIpView {
        id: f.id,
        ip: f.floating_ip_address,
        pool_name,
        fixed_ip: f.fixed_ip_address,
        instance_id,
        port_id: f.port_id,
    })
}

/// The caller's project's floating IPs (an admin's too: Nova lists by project).
async fn own_floating_ips(
    svc: &NetworkService,
    auth: &AuthContext,
) -> Result<Vec<ferrostack_network::model::FloatingIp>> {
    let project = auth.project_id().unwrap_or("");
    Ok(svc
        .list_floating_ips(auth)
        .await
        .map_err(from_network)?
        .into_iter()
        .filter(|f| f.project_id == project)
        .collect())
}

/// A networking error of the floating IP proxy as Nova words it: its own 404s, a conflict
/// (that fixed address has a floating IP on that network already) as 400.
fn floating_error(e: NetworkError) -> ComputeError {
    match e {
        NetworkError::Neutron {
            status, message, ..
        } if status == http::StatusCode::CONFLICT || status == http::StatusCode::BAD_REQUEST => {
            ComputeError::BadRequest(message)
        }
        NetworkError::Neutron {
            kind: "OverQuota", ..
        } => ComputeError::Forbidden("IP allocation over quota.".into()),
        e => from_network(e),
    }
}

/// A networking error of the security group proxy as Nova words it: what Neutron refuses
/// with 409 (a group in use, the default group, a rule that exists) is Nova's 400, over
/// quota its 403.
fn group_error(e: NetworkError) -> ComputeError {
    match e {
        NetworkError::Neutron {
            kind: "SecurityGroupNotFound" | "SecurityGroupRuleNotFound",
            message,
            ..
        } => ComputeError::NotFound(message),
        NetworkError::Neutron {
            kind: "OverQuota", ..
        } => ComputeError::Forbidden("Quota exceeded, too many security groups or rules.".into()),
        NetworkError::Neutron {
            status, message, ..
        } if status == http::StatusCode::CONFLICT || status == http::StatusCode::BAD_REQUEST => {
            ComputeError::BadRequest(message)
        }
        e => from_network(e),
    }
}

/// The caller with a cloud admin's view (to read the groups a server's ports name).
fn admin_view(auth: &AuthContext) -> AuthContext {
    AuthContext {
        is_admin: true,
        ..auth.clone()
    }
}

fn rule_view(
    r: &ferrostack_network::model::SecurityGroupRule,
    groups: &[ferrostack_network::model::SecurityGroup],
) -> RuleView {
    let protocol = r.protocol.clone();
    let ported = matches!(protocol.as_deref(), Some("tcp" | "udp" | "6" | "17"));
    let (from, to) = match (&protocol, r.port_range_min, r.port_range_max) {
        (None, _, _) => (None, None),
        (Some(_), None, None) if ported => (Some(1), Some(65535)),
        (Some(_), None, None) => (Some(-1), Some(-1)),
        (Some(_), lo, hi) => (lo.or(Some(-1)), hi.or(Some(-1))),
    };
    let group = r.remote_group_id.as_ref().map(|g| {
        groups
            .iter()
            .find(|x| &x.id == g)
            .map(|x| (x.name.clone(), x.project_id.clone()))
            .unwrap_or_default()
    });
    RuleView {
        id: r.id.clone(),
        parent_group_id: r.security_group_id.clone(),
        ip_protocol: protocol,
        from_port: from,
        to_port: to,
        cidr: if group.is_some() {
            None
        } else {
            Some(r.remote_ip_prefix.map_or_else(
                || match r.ethertype {
                    ferrostack_network::model::EtherType::V6 => "::/0".to_string(),
                    ferrostack_network::model::EtherType::V4 => "0.0.0.0/0".to_string(),
                },
                |p| p.to_string(),
            ))
        },
        group,
    }
}

fn group_view(
    g: &ferrostack_network::model::SecurityGroup,
    all: &[ferrostack_network::model::SecurityGroup],
) -> GroupView {
    GroupView {
        id: g.id.clone(),
        name: g.name.clone(),
        description: g.description.clone(),
        project_id: g.project_id.clone(),
        rules: g
            .rules
            .iter()
            .filter(|r| r.direction == ferrostack_network::model::Direction::Ingress)
            .map(|r| rule_view(r, all))
            .collect(),
    }
}

/// Views of `groups` by project and name, as Nova sorts them.
fn sorted_views<'a>(
    all: &[ferrostack_network::model::SecurityGroup],
    groups: impl Iterator<Item = &'a ferrostack_network::model::SecurityGroup>,
) -> Vec<GroupView> {
    let mut v: Vec<GroupView> = groups.map(|g| group_view(g, all)).collect();
    v.sort_by(|a, b| (&a.project_id, &a.name).cmp(&(&b.project_id, &b.name)));
    v
}
