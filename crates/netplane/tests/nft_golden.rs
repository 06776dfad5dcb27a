//! The ruleset compiler against golden files (`tests/golden/*.nft`; `UPDATE_GOLDEN=1` writes
//! them anew, to be reviewed in the diff), and each golden ruleset checked by the kernel's own
//! nft (`nft -c`, in a scratch namespace) so the files are not only stable but loadable.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use ferrostack_agent_api::{AddressPair, Direction, EtherType, HostNetworking, Remote};
use ferrostack_netplane::nft;

fn golden(name: &str, net: &HostNetworking) {
    let zones: BTreeMap<String, u16> = net
        .networks
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.clone(), u16::try_from(i + 1).unwrap()))
        .collect();
    compare(name, &nft::compile(net, &zones).unwrap());
}

/// `text` against golden file `name`, and checked by nft.
fn compare(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.nft"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        text, want,
        "the ruleset of {name} changed: review it, then UPDATE_GOLDEN=1"
    );
    nft_check(name, text);
}

/// `nft -c -f` in a namespace made for it: the kernel parses and validates the ruleset
/// without loading it.
fn nft_check(name: &str, text: &str) {
    assert!(
        rustix_is_root(),
        "the nftables checks need root (the test command runs as root)"
    );
    let ns = format!("fsgold-{}-{name}", std::process::id());
    let run = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["netns", "add", &ns]).status.success());
    let out = nft_stdin(&ns, &["-c", "-f", "-"], text);
    run(&["netns", "delete", &ns]);
    assert!(
        out.status.success(),
        "nft rejects the {name} ruleset: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rustix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn two_ports_with_a_remote_group_and_an_address_pair() {
    golden("two_ports", &two_ports());
}

#[test]
fn no_ports_still_drops_unknown_taps() {
    let mut net = two_ports();
    net.ports.clear();
    golden("no_ports", &net);
}

#[test]
fn port_security_off_passes_everything() {
    let mut net = two_ports();
    net.ports[1].port_security = false;
    net.ports[1].security_groups.clear();
    golden("port_security_off", &net);
}

#[test]
fn rule_shapes() {
    let mut net = two_ports();
    net.ports.truncate(1);
    net.ports[0].address_pairs.push(AddressPair {
        mac: "fa:16:3e:00:00:99".into(),
        ip: "fd00:99::/64".parse().unwrap(),
    });
    net.security_groups[0].rules.extend([
        rule(
            "udp-range",
            Direction::Ingress,
            EtherType::IPv4,
            Some(17),
            Some((5000, 5010)),
            Remote::Any,
        ),
        rule(
            "icmp-echo",
            Direction::Ingress,
            EtherType::IPv4,
            Some(1),
            Some((8, 0)),
            Remote::Any,
        ),
        rule(
            "icmp-type",
            Direction::Ingress,
            EtherType::IPv4,
            Some(1),
            None,
            Remote::Any,
        ),
        rule(
            "icmpv6-type",
            Direction::Ingress,
            EtherType::IPv6,
            Some(58),
            Some((128, 0)),
            Remote::Prefix("fd00::/64".parse().unwrap()),
        ),
        rule(
            "gre",
            Direction::Ingress,
            EtherType::IPv4,
            Some(47),
            None,
            Remote::Any,
        ),
        rule(
            "sctp-any",
            Direction::Egress,
            EtherType::IPv4,
            Some(132),
            None,
            Remote::Prefix("192.0.2.0/24".parse().unwrap()),
        ),
        rule(
            "tcp-to-group",
            Direction::Egress,
            EtherType::IPv4,
            Some(6),
            Some((22, 22)),
            Remote::Group("empty".into()),
        ),
        rule(
            "v4-prefix-on-v6",
            Direction::Ingress,
            EtherType::IPv6,
            None,
            None,
            Remote::Prefix("10.0.0.0/8".parse().unwrap()),
        ),
    ]);
    golden("rule_shapes", &net);
}

/// An allow list as an address group: one rule, one interval set per family (a CIDR inside
/// another one kept once, as the kernel refuses overlaps), HTTP only from its addresses.
#[test]
fn an_address_group_as_the_remote_of_a_rule() {
    let mut net = two_ports();
    net.ports.truncate(1);
    net.security_groups[0].rules.push(rule(
        "http-from-office",
        Direction::Ingress,
        EtherType::IPv4,
        Some(6),
        Some((80, 80)),
        Remote::AddressGroup("office".into()),
    ));
    net.security_groups[0].rules.push(rule(
        "ssh-from-office-v6",
        Direction::Ingress,
        EtherType::IPv6,
        Some(6),
        Some((22, 22)),
        Remote::AddressGroup("office".into()),
    ));
    net.address_groups.push(ferrostack_agent_api::GroupMembers {
        id: "office".into(),
        addresses: [
            "198.51.100.0/24",
            "198.51.100.7/32",
            "203.0.113.9/32",
            "2001:db8::/64",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect(),
    });
    golden("address_group", &net);
}

#[test]
fn address_pairs_covering_the_ports_own_address() {
    let mut net = two_ports();
    net.ports.truncate(1);
    net.ports[0].address_pairs.extend([
        AddressPair {
            mac: MAC_A.into(),
            ip: "10.0.0.0/24".parse().unwrap(),
        },
        AddressPair {
            mac: MAC_A.into(),
            ip: "0.0.0.0/0".parse().unwrap(),
        },
        AddressPair {
            mac: MAC_A.into(),
            ip: "fd00::/64".parse().unwrap(),
        },
    ]);
    golden("covering_pairs", &net);
}

#[test]
fn too_many_ports_are_refused() {
    let mut net = two_ports();
    let p = net.ports[0].clone();
    net.ports = (0..=nft::MAX_PORTS)
        .map(|i| ferrostack_agent_api::HostPort {
            id: format!("p{i:06}"),
            ..p.clone()
        })
        .collect();
    let zones = BTreeMap::from([(NET.to_string(), 1)]);
    assert_eq!(
        nft::compile(&net, &zones),
        Err(nft::CompileError::TooManyPorts(nft::MAX_PORTS + 1))
    );
    net.ports.truncate(1);
    assert_eq!(
        nft::compile(&net, &BTreeMap::new()).unwrap_err(),
        nft::CompileError::NoZone(NET.into())
    );
}

#[test]
fn a_router_with_snat_a_floating_ip_and_a_route() {
    let mut r = router(1450);
    r.routes = vec![(
        "192.168.7.0/24".parse().unwrap(),
        "10.0.0.254".parse().unwrap(),
    )];
    r.floating_ips.push(ferrostack_agent_api::FloatingNat {
        id: "fip2".into(),
        floating_ip: "172.24.4.21".parse().unwrap(),
        fixed_ip: "10.0.0.12".parse().unwrap(),
    });
    compare("router", &ferrostack_netplane::router::ruleset(&r));
    // A floating IP shared by port forwardings: each external port to one guest's port.
    let forward =
        |id: &str, proto: &str, ext: u16, ip: &str, int: u16| ferrostack_agent_api::PortForward {
            id: id.into(),
            floating_ip_id: "fip3".into(),
            floating_ip: "172.24.4.22".parse().unwrap(),
            protocol: proto.into(),
            external_port: ext,
            internal_ip: ip.parse().unwrap(),
            internal_port: int,
        };
    let mut pf = r.clone();
    pf.port_forwardings = vec![
        forward("pf-ssh-a", "tcp", 2201, "10.0.0.11", 22),
        forward("pf-ssh-b", "tcp", 2202, "10.0.0.12", 22),
        forward("pf-dns", "udp", 5353, "10.0.0.12", 53),
    ];
    compare(
        "router_port_forwardings",
        &ferrostack_netplane::router::ruleset(&pf),
    );
    r.gateway = None;
    compare(
        "router_without_gateway",
        &ferrostack_netplane::router::ruleset(&r),
    );
}

/// nft with `args` in namespace `ns`, `text` on its standard input.
fn nft_stdin(ns: &str, args: &[&str], text: &str) -> std::process::Output {
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `script` with nft in namespace `ns`; panics with nft's words when it fails.
fn nft_in(ns: &str, script: &str) {
    let out = nft_stdin(ns, &["-f", "-"], script);
    assert!(
        out.status.success(),
        "nft refuses {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn nft_list(ns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_changed_rule_or_remote_group_replaces_only_its_chain_or_set() {
    let zones = BTreeMap::from([(NET.to_string(), 1u16)]);
    let before = two_ports();
    let mut after = before.clone();
    // A rule added to group srv, and a member more in remote group web.
    after.security_groups[1].rules.push(rule(
        "srv-ssh",
        Direction::Ingress,
        EtherType::IPv4,
        Some(6),
        Some((22, 22)),
        Remote::Any,
    ));
    after.remote_groups[0]
        .addresses
        .push("10.0.0.50/32".parse().unwrap());
    let old = nft::compile_ruleset(&before, &zones).unwrap();
    let new = nft::compile_ruleset(&after, &zones).unwrap();
    let script = new.changes_from(&old).unwrap();
    assert_eq!(
        script
            .lines()
            .filter(|l| l.starts_with("flush"))
            .collect::<Vec<_>>(),
        vec![
            "flush set inet ferrostack sg_web_v4",
            "flush chain inet ferrostack ingress_sg_srv",
        ],
        "{script}"
    );
    // Nothing changed: nothing to do; a port more (new chains and sets): the whole ruleset.
    assert_eq!(old.changes_from(&old).as_deref(), Some(""));
    let mut more = before.clone();
    more.ports.truncate(1);
    let fewer = nft::compile_ruleset(&more, &zones).unwrap();
    assert_eq!(fewer.changes_from(&old), None);

    // On the kernel: the old ruleset plus the changes is what loading the new one gives.
    assert!(rustix_is_root(), "the nftables checks need root");
    let (a, b) = (
        format!("fsinc-{}-a", std::process::id()),
        format!("fsinc-{}-b", std::process::id()),
    );
    for ns in [&a, &b] {
        std::process::Command::new("ip")
            .args(["netns", "add", ns])
            .status()
            .unwrap();
    }
    // Then members go, and a prefix covering the others comes (an interval set flushed and
    // filled again in one transaction).
    let mut shrunk = after.clone();
    shrunk.remote_groups[0].addresses = vec!["10.0.0.0/24".parse().unwrap()];
    let last = nft::compile_ruleset(&shrunk, &zones).unwrap();
    let second = last.changes_from(&new).unwrap();
    let result = std::panic::catch_unwind(|| {
        nft_in(&a, &old.text());
        nft_in(&a, &script);
        nft_in(&b, &new.text());
        assert_eq!(nft_list(&a), nft_list(&b));
        assert!(nft_list(&a).contains("tcp dport 22 accept"));
        nft_in(&a, &second);
        nft_in(&b, &last.text());
        assert_eq!(nft_list(&a), nft_list(&b));
        assert!(nft_list(&a).contains("10.0.0.0/24"));
    });
    for ns in [&a, &b] {
        std::process::Command::new("ip")
            .args(["netns", "delete", ns])
            .status()
            .unwrap();
    }
    result.unwrap();
}
