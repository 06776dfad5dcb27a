//! Converging one host's data plane to what the controller wants: its namespace, a bridge per
//! network (with its VXLAN device and forwarding entries, or its uplink), guest taps on their
//! bridges, and the nftables ruleset. It reads what exists and changes only what differs, so
//! an agent that restarts never interrupts traffic: bridges, taps and conntrack entries stay,
//! and the ruleset it loads again is the same one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ferrostack_agent_api::{HostNetworking, NetSegment, NetworkingReport, SegmentKind, Vtep};
use ipnet::IpNet;

use crate::host::Route;
use crate::host::{Fdb, Link, NetHost, VethEnd};
use crate::{names, nft, router, NetplaneError, Result};

/// How a physical network (flat networks on it) reaches the outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uplink {
    /// A bridge in another namespace, joined by a veth pair per network: the all-in-one's
    /// stand-in for the world outside (so nothing leaves the machine).
    Bridge { netns: String, bridge: String },
}

/// What a host's data plane needs to know of its host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The cloud's prefix of host-level names.
    pub prefix: String,
    pub host: String,
    /// Where this host's VXLAN tunnels end.
    pub vtep: Vtep,
    pub physnets: BTreeMap<String, Uplink>,
    /// Where the host's daemons (dnsmasq) keep their files: readable by the user dnsmasq
    /// drops to.
    pub state_dir: std::path::PathBuf,
}

impl HostConfig {
    pub fn netns(&self) -> String {
        names::dataplane_netns(&self.prefix, &self.host)
    }

    /// The outside end of a network's uplink veth (unique per cloud, host and network, since
    /// the outside namespace is shared).
    pub fn uplink_peer(&self, network_id: &str) -> String {
        format!(
            "ex{}",
            short_hash(&format!("{}/{}/{network_id}", self.prefix, self.host))
        )
    }

    /// This host's trunk on physical network `physnet`, carrying its VLAN networks' tagged
    /// frames (in the data-plane namespace).
    pub fn trunk(&self, physnet: &str) -> String {
        format!("tk{}", short_hash(physnet))
    }

    /// The outside end of the trunk on `physnet` (unique per cloud, host and physical
    /// network, since the outside namespace is shared).
    pub fn trunk_peer(&self, physnet: &str) -> String {
        format!(
            "et{}",
            short_hash(&format!("{}/{}/{physnet}", self.prefix, self.host))
        )
    }
}

/// 12 hex digits of a name's SHA-256: a name of any length inside an interface name.
fn short_hash(name: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(name)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the data plane remembers between passes; rebuilt from the kernel after a restart.
#[derive(Debug, Default)]
struct Memory {
    /// The networking of the last pass (which port a tap being plugged is).
    want: HostNetworking,
    /// Bridge -> conntrack zone (None until read back from the loaded ruleset).
    zones: Option<BTreeMap<String, u16>>,
    /// The ruleset last loaded.
    loaded: Option<nft::Ruleset>,
    /// What filters each port (its rules, remote groups' members, addresses), as loaded.
    filters: Filters,
    /// What each network's dnsmasq was started with and last given (empty after a restart:
    /// each is then started anew once).
    dhcp: HashMap<String, DhcpMemory>,
    /// What each router's NAT table was loaded with and which floating IPs it translated
    /// (empty after a restart: each table is then loaded again once, the same).
    routers: HashMap<String, RouterMemory>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RouterMemory {
    ruleset: String,
    /// (floating IP, fixed IP) pairs.
    fips: BTreeSet<(std::net::IpAddr, std::net::IpAddr)>,
    /// radvd's configuration as last written (none: no radvd).
    radvd: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DhcpMemory {
    args: Vec<String>,
    hosts: String,
    opts: String,
}

pub struct Dataplane {
    host: Arc<dyn NetHost>,
    config: HostConfig,
    memory: tokio::sync::Mutex<Memory>,
}

impl Dataplane {
    pub fn new(host: Arc<dyn NetHost>, config: HostConfig) -> Dataplane {
        Dataplane {
            host,
            config,
            memory: Default::default(),
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Converges the host to `want` and says which ports are wired. Steps that fail are
    /// reported and the rest still converges (one network's trouble does not unwire others).
    pub async fn converge(&self, want: &HostNetworking) -> NetworkingReport {
        let mut memory = self.memory.lock().await;
        memory.want = want.clone();
        match self.converge_locked(want, &mut memory).await {
            Ok(report) => report,
            Err(e) => NetworkingReport {
                error: Some(e.to_string()),
                ..Default::default()
            },
        }
    }

    async fn converge_locked(
        &self,
        want: &HostNetworking,
        memory: &mut Memory,
    ) -> Result<NetworkingReport> {
        let ns = self.config.netns();
        let exists = self.host.namespaces().await?.contains(&ns);
        if want.is_empty() {
            self.remove_dhcp(&BTreeSet::new(), memory).await?;
            self.remove_routers(&BTreeSet::new(), memory).await?;
            if exists {
                self.remove_uplinks(&ns, &BTreeSet::new()).await;
                self.host.delete_namespace(&ns).await?;
                tracing::info!(netns = %ns, "data plane removed: no network left on this host");
            }
            *memory = Memory::default();
            memory.want = want.clone();
            return Ok(NetworkingReport::default());
        }
        if !exists {
            self.host.add_namespace(&ns).await?;
            memory.zones = Some(BTreeMap::new());
            memory.loaded = None;
        }
        let mut errors = Vec::new();
        let links: HashMap<String, Link> = self
            .host
            .links(Some(&ns))
            .await?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();

        // Networks first: their bridges must exist before taps join them.
        let mut ready = BTreeSet::new();
        for net in &want.networks {
            match self.network(&ns, net, &links).await {
                Ok(()) => {
                    ready.insert(net.id.as_str());
                }
                Err(e) => errors.push(format!("network {}: {e}", net.id)),
            }
        }

        // DHCP servers of networks that are ready.
        for d in &want.dhcp {
            if !ready.contains(d.network_id.as_str()) {
                continue;
            }
            if let Err(e) = self.dhcp_server(&ns, d, &links, memory).await {
                errors.push(format!("DHCP of network {}: {e}", d.network_id));
            }
        }
        let serving: BTreeSet<String> = want.dhcp.iter().map(|d| d.network_id.clone()).collect();
        if let Err(e) = self.remove_dhcp(&serving, memory).await {
            errors.push(format!("removing DHCP servers: {e}"));
        }

        // Routers whose networks are ready (a port on one that is not waits for it).
        let mut routed = Vec::new();
        let mut router_ports = Vec::new();
        let mut translated = Vec::new();
        for r in &want.routers {
            match self.router(&ns, r, &ready, &links, memory).await {
                Ok(true) => {
                    routed.push(r.id.clone());
                    router_ports.extend(router::wires(r).iter().map(|w| w.port.port_id.clone()));
                    translated.extend(r.floating_ips.iter().map(|f| f.id.clone()));
                    translated.extend(r.port_forwardings.iter().map(|f| f.floating_ip_id.clone()));
                }
                Ok(false) => {}
                Err(e) => errors.push(format!("router {}: {e}", r.id)),
            }
        }
        let routing: BTreeSet<String> = want.routers.iter().map(|r| r.id.clone()).collect();
        if let Err(e) = self.remove_routers(&routing, memory).await {
            errors.push(format!("removing routers: {e}"));
        }

        // The ruleset before the taps: a tap is never on a bridge without its rules (and one
        // the ruleset does not name is dropped anyway).
        let zones = self.zones(&ns, want, memory).await?;
        let ruleset = nft::compile_ruleset(want, &zones)?;
        if memory.loaded.as_ref() != Some(&ruleset) {
            // Only the chains and sets that changed when the rest stands (a rule added or
            // removed, a remote group's members): a rule reaches a host with hundreds of
            // ports in one small transaction. After a restart, or when ports came or went,
            // the whole ruleset.
            let changes = memory
                .loaded
                .as_ref()
                .and_then(|old| ruleset.changes_from(old));
            self.host
                .update_ruleset(&ns, &ruleset, changes.as_deref())
                .await?;
            memory.loaded = Some(ruleset);
            // Connections a changed filter may no longer admit lose their conntrack entries
            // (the ruleset alone would let established ones go on).
            // Only a filter that admits less needs it: one that only admits more (a rule
            // added) leaves every connection as it was.
            let filters = Filters::of(want);
            let narrowed_groups = memory.filters.narrowed_groups(&filters);
            let mut narrowed: BTreeMap<u16, Vec<std::net::IpAddr>> = BTreeMap::new();
            for p in &want.ports {
                let less = match (memory.filters.ports.get(&p.id), filters.ports.get(&p.id)) {
                    (Some(old), Some(new)) => {
                        old != new || new.groups.iter().any(|g| narrowed_groups.contains(g))
                    }
                    _ => false,
                };
                if let Some(zone) = zones.get(&p.network_id).copied().filter(|_| less) {
                    narrowed
                        .entry(zone)
                        .or_default()
                        .extend(p.ips.iter().copied());
                }
            }
            for (zone, ips) in narrowed {
                // Many ports of a network at once: the whole zone (allowed connections are
                // picked up again by their next packet).
                let targets: Vec<Option<std::net::IpAddr>> = if ips.len() > FLUSH_ZONE_AT {
                    vec![None]
                } else {
                    ips.into_iter().map(Some).collect()
                };
                for ip in targets {
                    if let Err(e) = self.host.flush_conntrack(&ns, zone, ip).await {
                        errors.push(format!("flushing connections of zone {zone}: {e}"));
                    }
                }
            }
            memory.filters = filters;
        }
        memory.zones = Some(
            zones
                .iter()
                .map(|(net, z)| (names::bridge(net), *z))
                .collect(),
        );

        let mtus: HashMap<&str, u32> = want
            .networks
            .iter()
            .map(|n| (n.id.as_str(), n.mtu))
            .collect();
        let root: HashMap<String, Link> = self
            .host
            .links(None)
            .await?
            .into_iter()
            .filter(|l| l.name.starts_with(names::TAP_PREFIX))
            .map(|l| (l.name.clone(), l))
            .collect();
        let mut wired = Vec::new();
        let mut taps = BTreeSet::new();
        for port in &want.ports {
            let tap = names::tap(&port.id);
            taps.insert(tap.clone());
            if !ready.contains(port.network_id.as_str()) {
                continue;
            }
            let here = links.get(&tap);
            if here.is_none() && !root.contains_key(&tap) {
                // Its guest is not running (yet): wired once its QEMU made the tap.
                continue;
            }
            let bridge = names::bridge(&port.network_id);
            let master = port.admin_state_up.then_some(bridge.as_str());
            let mtu = mtus.get(port.network_id.as_str()).copied().unwrap_or(1500);
            let step = async {
                if here.is_none() {
                    self.host.move_link(&tap, &ns).await?;
                }
                let settled =
                    here.is_some_and(|l| l.up && l.master.as_deref() == master && l.mtu == mtu);
                if !settled {
                    self.host.set_link(&ns, &tap, master, mtu).await?;
                }
                Ok::<_, NetplaneError>(())
            };
            match step.await {
                Ok(()) => {
                    if port.admin_state_up {
                        wired.push(port.id.clone());
                    }
                }
                Err(e) => errors.push(format!("port {}: {e}", port.id)),
            }
        }

        // What the cloud no longer wants: taps of ports gone leave their bridge (their QEMU
        // owns them), then bridges, VXLAN devices and uplinks of networks gone are deleted.
        for l in links.values() {
            if l.name.starts_with(names::TAP_PREFIX)
                && !taps.contains(&l.name)
                && l.master.is_some()
            {
                if let Err(e) = self.host.set_link(&ns, &l.name, None, l.mtu).await {
                    errors.push(format!("detaching {}: {e}", l.name));
                }
            }
        }
        let keep: BTreeSet<String> = want
            .networks
            .iter()
            .flat_map(|n| {
                let trunk = match &n.kind {
                    SegmentKind::Vlan {
                        physical_network, ..
                    } => Some(self.config.trunk(physical_network)),
                    _ => None,
                };
                [
                    names::bridge(&n.id),
                    names::vxlan(&n.id),
                    names::uplink(&n.id),
                    names::vlan(&n.id),
                ]
                .into_iter()
                .chain(trunk)
            })
            .chain(
                want.dhcp
                    .iter()
                    .map(|d| crate::dhcp::bridge_end(&d.port_id)),
            )
            .chain(
                want.routers
                    .iter()
                    .flat_map(|r| router::wires(r).into_iter().map(|w| w.outer)),
            )
            .collect();
        // Read again: removed DHCP servers took their veths with them.
        let mut now: Vec<Link> = self.host.links(Some(&ns)).await?;
        // 802.1q devices before the trunks they are on (which would take them along).
        now.sort_by_key(|l| l.name.starts_with("tk"));
        for l in &now {
            let ours = ["br", "vx", "up", "dh", "ri", "rg", "vl", "tk"]
                .iter()
                .any(|p| l.name.starts_with(p));
            if ours
                && !l.name.starts_with(names::TAP_PREFIX)
                && !keep.contains(&l.name)
                && l.kind != "tun"
            {
                if let Err(e) = self.host.delete_link(&ns, &l.name).await {
                    errors.push(format!("deleting {}: {e}", l.name));
                }
            }
        }
        let flat: BTreeSet<String> = want
            .networks
            .iter()
            .filter(|n| matches!(n.kind, SegmentKind::Flat { .. }))
            .map(|n| n.id.clone())
            .collect();
        self.remove_uplinks(&ns, &flat).await;
        wired.sort();
        routed.sort();
        router_ports.sort();
        translated.sort();
        Ok(NetworkingReport {
            wired,
            routers: routed,
            router_ports,
            floating_ips: translated,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        })
    }

    /// Plugs the tap a guest's QEMU just made (in the root namespace) into its port's bridge,
    /// as the last pass wanted that port. The ruleset of that pass names it already.
    pub async fn plug(&self, tap: &str) -> Result<()> {
        let memory = self.memory.lock().await;
        let port = memory
            .want
            .ports
            .iter()
            .find(|p| names::tap(&p.id) == tap)
            .ok_or_else(|| NetplaneError::UnknownTap(tap.to_string()))?;
        let net = memory
            .want
            .networks
            .iter()
            .find(|n| n.id == port.network_id)
            .ok_or_else(|| NetplaneError::UnknownTap(tap.to_string()))?;
        let ns = self.config.netns();
        if !self
            .host
            .links(Some(&ns))
            .await?
            .iter()
            .any(|l| l.name == tap)
        {
            self.host.move_link(tap, &ns).await?;
        }
        let bridge = names::bridge(&net.id);
        let master = port.admin_state_up.then_some(bridge.as_str());
        self.host.set_link(&ns, tap, master, net.mtu).await
    }

    /// The zones of `want`'s networks: kept from before (read back from the loaded ruleset
    /// after a restart), new ones the lowest free.
    async fn zones(
        &self,
        ns: &str,
        want: &HostNetworking,
        memory: &Memory,
    ) -> Result<BTreeMap<String, u16>> {
        let known = match &memory.zones {
            Some(z) => z.clone(),
            None => parse_zones(&self.host.inet_table(ns).await?),
        };
        let mut zones = BTreeMap::new();
        let mut used = BTreeSet::new();
        for n in &want.networks {
            if let Some(z) = known.get(&names::bridge(&n.id)) {
                if used.insert(*z) {
                    zones.insert(n.id.clone(), *z);
                }
            }
        }
        let mut next = 1u16;
        for n in &want.networks {
            if zones.contains_key(&n.id) {
                continue;
            }
            while used.contains(&next) {
                next = next.checked_add(1).ok_or(NetplaneError::OutOfZones)?;
            }
            used.insert(next);
            zones.insert(n.id.clone(), next);
        }
        Ok(zones)
    }

    /// One network's bridge and how it leaves the host.
    async fn network(
        &self,
        ns: &str,
        net: &NetSegment,
        links: &HashMap<String, Link>,
    ) -> Result<()> {
        let bridge = names::bridge(&net.id);
        match links.get(&bridge) {
            None => self.host.add_bridge(ns, &bridge, net.mtu).await?,
            Some(l) if !l.up || l.mtu != net.mtu => {
                self.host.set_link(ns, &bridge, None, net.mtu).await?;
            }
            Some(_) => {}
        }
        match &net.kind {
            SegmentKind::Vxlan { vni, peers } => {
                let dev = names::vxlan(&net.id);
                if !links.contains_key(&dev) {
                    self.host
                        .add_vxlan(ns, &dev, *vni, self.config.vtep, net.mtu)
                        .await?;
                }
                if links
                    .get(&dev)
                    .is_none_or(|l| !l.up || l.master.as_deref() != Some(&bridge))
                {
                    self.host.set_link(ns, &dev, Some(&bridge), net.mtu).await?;
                }
                let mut want = BTreeSet::new();
                for p in peers.iter().filter(|p| p.vtep != self.config.vtep) {
                    want.insert(Fdb {
                        mac: "00:00:00:00:00:00".into(),
                        dst: p.vtep,
                    });
                    for mac in &p.macs {
                        want.insert(Fdb {
                            mac: mac.to_ascii_lowercase(),
                            dst: p.vtep,
                        });
                    }
                }
                let have: BTreeSet<Fdb> = self.host.fdb(ns, &dev).await?.into_iter().collect();
                for e in have.difference(&want) {
                    self.host.delete_fdb(ns, &dev, e).await?;
                }
                for e in want.difference(&have) {
                    self.host.add_fdb(ns, &dev, e).await?;
                }
            }
            SegmentKind::Flat { physical_network } => {
                let uplink = self
                    .config
                    .physnets
                    .get(physical_network)
                    .ok_or_else(|| NetplaneError::NoPhysnet(physical_network.clone()))?;
                let dev = names::uplink(&net.id);
                if !links.contains_key(&dev) {
                    let peer = self.config.uplink_peer(&net.id);
                    self.outside_veth(ns, &dev, uplink, &peer, net.mtu).await?;
                }
                if links
                    .get(&dev)
                    .is_none_or(|l| !l.up || l.master.as_deref() != Some(&bridge))
                {
                    self.host.set_link(ns, &dev, Some(&bridge), net.mtu).await?;
                }
            }
            SegmentKind::Vlan {
                physical_network,
                vlan,
            } => {
                let uplink = self
                    .config
                    .physnets
                    .get(physical_network)
                    .ok_or_else(|| NetplaneError::NoPhysnet(physical_network.clone()))?;
                // One trunk per physical network carries every VLAN network on it; each
                // network's 802.1q device on the trunk is a port of its bridge.
                let trunk = self.config.trunk(physical_network);
                // Read again: another VLAN network of this pass may have made it.
                let made = self.host.links(Some(ns)).await?;
                // Its MTU is the largest of its networks' (802.1q's 4 bytes ride outside it).
                match made.iter().find(|l| l.name == trunk) {
                    None => {
                        let peer = self.config.trunk_peer(physical_network);
                        self.outside_veth(ns, &trunk, uplink, &peer, net.mtu)
                            .await?;
                        self.host.set_link(ns, &trunk, None, net.mtu).await?;
                    }
                    Some(l) if !l.up || l.mtu < net.mtu => {
                        // Both ends: a veth drops what its peer's MTU does not take.
                        let mtu = l.mtu.max(net.mtu);
                        let Uplink::Bridge {
                            netns,
                            bridge: outside,
                        } = uplink;
                        let peer = self.config.trunk_peer(physical_network);
                        self.host.set_link(netns, &peer, Some(outside), mtu).await?;
                        self.host.set_link(ns, &trunk, None, mtu).await?;
                    }
                    Some(_) => {}
                }
                let dev = names::vlan(&net.id);
                if !made.iter().any(|l| l.name == dev) {
                    self.host
                        .add_vlan(ns, &trunk, &dev, *vlan, net.mtu)
                        .await
                        .map_err(|e| match e {
                            // The kernel's words without 8021q: no such link type.
                            NetplaneError::Command { stderr, .. }
                                if stderr.contains("Unknown device type")
                                    || stderr.contains("not supported") =>
                            {
                                NetplaneError::NoVlan(stderr)
                            }
                            e => e,
                        })?;
                }
                if links
                    .get(&dev)
                    .is_none_or(|l| !l.up || l.master.as_deref() != Some(&bridge))
                {
                    self.host.set_link(ns, &dev, Some(&bridge), net.mtu).await?;
                }
            }
        }
        Ok(())
    }

    /// A veth pair from the data-plane namespace (`dev`) to the bridge of `uplink` (`peer`):
    /// a flat network's uplink, or a physical network's trunk.
    async fn outside_veth(
        &self,
        ns: &str,
        dev: &str,
        uplink: &Uplink,
        peer: &str,
        mtu: u32,
    ) -> Result<()> {
        let Uplink::Bridge {
            netns,
            bridge: outside,
        } = uplink;
        // A half-made pair (the other end left over) is made again.
        if self
            .host
            .links(Some(netns))
            .await?
            .iter()
            .any(|l| l.name == peer)
        {
            self.host.delete_link(netns, peer).await?;
        }
        self.host
            .add_veth(
                VethEnd {
                    netns: ns,
                    name: dev,
                },
                VethEnd { netns, name: peer },
                mtu,
            )
            .await?;
        self.host.set_link(netns, peer, Some(outside), mtu).await
    }

    /// A network's DHCP server: its namespace, the DHCP port's veth (its MAC, its addresses,
    /// its end on the bridge), dnsmasq's files, and dnsmasq, told to re-read them when they
    /// changed and started anew when its command line did.
    async fn dhcp_server(
        &self,
        dp: &str,
        d: &ferrostack_agent_api::DhcpServer,
        links: &HashMap<String, Link>,
        memory: &mut Memory,
    ) -> Result<()> {
        use crate::dhcp;
        let ns = dhcp::netns(&self.config.prefix, &self.config.host, &d.network_id);
        if !self.host.namespaces().await?.contains(&ns) {
            self.host.add_namespace(&ns).await?;
        }
        let (outer, inner) = (dhcp::bridge_end(&d.port_id), dhcp::server_end(&d.port_id));
        let inside = self.host.links(Some(&ns)).await?;
        self.service_veth(
            dp,
            &ServiceVeth {
                netns: &ns,
                outer: &outer,
                inner: &inner,
                mac: &d.mac,
                bridge: &names::bridge(&d.network_id),
                mtu: d.mtu,
            },
            links.get(&outer),
            inside.iter().find(|l| l.name == inner),
        )
        .await?;
        let have = self.host.addresses(&ns, &inner).await?;
        let metadata = IpNet::from(std::net::IpAddr::from(dhcp::METADATA_IP));
        for a in d
            .addresses
            .iter()
            .chain([&metadata])
            .filter(|a| !have.contains(a))
        {
            self.host.add_address(&ns, &inner, *a).await?;
        }

        let dir = dhcp::dir(&self.config.state_dir, &d.network_id);
        let now = DhcpMemory {
            args: dhcp::dnsmasq_args(d, &dir, &inner),
            hosts: dhcp::hosts_file(d),
            opts: dhcp::opts_file(d),
        };
        let pid_file = dhcp::pid_file(&dir);
        let running = self.host.daemon(&pid_file).await;
        let known = memory.dhcp.get(&d.network_id);
        let files_changed = known.is_none_or(|k| k.hosts != now.hosts || k.opts != now.opts);
        if files_changed {
            let root = &self.config.state_dir;
            self.host
                .write_file(root, &dir.join("hosts"), &now.hosts)
                .await?;
            self.host
                .write_file(root, &dir.join("opts"), &now.opts)
                .await?;
        }
        match (running, known) {
            (Some(pid), Some(k)) if k.args == now.args => {
                if files_changed {
                    self.host.signal_daemon(pid, false).await?;
                }
            }
            (running, _) => {
                if let Some(pid) = running {
                    self.stop_daemon(pid, &pid_file).await?;
                }
                self.host.start_daemon(&ns, &now.args, &pid_file).await?;
                tracing::info!(network = %d.network_id, netns = %ns, "dnsmasq started");
            }
        }
        memory.dhcp.insert(d.network_id.clone(), now);
        Ok(())
    }

    /// Ends a daemon and waits (a little) until it is gone, so its successor can bind.
    async fn stop_daemon(&self, pid: u32, pid_file: &std::path::Path) -> Result<()> {
        self.host.signal_daemon(pid, true).await?;
        for _ in 0..50 {
            if self.host.daemon(pid_file).await.is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Ends the DHCP servers of this host's networks not in `keep`: dnsmasq, its files, its
    /// namespace (the veth goes with it).
    async fn remove_dhcp(&self, keep: &BTreeSet<String>, memory: &mut Memory) -> Result<()> {
        use crate::dhcp;
        let prefix = dhcp::netns_prefix(&self.config.prefix, &self.config.host);
        for ns in self.host.namespaces().await? {
            let Some(network) = id_after(&ns, &prefix) else {
                continue;
            };
            if keep.contains(network) {
                continue;
            }
            let dir = dhcp::dir(&self.config.state_dir, network);
            let pid_file = dhcp::pid_file(&dir);
            if let Some(pid) = self.host.daemon(&pid_file).await {
                self.stop_daemon(pid, &pid_file).await?;
            }
            self.host.remove_dir(&dir).await?;
            self.host.delete_namespace(&ns).await?;
            memory.dhcp.remove(network);
            tracing::info!(network, netns = %ns, "DHCP server removed");
        }
        Ok(())
    }

    /// One router: its namespace (forwarding), a veth per port with the port's MAC and
    /// addresses (the gateway's also holds the floating IPs, each announced when it arrives),
    /// its routes and its NAT table. True when all of it is in place; false when a network of
    /// one of its ports is not ready yet.
    async fn router(
        &self,
        dp: &str,
        r: &ferrostack_agent_api::HostRouter,
        ready: &BTreeSet<&str>,
        links: &HashMap<String, Link>,
        memory: &mut Memory,
    ) -> Result<bool> {
        let ns = router::netns(&self.config.prefix, &self.config.host, &r.id);
        let fresh = !self.host.namespaces().await?.contains(&ns);
        if fresh {
            self.host.add_namespace(&ns).await?;
        }
        if fresh || !memory.routers.contains_key(&r.id) {
            self.host.enable_forwarding(&ns).await?;
        }
        let inside: HashMap<String, Link> = self
            .host
            .links(Some(&ns))
            .await?
            .into_iter()
            .map(|l| (l.name.clone(), l))
            .collect();
        let wires = router::wires(r);
        let mut complete = true;
        for w in &wires {
            if !ready.contains(w.port.network_id.as_str()) {
                complete = false;
                continue;
            }
            let made = self
                .service_veth(
                    dp,
                    &ServiceVeth {
                        netns: &ns,
                        outer: &w.outer,
                        inner: &w.inner,
                        mac: &w.port.mac,
                        bridge: &names::bridge(&w.port.network_id),
                        mtu: w.port.mtu,
                    },
                    links.get(&w.outer),
                    inside.get(&w.inner),
                )
                .await?;
            let have: BTreeSet<IpNet> = if made {
                BTreeSet::new()
            } else {
                self.host
                    .addresses(&ns, &w.inner)
                    .await?
                    .into_iter()
                    .collect()
            };
            for a in have.difference(&w.addresses) {
                self.host.delete_address(&ns, &w.inner, *a).await?;
            }
            for a in w.addresses.difference(&have) {
                self.host.add_address(&ns, &w.inner, *a).await?;
                if w.inner.starts_with("qg-") {
                    // The outside learns at once where the address is now (a floating IP
                    // moved here from another router or host).
                    if let Err(e) = self.host.announce(&ns, &w.inner, a.addr()).await {
                        tracing::warn!(router = %r.id, address = %a, error = %e, "announcing an address failed");
                    }
                }
            }
        }
        // Ports the router no longer has (deleting one end deletes the pair).
        let names: BTreeSet<&str> = wires.iter().map(|w| w.inner.as_str()).collect();
        for l in inside.values() {
            if (l.name.starts_with("qr-") || l.name.starts_with("qg-"))
                && !names.contains(l.name.as_str())
            {
                self.host.delete_link(&ns, &l.name).await?;
            }
        }
        if complete {
            let want: BTreeSet<Route> = router::routes(r);
            let have: BTreeSet<Route> = self.host.routes(&ns).await?.into_iter().collect();
            for x in have.difference(&want) {
                self.host.delete_route(&ns, x).await?;
            }
            for x in want.difference(&have) {
                self.host.add_route(&ns, x).await?;
            }
        }
        let ruleset = router::ruleset(r);
        let fips: BTreeSet<_> = r
            .floating_ips
            .iter()
            .map(|f| (f.floating_ip, f.fixed_ip))
            .collect();
        let known = memory.routers.get(&r.id);
        if known.is_none_or(|m| m.ruleset != ruleset) {
            self.host.load_ruleset(&ns, &ruleset).await?;
        }
        // A floating IP taken away keeps no translated connection going.
        if let Some(old) = known {
            for (fip, fixed) in old.fips.difference(&fips) {
                for ip in [fip, fixed] {
                    if let Err(e) = self.host.flush_conntrack(&ns, 0, Some(*ip)).await {
                        tracing::warn!(router = %r.id, address = %ip, error = %e, "flushing a floating IP's connections failed");
                    }
                }
            }
        }
        let radvd = router::radvd_conf(r);
        // A router that had no radvd at the last pass and wants none costs nothing here
        // (most routers: no pid file read, no directory removed on every pass).
        if radvd.is_some() || known.is_none_or(|m| m.radvd.is_some()) {
            self.radvd(
                &ns,
                &r.id,
                radvd.as_deref(),
                known.and_then(|m| m.radvd.as_deref()),
            )
            .await?;
        }
        memory.routers.insert(
            r.id.clone(),
            RouterMemory {
                ruleset,
                fips,
                radvd,
            },
        );
        Ok(complete)
    }

    /// A router's radvd in its namespace `ns`: started with `conf`, told to re-read it when
    /// it changed since `known` (what this agent last wrote; none after a restart, when the
    /// running radvd is told to re-read it rather than restarted), ended with no `conf`.
    async fn radvd(
        &self,
        ns: &str,
        router_id: &str,
        conf: Option<&str>,
        known: Option<&str>,
    ) -> Result<()> {
        let dir = router::radvd_dir(&self.config.state_dir, router_id);
        let pid_file = dir.join("pid");
        let running = self.host.daemon(&pid_file).await;
        let Some(conf) = conf else {
            if let Some(pid) = running {
                self.stop_daemon(pid, &pid_file).await?;
                tracing::info!(router = router_id, netns = %ns, "radvd stopped");
            }
            return self.host.remove_dir(&dir).await;
        };
        let changed = known != Some(conf);
        if changed || running.is_none() {
            self.host
                .write_file(&self.config.state_dir, &dir.join("radvd.conf"), conf)
                .await?;
        }
        match running {
            Some(pid) if changed => self.host.signal_daemon(pid, false).await,
            Some(_) => Ok(()),
            None => {
                self.host
                    .start_daemon(ns, &router::radvd_args(&dir), &pid_file)
                    .await?;
                tracing::info!(router = router_id, netns = %ns, "radvd started");
                Ok(())
            }
        }
    }

    /// A service port's veth pair (a DHCP server's, a router's): `outer` on its network's
    /// bridge in the data-plane namespace `dp`, `inner` with the port's MAC in the service's
    /// namespace, both up at the network's MTU. `outer_now` and `inner_now` are the ends as
    /// they are; a half-made pair (only the inner end left over) is made again. True when the
    /// pair was made now.
    async fn service_veth(
        &self,
        dp: &str,
        v: &ServiceVeth<'_>,
        outer_now: Option<&Link>,
        inner_now: Option<&Link>,
    ) -> Result<bool> {
        let made = outer_now.is_none();
        if made {
            if inner_now.is_some() {
                self.host.delete_link(v.netns, v.inner).await?;
            }
            self.host
                .add_veth(
                    VethEnd {
                        netns: dp,
                        name: v.outer,
                    },
                    VethEnd {
                        netns: v.netns,
                        name: v.inner,
                    },
                    v.mtu,
                )
                .await?;
            self.host.set_mac(v.netns, v.inner, v.mac).await?;
        }
        if made
            || outer_now
                .is_none_or(|l| !l.up || l.master.as_deref() != Some(v.bridge) || l.mtu != v.mtu)
        {
            self.host
                .set_link(dp, v.outer, Some(v.bridge), v.mtu)
                .await?;
        }
        if made || inner_now.is_none_or(|l| !l.up || l.mtu != v.mtu) {
            self.host.set_link(v.netns, v.inner, None, v.mtu).await?;
        }
        Ok(made)
    }

    /// Removes the routers of this host not in `keep`: their namespaces (their veths go
    /// with them).
    async fn remove_routers(&self, keep: &BTreeSet<String>, memory: &mut Memory) -> Result<()> {
        let prefix = router::netns_prefix(&self.config.prefix, &self.config.host);
        for ns in self.host.namespaces().await? {
            let Some(id) = id_after(&ns, &prefix) else {
                continue;
            };
            if keep.contains(id) {
                continue;
            }
            self.radvd(&ns, id, None, None).await?;
            self.host.delete_namespace(&ns).await?;
            memory.routers.remove(id);
            tracing::info!(router = id, netns = %ns, "router removed from this host");
        }
        Ok(())
    }

    /// Deletes the outside ends of uplinks of flat networks not in `keep` (deleting one end
    /// of a veth deletes both).
    async fn remove_uplinks(&self, ns: &str, keep: &BTreeSet<String>) {
        let Ok(links) = self.host.links(Some(ns)).await else {
            return;
        };
        for l in links
            .iter()
            .filter(|l| l.name.starts_with("up") && l.kind == "veth")
        {
            let id = l.name.trim_start_matches("up");
            if keep.iter().any(|k| names::uplink(k) == l.name) {
                continue;
            }
            if let Err(e) = self.host.delete_link(ns, &l.name).await {
                tracing::warn!(link = %l.name, network = id, error = %e, "removing an uplink failed");
            }
        }
    }
}

/// The id a namespace of this host is named after (`<prefix><id>`): exactly an id after the
/// prefix, since another host's name may start with this one's (`node` and `node-2`).
fn id_after<'a>(ns: &'a str, prefix: &str) -> Option<&'a str> {
    ns.strip_prefix(prefix)
        .filter(|n| n.len() == 36 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// A service port's veth pair, as [`Dataplane::service_veth`] makes it.
struct ServiceVeth<'a> {
    netns: &'a str,
    outer: &'a str,
    inner: &'a str,
    mac: &'a str,
    bridge: &'a str,
    mtu: u32,
}

/// Past this many ports of one network whose filters admit less, the network's whole
/// conntrack zone is flushed instead of each port's addresses.
const FLUSH_ZONE_AT: usize = 8;

/// What filters the ports: each port's own settings and groups, and each group's rules and
/// the members of the remote groups and address groups those name. Kept per group, not per
/// port: a group of 500 ports whose remote group has 500 members is 500 entries, not 250,000.
#[derive(Debug, Default)]
struct Filters {
    ports: HashMap<String, PortSettings>,
    groups: HashMap<String, GroupFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PortSettings {
    settings: String,
    groups: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct GroupFilter {
    rules: BTreeSet<String>,
    members: BTreeSet<String>,
}

impl GroupFilter {
    /// True when this filter admits nothing `other` does not (no rule or remote member that
    /// `other` lacks).
    fn within(&self, other: &GroupFilter) -> bool {
        self.rules.is_subset(&other.rules) && self.members.is_subset(&other.members)
    }
}

impl Filters {
    fn of(want: &HostNetworking) -> Filters {
        let members: HashMap<&str, &ferrostack_agent_api::GroupMembers> = want
            .remote_groups
            .iter()
            .map(|g| (g.id.as_str(), g))
            .collect();
        let address_groups: HashMap<&str, &ferrostack_agent_api::GroupMembers> = want
            .address_groups
            .iter()
            .map(|g| (g.id.as_str(), g))
            .collect();
        let groups = want
            .security_groups
            .iter()
            .map(|g| {
                let mut f = GroupFilter::default();
                for r in &g.rules {
                    f.rules.insert(serde_json::json!(r).to_string());
                    let (from, id) = match &r.remote {
                        ferrostack_agent_api::Remote::Group(rg) => (&members, rg),
                        ferrostack_agent_api::Remote::AddressGroup(ag) => (&address_groups, ag),
                        _ => continue,
                    };
                    for a in from
                        .get(id.as_str())
                        .map(|m| m.addresses.as_slice())
                        .unwrap_or_default()
                    {
                        f.members.insert(format!("{id}/{a}"));
                    }
                }
                (g.id.clone(), f)
            })
            .collect();
        let ports = want
            .ports
            .iter()
            .map(|p| {
                let settings =
                    serde_json::json!([p.port_security, p.ips, p.address_pairs, p.security_groups])
                        .to_string();
                let groups = p.security_groups.clone();
                (p.id.clone(), PortSettings { settings, groups })
            })
            .collect();
        Filters { ports, groups }
    }

    /// The groups whose filter in `new` admits less than in `self` (a group gone admits
    /// nothing).
    fn narrowed_groups(&self, new: &Filters) -> BTreeSet<String> {
        let none = GroupFilter::default();
        self.groups
            .iter()
            .filter(|(id, old)| !old.within(new.groups.get(*id).unwrap_or(&none)))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// The bridge -> zone map of a loaded inet table (`ct zone set iifname map { "br.." : 1, .. }`).
pub fn parse_zones(table: &str) -> BTreeMap<String, u16> {
    let mut zones = BTreeMap::new();
    let Some(start) = table.find("ct zone set iifname map {") else {
        return zones;
    };
    let rest = &table[start + "ct zone set iifname map {".len()..];
    let body = rest.split('}').next().unwrap_or_default();
    for entry in body.split(',') {
        if let Some((name, zone)) = entry.split_once(':') {
            let name = name.trim().trim_matches('"');
            if let Ok(z) = zone.trim().parse::<u16>() {
                zones.insert(name.to_string(), z);
            }
        }
    }
    zones
}
