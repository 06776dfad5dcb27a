//! The kernel's networking kept in memory: namespaces with their interfaces, VXLAN forwarding
//! entries and loaded rulesets, so the data plane's converging is unit-tested without root.

use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;

use ferrostack_agent_api::Vtep;
use ipnet::IpNet;
use parking_lot::Mutex;

use crate::host::{Fdb, Link, NetHost, Route, VethEnd};
use crate::{NetplaneError, Result};

/// The root namespace's key.
const ROOT: &str = "";

#[derive(Debug, Default)]
struct State {
    /// Namespace ("" = root) -> interfaces by name.
    namespaces: BTreeMap<String, BTreeMap<String, Link>>,
    fdb: BTreeMap<(String, String), BTreeSet<Fdb>>,
    rulesets: BTreeMap<String, String>,
    files: BTreeMap<std::path::PathBuf, String>,
    macs: BTreeMap<(String, String), String>,
    flushes: Vec<(String, u16, Option<std::net::IpAddr>)>,
    daemons: BTreeMap<std::path::PathBuf, Daemon>,
    next_pid: u32,
    /// Addresses by (namespace, interface).
    addresses: BTreeMap<(String, String), Vec<IpNet>>,
    /// Each veth end -> its peer (namespace, name): deleting one deletes both.
    peers: BTreeMap<(String, String), (String, String)>,
    /// How many rulesets were loaded (a converge that changes nothing loads none).
    loads: usize,
    /// How many of those replaced only the chains and sets that changed.
    partial_loads: usize,
    routes: BTreeMap<String, BTreeSet<Route>>,
    forwarding: BTreeSet<String>,
    /// Gratuitous ARPs sent: (namespace, interface, address).
    announced: Vec<(String, String, std::net::IpAddr)>,
}

/// A daemon the fake runs (by its pid file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub pid: u32,
    pub netns: String,
    pub argv: Vec<String>,
    /// How often it was told to read its files again.
    pub reloads: u32,
}

#[derive(Debug)]
pub struct FakeHost {
    state: Mutex<State>,
}

impl Default for FakeHost {
    fn default() -> Self {
        let mut s = State::default();
        s.namespaces.insert(ROOT.into(), BTreeMap::new());
        FakeHost {
            state: Mutex::new(s),
        }
    }
}

impl State {
    fn require_namespace(&self, netns: &str) -> Result<()> {
        if self.namespaces.contains_key(netns) {
            Ok(())
        } else {
            Err(missing(netns))
        }
    }

    /// Interface `name` of `netns` exists (the kernel's "Cannot find device" otherwise).
    fn require_link(&self, netns: &str, name: &str) -> Result<()> {
        if self
            .namespaces
            .get(netns)
            .is_some_and(|l| l.contains_key(name))
        {
            Ok(())
        } else {
            Err(missing(name))
        }
    }
}

fn missing(what: impl std::fmt::Display) -> NetplaneError {
    NetplaneError::Command {
        command: "fake".into(),
        stderr: format!("{what} does not exist"),
    }
}

fn exists(what: impl std::fmt::Display) -> NetplaneError {
    NetplaneError::Command {
        command: "fake".into(),
        stderr: format!("{what} already exists"),
    }
}

impl FakeHost {
    /// A tap as QEMU makes it: in the root namespace, down.
    pub fn add_tap(&self, name: &str) {
        self.state
            .lock()
            .namespaces
            .entry(ROOT.into())
            .or_default()
            .insert(
                name.into(),
                Link {
                    name: name.into(),
                    kind: "tun".into(),
                    master: None,
                    up: false,
                    mtu: 1500,
                },
            );
    }

    /// A tap whose QEMU ended: it goes wherever it is.
    pub fn remove_tap(&self, name: &str) {
        for links in self.state.lock().namespaces.values_mut() {
            links.remove(name);
        }
    }

    pub fn link(&self, netns: &str, name: &str) -> Option<Link> {
        self.state.lock().namespaces.get(netns)?.get(name).cloned()
    }

    pub fn ruleset(&self, netns: &str) -> Option<String> {
        self.state.lock().rulesets.get(netns).cloned()
    }

    pub fn mac(&self, netns: &str, name: &str) -> Option<String> {
        self.state
            .lock()
            .macs
            .get(&(netns.to_string(), name.to_string()))
            .cloned()
    }

    /// The conntrack flushes asked for: (namespace, zone, address).
    pub fn flushes(&self) -> Vec<(String, u16, Option<std::net::IpAddr>)> {
        self.state.lock().flushes.clone()
    }

    pub fn file(&self, path: &Path) -> Option<String> {
        self.state.lock().files.get(path).cloned()
    }

    /// The daemons running, by pid file.
    pub fn daemons(&self) -> BTreeMap<std::path::PathBuf, Daemon> {
        self.state.lock().daemons.clone()
    }

    /// A daemon dies (crash, kill).
    pub fn kill_daemon(&self, pid_file: &Path) {
        self.state.lock().daemons.remove(pid_file);
    }

    pub fn routes_of(&self, netns: &str) -> Vec<Route> {
        self.state
            .lock()
            .routes
            .get(netns)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn forwards(&self, netns: &str) -> bool {
        self.state.lock().forwarding.contains(netns)
    }

    /// The gratuitous ARPs sent: (namespace, interface, address).
    pub fn announced(&self) -> Vec<(String, String, std::net::IpAddr)> {
        self.state.lock().announced.clone()
    }

    pub fn addresses_of(&self, netns: &str, name: &str) -> Vec<IpNet> {
        self.state
            .lock()
            .addresses
            .get(&(netns.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn partial_loads(&self) -> usize {
        self.state.lock().partial_loads
    }

    pub fn loads(&self) -> usize {
        self.state.lock().loads
    }

    pub fn fdb_entries(&self, netns: &str, dev: &str) -> Vec<Fdb> {
        self.state
            .lock()
            .fdb
            .get(&(netns.to_string(), dev.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn insert(&self, netns: &str, link: Link) -> Result<()> {
        let mut s = self.state.lock();
        let links = s.namespaces.get_mut(netns).ok_or_else(|| missing(netns))?;
        if links.contains_key(&link.name) {
            return Err(exists(&link.name));
        }
        links.insert(link.name.clone(), link);
        Ok(())
    }
}

fn new_link(name: &str, kind: &str, mtu: u32, up: bool) -> Link {
    Link {
        name: name.into(),
        kind: kind.into(),
        master: None,
        up,
        mtu,
    }
}

#[async_trait::async_trait]
impl NetHost for FakeHost {
    async fn namespaces(&self) -> Result<Vec<String>> {
        Ok(self
            .state
            .lock()
            .namespaces
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect())
    }

    async fn add_namespace(&self, netns: &str) -> Result<()> {
        let mut s = self.state.lock();
        if s.namespaces.contains_key(netns) {
            return Err(exists(netns));
        }
        s.namespaces.insert(netns.into(), BTreeMap::new());
        Ok(())
    }

    async fn delete_namespace(&self, netns: &str) -> Result<()> {
        let mut s = self.state.lock();
        s.namespaces.remove(netns).ok_or_else(|| missing(netns))?;
        // Veths in it go, and their peers elsewhere with them.
        let gone: Vec<(String, String)> = s
            .peers
            .keys()
            .filter(|(ns, _)| ns == netns)
            .cloned()
            .collect();
        for k in gone {
            if let Some((pns, pname)) = s.peers.remove(&k) {
                s.peers.remove(&(pns.clone(), pname.clone()));
                if let Some(l) = s.namespaces.get_mut(&pns) {
                    l.remove(&pname);
                }
            }
        }
        s.rulesets.remove(netns);
        s.fdb.retain(|(ns, _), _| ns != netns);
        s.addresses.retain(|(ns, _), _| ns != netns);
        s.routes.remove(netns);
        s.forwarding.remove(netns);
        Ok(())
    }

    async fn links(&self, netns: Option<&str>) -> Result<Vec<Link>> {
        let s = self.state.lock();
        let ns = netns.unwrap_or(ROOT);
        Ok(s.namespaces
            .get(ns)
            .ok_or_else(|| missing(ns))?
            .values()
            .cloned()
            .collect())
    }

    async fn add_bridge(&self, netns: &str, name: &str, mtu: u32) -> Result<()> {
        self.insert(netns, new_link(name, "bridge", mtu, true))
    }

    async fn add_vxlan(
        &self,
        netns: &str,
        name: &str,
        _vni: u32,
        _local: Vtep,
        mtu: u32,
    ) -> Result<()> {
        self.insert(netns, new_link(name, "vxlan", mtu, false))
    }

    async fn add_vlan(
        &self,
        netns: &str,
        parent: &str,
        name: &str,
        _vlan: u16,
        mtu: u32,
    ) -> Result<()> {
        self.state.lock().require_link(netns, parent)?;
        self.insert(netns, new_link(name, "vlan", mtu, false))
    }

    async fn add_veth(&self, a: VethEnd<'_>, b: VethEnd<'_>, mtu: u32) -> Result<()> {
        self.insert(a.netns, new_link(a.name, "veth", mtu, false))?;
        self.insert(b.netns, new_link(b.name, "veth", mtu, false))?;
        let (ka, kb) = (
            (a.netns.to_string(), a.name.to_string()),
            (b.netns.to_string(), b.name.to_string()),
        );
        let mut s = self.state.lock();
        s.peers.insert(ka.clone(), kb.clone());
        s.peers.insert(kb, ka);
        Ok(())
    }

    async fn move_link(&self, name: &str, netns: &str) -> Result<()> {
        let mut s = self.state.lock();
        s.require_namespace(netns)?;
        let mut link = s
            .namespaces
            .get_mut(ROOT)
            .and_then(|l| l.remove(name))
            .ok_or_else(|| missing(name))?;
        // Moving takes a device down and off its bridge.
        link.up = false;
        link.master = None;
        s.namespaces
            .get_mut(netns)
            .ok_or_else(|| missing(netns))?
            .insert(name.into(), link);
        Ok(())
    }

    async fn set_link(
        &self,
        netns: &str,
        name: &str,
        master: Option<&str>,
        mtu: u32,
    ) -> Result<()> {
        let mut s = self.state.lock();
        let links = s.namespaces.get_mut(netns).ok_or_else(|| missing(netns))?;
        if let Some(m) = master {
            if !links.contains_key(m) {
                return Err(missing(m));
            }
        }
        let link = links.get_mut(name).ok_or_else(|| missing(name))?;
        link.master = master.map(str::to_string);
        link.mtu = mtu;
        link.up = true;
        Ok(())
    }

    async fn delete_link(&self, netns: &str, name: &str) -> Result<()> {
        let mut s = self.state.lock();
        let links = s.namespaces.get_mut(netns).ok_or_else(|| missing(netns))?;
        links.remove(name).ok_or_else(|| missing(name))?;
        // Its ports leave the bridge with it.
        for l in links.values_mut() {
            if l.master.as_deref() == Some(name) {
                l.master = None;
            }
        }
        s.fdb.remove(&(netns.to_string(), name.to_string()));
        s.addresses.remove(&(netns.to_string(), name.to_string()));
        if let Some((pns, pname)) = s.peers.remove(&(netns.to_string(), name.to_string())) {
            s.peers.remove(&(pns.clone(), pname.clone()));
            if let Some(l) = s.namespaces.get_mut(&pns) {
                l.remove(&pname);
            }
        }
        Ok(())
    }

    async fn set_mac(&self, netns: &str, name: &str, mac: &str) -> Result<()> {
        let mut s = self.state.lock();
        s.require_link(netns, name)?;
        s.macs
            .insert((netns.into(), name.into()), mac.to_ascii_lowercase());
        Ok(())
    }

    async fn fdb(&self, netns: &str, dev: &str) -> Result<Vec<Fdb>> {
        Ok(self.fdb_entries(netns, dev))
    }

    async fn add_fdb(&self, netns: &str, dev: &str, entry: &Fdb) -> Result<()> {
        self.state
            .lock()
            .fdb
            .entry((netns.into(), dev.into()))
            .or_default()
            .insert(entry.clone());
        Ok(())
    }

    async fn delete_fdb(&self, netns: &str, dev: &str, entry: &Fdb) -> Result<()> {
        let mut s = self.state.lock();
        let set = s
            .fdb
            .get_mut(&(netns.to_string(), dev.to_string()))
            .ok_or_else(|| missing(dev))?;
        set.remove(entry)
            .then_some(())
            .ok_or_else(|| missing(&entry.mac))
    }

    async fn load_ruleset(&self, netns: &str, ruleset: &str) -> Result<()> {
        let mut s = self.state.lock();
        s.require_namespace(netns)?;
        s.rulesets.insert(netns.into(), ruleset.into());
        s.loads += 1;
        Ok(())
    }

    /// Keeps the whole ruleset (what the kernel would have), counting the loads that only
    /// replaced what changed.
    async fn update_ruleset(
        &self,
        netns: &str,
        full: &crate::nft::Ruleset,
        changes: Option<&str>,
    ) -> Result<()> {
        self.load_ruleset(netns, &full.text()).await?;
        if changes.is_some() {
            self.state.lock().partial_loads += 1;
        }
        Ok(())
    }

    async fn addresses(&self, netns: &str, name: &str) -> Result<Vec<IpNet>> {
        let s = self.state.lock();
        s.require_link(netns, name)?;
        Ok(s.addresses
            .get(&(netns.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    async fn add_address(&self, netns: &str, name: &str, address: IpNet) -> Result<()> {
        let mut s = self.state.lock();
        s.require_link(netns, name)?;
        let list = s.addresses.entry((netns.into(), name.into())).or_default();
        if list.contains(&address) {
            return Err(exists(address));
        }
        list.push(address);
        Ok(())
    }

    async fn delete_address(&self, netns: &str, name: &str, address: IpNet) -> Result<()> {
        let mut s = self.state.lock();
        let list = s
            .addresses
            .get_mut(&(netns.to_string(), name.to_string()))
            .ok_or_else(|| missing(name))?;
        let before = list.len();
        list.retain(|a| *a != address);
        if list.len() == before {
            return Err(missing(address));
        }
        Ok(())
    }

    async fn routes(&self, netns: &str) -> Result<Vec<Route>> {
        let s = self.state.lock();
        s.require_namespace(netns)?;
        Ok(s.routes
            .get(netns)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default())
    }

    async fn add_route(&self, netns: &str, route: &Route) -> Result<()> {
        let mut s = self.state.lock();
        s.require_namespace(netns)?;
        let routes = s.routes.entry(netns.into()).or_default();
        routes.retain(|r| r.dst != route.dst);
        routes.insert(*route);
        Ok(())
    }

    async fn delete_route(&self, netns: &str, route: &Route) -> Result<()> {
        let mut s = self.state.lock();
        let removed = s.routes.get_mut(netns).is_some_and(|r| r.remove(route));
        if removed {
            Ok(())
        } else {
            Err(missing(route.dst))
        }
    }

    async fn enable_forwarding(&self, netns: &str) -> Result<()> {
        let mut s = self.state.lock();
        s.require_namespace(netns)?;
        s.forwarding.insert(netns.into());
        Ok(())
    }

    async fn announce(&self, netns: &str, name: &str, ip: std::net::IpAddr) -> Result<()> {
        let mut s = self.state.lock();
        s.require_link(netns, name)?;
        s.announced.push((netns.into(), name.into(), ip));
        Ok(())
    }

    async fn write_file(&self, _root: &Path, path: &Path, contents: &str) -> Result<()> {
        self.state
            .lock()
            .files
            .insert(path.to_path_buf(), contents.to_string());
        Ok(())
    }

    async fn remove_dir(&self, path: &Path) -> Result<()> {
        self.state.lock().files.retain(|p, _| !p.starts_with(path));
        Ok(())
    }

    async fn start_daemon(&self, netns: &str, argv: &[String], pid_file: &Path) -> Result<()> {
        let mut s = self.state.lock();
        s.require_namespace(netns)?;
        s.next_pid += 1;
        let pid = s.next_pid;
        s.daemons.insert(
            pid_file.to_path_buf(),
            Daemon {
                pid,
                netns: netns.to_string(),
                argv: argv.to_vec(),
                reloads: 0,
            },
        );
        Ok(())
    }

    async fn daemon(&self, pid_file: &Path) -> Option<u32> {
        self.state.lock().daemons.get(pid_file).map(|d| d.pid)
    }

    async fn signal_daemon(&self, pid: u32, stop: bool) -> Result<()> {
        let mut s = self.state.lock();
        let key = s
            .daemons
            .iter()
            .find(|(_, d)| d.pid == pid)
            .map(|(k, _)| k.clone())
            .ok_or_else(|| missing(pid))?;
        if stop {
            s.daemons.remove(&key);
        } else if let Some(d) = s.daemons.get_mut(&key) {
            d.reloads += 1;
        }
        Ok(())
    }

    async fn flush_conntrack(
        &self,
        netns: &str,
        zone: u16,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        self.state
            .lock()
            .flushes
            .push((netns.to_string(), zone, ip));
        Ok(())
    }

    async fn inet_table(&self, netns: &str) -> Result<String> {
        // What matters of the listing is the zone map, which the compiled text carries too.
        Ok(self.ruleset(netns).unwrap_or_default())
    }
}
