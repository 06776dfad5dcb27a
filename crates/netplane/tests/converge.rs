//! Converging against the in-memory kernel: what is made, what is left alone, what is
//! removed, and what an agent restart keeps.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use ferrostack_agent_api::{
    Direction, EtherType, HostNetworking, NetSegment, Remote, SegmentKind, Vtep, VxlanPeer,
};
use ferrostack_netplane::fake::FakeHost;
use ferrostack_netplane::{names, Dataplane, Fdb, HostConfig, Uplink};

const NS: &str = "fs-dp-h1";

fn config() -> HostConfig {
    HostConfig {
        prefix: "fs".into(),
        host: "h1".into(),
        vtep: Vtep {
            ip: "127.0.0.1".parse().unwrap(),
            port: 4790,
        },
        state_dir: "/state/h1".into(),
        physnets: BTreeMap::from([(
            "public".into(),
            Uplink::Bridge {
                netns: "fs-ext".into(),
                bridge: "brext".into(),
            },
        )]),
    }
}

fn plane(host: &Arc<FakeHost>) -> Dataplane {
    Dataplane::new(host.clone(), config())
}

/// A host whose physical network `public` reaches the outside namespace (`fs-ext`, bridge
/// `brext`), and its data plane.
async fn host_with_outside() -> (Arc<FakeHost>, Dataplane) {
    use ferrostack_netplane::NetHost;
    let host = Arc::new(FakeHost::default());
    host.add_namespace("fs-ext").await.unwrap();
    host.add_bridge("fs-ext", "brext", 1500).await.unwrap();
    let dp = plane(&host);
    (host, dp)
}

/// The two ports' network, the external one and a router between them.
fn routed() -> HostNetworking {
    let mut want = two_ports();
    want.networks.push(external_network());
    want.routers.push(common::router(1450));
    want
}

#[tokio::test]
async fn taps_join_their_bridge_once_their_guest_runs() {
    let host = Arc::new(FakeHost::default());
    let dp = plane(&host);
    let want = two_ports();
    // No guest runs yet: the network is built, no port is wired.
    let r = dp.converge(&want).await;
    assert_eq!(r.error, None);
    assert!(r.wired.is_empty());
    let bridge = names::bridge(NET);
    assert_eq!(host.link(NS, &bridge).unwrap().kind, "bridge");
    let vx = host.link(NS, &names::vxlan(NET)).unwrap();
    assert_eq!(vx.master.as_deref(), Some(bridge.as_str()));
    assert!(host.ruleset(NS).unwrap().contains(&names::tap(PORT_A)));

    // QEMU made A's tap in the root namespace: it moves into the data plane, onto the bridge.
    host.add_tap(&names::tap(PORT_A));
    let r = dp.converge(&want).await;
    assert_eq!((r.error, r.wired), (None, vec![PORT_A.to_string()]));
    let tap = host.link(NS, &names::tap(PORT_A)).unwrap();
    assert_eq!(
        (tap.master.as_deref(), tap.up, tap.mtu),
        (Some(bridge.as_str()), true, 1450)
    );
    assert!(host.link("", &names::tap(PORT_A)).is_none());

    // Nothing changed: nothing is loaded again.
    let loads = host.loads();
    dp.converge(&want).await;
    assert_eq!(host.loads(), loads);

    // Port A administratively down: off the bridge, not wired.
    let mut down = want.clone();
    down.ports[0].admin_state_up = false;
    let r = dp.converge(&down).await;
    assert!(r.wired.is_empty());
    assert_eq!(host.link(NS, &names::tap(PORT_A)).unwrap().master, None);
}

#[tokio::test]
async fn vxlan_forwarding_follows_the_peers() {
    let host = Arc::new(FakeHost::default());
    let dp = plane(&host);
    let mut want = two_ports();
    let peer = |port| Vtep {
        ip: "127.0.0.1".parse().unwrap(),
        port,
    };
    want.networks[0].kind = SegmentKind::Vxlan {
        vni: 100,
        peers: vec![
            VxlanPeer {
                vtep: peer(4791),
                macs: vec!["FA:16:3E:00:00:01".into()],
            },
            // This host itself is never a peer of its own.
            VxlanPeer {
                vtep: peer(4790),
                macs: vec!["fa:16:3e:00:00:02".into()],
            },
        ],
    };
    dp.converge(&want).await;
    let fdb = |mac: &str, port| Fdb {
        mac: mac.into(),
        dst: peer(port),
    };
    assert_eq!(
        host.fdb_entries(NS, &names::vxlan(NET)),
        vec![
            fdb("00:00:00:00:00:00", 4791),
            fdb("fa:16:3e:00:00:01", 4791)
        ]
    );
    want.networks[0].kind = SegmentKind::Vxlan {
        vni: 100,
        peers: vec![VxlanPeer {
            vtep: peer(4792),
            macs: vec![],
        }],
    };
    dp.converge(&want).await;
    assert_eq!(
        host.fdb_entries(NS, &names::vxlan(NET)),
        vec![fdb("00:00:00:00:00:00", 4792)]
    );
}

#[tokio::test]
async fn flat_networks_get_an_uplink_and_unknown_physnets_are_reported() {
    let (host, dp) = host_with_outside().await;
    let mut want = two_ports();
    want.networks.push(NetSegment {
        id: "pub".into(),
        mtu: 1500,
        kind: SegmentKind::Flat {
            physical_network: "public".into(),
        },
    });
    want.networks.push(NetSegment {
        id: "nowhere".into(),
        mtu: 1500,
        kind: SegmentKind::Flat {
            physical_network: "dark".into(),
        },
    });
    let r = dp.converge(&want).await;
    assert!(r.error.unwrap().contains("physical network \"dark\""));
    let up = host.link(NS, &names::uplink("pub")).unwrap();
    assert_eq!(up.master, Some(names::bridge("pub")));
    let peer = dp.config().uplink_peer("pub");
    assert_eq!(
        host.link("fs-ext", &peer).unwrap().master.as_deref(),
        Some("brext")
    );
    // The flat network goes: its bridge and both ends of its uplink go.
    want.networks.truncate(1);
    let r = dp.converge(&want).await;
    assert_eq!(r.error, None);
    assert!(host.link(NS, &names::bridge("pub")).is_none());
    assert!(host.link(NS, &names::uplink("pub")).is_none());
    assert!(host.link("fs-ext", &peer).is_none());
}

#[tokio::test]
async fn vlan_networks_share_their_physnets_trunk_and_leave_it_when_gone() {
    let (host, dp) = host_with_outside().await;
    let mut want = two_ports();
    for (id, vlan) in [("v101", 101), ("v102", 102)] {
        want.networks.push(NetSegment {
            id: id.into(),
            mtu: 1500,
            kind: SegmentKind::Vlan {
                physical_network: "public".into(),
                vlan,
            },
        });
    }
    let r = dp.converge(&want).await;
    assert_eq!(r.error, None);
    // One trunk to the physical network's bridge; each network's 802.1q device on its bridge.
    let trunk = dp.config().trunk("public");
    assert!(host.link(NS, &trunk).unwrap().up);
    let peer = dp.config().trunk_peer("public");
    assert_eq!(
        host.link("fs-ext", &peer).unwrap().master.as_deref(),
        Some("brext")
    );
    for id in ["v101", "v102"] {
        let dev = host.link(NS, &names::vlan(id)).unwrap();
        assert_eq!(dev.kind, "vlan");
        assert_eq!(dev.master, Some(names::bridge(id)));
    }
    // A second pass changes nothing.
    assert_eq!(dp.converge(&want).await.error, None);
    // One network goes: its device goes, the trunk stays for the other.
    want.networks.pop();
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(host.link(NS, &names::vlan("v102")).is_none());
    assert!(host.link(NS, &names::bridge("v102")).is_none());
    assert!(host.link(NS, &trunk).is_some());
    // The last goes: the trunk goes, both ends.
    want.networks.pop();
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(host.link(NS, &names::vlan("v101")).is_none());
    assert!(host.link(NS, &trunk).is_none());
    assert!(host.link("fs-ext", &peer).is_none());
}

#[tokio::test]
async fn a_rule_added_replaces_only_its_groups_chain() {
    let host = Arc::new(FakeHost::default());
    let dp = plane(&host);
    let mut want = two_ports();
    assert_eq!(dp.converge(&want).await.error, None);
    assert_eq!((host.loads(), host.partial_loads()), (1, 0));
    want.security_groups[1].rules.push(rule(
        "srv-ssh",
        Direction::Ingress,
        EtherType::IPv4,
        Some(6),
        Some((22, 22)),
        Remote::Any,
    ));
    assert_eq!(dp.converge(&want).await.error, None);
    assert_eq!((host.loads(), host.partial_loads()), (2, 1));
    assert!(host.ruleset(NS).unwrap().contains("rule srv-ssh"));
    // A port gone: the whole ruleset again.
    want.ports.truncate(1);
    assert_eq!(dp.converge(&want).await.error, None);
    assert_eq!((host.loads(), host.partial_loads()), (3, 1));
}

#[tokio::test]
async fn what_the_cloud_no_longer_wants_is_removed() {
    let host = Arc::new(FakeHost::default());
    let dp = plane(&host);
    let mut want = two_ports();
    host.add_tap(&names::tap(PORT_A));
    host.add_tap(&names::tap(PORT_B));
    assert_eq!(dp.converge(&want).await.wired.len(), 2);
    // Port B goes (its guest still runs): its tap leaves the bridge and its rules go.
    want.ports.truncate(1);
    dp.converge(&want).await;
    assert_eq!(host.link(NS, &names::tap(PORT_B)).unwrap().master, None);
    assert!(!host.ruleset(NS).unwrap().contains(&names::tap(PORT_B)));
    // Nothing left: the namespace goes, and with it everything in it.
    let r = dp.converge(&HostNetworking::default()).await;
    assert_eq!(r.error, None);
    use ferrostack_netplane::NetHost;
    assert!(host.namespaces().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_restarted_agent_keeps_each_networks_conntrack_zone() {
    let host = Arc::new(FakeHost::default());
    let mut want = two_ports();
    let second = NetSegment {
        id: "net2".into(),
        mtu: 1450,
        kind: SegmentKind::Vxlan {
            vni: 7,
            peers: vec![],
        },
    };
    want.networks.push(second.clone());
    plane(&host).converge(&want).await;
    let zones = ferrostack_netplane::dataplane::parse_zones(&host.ruleset(NS).unwrap());
    assert_eq!(
        zones,
        BTreeMap::from([(names::bridge(NET), 1), (names::bridge("net2"), 2)])
    );
    // A new agent (restart), and the first network is gone: net2 keeps zone 2; a new network
    // takes the free zone 1.
    let restarted = plane(&host);
    want.networks.remove(0);
    want.ports.clear();
    want.networks.push(NetSegment {
        id: "net3".into(),
        ..second
    });
    let r = restarted.converge(&want).await;
    assert_eq!(r.error, None);
    let zones = ferrostack_netplane::dataplane::parse_zones(&host.ruleset(NS).unwrap());
    assert_eq!(
        zones,
        BTreeMap::from([(names::bridge("net2"), 2), (names::bridge("net3"), 1)])
    );
}

#[tokio::test]
async fn a_dhcp_server_is_started_reloaded_restarted_and_removed() {
    use ferrostack_netplane::dhcp;
    let host = Arc::new(FakeHost::default());
    let dp = plane(&host);
    let mut want = two_ports();
    want.dhcp = vec![dhcp_server()];
    let r = dp.converge(&want).await;
    assert_eq!(r.error, None);
    let d = want.dhcp[0].clone();
    let ns = dhcp::netns("fs", "h1", NET);
    // The DHCP port: a veth from the network's bridge into the DHCP namespace, with the
    // port's MAC and address.
    assert_eq!(
        host.link(NS, &dhcp::bridge_end(&d.port_id)).unwrap().master,
        Some(names::bridge(NET))
    );
    let inner = dhcp::server_end(&d.port_id);
    assert!(host.link(&ns, &inner).unwrap().up);
    assert_eq!(host.mac(&ns, &inner).as_deref(), Some("fa:16:3e:00:00:0d"));
    use ferrostack_netplane::NetHost;
    assert_eq!(
        host.addresses(&ns, &inner).await.unwrap(),
        vec![
            "10.0.0.2/24".parse().unwrap(),
            "169.254.169.254/32".parse().unwrap()
        ],
        "the DHCP port and the metadata service's address"
    );
    // dnsmasq runs there with the port entries in its files.
    let dir = dhcp::dir(std::path::Path::new("/state/h1"), NET);
    let daemons = host.daemons();
    let running = &daemons[&dhcp::pid_file(&dir)];
    assert_eq!(running.netns, ns);
    assert_eq!(running.argv[0], "dnsmasq");
    assert_eq!(
        host.file(&dir.join("hosts")).unwrap(),
        "fa:16:3e:00:00:0a,host-10-0-0-11,10.0.0.11\n"
    );
    // Nothing new: left alone. A new port: its entry is written and dnsmasq told (SIGHUP),
    // not restarted.
    dp.converge(&want).await;
    assert_eq!(host.daemons()[&dhcp::pid_file(&dir)].reloads, 0);
    want.dhcp[0].hosts.push(ferrostack_agent_api::DhcpHost {
        mac: MAC_B.into(),
        ip: "10.0.0.12".parse().unwrap(),
        hostname: "host-10-0-0-12".into(),
    });
    dp.converge(&want).await;
    let after = &host.daemons()[&dhcp::pid_file(&dir)];
    assert_eq!((after.pid, after.reloads), (running.pid, 1));
    assert!(host.file(&dir.join("hosts")).unwrap().contains("10.0.0.12"));
    // A new subnet changes its command line: restarted. A dead dnsmasq is started again.
    want.dhcp[0].subnets.push(ferrostack_agent_api::DhcpSubnet {
        id: "s2".into(),
        cidr: "10.9.0.0/24".parse().unwrap(),
        gateway: None,
        dns_nameservers: vec![],
        host_routes: vec![],
        ipv6_address_mode: None,
    });
    dp.converge(&want).await;
    let restarted = host.daemons()[&dhcp::pid_file(&dir)].clone();
    assert_ne!(restarted.pid, running.pid);
    assert!(restarted.argv.iter().any(|a| a.contains("10.9.0.0")));
    host.kill_daemon(&dhcp::pid_file(&dir));
    dp.converge(&want).await;
    assert!(host.daemons().contains_key(&dhcp::pid_file(&dir)));
    // Served elsewhere now: dnsmasq, its files and its namespace go; the network stays.
    want.dhcp.clear();
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(host.daemons().is_empty());
    assert!(host.file(&dir.join("hosts")).is_none());
    assert!(!host.namespaces().await.unwrap().contains(&ns));
    assert!(host.link(NS, &dhcp::bridge_end(&d.port_id)).is_none());
    assert!(host.link(NS, &names::bridge(NET)).is_some());
}

#[tokio::test]
async fn a_routers_ipv6_interfaces_are_advertised_by_its_radvd() {
    use ferrostack_agent_api::{Ipv6Mode, Ipv6Subnet};
    use ferrostack_netplane::router;
    let (host, dp) = host_with_outside().await;
    let mut want = routed();
    let dir = router::radvd_dir(std::path::Path::new("/state/h1"), ROUTER);
    let pid_file = dir.join("pid");
    // IPv4 only: no radvd.
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(!host.daemons().contains_key(&pid_file));

    // A SLAAC subnet on the interface: radvd runs in the router's namespace with it.
    want.routers[0].interfaces[0].ipv6_subnets = vec![Ipv6Subnet {
        cidr: "fd00::/64".parse().unwrap(),
        ra_mode: Some(Ipv6Mode::Slaac),
        dns_nameservers: vec![],
    }];
    assert_eq!(dp.converge(&want).await.error, None);
    let started = host.daemons()[&pid_file].clone();
    assert_eq!(started.netns, router::netns("fs", "h1", ROUTER));
    assert!(started.argv[0] == "radvd");
    let conf = host.file(&dir.join("radvd.conf")).unwrap();
    assert!(conf.contains("prefix fd00::/64") && conf.contains("AdvAutonomous on;"));

    // The mode changes: the same radvd re-reads its file. An agent restart writes it again
    // and has it re-read, never restarted.
    want.routers[0].interfaces[0].ipv6_subnets[0].ra_mode = Some(Ipv6Mode::Dhcpv6Stateful);
    assert_eq!(dp.converge(&want).await.error, None);
    let now = host.daemons()[&pid_file].clone();
    assert_eq!((now.pid, now.reloads), (started.pid, 1));
    assert!(host
        .file(&dir.join("radvd.conf"))
        .unwrap()
        .contains("AdvManagedFlag on;"));
    let restarted = plane(&host);
    assert_eq!(restarted.converge(&want).await.error, None);
    assert_eq!(host.daemons()[&pid_file].pid, started.pid);

    // No IPv6 subnet left: radvd ends; nor when the router goes.
    want.routers[0].interfaces[0].ipv6_subnets.clear();
    assert_eq!(restarted.converge(&want).await.error, None);
    assert!(!host.daemons().contains_key(&pid_file));
    assert!(host.file(&dir.join("radvd.conf")).is_none());
    want.routers[0].interfaces[0].ipv6_subnets = vec![Ipv6Subnet {
        cidr: "fd00::/64".parse().unwrap(),
        ra_mode: None,
        dns_nameservers: vec![],
    }];
    assert_eq!(restarted.converge(&want).await.error, None);
    assert!(host.daemons().contains_key(&pid_file));
    want.routers.clear();
    assert_eq!(restarted.converge(&want).await.error, None);
    assert!(!host.daemons().contains_key(&pid_file));
}

#[tokio::test]
async fn a_router_is_wired_translated_and_removed() {
    use ferrostack_netplane::{router, NetHost};
    let (host, dp) = host_with_outside().await;
    let mut want = routed();
    let r = dp.converge(&want).await;
    assert_eq!(r.error, None);
    assert_eq!(r.routers, vec![ROUTER.to_string()]);
    assert_eq!(r.floating_ips, vec!["fip1".to_string()]);
    // Its ports are in the report: one added to the router (already up) changes the report,
    // so the agent sends it and the new port becomes ACTIVE.
    assert_eq!(
        r.router_ports,
        vec![ROUTER_IFACE.to_string(), ROUTER_GW.to_string()]
    );
    let ns = router::netns("fs", "h1", ROUTER);
    assert!(host.forwards(&ns));
    let qr = router::interface_end(ROUTER_IFACE);
    let qg = router::gateway_end(ROUTER_GW);
    assert_eq!(host.mac(&ns, &qr).as_deref(), Some("fa:16:3e:00:00:a1"));
    assert_eq!(
        host.addresses_of(&ns, &qr),
        vec!["10.0.0.1/24".parse().unwrap()]
    );
    let mut gw = host.addresses_of(&ns, &qg);
    gw.sort();
    assert_eq!(
        gw,
        vec![
            "172.24.4.10/24".parse().unwrap(),
            "172.24.4.20/32".parse().unwrap()
        ]
    );
    assert_eq!(
        host.link(NS, &router::interface_bridge_end(ROUTER_IFACE))
            .unwrap()
            .master,
        Some(names::bridge(NET))
    );
    assert_eq!(
        host.link(NS, &router::gateway_bridge_end(ROUTER_GW))
            .unwrap()
            .master,
        Some(names::bridge(EXT))
    );
    let routes = host.routes_of(&ns);
    assert_eq!(routes.len(), 1);
    assert_eq!(
        routes[0].via,
        "172.24.4.1".parse::<std::net::IpAddr>().unwrap()
    );
    let nat = host.ruleset(&ns).unwrap();
    assert!(nat.contains("ip daddr 172.24.4.20 dnat to 10.0.0.11"));
    let announced: Vec<_> = host.announced().into_iter().map(|a| a.2).collect();
    assert!(announced.contains(&"172.24.4.20".parse().unwrap()));
    assert!(announced.contains(&"172.24.4.10".parse().unwrap()));

    // Again, unchanged: nothing loaded, nothing announced again.
    let (loads, sent) = (host.loads(), host.announced().len());
    let again = dp.converge(&want).await;
    assert_eq!(again, r);
    assert_eq!((host.loads(), host.announced().len()), (loads, sent));

    // The floating IP moves to port B: the old one's address and connections go, the new
    // one is announced.
    want.routers[0].floating_ips[0].fixed_ip = "10.0.0.12".parse().unwrap();
    want.routers[0].floating_ips[0].floating_ip = "172.24.4.21".parse().unwrap();
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(!host
        .addresses_of(&ns, &qg)
        .contains(&"172.24.4.20/32".parse().unwrap()));
    assert!(host
        .flushes()
        .contains(&(ns.clone(), 0, Some("172.24.4.20".parse().unwrap()))));
    assert_eq!(host.announced().len(), sent + 1);

    // A static route, then the router's gateway cleared: no default route, no NAT.
    want.routers[0].routes = vec![(
        "192.168.7.0/24".parse().unwrap(),
        "10.0.0.254".parse().unwrap(),
    )];
    want.routers[0].gateway = None;
    want.routers[0].floating_ips.clear();
    assert_eq!(dp.converge(&want).await.error, None);
    let routes = host.routes_of(&ns);
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].dst, "192.168.7.0/24".parse().unwrap());
    assert!(host.link(&ns, &qg).is_none());
    assert!(host
        .link(NS, &router::gateway_bridge_end(ROUTER_GW))
        .is_none());
    assert!(!host.ruleset(&ns).unwrap().contains("chain"));

    // The router leaves the host: its namespace and the veth ends on the bridges go.
    want.routers.clear();
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(!host.namespaces().await.unwrap().contains(&ns));
    assert!(host
        .link(NS, &router::interface_bridge_end(ROUTER_IFACE))
        .is_none());
}
