//! The real kernel: `ip`, `bridge` and `nft` (Debian packages iproute2 and nftables), with
//! JSON output where they have it.

use std::path::Path;

use ferrostack_agent_api::Vtep;
use ipnet::IpNet;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::host::{Fdb, Link, NetHost, Route, VethEnd};
use crate::{NetplaneError, Result};

#[derive(Debug, Clone, Default)]
pub struct Linux;

/// Runs `program args`, feeding `stdin`, and returns its standard output.
async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let command = || format!("{program} {}", args.join(" "));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| NetplaneError::Spawn {
            command: command(),
            source: e,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| NetplaneError::Spawn {
                command: command(),
                source: e,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetplaneError::Spawn {
            command: command(),
            source: e,
        })?;
    if !out.status.success() {
        return Err(NetplaneError::Command {
            command: command(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn ip(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut all = Vec::with_capacity(args.len() + 2);
    if let Some(ns) = netns {
        all.extend(["-n", ns]);
    }
    all.extend_from_slice(args);
    run("ip", &all, None).await
}

/// Makes a VXLAN device from the root namespace straight into `netns`, so its UDP socket
/// stays in the root namespace where the underlay is. Through netlink rather than `ip`:
/// iproute2 6.1 cannot say `nolocalbypass`. Without it, a frame for a VTEP on this same
/// machine (hosts of one cloud on one machine, as the tests run them) skips encapsulation and
/// arrives still carrying the sending namespace's conntrack entry, so the receiving host
/// never tracks the flow and drops its replies as invalid. Kernels before 6.5 ignore the
/// attribute (real hosts on separate machines never take that path).
async fn add_vxlan(
    netns: &str,
    name: &str,
    vni: u32,
    local: Vtep,
    mtu: u32,
) -> std::result::Result<(), String> {
    use std::os::fd::AsRawFd;
    let target = std::fs::File::open(Path::new("/run/netns").join(netns))
        .map_err(|e| format!("opening namespace {netns}: {e}"))?;
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
    let task = tokio::spawn(connection);
    let builder = rtnetlink::LinkVxlan::new(name, vni)
        .port(local.port)
        .learning(false)
        .localbypass(false)
        .mtu(mtu)
        .setns_by_fd(target.as_raw_fd());
    let builder = match local.ip {
        std::net::IpAddr::V4(ip) => builder.local(ip),
        std::net::IpAddr::V6(ip) => builder.local6(ip),
    };
    let result = handle.link().add(builder.build()).execute().await;
    task.abort();
    result.map_err(|e| e.to_string())
}

fn parse<'a, T: Deserialize<'a>>(what: &str, text: &'a str) -> Result<T> {
    let text = if text.trim().is_empty() { "[]" } else { text };
    serde_json::from_str(text).map_err(|e| NetplaneError::Parse {
        what: what.to_string(),
        message: e.to_string(),
    })
}

#[derive(Deserialize)]
struct JsonLink {
    ifname: String,
    #[serde(default)]
    master: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    mtu: u32,
    #[serde(default)]
    linkinfo: Option<JsonLinkInfo>,
}

#[derive(Deserialize)]
struct JsonLinkInfo {
    #[serde(default)]
    info_kind: Option<String>,
}

#[derive(Deserialize)]
struct JsonAddrs {
    #[serde(default)]
    addr_info: Vec<JsonAddr>,
}

#[derive(Deserialize)]
struct JsonAddr {
    local: String,
    prefixlen: u8,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct JsonRoute {
    dst: String,
    #[serde(default)]
    gateway: Option<String>,
}

#[derive(Deserialize)]
struct JsonNetns {
    name: String,
}

#[derive(Deserialize)]
struct JsonFdb {
    mac: String,
    #[serde(default)]
    dst: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

#[async_trait::async_trait]
impl NetHost for Linux {
    async fn namespaces(&self) -> Result<Vec<String>> {
        let out = ip(None, &["-j", "netns", "list"]).await?;
        let all: Vec<JsonNetns> = parse("ip netns list", &out)?;
        Ok(all.into_iter().map(|n| n.name).collect())
    }

    async fn add_namespace(&self, netns: &str) -> Result<()> {
        ip(None, &["netns", "add", netns]).await?;
        ip(Some(netns), &["link", "set", "lo", "up"]).await?;
        Ok(())
    }

    async fn delete_namespace(&self, netns: &str) -> Result<()> {
        ip(None, &["netns", "delete", netns]).await.map(drop)
    }

    async fn links(&self, netns: Option<&str>) -> Result<Vec<Link>> {
        let out = ip(netns, &["-j", "-d", "link", "show"]).await?;
        let all: Vec<JsonLink> = parse("ip link show", &out)?;
        Ok(all
            .into_iter()
            .map(|l| Link {
                up: l.flags.iter().any(|f| f == "UP"),
                kind: l.linkinfo.and_then(|i| i.info_kind).unwrap_or_default(),
                name: l.ifname,
                master: l.master,
                mtu: l.mtu,
            })
            .collect())
    }

    async fn add_bridge(&self, netns: &str, name: &str, mtu: u32) -> Result<()> {
        let mtu = mtu.to_string();
        ip(
            Some(netns),
            &[
                "link",
                "add",
                "name",
                name,
                "mtu",
                &mtu,
                "type",
                "bridge",
                "nf_call_iptables",
                "1",
                "nf_call_ip6tables",
                "1",
            ],
        )
        .await?;
        ip(Some(netns), &["link", "set", name, "up"])
            .await
            .map(drop)
    }

    async fn add_vxlan(
        &self,
        netns: &str,
        name: &str,
        vni: u32,
        local: Vtep,
        mtu: u32,
    ) -> Result<()> {
        add_vxlan(netns, name, vni, local, mtu)
            .await
            .map_err(|e| NetplaneError::Command {
                command: format!("netlink: add vxlan {name} id {vni} netns {netns}"),
                stderr: e,
            })
    }

    async fn add_vlan(
        &self,
        netns: &str,
        parent: &str,
        name: &str,
        vlan: u16,
        mtu: u32,
    ) -> Result<()> {
        let (vlan, mtu) = (vlan.to_string(), mtu.to_string());
        ip(
            Some(netns),
            &[
                "link", "add", "link", parent, "name", name, "mtu", &mtu, "type", "vlan", "id",
                &vlan,
            ],
        )
        .await
        .map(drop)
    }

    async fn add_veth(&self, a: VethEnd<'_>, b: VethEnd<'_>, mtu: u32) -> Result<()> {
        let mtu = mtu.to_string();
        ip(
            None,
            &[
                "link", "add", a.name, "netns", a.netns, "mtu", &mtu, "type", "veth", "peer",
                "name", b.name, "netns", b.netns, "mtu", &mtu,
            ],
        )
        .await
        .map(drop)
    }

    async fn move_link(&self, name: &str, netns: &str) -> Result<()> {
        ip(None, &["link", "set", "dev", name, "netns", netns])
            .await
            .map(drop)
    }

    async fn set_link(
        &self,
        netns: &str,
        name: &str,
        master: Option<&str>,
        mtu: u32,
    ) -> Result<()> {
        let mtu = mtu.to_string();
        match master {
            Some(m) => {
                ip(
                    Some(netns),
                    &["link", "set", "dev", name, "mtu", &mtu, "master", m, "up"],
                )
                .await
            }
            None => {
                ip(
                    Some(netns),
                    &["link", "set", "dev", name, "mtu", &mtu, "nomaster", "up"],
                )
                .await
            }
        }
        .map(drop)
    }

    async fn delete_link(&self, netns: &str, name: &str) -> Result<()> {
        ip(Some(netns), &["link", "delete", "dev", name])
            .await
            .map(drop)
    }

    async fn set_mac(&self, netns: &str, name: &str, mac: &str) -> Result<()> {
        ip(Some(netns), &["link", "set", "dev", name, "address", mac])
            .await
            .map(drop)
    }

    async fn fdb(&self, netns: &str, dev: &str) -> Result<Vec<Fdb>> {
        let out = run(
            "bridge",
            &["-n", netns, "-j", "fdb", "show", "dev", dev],
            None,
        )
        .await?;
        let all: Vec<JsonFdb> = parse("bridge fdb show", &out)?;
        Ok(all
            .into_iter()
            .filter_map(|e| {
                let ip = e.dst?.parse().ok()?;
                Some(Fdb {
                    mac: e.mac.to_ascii_lowercase(),
                    dst: Vtep {
                        ip,
                        port: e.port.unwrap_or(0),
                    },
                })
            })
            .collect())
    }

    async fn add_fdb(&self, netns: &str, dev: &str, entry: &Fdb) -> Result<()> {
        let (dst, port) = (entry.dst.ip.to_string(), entry.dst.port.to_string());
        run(
            "bridge",
            &[
                "-n",
                netns,
                "fdb",
                "append",
                &entry.mac,
                "dev",
                dev,
                "dst",
                &dst,
                "port",
                &port,
                "self",
                "permanent",
            ],
            None,
        )
        .await
        .map(drop)
    }

    async fn delete_fdb(&self, netns: &str, dev: &str, entry: &Fdb) -> Result<()> {
        let (dst, port) = (entry.dst.ip.to_string(), entry.dst.port.to_string());
        run(
            "bridge",
            &[
                "-n", netns, "fdb", "delete", &entry.mac, "dev", dev, "dst", &dst, "port", &port,
                "self",
            ],
            None,
        )
        .await
        .map(drop)
    }

    async fn load_ruleset(&self, netns: &str, ruleset: &str) -> Result<()> {
        run(
            "ip",
            &["netns", "exec", netns, "nft", "-f", "-"],
            Some(ruleset),
        )
        .await
        .map(drop)
    }

    async fn addresses(&self, netns: &str, name: &str) -> Result<Vec<IpNet>> {
        let out = ip(Some(netns), &["-j", "addr", "show", "dev", name]).await?;
        let all: Vec<JsonAddrs> = parse("ip addr show", &out)?;
        Ok(all
            .into_iter()
            .flat_map(|a| a.addr_info)
            .filter(|a| a.scope.as_deref() != Some("link"))
            .filter_map(|a| format!("{}/{}", a.local, a.prefixlen).parse().ok())
            .collect())
    }

    async fn add_address(&self, netns: &str, name: &str, address: IpNet) -> Result<()> {
        let a = address.to_string();
        ip(Some(netns), &["addr", "add", &a, "dev", name])
            .await
            .map(drop)
    }

    async fn delete_address(&self, netns: &str, name: &str, address: IpNet) -> Result<()> {
        let a = address.to_string();
        ip(Some(netns), &["addr", "del", &a, "dev", name])
            .await
            .map(drop)
    }

    async fn routes(&self, netns: &str) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        for family in ["-4", "-6"] {
            let text = ip(
                Some(netns),
                &[family, "-j", "route", "show", "table", "main"],
            )
            .await?;
            let all: Vec<JsonRoute> = parse("ip route show", &text)?;
            for r in all {
                let Some(via) = r.gateway.and_then(|g| g.parse().ok()) else {
                    continue;
                };
                let dst = if r.dst == "default" {
                    if family == "-4" {
                        "0.0.0.0/0".parse().ok()
                    } else {
                        "::/0".parse().ok()
                    }
                } else if r.dst.contains('/') {
                    r.dst.parse().ok()
                } else {
                    r.dst.parse::<std::net::IpAddr>().ok().map(IpNet::from)
                };
                if let Some(dst) = dst {
                    out.push(Route { dst, via });
                }
            }
        }
        Ok(out)
    }

    async fn add_route(&self, netns: &str, route: &Route) -> Result<()> {
        let (dst, via) = (route.dst.to_string(), route.via.to_string());
        ip(Some(netns), &["route", "replace", &dst, "via", &via])
            .await
            .map(drop)
    }

    async fn delete_route(&self, netns: &str, route: &Route) -> Result<()> {
        let (dst, via) = (route.dst.to_string(), route.via.to_string());
        ip(Some(netns), &["route", "del", &dst, "via", &via])
            .await
            .map(drop)
    }

    async fn enable_forwarding(&self, netns: &str) -> Result<()> {
        run(
            "ip",
            &[
                "netns",
                "exec",
                netns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
            None,
        )
        .await
        .map(drop)
    }

    async fn announce(&self, netns: &str, name: &str, ip: std::net::IpAddr) -> Result<()> {
        // IPv6 neighbours learn from the next packet (unsolicited NA needs ndisc6).
        if ip.is_ipv4() {
            let ip = ip.to_string();
            run(
                "ip",
                &[
                    "netns", "exec", netns, "arping", "-U", "-c", "1", "-w", "1", "-I", name, &ip,
                ],
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn write_file(&self, root: &Path, path: &Path, contents: &str) -> Result<()> {
        let io = |e: std::io::Error| NetplaneError::Spawn {
            command: format!("writing {}", path.display()),
            source: e,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
            open_up(root, dir).map_err(io)?;
        }
        // Replaced whole: a daemon reading it meanwhile sees the old or the new file.
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, contents).await.map_err(io)?;
        set_mode(&tmp, 0o644, 0o644).map_err(io)?;
        tokio::fs::rename(&tmp, path).await.map_err(io)
    }

    async fn remove_dir(&self, path: &Path) -> Result<()> {
        match tokio::fs::remove_dir_all(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetplaneError::Spawn {
                command: format!("removing {}", path.display()),
                source: e,
            }),
        }
    }

    async fn start_daemon(&self, netns: &str, argv: &[String], pid_file: &Path) -> Result<()> {
        let log = pid_file.with_extension("log");
        let io = |e: std::io::Error| NetplaneError::Spawn {
            command: argv.join(" "),
            source: e,
        };
        let err = std::fs::File::create(&log).map_err(io)?;
        // The daemon forks away; the command returns once it is running (or failed to).
        let status = tokio::process::Command::new("ip")
            .args(["netns", "exec", netns])
            .args(argv)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .status()
            .await
            .map_err(io)?;
        if !status.success() {
            let said = tokio::fs::read_to_string(&log).await.unwrap_or_default();
            return Err(NetplaneError::Command {
                command: argv.join(" "),
                stderr: said.trim().to_string(),
            });
        }
        Ok(())
    }

    async fn daemon(&self, pid_file: &Path) -> Option<u32> {
        let pid: u32 = tokio::fs::read_to_string(pid_file)
            .await
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // The pid is this daemon's only while its command line names the pid file.
        let cmdline = tokio::fs::read(format!("/proc/{pid}/cmdline")).await.ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline
            .contains(&*pid_file.to_string_lossy())
            .then_some(pid)
    }

    async fn signal_daemon(&self, pid: u32, stop: bool) -> Result<()> {
        let signal = if stop {
            rustix::process::Signal::TERM
        } else {
            rustix::process::Signal::HUP
        };
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| NetplaneError::Command {
                command: "kill".into(),
                stderr: format!("no process {pid}"),
            })?;
        rustix::process::kill_process(pid, signal).map_err(|e| NetplaneError::Spawn {
            command: format!("signalling {}", pid.as_raw_nonzero()),
            source: e.into(),
        })
    }

    async fn flush_conntrack(
        &self,
        netns: &str,
        zone: u16,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let zone = zone.to_string();
        let ip = ip.map(|i| i.to_string());
        let sides: &[&str] = if ip.is_some() { &["-d", "-s"] } else { &[""] };
        for side in sides {
            let mut args = vec!["netns", "exec", netns, "conntrack", "-D", "-w", &zone];
            if let Some(ip) = &ip {
                args.extend([*side, ip.as_str()]);
            }
            match run("ip", &args, None).await {
                Ok(_) => {}
                // Nothing to delete is no failure.
                Err(NetplaneError::Command { stderr, .. }) if stderr.contains("0 flow entries") => {
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn inet_table(&self, netns: &str) -> Result<String> {
        match run(
            "ip",
            &[
                "netns",
                "exec",
                netns,
                "nft",
                "list",
                "table",
                "inet",
                crate::nft::TABLE,
            ],
            None,
        )
        .await
        {
            Ok(text) => Ok(text),
            // No table yet.
            Err(NetplaneError::Command { stderr, .. }) if stderr.contains("No such file") => {
                Ok(String::new())
            }
            Err(e) => Err(e),
        }
    }
}

/// Gives `path` at least the bits `add` (and at most `keep | add`).
fn set_mode(path: &Path, keep: u32, add: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    let want = (mode & keep) | add;
    if want != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
    }
    Ok(())
}

/// Makes the directories from `root` down to `dir` readable and searchable by all, and
/// `root`'s ancestors searchable by all (whatever the process's umask made them).
fn open_up(root: &Path, dir: &Path) -> std::io::Result<()> {
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.starts_with(root) {
            set_mode(d, 0o7777, 0o755)?;
        } else {
            set_mode(d, 0o7777, 0o001)?;
        }
        at = d.parent().filter(|p| !p.as_os_str().is_empty());
    }
    Ok(())
}

/// A TCP listener bound to `addr` inside namespace `netns`, for a server of the agent's own
/// that answers what lives there (the metadata proxy in a DHCP namespace). A socket stays in
/// the namespace it was made in, so a short-lived thread moves into it, binds, and ends;
/// the agent's own threads never change namespace.
pub async fn listen_in(netns: &str, addr: std::net::SocketAddr) -> Result<std::net::TcpListener> {
    let path = format!("/run/netns/{netns}");
    let what = format!("listening on {addr} in namespace {netns}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let bound = (|| -> std::io::Result<std::net::TcpListener> {
            let ns = std::fs::File::open(&path)?;
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })();
        let _ = tx.send(bound);
    });
    let spawn_err = |e: std::io::Error| NetplaneError::Spawn {
        command: what.clone(),
        source: e,
    };
    rx.await
        .map_err(|_| spawn_err(std::io::Error::other("the binding thread ended")))?
        .map_err(spawn_err)
}
