//! `ferrostack bench throughput`: TCP between two guests' ports through a host's data plane
//! (their taps on the network's bridge, anti-spoofing in the bridge table, conntrack zones
//! and the security group chains), against the same between two namespaces joined by a
//! bare veth pair, on this machine's kernel in the same run. The "guests" are namespaces
//! whose veth ends are named and plugged as QEMU taps are: the figure is the data plane's
//! cost, not an emulated NIC's (under TCG a guest's virtio is far slower than either).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use ferrostack_agent_api::{
    Direction, EtherType, FilterRule, HostNetworking, HostPort, NetSegment, Remote,
    SecurityGroupRules, SegmentKind, Vtep,
};
use ferrostack_netplane::linux::Linux;
use ferrostack_netplane::{names, Dataplane, HostConfig};

pub struct Opts {
    /// Seconds each transfer runs.
    pub seconds: u64,
    /// Transfers each way is measured (the median is reported).
    pub rounds: usize,
}

const PORT: u16 = 5201;
const NET: &str = "7b7b7b7b-benc-4000-8000-000000000001";
const MACS: [&str; 2] = ["fa:16:3e:00:77:01", "fa:16:3e:00:77:02"];

pub async fn run(o: Opts) -> anyhow::Result<()> {
    ensure!(
        rustix::process::geteuid().is_root(),
        "the data plane needs root: run this as root"
    );
    ensure!(
        o.rounds > 0 && o.seconds > 0,
        "--rounds and --seconds must be > 0"
    );
    let prefix = format!("fsbt{}", std::process::id() % 100_000);
    let cleanup = Cleanup {
        prefix: prefix.clone(),
    };
    // The baseline: two namespaces joined by a veth pair.
    let (b1, b2) = (format!("{prefix}-b1"), format!("{prefix}-b2"));
    for ns in [&b1, &b2] {
        sh(&["ip", "netns", "add", ns])?;
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    }
    sh(&[
        "ip", "link", "add", "eth0", "netns", &b1, "type", "veth", "peer", "name", "eth0", "netns",
        &b2,
    ])?;
    for (ns, ip) in [(&b1, "10.77.0.11/24"), (&b2, "10.77.0.12/24")] {
        sh(&["ip", "-n", ns, "addr", "add", ip, "dev", "eth0"])?;
        sh(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
    }

    // Through the data plane: two ports of one network, security group `bench` (egress
    // anywhere, TCP to PORT from the network), plugged and filtered by a Dataplane.
    // Taps are named after the ports' first 11 characters: unique to this run.
    let pid = std::process::id() & 0x0fff_ffff;
    let owned = [1, 2].map(|i| format!("{pid:07x}{i}-0000-4000-8000-00000000000{i}"));
    let ids = [owned[0].as_str(), owned[1].as_str()];
    let guests = [format!("{prefix}-g1"), format!("{prefix}-g2")];
    for (i, ns) in guests.iter().enumerate() {
        let tap = names::tap(ids[i]);
        sh(&["ip", "netns", "add", ns])?;
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        sh(&[
            "ip", "link", "add", &tap, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ])?;
        sh(&["ip", "-n", ns, "link", "set", "eth0", "address", MACS[i]])?;
        let ip = format!("10.77.0.{}/24", 11 + i);
        sh(&["ip", "-n", ns, "addr", "add", &ip, "dev", "eth0"])?;
        sh(&["ip", "-n", ns, "link", "set", "eth0", "up"])?;
    }
    let config = HostConfig {
        prefix: prefix.clone(),
        host: "bench".into(),
        vtep: Vtep {
            ip: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 47000 + u16::try_from(std::process::id() % 1000).unwrap_or(0),
        },
        physnets: Default::default(),
        state_dir: std::env::temp_dir().join(format!("{prefix}-state")),
    };
    let dp = Dataplane::new(Arc::new(Linux), config);
    let report = dp.converge(&networking(&ids)).await;
    ensure!(report.error.is_none(), "data plane: {:?}", report.error);
    ensure!(report.wired.len() == 2, "ports wired: {:?}", report.wired);

    println!(
        "ferrostack bench throughput: TCP for {} s, {} rounds, median; 2 ports of one network through the data plane vs a veth pair",
        o.seconds, o.rounds
    );
    let secs = Duration::from_secs(o.seconds);
    let (mut base, mut through) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds {
        base.push(transfer(&b1, &b2, "10.77.0.12", secs).await?);
        through.push(transfer(&guests[0], &guests[1], "10.77.0.12", secs).await?);
    }
    let (base, through) = (median(base), median(through));
    println!(
        "TCP, bare veth pair (baseline)                       {:8.2} Gbit/s",
        base / 1e9
    );
    println!(
        "TCP, port to port through the data plane             {:8.2} Gbit/s",
        through / 1e9
    );
    println!(
        "ratio (data plane / baseline)                          {:8.2}   (goal >= 0.9)",
        through / base
    );
    // The data plane takes its namespace and bridge away; the cleanup does the rest.
    let _ = dp.converge(&HostNetworking::default()).await;
    drop(cleanup);
    Ok(())
}

fn networking(ids: &[&str; 2]) -> HostNetworking {
    let rule = |id: &str, direction, protocol, ports, remote| FilterRule {
        id: id.into(),
        direction,
        ethertype: EtherType::IPv4,
        protocol,
        port_min: ports,
        port_max: ports,
        remote,
    };
    HostNetworking {
        networks: vec![NetSegment {
            id: NET.into(),
            mtu: 1500,
            kind: SegmentKind::Vxlan {
                vni: 4242,
                peers: vec![],
            },
        }],
        ports: ids
            .iter()
            .enumerate()
            .map(|(i, id)| HostPort {
                id: (*id).into(),
                network_id: NET.into(),
                mac: MACS[i].into(),
                ips: vec![std::net::IpAddr::from([
                    10,
                    77,
                    0,
                    11 + u8::try_from(i).unwrap_or(0),
                ])],
                address_pairs: vec![],
                port_security: true,
                security_groups: vec!["bench".into()],
                admin_state_up: true,
            })
            .collect(),
        security_groups: vec![SecurityGroupRules {
            id: "bench".into(),
            rules: vec![
                rule("egress", Direction::Egress, None, None, Remote::Any),
                rule(
                    "tcp",
                    Direction::Ingress,
                    Some(6),
                    Some(PORT),
                    Remote::Prefix(ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                        std::net::Ipv4Addr::new(10, 77, 0, 0),
                        24,
                    ))),
                ),
            ],
        }],
        ..Default::default()
    }
}

/// Bits per second from namespace `client` to a server in namespace `server` at `ip`, for
/// `secs`: one TCP connection, 256 KiB writes, counted by the receiver.
async fn transfer(client: &str, server: &str, ip: &str, secs: Duration) -> anyhow::Result<f64> {
    let (client, server) = (client.to_string(), server.to_string());
    let addr: SocketAddr = format!("{ip}:{PORT}").parse()?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
            enter(&server)?;
            let listener = TcpListener::bind(("0.0.0.0", PORT))?;
            let _ = ready_tx.send(());
            let (mut s, _) = listener.accept()?;
            let mut buf = vec![0u8; 256 << 10];
            let mut total = 0u64;
            loop {
                match s.read(&mut buf)? {
                    0 => return Ok(total),
                    n => total += n as u64,
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .context("the receiver never listened")?;
        let sender = std::thread::spawn(move || -> std::io::Result<Duration> {
            enter(&client)?;
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            let buf = vec![0x5au8; 256 << 10];
            let started = Instant::now();
            while started.elapsed() < secs {
                s.write_all(&buf)?;
            }
            s.shutdown(std::net::Shutdown::Write)?;
            Ok(started.elapsed())
        });
        let elapsed = sender
            .join()
            .map_err(|_| anyhow::anyhow!("the sender panicked"))?
            .context("sending")?;
        let bytes = receiver
            .join()
            .map_err(|_| anyhow::anyhow!("the receiver panicked"))?
            .context("receiving")?;
        Ok(bytes as f64 * 8.0 / elapsed.as_secs_f64())
    })
    .await?
}

/// Moves this thread (only) into namespace `ns`: sockets it makes from now on live there.
fn enter(ns: &str) -> std::io::Result<()> {
    let f = std::fs::File::open(format!("/run/netns/{ns}"))?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn sh(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    ensure!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Deletes the run's namespaces (and the data plane's files) however it ends.
struct Cleanup {
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        super::network::remove_namespaces(&self.prefix);
        let _ =
            std::fs::remove_dir_all(std::env::temp_dir().join(format!("{}-state", self.prefix)));
    }
}
