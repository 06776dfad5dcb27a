//! Networking on a host: the networks its guests' ports need, the ports themselves, and the
//! security groups that filter them. The agent builds this with its host's data plane
//! (`ferrostack-netplane`: a bridge per network, VXLAN to the other hosts, an nftables ruleset)
//! and reports which ports it wired.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The tap device of a guest's port on its host, as Neutron names it (`tap` and the port
/// id's first 11 characters): the hypervisor creates it, the data plane plugs it.
pub fn tap_name(port_id: &str) -> String {
    let end = port_id
        .char_indices()
        .nth(11)
        .map_or(port_id.len(), |(i, _)| i);
    format!("tap{}", &port_id[..end])
}

/// Everything about networking the controller wants of one host. Empty: the host has no
/// network state at all (the agent removes what it made).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostNetworking {
    /// The networks the host needs a bridge for (one of its ports is on them).
    #[serde(default)]
    pub networks: Vec<NetSegment>,
    /// The guest ports bound to this host.
    #[serde(default)]
    pub ports: Vec<HostPort>,
    /// The security groups those ports are in, with their rules.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupRules>,
    /// The addresses of the groups those rules name as their remote group (the member ports'
    /// fixed IPs and allowed address pairs, on every host).
    #[serde(default)]
    pub remote_groups: Vec<GroupMembers>,
    /// The addresses of the address groups those rules name as their remote.
    #[serde(default)]
    pub address_groups: Vec<GroupMembers>,
    /// The DHCP servers of networks this host serves DHCP for.
    #[serde(default)]
    pub dhcp: Vec<DhcpServer>,
    /// The routers scheduled to this host.
    #[serde(default)]
    pub routers: Vec<HostRouter>,
}

impl HostNetworking {
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
            && self.ports.is_empty()
            && self.dhcp.is_empty()
            && self.routers.is_empty()
    }
}

/// A router on this host: a namespace with an interface into each attached subnet's network
/// and a gateway on an external network, forwarding between them, with SNAT for the inside's
/// outbound traffic and a 1:1 NAT per floating IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRouter {
    pub id: String,
    /// Its ports on the networks of its subnets.
    #[serde(default)]
    pub interfaces: Vec<RouterPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<RouterGateway>,
    /// Static routes (destination, next hop).
    #[serde(default)]
    pub routes: Vec<(IpNet, IpAddr)>,
    #[serde(default)]
    pub floating_ips: Vec<FloatingNat>,
    /// Floating IPs' port forwardings through this router.
    #[serde(default)]
    pub port_forwardings: Vec<PortForward>,
}

/// A port forwarding: `protocol` traffic to `floating_ip:external_port` goes to
/// `internal_ip:internal_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForward {
    pub id: String,
    /// The floating IP it belongs to.
    pub floating_ip_id: String,
    pub floating_ip: IpAddr,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub external_port: u16,
    pub internal_ip: IpAddr,
    pub internal_port: u16,
}

/// One of a router's ports: its network, MAC, and addresses with their subnets' prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterPort {
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    pub addresses: Vec<IpNet>,
    pub mtu: u32,
    /// The IPv6 subnets of an interface (not a gateway): the router sends router
    /// advertisements on it, with these prefixes as their modes say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_subnets: Vec<Ipv6Subnet>,
}

/// An IPv6 subnet on a router's interface, as its router advertisements carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Subnet {
    pub cidr: IpNet,
    /// The subnet's `ipv6_ra_mode`: none leaves the prefix out (another router, or nobody,
    /// advertises it); the interface still announces itself as the default router.
    #[serde(default)]
    pub ra_mode: Option<Ipv6Mode>,
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
}

/// How an IPv6 subnet's hosts configure themselves (Neutron's `ipv6_ra_mode` and
/// `ipv6_address_mode` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6Mode {
    /// Addresses from the advertised prefix (EUI-64), no DHCPv6.
    Slaac,
    /// Addresses and options from DHCPv6.
    Dhcpv6Stateful,
    /// Addresses by SLAAC, options (DNS servers) from DHCPv6.
    Dhcpv6Stateless,
}

/// A router's gateway on an external network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterGateway {
    pub port: RouterPort,
    /// The external subnets' gateways: the router's default routes.
    #[serde(default)]
    pub next_hops: Vec<IpAddr>,
    /// Outbound traffic from the inside leaves with the gateway's address.
    pub enable_snat: bool,
}

/// A floating IP: traffic to `floating_ip` goes to `fixed_ip`, and what `fixed_ip` sends out
/// leaves from `floating_ip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloatingNat {
    pub id: String,
    pub floating_ip: IpAddr,
    pub fixed_ip: IpAddr,
}

/// A network's DHCP server on this host: a namespace with the network's DHCP port, and
/// dnsmasq answering from static entries (one per port of the network: no dynamic leases).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpServer {
    pub network_id: String,
    /// The network's DHCP port (device owner `network:dhcp`).
    pub port_id: String,
    pub mac: String,
    /// The DHCP port's addresses, with their subnets' prefix lengths.
    pub addresses: Vec<IpNet>,
    pub mtu: u32,
    /// The network's subnets with DHCP on.
    pub subnets: Vec<DhcpSubnet>,
    /// What each port of the network is given.
    pub hosts: Vec<DhcpHost>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpSubnet {
    pub id: String,
    pub cidr: IpNet,
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
    /// Static routes handed out (destination, next hop).
    #[serde(default)]
    pub host_routes: Vec<(IpNet, IpAddr)>,
    /// An IPv6 subnet's `ipv6_address_mode` (none: DHCPv6 with static addresses, as
    /// Neutron serves a subnet that sets neither mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address_mode: Option<Ipv6Mode>,
}

/// A port's static DHCP entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpHost {
    pub mac: String,
    pub ip: IpAddr,
    /// The host name it is told (`host-10-0-0-5` when the port has no DNS name).
    pub hostname: String,
}

/// A network as a host carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSegment {
    pub id: String,
    pub mtu: u32,
    pub kind: SegmentKind,
}

/// How a network's frames leave the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SegmentKind {
    /// Untagged on the host's interface for `physical_network`.
    Flat { physical_network: String },
    /// 802.1q on the host's interface for `physical_network`.
    Vlan { physical_network: String, vlan: u16 },
    /// VXLAN with unicast forwarding entries to each peer host (no multicast): every remote
    /// port's MAC points at its host, and broadcasts go to every peer.
    Vxlan { vni: u32, peers: Vec<VxlanPeer> },
}

/// A host's VXLAN endpoint: the address and UDP port its tunnels arrive at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Vtep {
    pub ip: IpAddr,
    pub port: u16,
}

/// Another host on a VXLAN network and the MACs of its ports there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanPeer {
    pub vtep: Vtep,
    pub macs: Vec<String>,
}

/// A guest's port on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPort {
    pub id: String,
    pub network_id: String,
    pub mac: String,
    /// Its fixed IPs.
    pub ips: Vec<IpAddr>,
    /// What else it may send from (`allowed_address_pairs`; a CIDR or one address).
    #[serde(default)]
    pub address_pairs: Vec<AddressPair>,
    /// False: no anti-spoofing and no security groups (all traffic passes).
    pub port_security: bool,
    /// Its security groups' ids.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// False: the port is administratively down (its tap stays off its bridge).
    #[serde(default = "yes")]
    pub admin_state_up: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    pub mac: String,
    pub ip: IpNet,
}

/// A security group's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRules {
    pub id: String,
    pub rules: Vec<FilterRule>,
}

/// One security group rule: what it admits, seen from the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    /// The rule's id (named in the ruleset's comments).
    pub id: String,
    pub direction: Direction,
    pub ethertype: EtherType,
    /// The IP protocol number; none: any.
    pub protocol: Option<u8>,
    /// TCP/UDP/SCTP: the destination port range; ICMP: `min` is the type and `max` the code.
    pub port_min: Option<u16>,
    pub port_max: Option<u16>,
    pub remote: Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EtherType {
    IPv4,
    IPv6,
}

/// Whom a rule admits: anyone, a prefix, or the members of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Remote {
    Any,
    Prefix(IpNet),
    Group(String),
    /// An address group: a named set of CIDRs.
    AddressGroup(String),
}

/// The addresses of a security group's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembers {
    pub id: String,
    pub addresses: Vec<IpNet>,
}

/// What the agent did with the networking it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkingReport {
    /// The ports now wired on the host: their tap is on its bridge and the ruleset that filters
    /// it is loaded.
    #[serde(default)]
    pub wired: Vec<String>,
    /// The routers now set up on the host (every port, address, route and NAT rule in place).
    #[serde(default)]
    pub routers: Vec<String>,
    /// The ports of those routers (interfaces and gateways): a port added to a router that
    /// was already up changes the report, so the controller hears of it and marks it ACTIVE.
    #[serde(default)]
    pub router_ports: Vec<String>,
    /// The floating IPs now translated by those routers.
    #[serde(default)]
    pub floating_ips: Vec<String>,
    /// Why the data plane could not be converged, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
