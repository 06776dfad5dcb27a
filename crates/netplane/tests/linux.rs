//! The data plane on the real kernel, in namespaces made for the test: veth pairs stand in
//! for guests' taps (one end born in the root namespace, as QEMU's taps are, the other in a
//! "guest" namespace), and real traffic checks the security groups and anti-spoofing. Needs
//! root (the test command runs as root); nothing touches the root namespace beyond the taps'
//! brief stay there.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::*;
use ferrostack_agent_api::{HostNetworking, Vtep};
use ferrostack_netplane::linux::Linux;
use ferrostack_netplane::{names, Dataplane, HostConfig, NetHost};

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0]).args(&args[1..]).output().unwrap()
}

fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port id of this test process's own (its tap name, `tap` and the first 11 characters,
/// is in the root namespace for a moment: concurrent runs must not share it).
fn port_id(tag: char) -> String {
    format!(
        "{:07x}{tag}-0000-4000-8000-000000000000",
        std::process::id() & 0x0fff_ffff
    )
}

/// Stops the test's servers and daemons and deletes its namespaces whatever happens.
struct Cleanup(Vec<String>, Vec<std::process::Child>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.1 {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.0 {
            let pids = sh(&["ip", "netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = sh(&["kill", pid]);
            }
        }
        for ns in &self.0 {
            let _ = sh(&["ip", "netns", "delete", ns]);
        }
    }
}

fn guest(ns: &str, tap: &str, mac: &str, v4: &str, v6: &str) {
    ok(&["ip", "netns", "add", ns]);
    ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    ok(&[
        "ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ]);
    ok(&["ip", "-n", ns, "link", "set", "eth0", "address", mac]);
    ok(&["ip", "-n", ns, "addr", "add", v4, "dev", "eth0"]);
    ok(&["ip", "-n", ns, "addr", "add", v6, "dev", "eth0", "nodad"]);
    ok(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
}

fn ping(ns: &str, args: &[&str]) -> bool {
    let mut a = vec!["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1"];
    a.extend_from_slice(args);
    sh(&a).status.success()
}

fn http(ns: &str, url: &str, from: Option<&str>) -> bool {
    let mut a = vec![
        "ip",
        "netns",
        "exec",
        ns,
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        "2",
        "-g",
    ];
    if let Some(f) = from {
        a.extend(["--interface", f]);
    }
    a.push(url);
    sh(&a).status.success()
}

/// The VTEP of this test process's host number `slot` on loopback: each test takes slots
/// of its own (tests run side by side in one process, and two VXLAN devices of one VNI on
/// one port clash), and concurrent runs of this file take other ports by their pid.
fn vtep(slot: u16) -> Vtep {
    Vtep {
        ip: "127.0.0.1".parse().unwrap(),
        port: 20000 + 16 * u16::try_from(std::process::id() % 1000).unwrap() + slot,
    }
}

/// A host of the test's own: its namespaces named from `prefix`, its VTEP in `slot`, its
/// state in a temporary directory.
fn host_config(
    prefix: &str,
    host: &str,
    slot: u16,
    physnets: BTreeMap<String, ferrostack_netplane::Uplink>,
) -> HostConfig {
    HostConfig {
        prefix: prefix.to_string(),
        host: host.into(),
        vtep: vtep(slot),
        physnets,
        state_dir: std::env::temp_dir().join(format!("{prefix}-{host}-state")),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn security_groups_and_anti_spoofing_filter_real_traffic() {
    assert!(
        is_root(),
        "the data-plane tests need root (the test command runs as root)"
    );
    let prefix = format!("fst{}", std::process::id() % 100_000);
    let (g1, g2) = (format!("{prefix}-g1"), format!("{prefix}-g2"));
    let (pa, pb) = (port_id('a'), port_id('b'));
    let config = host_config(&prefix, "h1", 0, BTreeMap::new());
    let dpns = config.netns();
    let mut cleanup = Cleanup(vec![g1.clone(), g2.clone(), dpns.clone()], Vec::new());
    guest(&g1, &names::tap(&pa), MAC_A, "10.0.0.11/24", "fd00::11/64");
    guest(&g2, &names::tap(&pb), MAC_B, "10.0.0.12/24", "fd00::12/64");
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &g2,
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            "::",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server_a = Command::new("ip")
        .args([
            "netns",
            "exec",
            &g1,
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            "::",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    cleanup.1.extend([server, server_a]);
    let dp = Dataplane::new(Arc::new(Linux), config.clone());
    let mut want = two_ports();
    want.ports[0].id = pa.clone();
    want.ports[1].id = pb.clone();
    let r = dp.converge(&want).await;
    assert_eq!(r.error, None);
    assert_eq!(r.wired, vec![pa.clone(), pb.clone()]);
    std::thread::sleep(std::time::Duration::from_millis(500));

    // Group srv (B) admits ICMP from 10.0.0.0/24 and tcp/8080 from group web (A); web admits
    // nothing.
    assert!(ping(&g1, &["10.0.0.12"]), "A pings B");
    assert!(!ping(&g2, &["10.0.0.11"]), "B cannot ping A");
    assert!(
        http(&g1, "http://10.0.0.12:8080/", None),
        "A reaches B's tcp/8080"
    );
    assert!(
        http(&g1, "http://[fd00::12]:8080/", None),
        "A reaches B's tcp/8080 over IPv6"
    );
    assert!(
        !http(&g2, "http://10.0.0.11:8080/", None),
        "B cannot reach A's tcp/8080"
    );

    // An established connection ends when the rule that admitted it goes (its conntrack
    // entry is deleted; the ruleset alone would let it go on).
    use ferrostack_agent_api::{Direction as D, EtherType as E, Remote as R};
    want.security_groups[1].rules.push(rule(
        "srv-9000",
        D::Ingress,
        E::IPv4,
        Some(6),
        Some((9000, 9000)),
        R::Group("web".into()),
    ));
    assert_eq!(dp.converge(&want).await.error, None);
    let echo = "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',9000))\ns.listen()\nc,_=s.accept()\nwhile True:\n d=c.recv(100)\n if not d: break\n c.sendall(d)\n";
    let server = Command::new("ip")
        .args(["netns", "exec", &g2, "python3", "-c", echo])
        .spawn()
        .unwrap();
    cleanup.1.push(server);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let client_code = "import socket,sys\nc=socket.create_connection(('10.0.0.12',9000),timeout=2)\nfor l in sys.stdin:\n c.sendall(l.encode())\n try: print(c.recv(100).decode().strip(), flush=True)\n except Exception: print('TIMEOUT', flush=True)\n";
    let mut client = Command::new("ip")
        .args(["netns", "exec", &g1, "python3", "-u", "-c", client_code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to = client.stdin.take().unwrap();
    let mut from = std::io::BufReader::new(client.stdout.take().unwrap());
    cleanup.1.push(client);
    let mut say = |word: &str| {
        use std::io::{BufRead, Write};
        writeln!(to, "{word}").unwrap();
        let mut line = String::new();
        from.read_line(&mut line).unwrap();
        line.trim().to_string()
    };
    assert_eq!(say("one"), "one");
    want.security_groups[1].rules.retain(|r| r.id != "srv-9000");
    assert_eq!(dp.converge(&want).await.error, None);
    assert_eq!(
        say("two"),
        "TIMEOUT",
        "the connection went on after its rule was deleted"
    );

    // An address group as a rule's remote (an allow list): A's tcp/8080 admits the group's
    // addresses, so B once its address is in the group, and not after it left (the
    // connection's conntrack entry goes with it, as with a deleted rule).
    want.security_groups[0].rules.push(rule(
        "web-8080-office",
        D::Ingress,
        E::IPv4,
        Some(6),
        Some((8080, 8080)),
        R::AddressGroup("office".into()),
    ));
    let office = |addrs: &[&str]| ferrostack_agent_api::GroupMembers {
        id: "office".into(),
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
    };
    want.address_groups = vec![office(&["192.0.2.0/24"])];
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(
        !http(&g2, "http://10.0.0.11:8080/", None),
        "B is not in the address group yet"
    );
    want.address_groups = vec![office(&["192.0.2.0/24", "10.0.0.12/32"])];
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(
        http(&g2, "http://10.0.0.11:8080/", None),
        "B's address in the group reaches A's tcp/8080"
    );
    want.address_groups = vec![office(&["192.0.2.0/24"])];
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(
        !http(&g2, "http://10.0.0.11:8080/", None),
        "B's address left the group"
    );
    want.security_groups[0]
        .rules
        .retain(|r| r.id != "web-8080-office");
    want.address_groups.clear();

    // Anti-spoofing: A sending from an address it does not own is dropped; from its allowed
    // address pair 10.0.0.99 it passes (the pair is also in group web).
    ok(&[
        "ip",
        "-n",
        &g1,
        "addr",
        "add",
        "10.0.0.50/24",
        "dev",
        "eth0",
    ]);
    ok(&[
        "ip",
        "-n",
        &g1,
        "addr",
        "add",
        "10.0.0.99/24",
        "dev",
        "eth0",
    ]);
    assert!(
        !ping(&g1, &["-I", "10.0.0.50", "10.0.0.12"]),
        "a spoofed source is dropped"
    );
    assert!(!http(&g1, "http://10.0.0.12:8080/", Some("10.0.0.50")));
    assert!(
        ping(&g1, &["-I", "10.0.0.99", "10.0.0.12"]),
        "an allowed address pair passes"
    );
    assert!(http(&g1, "http://10.0.0.12:8080/", Some("10.0.0.99")));
    // A MAC that is not the port's is dropped.
    ok(&[
        "ip",
        "-n",
        &g1,
        "link",
        "set",
        "eth0",
        "address",
        "fa:16:3e:00:00:ee",
    ]);
    assert!(!ping(&g1, &["10.0.0.12"]), "a spoofed MAC is dropped");
    ok(&["ip", "-n", &g1, "link", "set", "eth0", "address", MAC_A]);

    // Deleting the ICMP rule stops pings; adding ICMP ingress to web lets B ping A.
    want.security_groups[1].rules.retain(|r| r.id != "srv-icmp");
    want.security_groups[0].rules.push(rule(
        "web-icmp",
        ferrostack_agent_api::Direction::Ingress,
        ferrostack_agent_api::EtherType::IPv4,
        Some(1),
        None,
        ferrostack_agent_api::Remote::Any,
    ));
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(
        !ping(&g1, &["10.0.0.12"]),
        "the rule's deletion stops pings to B"
    );
    assert!(ping(&g2, &["10.0.0.11"]), "the new rule lets B ping A");

    // Port security off on B: it may send from any address, and anything reaches it.
    ok(&[
        "ip",
        "-n",
        &g2,
        "addr",
        "add",
        "10.0.0.60/24",
        "dev",
        "eth0",
    ]);
    assert!(!ping(&g2, &["-I", "10.0.0.60", "10.0.0.11"]));
    want.ports[1].port_security = false;
    assert_eq!(dp.converge(&want).await.error, None);
    assert!(
        ping(&g2, &["-I", "10.0.0.60", "10.0.0.11"]),
        "B without port security may spoof"
    );
    assert!(
        ping(&g1, &["10.0.0.12"]),
        "B without port security takes any ping"
    );

    // A restarted agent finds the same and loads the same: the traffic goes on, zones stay.
    let before = Linux.inet_table(&dpns).await.unwrap();
    let restarted = Dataplane::new(Arc::new(Linux), config.clone());
    let r = restarted.converge(&want).await;
    assert_eq!(r.error, None);
    assert_eq!(r.wired.len(), 2);
    assert_eq!(Linux.inet_table(&dpns).await.unwrap(), before);
    assert!(ping(&g2, &["10.0.0.11"]));

    // Nothing wanted: the data-plane namespace goes, and the taps in it with it.
    let r = restarted.converge(&HostNetworking::default()).await;
    assert_eq!(r.error, None);
    assert!(!Linux.namespaces().await.unwrap().contains(&dpns));
    // The kernel tears a namespace down in the background.
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !sh(&["ip", "-n", &g1, "link", "show", "eth0"])
            .status
            .success()
    });
    assert!(gone, "the tap's peer went with the data plane's namespace");
}

#[tokio::test]
async fn dnsmasq_gives_a_guest_its_port_address() {
    assert!(
        is_root(),
        "the data-plane tests need root (the test command runs as root)"
    );
    let prefix = format!("fsd{}", std::process::id() % 100_000);
    let g1 = format!("{prefix}-g1");
    let state = std::env::temp_dir().join(format!("{prefix}-state"));
    std::fs::create_dir_all(&state).unwrap();
    // dnsmasq reads its files after dropping to an unprivileged user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = HostConfig {
        state_dir: state.clone(),
        ..host_config(&prefix, "h1", 1, BTreeMap::new())
    };
    let dhcp_ns = ferrostack_netplane::dhcp::netns(&prefix, "h1", NET);
    let mut cleanup = Cleanup(
        vec![g1.clone(), config.netns(), dhcp_ns.clone()],
        Vec::new(),
    );
    ok(&["ip", "netns", "add", &g1]);
    // A port of its own: the other test's taps are in the same root namespace meanwhile.
    let port = port_id('c');
    let port = port.as_str();
    ok(&[
        "ip",
        "link",
        "add",
        &names::tap(port),
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &g1,
    ]);
    ok(&["ip", "-n", &g1, "link", "set", "eth0", "address", MAC_A]);
    ok(&["ip", "-n", &g1, "link", "set", "eth0", "up"]);
    let dp = Dataplane::new(Arc::new(Linux), config.clone());
    let mut want = two_ports();
    want.ports.truncate(1);
    want.ports[0].id = port.into();
    want.dhcp = vec![dhcp_server()];
    want.dhcp[0].hosts[0].hostname = "vm1".into();
    let r = dp.converge(&want).await;
    assert_eq!(r.error, None);
    let lease = |ns: &str| {
        let out = sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-f",
            "-t",
            "5",
            "-T",
            "1",
            "-s",
            "/bin/true",
        ]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let said = lease(&g1);
    assert!(said.contains("lease of 10.0.0.11 obtained"), "{said}");
    // A changed entry reaches dnsmasq without a restart.
    let pid_file =
        ferrostack_netplane::dhcp::pid_file(&ferrostack_netplane::dhcp::dir(&state, NET));
    let pid = Linux.daemon(&pid_file).await.expect("dnsmasq runs");
    want.dhcp[0].hosts[0].ip = "10.0.0.44".parse().unwrap();
    want.ports[0].ips[0] = "10.0.0.44".parse().unwrap();
    assert_eq!(dp.converge(&want).await.error, None);
    let said = lease(&g1);
    assert!(said.contains("lease of 10.0.0.44 obtained"), "{said}");
    assert_eq!(
        Linux.daemon(&pid_file).await,
        Some(pid),
        "reloaded, not restarted"
    );
    // Gone: dnsmasq ends and its namespace goes.
    assert_eq!(dp.converge(&HostNetworking::default()).await.error, None);
    assert_eq!(Linux.daemon(&pid_file).await, None);
    assert!(!Linux.namespaces().await.unwrap().contains(&dhcp_ns));
    cleanup.1.clear();
    let _ = std::fs::remove_dir_all(&state);
}

/// Starts `python3 -m http.server port` in `ns`, its request log (client addresses) in `log`.
fn http_server(
    ns: &str,
    port: &str,
    bind: &str,
    log: Option<&std::path::Path>,
) -> std::process::Child {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "python3",
            "-m",
            "http.server",
            port,
            "--bind",
            bind,
        ])
        .stdout(Stdio::null())
        .stderr(match log {
            Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
            None => Stdio::null(),
        })
        .spawn()
        .unwrap()
}

/// Waits (a little) until `check` holds: servers just started need a moment to listen.
fn eventually(check: impl Fn() -> bool) -> bool {
    for _ in 0..20 {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    false
}

#[tokio::test]
async fn a_router_snats_the_inside_and_floating_ips_bring_the_outside_in() {
    assert!(
        is_root(),
        "the data-plane tests need root (the test command runs as root)"
    );
    let prefix = format!("fsr{}", std::process::id() % 100_000);
    let (g1, g2) = (format!("{prefix}-g1"), format!("{prefix}-g2"));
    let outside = format!("{prefix}-ext");
    let (pa, pb) = (port_id('d'), port_id('e'));
    let config = host_config(
        &prefix,
        "h1",
        2,
        BTreeMap::from([(
            "public".into(),
            ferrostack_netplane::Uplink::Bridge {
                netns: outside.clone(),
                bridge: "brext".into(),
            },
        )]),
    );
    let rns = ferrostack_netplane::router::netns(&prefix, "h1", ROUTER);
    let mut cleanup = Cleanup(
        vec![
            g1.clone(),
            g2.clone(),
            config.netns(),
            rns.clone(),
            outside.clone(),
        ],
        Vec::new(),
    );
    ferrostack_netplane::outside::ensure_outside(
        &Linux,
        &outside,
        "brext",
        "172.24.4.1/24".parse().unwrap(),
    )
    .await
    .unwrap();
    guest(&g1, &names::tap(&pa), MAC_A, "10.0.0.11/24", "fd00::11/64");
    guest(&g2, &names::tap(&pb), MAC_B, "10.0.0.12/24", "fd00::12/64");
    for g in [&g1, &g2] {
        ok(&["ip", "-n", g, "route", "add", "default", "via", "10.0.0.1"]);
    }
    let log = std::env::temp_dir().join(format!("{prefix}-outside.log"));
    cleanup
        .1
        .push(http_server(&outside, "8081", "172.24.4.1", Some(&log)));
    cleanup.1.push(http_server(&g2, "8080", "::", None));

    let mut want = two_ports();
    want.ports[0].id = pa.clone();
    want.ports[1].id = pb.clone();
    // B admits tcp/8080 from the outside's addresses too.
    let srv = want
        .security_groups
        .iter_mut()
        .find(|g| g.id == "srv")
        .unwrap();
    srv.rules.push(rule(
        "srv-outside",
        ferrostack_agent_api::Direction::Ingress,
        ferrostack_agent_api::EtherType::IPv4,
        Some(6),
        Some((8080, 8080)),
        ferrostack_agent_api::Remote::Prefix("172.24.4.0/24".parse().unwrap()),
    ));
    want.networks.push(external_network());
    let mut r = router(1450);
    r.floating_ips[0].fixed_ip = "10.0.0.12".parse().unwrap();
    want.routers.push(r);
    let dp = Dataplane::new(Arc::new(Linux), config.clone());
    let report = dp.converge(&want).await;
    assert_eq!(report.error, None);
    assert_eq!(report.routers, vec![ROUTER.to_string()]);

    // Outbound from A (no floating IP): SNAT to the gateway's address (the outside has no
    // route back to 10.0.0.0/24, so an answer proves it).
    assert!(
        eventually(|| ping(&g1, &["172.24.4.1"])),
        "A reaches the outside"
    );
    assert!(eventually(|| http(&g1, "http://172.24.4.1:8081/", None)));
    // From B: its floating IP's address.
    assert!(http(&g2, "http://172.24.4.1:8081/", None));
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(
        seen.contains("172.24.4.10 -"),
        "A leaves as the router: {seen}"
    );
    assert!(
        seen.contains("172.24.4.20 -"),
        "B leaves as its floating IP: {seen}"
    );
    // Inbound: the floating IP reaches B's port 8080 (its group admits the outside) ...
    assert!(
        http(&outside, "http://172.24.4.20:8080/", None),
        "floating IP answers"
    );
    // ... and A reaches B through B's floating IP from the inside.
    assert!(http(&g1, "http://172.24.4.20:8080/", None), "hairpin");
    // The outside cannot reach a fixed address, nor a port B's groups do not admit.
    assert!(!ping(&outside, &["10.0.0.12"]));

    // An agent restart: converging again from scratch changes nothing and keeps traffic.
    let again = Dataplane::new(Arc::new(Linux), config.clone());
    assert_eq!(again.converge(&want).await, report);
    assert!(http(&outside, "http://172.24.4.20:8080/", None));

    // The floating IP goes: the outside no longer reaches B.
    want.routers[0].floating_ips.clear();
    assert_eq!(again.converge(&want).await.error, None);
    assert!(!http(&outside, "http://172.24.4.20:8080/", None));
    // A port forwarding: another floating IP's port 2280 reaches B's port 8080 (and only
    // that port of that address), announced on the outside like a floating IP.
    want.routers[0]
        .port_forwardings
        .push(ferrostack_agent_api::PortForward {
            id: "pf1".into(),
            floating_ip_id: "fip9".into(),
            floating_ip: "172.24.4.30".parse().unwrap(),
            protocol: "tcp".into(),
            external_port: 2280,
            internal_ip: "10.0.0.12".parse().unwrap(),
            internal_port: 8080,
        });
    let r = again.converge(&want).await;
    assert_eq!(r.error, None);
    assert!(r.floating_ips.contains(&"fip9".to_string()), "{r:?}");
    assert!(
        eventually(|| http(&outside, "http://172.24.4.30:2280/", None)),
        "the forwarded port answers"
    );
    assert!(!http(&outside, "http://172.24.4.30:8080/", None));
    want.routers[0].port_forwardings.clear();
    assert_eq!(again.converge(&want).await.error, None);
    assert!(!http(&outside, "http://172.24.4.30:2280/", None));
    // The router goes: its namespace with it, and the inside loses the outside.
    want.routers.clear();
    assert_eq!(again.converge(&want).await.error, None);
    assert!(!Linux.namespaces().await.unwrap().contains(&rns));
    assert!(!ping(&g1, &["172.24.4.1"]));
    assert_eq!(again.converge(&HostNetworking::default()).await.error, None);
    drop(cleanup);
    let _ = std::fs::remove_file(&log);
}

/// Whether this kernel makes 802.1q devices: Err with the kernel's answer when it does not
/// (tried on a veth in a namespace of its own).
fn vlan_support(prefix: &str) -> Result<(), String> {
    let ns = format!("{prefix}-probe");
    let _cleanup = Cleanup(vec![ns.clone()], Vec::new());
    ok(&["ip", "netns", "add", &ns]);
    ok(&[
        "ip", "-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
    ]);
    let out = sh(&[
        "ip", "-n", &ns, "link", "add", "link", "p0", "name", "p0.5", "type", "vlan", "id", "5",
    ]);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[tokio::test]
async fn vlan_networks_carry_tagged_frames_between_hosts_and_stay_apart() {
    assert!(
        is_root(),
        "the data-plane tests need root (the test command runs as root)"
    );
    let prefix = format!("fsv{}", std::process::id() % 100_000);
    if let Err(why) = vlan_support(&prefix) {
        skip(
            "netplane vlan_networks_carry_tagged_frames_between_hosts_and_stay_apart",
            &format!("this kernel makes no 802.1q devices (ip link add ... type vlan: {why})"),
        );
        return;
    }
    // Two hosts on one physical network (a bridge in a namespace of its own); network NET on
    // VLAN 101 with port A on h1 and B on h2, network NET2 on VLAN 102 with port C on h2, in
    // the same addresses as NET: A reaches B and never C.
    let physnet = format!("{prefix}-phys");
    let (g1, g2, g3) = (
        format!("{prefix}-g1"),
        format!("{prefix}-g2"),
        format!("{prefix}-g3"),
    );
    let (pa, pb, pc) = (port_id('v'), port_id('w'), port_id('x'));
    let net2 = "0a1b2c3d-net2-4000-8000-000000000002";
    let config = |host: &str, slot: u16| {
        host_config(
            &prefix,
            host,
            slot,
            BTreeMap::from([(
                "physnet1".into(),
                ferrostack_netplane::Uplink::Bridge {
                    netns: physnet.clone(),
                    bridge: "brphys".into(),
                },
            )]),
        )
    };
    let (c1, c2) = (config("h1", 3), config("h2", 4));
    let _cleanup = Cleanup(
        vec![
            g1.clone(),
            g2.clone(),
            g3.clone(),
            c1.netns(),
            c2.netns(),
            physnet.clone(),
        ],
        Vec::new(),
    );
    ok(&["ip", "netns", "add", &physnet]);
    ok(&[
        "ip", "-n", &physnet, "link", "add", "brphys", "type", "bridge",
    ]);
    ok(&["ip", "-n", &physnet, "link", "set", "brphys", "up"]);
    guest(&g1, &names::tap(&pa), MAC_A, "10.0.0.11/24", "fd00::11/64");
    guest(&g2, &names::tap(&pb), MAC_B, "10.0.0.12/24", "fd00::12/64");
    guest(
        &g3,
        &names::tap(&pc),
        "fa:16:3e:00:00:0c",
        "10.0.0.13/24",
        "fd00::13/64",
    );

    let vlan = |id: &str, vlan: u16| ferrostack_agent_api::NetSegment {
        id: id.into(),
        mtu: 1500,
        kind: ferrostack_agent_api::SegmentKind::Vlan {
            physical_network: "physnet1".into(),
            vlan,
        },
    };
    let mut all = two_ports();
    all.ports[0].id = pa.clone();
    all.ports[1].id = pb.clone();
    let mut c = all.ports[1].clone();
    c.id = pc.clone();
    c.network_id = net2.into();
    c.mac = "fa:16:3e:00:00:0c".into();
    c.ips = vec!["10.0.0.13".parse().unwrap(), "fd00::13".parse().unwrap()];
    // h1 carries A on NET; h2 carries B on NET and C on NET2.
    let mut on_h1 = all.clone();
    on_h1.networks = vec![vlan(NET, 101)];
    on_h1.ports.truncate(1);
    let mut on_h2 = all.clone();
    on_h2.networks = vec![vlan(NET, 101), vlan(net2, 102)];
    on_h2.ports = vec![all.ports[1].clone(), c];
    let h1 = Dataplane::new(Arc::new(Linux), c1);
    let h2 = Dataplane::new(Arc::new(Linux), c2);
    assert_eq!(h1.converge(&on_h1).await.error, None);
    assert_eq!(h2.converge(&on_h2).await.error, None);

    // B admits ICMP from 10.0.0.0/24, and so does C (the same groups).
    assert!(
        eventually(|| ping(&g1, &["10.0.0.12"])),
        "A reaches B over VLAN 101"
    );
    assert!(!ping(&g1, &["10.0.0.13"]), "VLAN 102 is another network");
    // A restarted agent changes nothing.
    let again = Dataplane::new(Arc::new(Linux), h2.config().clone());
    assert_eq!(again.converge(&on_h2).await.error, None);
    assert!(ping(&g1, &["10.0.0.12"]));
}

#[tokio::test]
async fn vxlan_carries_tracked_traffic_between_two_hosts_of_one_machine() {
    assert!(
        is_root(),
        "the data-plane tests need root (the test command runs as root)"
    );
    // Two hosts of one cloud on this machine, their VTEPs on loopback with ports of their
    // own (as the multi-host tests run them): A on h1 pings B on h2 and the reply comes back,
    // so each host tracks the flow in its own conntrack zone. With the kernel's local bypass
    // the frame would reach h2 still carrying h1's conntrack entry, h2 would never track the
    // flow and would drop B's reply as invalid.
    let prefix = format!("fsx{}", std::process::id() % 100_000);
    let (g1, g2) = (format!("{prefix}-g1"), format!("{prefix}-g2"));
    let (pa, pb) = (port_id('y'), port_id('z'));
    let (c1, c2) = (
        host_config(&prefix, "h1", 5, BTreeMap::new()),
        host_config(&prefix, "h2", 6, BTreeMap::new()),
    );
    let _cleanup = Cleanup(
        vec![g1.clone(), g2.clone(), c1.netns(), c2.netns()],
        Vec::new(),
    );
    guest(&g1, &names::tap(&pa), MAC_A, "10.0.0.11/24", "fd00::11/64");
    guest(&g2, &names::tap(&pb), MAC_B, "10.0.0.12/24", "fd00::12/64");

    let mut all = two_ports();
    all.ports[0].id = pa.clone();
    all.ports[1].id = pb.clone();
    let segment = |peer: u16, mac: &str| ferrostack_agent_api::NetSegment {
        id: NET.into(),
        mtu: 1450,
        kind: ferrostack_agent_api::SegmentKind::Vxlan {
            vni: 100,
            peers: vec![ferrostack_agent_api::VxlanPeer {
                vtep: vtep(peer),
                macs: vec![mac.into()],
            }],
        },
    };
    let mut on_h1 = all.clone();
    on_h1.networks = vec![segment(6, MAC_B)];
    on_h1.ports.truncate(1);
    let mut on_h2 = all.clone();
    on_h2.networks = vec![segment(5, MAC_A)];
    on_h2.ports.remove(0);
    let h1 = Dataplane::new(Arc::new(Linux), c1);
    let h2 = Dataplane::new(Arc::new(Linux), c2);
    assert_eq!(h1.converge(&on_h1).await.error, None);
    assert_eq!(h2.converge(&on_h2).await.error, None);

    // B admits ICMP from 10.0.0.0/24; its reply is the tracked flow's.
    assert!(
        eventually(|| ping(&g1, &["10.0.0.12"])),
        "A reaches B over VXLAN and B's reply comes back"
    );
    assert!(!ping(&g2, &["10.0.0.11"]), "A admits no ICMP");
}

#[tokio::test]
async fn a_routers_advertisements_let_a_guest_configure_ipv6_itself() {
    assert!(
        is_root(),
        "the data-plane tests need root (the test command runs as root)"
    );
    // A router with a SLAAC subnet on its interface: radvd in its namespace advertises the
    // prefix, the guest's kernel takes its EUI-64 address (the one the port holds, so
    // anti-spoofing lets it out), the router as its default router and the network's MTU,
    // and reaches the router over IPv6.
    let prefix = format!("fs6{}", std::process::id() % 100_000);
    let g1 = format!("{prefix}-g1");
    let pa = port_id('s');
    let config = host_config(&prefix, "h1", 7, BTreeMap::new());
    let rns = ferrostack_netplane::router::netns(&prefix, "h1", ROUTER);
    let _cleanup = Cleanup(vec![g1.clone(), config.netns(), rns.clone()], Vec::new());
    guest(&g1, &names::tap(&pa), MAC_A, "10.0.0.11/24", "fd00::11/64");
    ok(&["ip", "-n", &g1, "addr", "del", "fd00::11/64", "dev", "eth0"]);
    let slaac = "fd00::f816:3eff:fe00:a";

    let mut want = two_ports();
    want.ports.truncate(1);
    want.ports[0].id = pa.clone();
    want.ports[0].ips = vec!["10.0.0.11".parse().unwrap(), slaac.parse().unwrap()];
    let mut r = router(1450);
    r.gateway = None;
    r.floating_ips.clear();
    r.interfaces[0]
        .addresses
        .push("fd00::1/64".parse().unwrap());
    r.interfaces[0].ipv6_subnets = vec![ferrostack_agent_api::Ipv6Subnet {
        cidr: "fd00::/64".parse().unwrap(),
        ra_mode: Some(ferrostack_agent_api::Ipv6Mode::Slaac),
        dns_nameservers: vec![],
    }];
    want.routers.push(r);
    let dp = Dataplane::new(Arc::new(Linux), config.clone());
    let report = dp.converge(&want).await;
    assert_eq!(report.error, None);
    assert_eq!(report.routers, vec![ROUTER.to_string()]);

    // radvd answers the guest's solicitation at once; its first unsolicited ones come
    // within seconds too.
    let configured = || {
        let out = sh(&["ip", "-n", &g1, "-6", "addr", "show", "dev", "eth0"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!("{slaac}/64"))
    };
    let mut waited = 0;
    while !configured() && waited < 60 {
        if waited % 10 == 0 {
            // Solicit again (the guest's own solicitations may have gone before radvd ran).
            let _ = sh(&[
                "ip",
                "netns",
                "exec",
                &g1,
                "sysctl",
                "-qw",
                "net.ipv6.conf.eth0.disable_ipv6=1",
            ]);
            let _ = sh(&[
                "ip",
                "netns",
                "exec",
                &g1,
                "sysctl",
                "-qw",
                "net.ipv6.conf.eth0.disable_ipv6=0",
            ]);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        waited += 1;
    }
    assert!(configured(), "the guest took its SLAAC address");
    let routes = sh(&["ip", "-n", &g1, "-6", "route", "show", "default"]);
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    assert!(routes.contains("via fe80::"), "default router: {routes}");
    let mtu = sh(&[
        "ip",
        "netns",
        "exec",
        &g1,
        "cat",
        "/proc/sys/net/ipv6/conf/eth0/mtu",
    ]);
    assert_eq!(String::from_utf8_lossy(&mtu.stdout).trim(), "1450");
    assert!(
        eventually(|| ping(&g1, &["fd00::1"])),
        "the guest reaches its router over IPv6"
    );

    // An agent restart keeps radvd (re-reading its file); the subnet gone, radvd goes.
    let pid_file = ferrostack_netplane::router::radvd_dir(&config.state_dir, ROUTER).join("pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let again = Dataplane::new(Arc::new(Linux), config.clone());
    assert_eq!(again.converge(&want).await.error, None);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid);
    want.routers[0].interfaces[0].ipv6_subnets.clear();
    assert_eq!(again.converge(&want).await.error, None);
    // radvd says goodbye (a last advertisement with no lifetime) before it exits.
    let running = || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .is_ok_and(|st| !st.contains(") Z "))
    };
    let mut waited = 0;
    while running() && waited < 50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(!running(), "radvd ended with the router's last IPv6 subnet");
    assert!(!pid_file.exists());
}
