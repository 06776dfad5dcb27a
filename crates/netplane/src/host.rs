//! What the data plane asks of a host's kernel, as one small trait: [`crate::linux::Linux`]
//! runs `ip`, `bridge` and `nft`; [`crate::fake::FakeHost`] keeps the same state in memory for
//! unit tests. Every call is idempotent where the kernel allows it; the data plane only asks for
//! what it found missing.

use std::path::Path;

use ferrostack_agent_api::Vtep;
use ipnet::IpNet;

use crate::Result;

/// A network interface as the data plane cares about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    /// `bridge`, `vxlan`, `veth`, `tun`, ... (empty for a plain device).
    pub kind: String,
    pub master: Option<String>,
    pub up: bool,
    pub mtu: u32,
}

/// A VXLAN forwarding entry: frames for `mac` (all zeros: broadcast and unknown) go to `dst`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fdb {
    pub mac: String,
    pub dst: Vtep,
}

/// A route through a next hop (the only kind the data plane makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub dst: IpNet,
    pub via: std::net::IpAddr,
}

/// A veth pair's end: its name and the namespace it goes into.
#[derive(Debug, Clone, Copy)]
pub struct VethEnd<'a> {
    pub netns: &'a str,
    pub name: &'a str,
}

#[async_trait::async_trait]
pub trait NetHost: Send + Sync {
    /// The names of the network namespaces.
    async fn namespaces(&self) -> Result<Vec<String>>;
    /// Creates namespace `netns` with its loopback up.
    async fn add_namespace(&self, netns: &str) -> Result<()>;
    /// Deletes namespace `netns` and every interface in it.
    async fn delete_namespace(&self, netns: &str) -> Result<()>;
    /// The interfaces of `netns` (None: the root namespace).
    async fn links(&self, netns: Option<&str>) -> Result<Vec<Link>>;
    /// A bridge that hands bridged IP traffic to nftables' inet tables (br_netfilter).
    async fn add_bridge(&self, netns: &str, name: &str, mtu: u32) -> Result<()>;
    /// A VXLAN device in `netns` whose tunnel is in the root namespace, at `local`, without
    /// learning (forwarding entries come from the controller).
    async fn add_vxlan(
        &self,
        netns: &str,
        name: &str,
        vni: u32,
        local: Vtep,
        mtu: u32,
    ) -> Result<()>;
    /// An 802.1q device `name` on `parent` (both in `netns`) that tags with `vlan`. Needs the
    /// kernel's 8021q support, which some kernels lack (the device is then refused).
    async fn add_vlan(
        &self,
        netns: &str,
        parent: &str,
        name: &str,
        vlan: u16,
        mtu: u32,
    ) -> Result<()>;
    /// A veth pair, each end in its namespace.
    async fn add_veth(&self, a: VethEnd<'_>, b: VethEnd<'_>, mtu: u32) -> Result<()>;
    /// Moves interface `name` from the root namespace into `netns`.
    async fn move_link(&self, name: &str, netns: &str) -> Result<()>;
    /// Puts interface `name` of `netns` on bridge `master` (None: off any bridge), with `mtu`,
    /// and brings it up.
    async fn set_link(&self, netns: &str, name: &str, master: Option<&str>, mtu: u32)
        -> Result<()>;
    async fn delete_link(&self, netns: &str, name: &str) -> Result<()>;
    /// Gives interface `name` of `netns` the MAC `mac`.
    async fn set_mac(&self, netns: &str, name: &str, mac: &str) -> Result<()>;
    /// The forwarding entries of VXLAN device `dev` that point at a remote endpoint.
    async fn fdb(&self, netns: &str, dev: &str) -> Result<Vec<Fdb>>;
    async fn add_fdb(&self, netns: &str, dev: &str, entry: &Fdb) -> Result<()>;
    async fn delete_fdb(&self, netns: &str, dev: &str, entry: &Fdb) -> Result<()>;
    /// Replaces the ruleset's tables in one transaction (`nft -f`).
    async fn load_ruleset(&self, netns: &str, ruleset: &str) -> Result<()>;
    /// Brings the data plane's ruleset to `full`. `changes`, when given, does the same from
    /// the ruleset loaded now by replacing only the chains and sets that differ (one
    /// transaction too, and much less for nft to parse on a host with many ports): tried
    /// first, the whole ruleset when it fails.
    async fn update_ruleset(
        &self,
        netns: &str,
        full: &crate::nft::Ruleset,
        changes: Option<&str>,
    ) -> Result<()> {
        if let Some(script) = changes {
            match self.load_ruleset(netns, script).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(netns, error = %e, "replacing the changed chains failed; loading the whole ruleset");
                }
            }
        }
        self.load_ruleset(netns, &full.text()).await
    }
    /// The addresses of interface `name` of `netns` (link-local ones left out).
    async fn addresses(&self, netns: &str, name: &str) -> Result<Vec<IpNet>>;
    async fn add_address(&self, netns: &str, name: &str, address: IpNet) -> Result<()>;
    async fn delete_address(&self, netns: &str, name: &str, address: IpNet) -> Result<()>;
    /// The routes of `netns` through a next hop (main table, both families).
    async fn routes(&self, netns: &str) -> Result<Vec<Route>>;
    /// Adds `route`, replacing one to the same destination.
    async fn add_route(&self, netns: &str, route: &Route) -> Result<()>;
    async fn delete_route(&self, netns: &str, route: &Route) -> Result<()>;
    /// Makes `netns` forward IPv4 and IPv6 between its interfaces (a router).
    async fn enable_forwarding(&self, netns: &str) -> Result<()>;
    /// Tells the neighbours on interface `name` of `netns` that `ip` is there now (a
    /// gratuitous ARP), so they forget where it was before.
    async fn announce(&self, netns: &str, name: &str, ip: std::net::IpAddr) -> Result<()>;
    /// Writes a file the host's daemons read (replaced whole), under `root`: the daemons
    /// drop their privileges, so the file and the directories from `root` down are readable
    /// by all, and `root`'s ancestors searchable (never listable) by all.
    async fn write_file(&self, root: &Path, path: &Path, contents: &str) -> Result<()>;
    /// Removes a directory of such files (none: nothing to do).
    async fn remove_dir(&self, path: &Path) -> Result<()>;
    /// Starts `argv` in `netns` as a daemon that writes its pid to `pid_file` (it forks
    /// itself away: it runs on whatever happens to the agent).
    async fn start_daemon(&self, netns: &str, argv: &[String], pid_file: &Path) -> Result<()>;
    /// The pid of the daemon of `pid_file` when it runs.
    async fn daemon(&self, pid_file: &Path) -> Option<u32>;
    /// Tells daemon `pid` to read its files again (SIGHUP), or to end (SIGTERM).
    async fn signal_daemon(&self, pid: u32, stop: bool) -> Result<()>;
    /// Deletes the conntrack entries of `zone` to and from `ip` (all of the zone's without
    /// one): connections a changed rule may no longer admit; allowed ones are picked up
    /// again by their next packet.
    async fn flush_conntrack(
        &self,
        netns: &str,
        zone: u16,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()>;
    /// The loaded inet table of the data plane, as `nft list` prints it (empty when none).
    async fn inet_table(&self, netns: &str) -> Result<String>;
}
