//! DHCP of a network on its host: a namespace holding the network's DHCP port (a veth whose
//! other end is on the network's bridge) and one dnsmasq answering only from static entries,
//! one per port of the network, as Neutron's DHCP agent runs it. Changed entries are written
//! to its files and dnsmasq re-reads them on SIGHUP (no restart); a changed command line (a
//! subnet added or removed) restarts it. dnsmasq is a daemon of its own: an agent restart
//! leaves it serving.
//!
//! The files and the command line are pure functions of the [`DhcpServer`] (tested below).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ferrostack_agent_api::{DhcpServer, Ipv6Mode};
use ipnet::IpNet;

/// The metadata service's address: the DHCP namespace holds it, and every subnet's guests
/// are given a route to it through the DHCP port (Neutron's isolated metadata, here on every
/// network, with or without a router).
pub const METADATA_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);

/// How long a lease lasts (Neutron's default `dhcp_lease_duration`).
pub const LEASE_SECONDS: u32 = 86400;

/// The namespace of `network_id`'s DHCP server on `host`.
pub fn netns(prefix: &str, host: &str, network_id: &str) -> String {
    format!("{}{network_id}", netns_prefix(prefix, host))
}

/// What the names of `host`'s DHCP namespaces start with.
pub fn netns_prefix(prefix: &str, host: &str) -> String {
    format!("{prefix}-dhcp-{host}-")
}

/// The DHCP port's veth end on the network's bridge (in the data-plane namespace).
pub fn bridge_end(port_id: &str) -> String {
    format!("dh{}", crate::names::short(port_id))
}

/// The DHCP port's veth end in the DHCP namespace (where dnsmasq listens).
pub fn server_end(port_id: &str) -> String {
    format!("ns-{}", crate::names::short(port_id))
}

/// Where the files of a network's dnsmasq are.
pub fn dir(state_dir: &Path, network_id: &str) -> PathBuf {
    state_dir.join("dhcp").join(network_id)
}

pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("pid")
}

/// The static entries: `mac,hostname,address` per port address: every IPv4 address, and
/// the IPv6 addresses of subnets whose hosts take their addresses from DHCPv6 (`[address]`;
/// SLAAC subnets' addresses come from the router's advertisements).
pub fn hosts_file(d: &DhcpServer) -> String {
    let mut out = String::new();
    let stateful: Vec<&IpNet> = v6_ranges(d).map(|(_, s)| &s.cidr).collect();
    let mut hosts: Vec<_> = d
        .hosts
        .iter()
        .filter(|h| h.ip.is_ipv4() || stateful.iter().any(|c| c.contains(&h.ip)))
        .collect();
    hosts.sort_by(|a, b| (a.ip, &a.mac).cmp(&(b.ip, &b.mac)));
    for h in hosts {
        let ip = match h.ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let _ = writeln!(
            out,
            "{},{},{ip}",
            h.mac.to_ascii_lowercase(),
            safe_name(&h.hostname),
        );
    }
    out
}

/// A host name as dnsmasq's files may carry it: letters, digits, `-` and `.` only (a tenant
/// chooses its ports' DNS names; a comma or a newline would write entries of its own).
fn safe_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .take(63)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "host".into()
    } else {
        clean
    }
}

/// The options of each subnet, by its tag: router, DNS servers, and host routes (option 121,
/// which a client then takes instead of the router, so the default route joins them): the
/// subnet's own, and the metadata address through the DHCP port.
pub fn opts_file(d: &DhcpServer) -> String {
    let mut out = String::new();
    for (i, s) in v6_subnets(d) {
        let dns: Vec<String> = s
            .dns_nameservers
            .iter()
            .filter(|a| a.is_ipv6())
            .map(|a| format!("[{a}]"))
            .collect();
        if !dns.is_empty() {
            let _ = writeln!(out, "tag:v6subnet{i},option6:dns-server,{}", dns.join(","));
        }
    }
    for (i, s) in v4_subnets(d) {
        let tag = format!("tag:subnet{i}");
        if let Some(gw) = s.gateway {
            let _ = writeln!(out, "{tag},option:router,{gw}");
        } else {
            let _ = writeln!(out, "{tag},option:router");
        }
        let dns: Vec<String> = s
            .dns_nameservers
            .iter()
            .filter(|a| a.is_ipv4())
            .map(IpAddr::to_string)
            .collect();
        if !dns.is_empty() {
            let _ = writeln!(out, "{tag},option:dns-server,{}", dns.join(","));
        }
        let mut routes: Vec<String> = s
            .host_routes
            .iter()
            .filter(|(dst, via)| matches!(dst, IpNet::V4(_)) && via.is_ipv4())
            .map(|(dst, via)| format!("{dst},{via}"))
            .collect();
        if let Some(own) = d
            .addresses
            .iter()
            .find(|a| s.cidr.contains(&a.addr()))
            .map(IpNet::addr)
        {
            routes.insert(0, format!("{METADATA_IP}/32,{own}"));
        }
        if !routes.is_empty() {
            if let Some(gw) = s.gateway {
                routes.push(format!("0.0.0.0/0,{gw}"));
            }
            let _ = writeln!(
                out,
                "{tag},option:classless-static-route,{}",
                routes.join(",")
            );
        }
    }
    out
}

/// The IPv6 subnets this server answers for, numbered for their tags: DHCPv6 stateful ones
/// (addresses and options), stateless ones (options only), and those setting no mode
/// (served statically, as Neutron does); never SLAAC ones.
fn v6_subnets(d: &DhcpServer) -> impl Iterator<Item = (usize, &ferrostack_agent_api::DhcpSubnet)> {
    d.subnets
        .iter()
        .filter(|s| matches!(s.cidr, IpNet::V6(_)))
        .filter(|s| s.ipv6_address_mode != Some(Ipv6Mode::Slaac))
        .enumerate()
}

/// The IPv6 subnets whose addresses this server hands out.
fn v6_ranges(d: &DhcpServer) -> impl Iterator<Item = (usize, &ferrostack_agent_api::DhcpSubnet)> {
    v6_subnets(d).filter(|(_, s)| s.ipv6_address_mode != Some(Ipv6Mode::Dhcpv6Stateless))
}

fn v4_subnets(d: &DhcpServer) -> impl Iterator<Item = (usize, &ferrostack_agent_api::DhcpSubnet)> {
    d.subnets
        .iter()
        .filter(|s| matches!(s.cidr, IpNet::V4(_)))
        .enumerate()
}

/// dnsmasq's command line: static leases only, on the DHCP port's interface only, no DNS.
pub fn dnsmasq_args(d: &DhcpServer, dir: &Path, interface: &str) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    let mut args = vec![
        "dnsmasq".to_string(),
        "--conf-file=/dev/null".into(),
        "--no-hosts".into(),
        "--no-resolv".into(),
        "--port=0".into(),
        format!("--pid-file={}", file("pid")),
        format!("--dhcp-hostsfile={}", file("hosts")),
        format!("--dhcp-optsfile={}", file("opts")),
        "--leasefile-ro".into(),
        "--dhcp-authoritative".into(),
        "--bind-interfaces".into(),
        format!("--interface={interface}"),
        "--except-interface=lo".into(),
        format!("--dhcp-option-force=option:mtu,{}", d.mtu),
    ];
    for (i, s) in v4_subnets(d) {
        if let IpNet::V4(net) = s.cidr {
            args.push(format!(
                "--dhcp-range=set:subnet{i},{},static,{},{LEASE_SECONDS}s",
                net.network(),
                net.netmask()
            ));
        }
    }
    // DHCPv6: a static range answers stateful clients from the hosts file and stateless
    // ones (information requests) with options alone; router advertisements come from the
    // router, never from here.
    for (i, s) in v6_subnets(d) {
        if let IpNet::V6(net) = s.cidr {
            args.push(format!(
                "--dhcp-range=set:v6subnet{i},{},static,{},{LEASE_SECONDS}s",
                net.network(),
                net.prefix_len()
            ));
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrostack_agent_api::{DhcpHost, DhcpSubnet};

    fn server() -> DhcpServer {
        DhcpServer {
            network_id: "net1".into(),
            port_id: "dhcpport-0000-1111".into(),
            mac: "fa:16:3e:00:00:02".into(),
            addresses: vec!["10.0.0.2/24".parse().unwrap()],
            mtu: 1450,
            subnets: vec![
                DhcpSubnet {
                    id: "s1".into(),
                    cidr: "10.0.0.0/24".parse().unwrap(),
                    gateway: Some("10.0.0.1".parse().unwrap()),
                    dns_nameservers: vec!["192.0.2.53".parse().unwrap()],
                    host_routes: vec![(
                        "192.168.0.0/16".parse().unwrap(),
                        "10.0.0.254".parse().unwrap(),
                    )],
                    ipv6_address_mode: None,
                },
                DhcpSubnet {
                    id: "s6".into(),
                    cidr: "fd00::/64".parse().unwrap(),
                    gateway: None,
                    dns_nameservers: vec!["fd00::53".parse().unwrap()],
                    host_routes: vec![],
                    ipv6_address_mode: Some(Ipv6Mode::Slaac),
                },
                DhcpSubnet {
                    id: "s2".into(),
                    cidr: "10.1.0.0/16".parse().unwrap(),
                    gateway: None,
                    dns_nameservers: vec![],
                    host_routes: vec![],
                    ipv6_address_mode: None,
                },
            ],
            hosts: vec![
                DhcpHost {
                    mac: "FA:16:3E:00:00:0B".into(),
                    ip: "10.0.0.12".parse().unwrap(),
                    hostname: "host-10-0-0-12".into(),
                },
                DhcpHost {
                    mac: "fa:16:3e:00:00:0a".into(),
                    ip: "10.0.0.11".parse().unwrap(),
                    hostname: "vm1".into(),
                },
                DhcpHost {
                    mac: "fa:16:3e:00:00:0a".into(),
                    ip: "fd00::11".parse().unwrap(),
                    hostname: "vm1".into(),
                },
            ],
        }
    }

    #[test]
    fn hosts_are_static_ipv4_entries_in_address_order() {
        assert_eq!(
            hosts_file(&server()),
            "fa:16:3e:00:00:0a,vm1,10.0.0.11\nfa:16:3e:00:00:0b,host-10-0-0-12,10.0.0.12\n"
        );
    }

    #[test]
    fn host_names_cannot_write_entries() {
        let mut d = server();
        d.hosts.truncate(1);
        d.hosts[0].hostname = "evil,ignore\nfa:16:3e:00:00:01,x,10.0.0.99".into();
        assert_eq!(
            hosts_file(&d),
            "fa:16:3e:00:00:0b,evil-ignore-fa-16-3e-00-00-01-x-10.0.0.99,10.0.0.12\n"
        );
    }

    #[test]
    fn options_per_subnet_tag() {
        assert_eq!(
            opts_file(&server()),
            "tag:subnet0,option:router,10.0.0.1\n\
             tag:subnet0,option:dns-server,192.0.2.53\n\
             tag:subnet0,option:classless-static-route,169.254.169.254/32,10.0.0.2,192.168.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n\
             tag:subnet1,option:router\n"
        );
    }

    #[test]
    fn one_static_range_per_ipv4_subnet() {
        let args = dnsmasq_args(&server(), Path::new("/run/x"), "ns-dhcpport-00");
        assert!(args.contains(&"--interface=ns-dhcpport-00".to_string()));
        assert!(args.contains(&"--dhcp-hostsfile=/run/x/hosts".to_string()));
        assert!(args.contains(&"--dhcp-option-force=option:mtu,1450".to_string()));
        let ranges: Vec<&String> = args
            .iter()
            .filter(|a| a.starts_with("--dhcp-range"))
            .collect();
        assert_eq!(
            ranges,
            vec![
                "--dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.0,86400s",
                "--dhcp-range=set:subnet1,10.1.0.0,static,255.255.0.0,86400s"
            ]
        );
        assert_eq!(bridge_end("dhcpport-0000"), "dhdhcpport-00");
        assert!(server_end("3f2a1b4c-5d6e-7f80").len() <= 15);
    }

    #[test]
    fn dhcpv6_serves_stateful_addresses_and_stateless_options_never_slaac() {
        let ranges = |d: &DhcpServer| -> Vec<String> {
            dnsmasq_args(d, Path::new("/run/x"), "ns-x")
                .into_iter()
                .filter(|a| a.starts_with("--dhcp-range=set:v6"))
                .collect()
        };
        // SLAAC: nothing of IPv6 here.
        let mut d = server();
        assert!(ranges(&d).is_empty());
        assert!(!hosts_file(&d).contains("fd00"));
        assert!(!opts_file(&d).contains("option6"));
        // Stateful: a static range, the address per MAC, the DNS servers.
        d.subnets[1].ipv6_address_mode = Some(Ipv6Mode::Dhcpv6Stateful);
        assert_eq!(
            ranges(&d),
            vec!["--dhcp-range=set:v6subnet0,fd00::,static,64,86400s"]
        );
        assert!(hosts_file(&d).ends_with("fa:16:3e:00:00:0a,vm1,[fd00::11]\n"));
        assert!(opts_file(&d).starts_with("tag:v6subnet0,option6:dns-server,[fd00::53]\n"));
        // Stateless: the range (for information requests) and options, no addresses.
        d.subnets[1].ipv6_address_mode = Some(Ipv6Mode::Dhcpv6Stateless);
        assert_eq!(ranges(&d).len(), 1);
        assert!(!hosts_file(&d).contains("fd00"));
        assert!(opts_file(&d).contains("option6:dns-server,[fd00::53]"));
    }
}
