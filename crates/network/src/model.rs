//! Domain types of the networking service. Wire bodies are built from these in `api/wire.rs`;
//! the database rows are read into them in `db/`.

use std::net::IpAddr;

use ipnet::IpNet;

/// Microseconds since the epoch (how every time is stored).
pub type Micros = i64;

/// How a network's frames travel between hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkType {
    /// Untagged, on a physical network (an interface of each host).
    Flat,
    /// VXLAN between hosts, one VNI per network.
    Vxlan,
    /// 802.1q on a physical network, one VLAN id per network.
    Vlan,
}

impl NetworkType {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkType::Flat => "flat",
            NetworkType::Vxlan => "vxlan",
            NetworkType::Vlan => "vlan",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "flat" => Some(NetworkType::Flat),
            "vxlan" => Some(NetworkType::Vxlan),
            "vlan" => Some(NetworkType::Vlan),
            _ => None,
        }
    }
}

/// A network's segment: its type, physical network and VNI or VLAN id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub network_type: NetworkType,
    /// Set for flat and vlan networks.
    pub physical_network: Option<String>,
    /// The VNI (vxlan) or VLAN id (vlan); none for flat.
    pub segmentation_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub status: String,
    pub shared: bool,
    pub router_external: bool,
    pub is_default: bool,
    pub mtu: i64,
    pub port_security_enabled: bool,
    pub segment: Segment,
    pub az_hints: Vec<String>,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// Ids of the network's subnets (filled when read).
    pub subnets: Vec<String>,
    pub tags: Vec<String>,
    /// RBAC policies on it (filled when read).
    pub rbac: Vec<RbacPolicy>,
}

/// `ipv6_ra_mode` / `ipv6_address_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Mode {
    Slaac,
    Dhcpv6Stateful,
    Dhcpv6Stateless,
}

impl Ipv6Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Ipv6Mode::Slaac => "slaac",
            Ipv6Mode::Dhcpv6Stateful => "dhcpv6-stateful",
            Ipv6Mode::Dhcpv6Stateless => "dhcpv6-stateless",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "slaac" => Some(Ipv6Mode::Slaac),
            "dhcpv6-stateful" => Some(Ipv6Mode::Dhcpv6Stateful),
            "dhcpv6-stateless" => Some(Ipv6Mode::Dhcpv6Stateless),
            _ => None,
        }
    }
}

/// An inclusive range of addresses a subnet hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pool {
    pub start: IpAddr,
    pub end: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

#[derive(Debug, Clone)]
pub struct Subnet {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub enable_dhcp: bool,
    pub ipv6_ra_mode: Option<Ipv6Mode>,
    pub ipv6_address_mode: Option<Ipv6Mode>,
    pub subnetpool_id: Option<String>,
    pub dns_nameservers: Vec<IpAddr>,
    pub host_routes: Vec<HostRoute>,
    pub allocation_pools: Vec<Pool>,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub tags: Vec<String>,
}

impl Subnet {
    pub fn ip_version(&self) -> u8 {
        match self.cidr {
            IpNet::V4(_) => 4,
            IpNet::V6(_) => 6,
        }
    }
}

/// An address a port holds on one of its network's subnets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddressPair {
    /// An address or a CIDR the port may also send from.
    pub ip_address: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DhcpOpt {
    pub opt_name: String,
    pub opt_value: String,
    pub ip_version: u8,
}

/// A port's status: DOWN until the host that carries it reports it wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortStatus {
    Down,
    Active,
    Build,
    Error,
}

impl PortStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PortStatus::Down => "DOWN",
            PortStatus::Active => "ACTIVE",
            PortStatus::Build => "BUILD",
            PortStatus::Error => "ERROR",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DOWN" => Some(PortStatus::Down),
            "ACTIVE" => Some(PortStatus::Active),
            "BUILD" => Some(PortStatus::Build),
            "ERROR" => Some(PortStatus::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Port {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub mac_address: String,
    pub admin_state_up: bool,
    pub status: PortStatus,
    pub device_id: String,
    pub device_owner: String,
    pub binding_host_id: String,
    pub binding_vnic_type: String,
    pub binding_profile: serde_json::Map<String, serde_json::Value>,
    pub port_security_enabled: bool,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub extra_dhcp_opts: Vec<DhcpOpt>,
    pub dns_name: String,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub fixed_ips: Vec<FixedIp>,
    pub security_groups: Vec<String>,
    pub tags: Vec<String>,
}

impl Port {
    /// How the host plugs the port: a tap in a Linux bridge once bound to a host.
    pub fn vif_type(&self) -> &'static str {
        if self.binding_host_id.is_empty() {
            "unbound"
        } else {
            "bridge"
        }
    }
}

/// Direction of a security group rule, as seen from the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingress" => Some(Direction::Ingress),
            "egress" => Some(Direction::Egress),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherType {
    V4,
    V6,
}

impl EtherType {
    pub fn as_str(self) -> &'static str {
        match self {
            EtherType::V4 => "IPv4",
            EtherType::V6 => "IPv6",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "IPv4" => Some(EtherType::V4),
            "IPv6" => Some(EtherType::V6),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub stateful: bool,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub rules: Vec<SecurityGroupRule>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroupRule {
    pub id: String,
    pub project_id: String,
    pub security_group_id: String,
    pub direction: Direction,
    pub ethertype: EtherType,
    /// A protocol name as given (`tcp`, `icmp`, ...) or its number as text; none: any.
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group_id: Option<String>,
    pub remote_address_group_id: Option<String>,
    pub description: String,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// What a project may have of each resource (`-1`: no limit).
pub const QUOTA_RESOURCES: [(&str, i64); 9] = [
    ("network", 100),
    ("subnet", 100),
    ("port", 500),
    ("router", 10),
    ("floatingip", 50),
    ("security_group", 10),
    ("security_group_rule", 100),
    ("subnetpool", -1),
    ("rbac_policy", 10),
];

/// A static route of a router (`routes`, the extraroute extension).
pub type Route = HostRoute;

#[derive(Debug, Clone)]
pub struct Router {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub status: String,
    /// The external network its gateway is on.
    pub gw_network_id: Option<String>,
    pub enable_snat: bool,
    pub routes: Vec<Route>,
    pub az_hints: Vec<String>,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// The gateway port's addresses (filled when read).
    pub gw_ips: Vec<FixedIp>,
    pub tags: Vec<String>,
}

/// Device owners of the ports the networking service makes for itself.
pub const OWNER_ROUTER_INTERFACE: &str = "network:router_interface";
pub const OWNER_ROUTER_GATEWAY: &str = "network:router_gateway";
pub const OWNER_FLOATING_IP: &str = "network:floatingip";
pub const OWNER_DHCP: &str = "network:dhcp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatingIpStatus {
    /// Not associated, or not yet set up by the host that routes it.
    Down,
    Active,
    Error,
}

impl FloatingIpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FloatingIpStatus::Down => "DOWN",
            FloatingIpStatus::Active => "ACTIVE",
            FloatingIpStatus::Error => "ERROR",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DOWN" => Some(FloatingIpStatus::Down),
            "ACTIVE" => Some(FloatingIpStatus::Active),
            "ERROR" => Some(FloatingIpStatus::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FloatingIp {
    pub id: String,
    pub project_id: String,
    pub floating_network_id: String,
    pub floating_ip_address: IpAddr,
    pub floating_port_id: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<IpAddr>,
    pub router_id: Option<String>,
    pub status: FloatingIpStatus,
    pub description: String,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub tags: Vec<String>,
}

/// A floating IP's port forwarding: `protocol` traffic to the floating IP's
/// `external_port` goes to `internal_ip_address:internal_port` of port `internal_port_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForwarding {
    pub id: String,
    pub floatingip_id: String,
    pub internal_port_id: String,
    pub internal_ip_address: IpAddr,
    pub internal_port: u16,
    pub external_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub description: String,
}

/// A named set of CIDRs that security group rules can name as their remote.
#[derive(Debug, Clone)]
pub struct AddressGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    /// Normalized (host bits cleared), sorted, without duplicates.
    pub addresses: Vec<IpNet>,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone)]
pub struct SubnetPool {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    pub prefixes: Vec<IpNet>,
    pub default_prefixlen: u8,
    pub min_prefixlen: u8,
    pub max_prefixlen: u8,
    pub shared: bool,
    pub is_default: bool,
    pub default_quota: Option<i64>,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub tags: Vec<String>,
}

/// What an RBAC policy grants on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacAction {
    /// Ports may be made on it (as on a shared network).
    AccessAsShared,
    /// It may serve as an external network (router gateways, floating IPs).
    AccessAsExternal,
}

impl RbacAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RbacAction::AccessAsShared => "access_as_shared",
            RbacAction::AccessAsExternal => "access_as_external",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access_as_shared" => Some(RbacAction::AccessAsShared),
            "access_as_external" => Some(RbacAction::AccessAsExternal),
            _ => None,
        }
    }
}

/// An RBAC policy (`/v2.0/rbac-policies`); only networks take them here.
#[derive(Debug, Clone)]
pub struct RbacPolicy {
    pub id: String,
    pub project_id: String,
    pub object_id: String,
    pub action: RbacAction,
    /// A project id, or `*` for every project.
    pub target_project: String,
    pub revision_number: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

impl RbacPolicy {
    pub fn applies_to(&self, project: &str) -> bool {
        self.target_project == "*" || self.target_project == project
    }
}

impl Network {
    /// Whether `project` may make ports on it (its own, shared, or shared with it).
    pub fn usable_by(&self, project: &str) -> bool {
        self.project_id == project
            || self.shared
            || self
                .rbac
                .iter()
                .any(|r| r.action == RbacAction::AccessAsShared && r.applies_to(project))
    }
    /// Whether it is shared with `project` (what `shared` means to that project).
    pub fn shared_with(&self, project: &str) -> bool {
        self.shared
            || self
                .rbac
                .iter()
                .any(|r| r.action == RbacAction::AccessAsShared && r.applies_to(project))
    }
    /// Whether `project` may use it as an external network (router gateways, floating
    /// IPs): an external network is every project's, and an RBAC entry makes another one
    /// external for the projects it names.
    pub fn external_for(&self, project: &str) -> bool {
        self.router_external
            || self
                .rbac
                .iter()
                .any(|r| r.action == RbacAction::AccessAsExternal && r.applies_to(project))
    }
}
