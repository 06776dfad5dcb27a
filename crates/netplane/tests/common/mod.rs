//! Networking descriptions shared by the data plane's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ferrostack_agent_api::{
    AddressPair, Direction, EtherType, FilterRule, GroupMembers, HostNetworking, HostPort,
    NetSegment, Remote, SecurityGroupRules, SegmentKind,
};

pub const NET: &str = "0a1b2c3d-net1-4000-8000-000000000001";
pub const PORT_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
pub const PORT_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
pub const MAC_A: &str = "fa:16:3e:00:00:0a";
pub const MAC_B: &str = "fa:16:3e:00:00:0b";

pub fn rule(
    id: &str,
    direction: Direction,
    ethertype: EtherType,
    protocol: Option<u8>,
    ports: Option<(u16, u16)>,
    remote: Remote,
) -> FilterRule {
    FilterRule {
        id: id.into(),
        direction,
        ethertype,
        protocol,
        port_min: ports.map(|p| p.0),
        port_max: ports.map(|p| p.1),
        remote,
    }
}

pub fn egress_any(group: &str) -> Vec<FilterRule> {
    vec![
        rule(
            &format!("{group}-e4"),
            Direction::Egress,
            EtherType::IPv4,
            None,
            None,
            Remote::Any,
        ),
        rule(
            &format!("{group}-e6"),
            Direction::Egress,
            EtherType::IPv6,
            None,
            None,
            Remote::Any,
        ),
    ]
}

/// The example of docs/network-dataplane.md: port A in group `web` (no ingress), port B in
/// group `srv` (tcp/8080 from `web`, ICMP from 10.0.0.0/24), A with the pair 10.0.0.99.
pub fn two_ports() -> HostNetworking {
    let mut srv = egress_any("srv");
    srv.push(rule(
        "srv-8080",
        Direction::Ingress,
        EtherType::IPv4,
        Some(6),
        Some((8080, 8080)),
        Remote::Group("web".into()),
    ));
    srv.push(rule(
        "srv-8080v6",
        Direction::Ingress,
        EtherType::IPv6,
        Some(6),
        Some((8080, 8080)),
        Remote::Group("web".into()),
    ));
    srv.push(rule(
        "srv-icmp",
        Direction::Ingress,
        EtherType::IPv4,
        Some(1),
        None,
        Remote::Prefix("10.0.0.0/24".parse().unwrap()),
    ));
    HostNetworking {
        networks: vec![NetSegment {
            id: NET.into(),
            mtu: 1450,
            kind: SegmentKind::Vxlan {
                vni: 100,
                peers: vec![],
            },
        }],
        ports: vec![
            HostPort {
                id: PORT_A.into(),
                network_id: NET.into(),
                mac: MAC_A.into(),
                ips: vec!["10.0.0.11".parse().unwrap(), "fd00::11".parse().unwrap()],
                address_pairs: vec![AddressPair {
                    mac: MAC_A.into(),
                    ip: "10.0.0.99/32".parse().unwrap(),
                }],
                port_security: true,
                security_groups: vec!["web".into()],
                admin_state_up: true,
            },
            HostPort {
                id: PORT_B.into(),
                network_id: NET.into(),
                mac: MAC_B.into(),
                ips: vec!["10.0.0.12".parse().unwrap(), "fd00::12".parse().unwrap()],
                address_pairs: vec![],
                port_security: true,
                security_groups: vec!["srv".into()],
                admin_state_up: true,
            },
        ],
        security_groups: vec![
            SecurityGroupRules {
                id: "web".into(),
                rules: egress_any("web"),
            },
            SecurityGroupRules {
                id: "srv".into(),
                rules: srv,
            },
        ],
        remote_groups: vec![GroupMembers {
            id: "web".into(),
            addresses: vec![
                "10.0.0.11/32".parse().unwrap(),
                "10.0.0.99/32".parse().unwrap(),
                "fd00::11/128".parse().unwrap(),
            ],
        }],
        address_groups: vec![],
        dhcp: vec![],
        routers: vec![],
    }
}

/// The DHCP server of network NET on this host: port A's entry (10.0.0.11) on 10.0.0.0/24.
pub fn dhcp_server() -> ferrostack_agent_api::DhcpServer {
    ferrostack_agent_api::DhcpServer {
        network_id: NET.into(),
        port_id: "dddddddd-0000-4000-8000-00000000000d".into(),
        mac: "fa:16:3e:00:00:0d".into(),
        addresses: vec!["10.0.0.2/24".parse().unwrap()],
        mtu: 1450,
        subnets: vec![ferrostack_agent_api::DhcpSubnet {
            id: "s1".into(),
            cidr: "10.0.0.0/24".parse().unwrap(),
            gateway: Some("10.0.0.1".parse().unwrap()),
            dns_nameservers: vec![],
            host_routes: vec![],
            ipv6_address_mode: None,
        }],
        hosts: vec![ferrostack_agent_api::DhcpHost {
            mac: MAC_A.into(),
            ip: "10.0.0.11".parse().unwrap(),
            hostname: "host-10-0-0-11".into(),
        }],
    }
}

pub const EXT: &str = "0e0e0e0e-ext1-4000-8000-0000000000e1";
pub const ROUTER: &str = "70707070-0000-4000-8000-0000000000r1";
pub const ROUTER_IFACE: &str = "a1a1a1a1-0000-4000-8000-0000000000a1";
pub const ROUTER_GW: &str = "a2a2a2a2-0000-4000-8000-0000000000a2";

/// The external flat network (physical network `public`) a router's gateway is on.
pub fn external_network() -> NetSegment {
    NetSegment {
        id: EXT.into(),
        mtu: 1500,
        kind: SegmentKind::Flat {
            physical_network: "public".into(),
        },
    }
}

/// A router between NET (10.0.0.1/24) and EXT (172.24.4.10/24, next hop 172.24.4.1), with
/// SNAT and the floating IP 172.24.4.20 of port A (10.0.0.11).
pub fn router(mtu: u32) -> ferrostack_agent_api::HostRouter {
    use ferrostack_agent_api::{FloatingNat, HostRouter, RouterGateway, RouterPort};
    HostRouter {
        id: ROUTER.into(),
        interfaces: vec![RouterPort {
            port_id: ROUTER_IFACE.into(),
            network_id: NET.into(),
            mac: "fa:16:3e:00:00:a1".into(),
            addresses: vec!["10.0.0.1/24".parse().unwrap()],
            mtu,
            ipv6_subnets: vec![],
        }],
        gateway: Some(RouterGateway {
            port: RouterPort {
                port_id: ROUTER_GW.into(),
                network_id: EXT.into(),
                mac: "fa:16:3e:00:00:a2".into(),
                addresses: vec!["172.24.4.10/24".parse().unwrap()],
                mtu: 1500,
                ipv6_subnets: vec![],
            },
            next_hops: vec!["172.24.4.1".parse().unwrap()],
            enable_snat: true,
        }),
        routes: vec![],
        floating_ips: vec![FloatingNat {
            id: "fip1".into(),
            floating_ip: "172.24.4.20".parse().unwrap(),
            fixed_ip: "10.0.0.11".parse().unwrap(),
        }],
        port_forwardings: vec![],
    }
}

/// Records that a test could not run on this machine, and why: the test command counts it as
/// skipped and prints the reason (a test that returns early would otherwise pass silently).
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(path) = std::env::var_os("FERROSTACK_TEST_SKIP_LOG") {
        let line = format!("{test}: {reason}\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .expect("writing FERROSTACK_TEST_SKIP_LOG");
    }
}
