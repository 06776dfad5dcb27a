//! The nftables ruleset of a host's data-plane namespace, compiled from its networking: a pure
//! function, so it is tested against golden files, and the whole ruleset is loaded with one
//! `nft -f` (one transaction: traffic never sees half of a change, and established connections
//! keep their conntrack entries).
//!
//! The design, and the experiments on this kernel it rests on, are in
//! `docs/network-dataplane.md`:
//! - `bridge ferrostack` does what needs no connection state, before br_netfilter: each guest
//!   port's anti-spoofing (MAC, ARP, IPv4, IPv6, neighbor-advertisement targets; DHCP and router
//!   advertisement servers in guests dropped), and it writes the ports a frame comes in on and
//!   goes out on into the packet mark (bits 16..30: the in-port's index, 0..15: the out-port's,
//!   0 = not a guest port), since the bridge family has no conntrack here;
//! - `inet ferrostack`, which br_netfilter runs for bridged IP traffic (where the in and out
//!   interface are both the bridge), puts each network in its own conntrack zone and runs the
//!   security groups statefully: the in-port's egress chain, then the out-port's ingress chain,
//!   picked from the mark;
//! - bridge postrouting fails closed: an IP packet to a guest port that the stateful stage did
//!   not see (bit 31 unset) is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

use ferrostack_agent_api::{
    Direction, EtherType, FilterRule, HostNetworking, HostPort, Remote, SecurityGroupRules,
};
use ipnet::IpNet;

use crate::names;

/// The tables' name (in both families; the namespace is the host's own).
pub const TABLE: &str = "ferrostack";

/// The mark bit the stateful stage sets on what it passed.
const PASSED: u32 = 0x8000_0000;
/// The most guest ports one host's ruleset can name (15 bits of the mark).
pub const MAX_PORTS: usize = 0x7fff;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("{0} guest ports on one host: at most {MAX_PORTS} fit in the packet mark")]
    TooManyPorts(usize),
    #[error("network {0} has no conntrack zone")]
    NoZone(String),
}

/// The ruleset for `net`, with each network's conntrack zone from `zones` (network id -> zone;
/// the caller keeps zones stable while a network stays, so its connections keep their
/// entries). Ports get their mark index from their order by id.
pub fn compile(
    net: &HostNetworking,
    zones: &BTreeMap<String, u16>,
) -> Result<String, CompileError> {
    Ok(compile_ruleset(net, zones)?.text())
}

/// [`compile`], as the tables' sets and chains: what a host keeps to change only those that
/// differ next time ([`Ruleset::changes_from`]).
pub fn compile_ruleset(
    net: &HostNetworking,
    zones: &BTreeMap<String, u16>,
) -> Result<Ruleset, CompileError> {
    let mut ports: Vec<&HostPort> = net.ports.iter().collect();
    ports.sort_by(|a, b| a.id.cmp(&b.id));
    ports.dedup_by(|a, b| a.id == b.id);
    if ports.len() > MAX_PORTS {
        return Err(CompileError::TooManyPorts(ports.len()));
    }
    let mut bridges = Vec::new();
    for n in &net.networks {
        let zone = zones
            .get(&n.id)
            .ok_or_else(|| CompileError::NoZone(n.id.clone()))?;
        bridges.push((names::bridge(&n.id), *zone));
    }
    bridges.sort();
    let groups: BTreeMap<&str, &SecurityGroupRules> = net
        .security_groups
        .iter()
        .map(|g| (g.id.as_str(), g))
        .collect();
    let members: BTreeMap<&str, &[IpNet]> = net
        .remote_groups
        .iter()
        .map(|g| (g.id.as_str(), g.addresses.as_slice()))
        .collect();
    let address_groups: BTreeMap<&str, &[IpNet]> = net
        .address_groups
        .iter()
        .map(|g| (g.id.as_str(), g.addresses.as_slice()))
        .collect();

    Ok(Ruleset {
        tables: vec![
            bridge_table(&ports),
            inet_table(&ports, &bridges, &groups, &[&members, &address_groups]),
        ],
    })
}

/// A host's compiled ruleset: each table's sets and chains, in the order they are declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    tables: Vec<Table>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    family: &'static str,
    items: Vec<Item>,
}

/// One set or chain of a table: its whole declaration (tab-indented lines).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    kind: &'static str,
    name: String,
    text: String,
}

impl Table {
    fn new(family: &'static str) -> Table {
        Table {
            family,
            items: Vec::new(),
        }
    }

    fn set(&mut self, name: String, text: String) {
        self.items.push(Item {
            kind: "set",
            name,
            text,
        });
    }

    fn chain(&mut self, name: impl Into<String>, text: String) {
        self.items.push(Item {
            kind: "chain",
            name: name.into(),
            text,
        });
    }

    /// (kind, name) -> declaration.
    fn index(&self) -> BTreeMap<(&'static str, &str), &str> {
        self.items
            .iter()
            .map(|i| ((i.kind, i.name.as_str()), i.text.as_str()))
            .collect()
    }
}

impl Ruleset {
    /// The whole ruleset as one `nft -f` script: both tables deleted and declared anew, in
    /// one transaction.
    pub fn text(&self) -> String {
        let mut out = String::from(HEADER);
        for t in &self.tables {
            let _ = writeln!(out, "\ntable {} {TABLE} {{", t.family);
            for i in &t.items {
                out.push_str(&i.text);
            }
            out.push_str("}\n");
        }
        out
    }

    /// The `nft -f` script that turns `old` (the loaded ruleset) into this one by replacing
    /// only the chains and sets that differ (each flushed and declared again, all in one
    /// transaction, so traffic never sees half of it): a rule added to a group rewrites that
    /// group's chain, not the host's. None when the two do not have the same tables, chains
    /// and sets (a port or a remote group came or went): the whole ruleset is loaded then.
    pub fn changes_from(&self, old: &Ruleset) -> Option<String> {
        if self.tables.len() != old.tables.len() {
            return None;
        }
        let mut out = String::new();
        for (new, old) in self.tables.iter().zip(&old.tables) {
            let (now, was) = (new.index(), old.index());
            if new.family != old.family || !now.keys().eq(was.keys()) {
                return None;
            }
            let changed: Vec<&Item> = new
                .items
                .iter()
                .filter(|i| was.get(&(i.kind, i.name.as_str())) != Some(&i.text.as_str()))
                .collect();
            if changed.is_empty() {
                continue;
            }
            for i in &changed {
                let _ = writeln!(out, "flush {} {} {TABLE} {}", i.kind, new.family, i.name);
            }
            let _ = writeln!(out, "table {} {TABLE} {{", new.family);
            for i in &changed {
                out.push_str(&i.text);
            }
            out.push_str("}\n");
        }
        Some(out)
    }
}

const HEADER: &str = "\
#!/usr/sbin/nft -f
# The data plane of one host, generated by ferrostack-netplane; loaded whole with nft -f.
# Mark: bits 16..30 = index of the guest port a frame came in on, bits 0..15 = of the one it
# goes out on (0 = not a guest port), bit 31 = passed the stateful stage.
table bridge ferrostack {}
delete table bridge ferrostack
table inet ferrostack {}
delete table inet ferrostack
";

fn index(i: usize) -> u32 {
    // Bounded by MAX_PORTS, checked in compile.
    u32::try_from(i + 1).unwrap_or(0)
}

fn in_mark(i: usize) -> u32 {
    index(i) << 16
}

fn bridge_table(ports: &[&HostPort]) -> Table {
    let mut t = Table::new("bridge");
    for (i, p) in ports.iter().enumerate() {
        if p.port_security {
            spoofing_sets(&mut t, index(i), p);
        }
    }
    let taps = |chain: &str| -> String {
        ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("\"{}\" : jump {chain}_p{}", names::tap(&p.id), index(i)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut c = String::from(
        "\tchain prerouting {\n\t\ttype filter hook prerouting priority -300; policy accept;\n",
    );
    c.push_str("\t\tmeta mark set 0x00000000\n");
    if !ports.is_empty() {
        let _ = writeln!(c, "\t\tiifname vmap {{ {} }}", taps("from"));
    }
    let _ = writeln!(
        c,
        "\t\tiifname \"{}*\" counter drop comment \"guest port without rules\"\n\t}}",
        names::TAP_PREFIX
    );
    t.chain("prerouting", c);
    t.chain("from_vm_ip4", FROM_VM_IP4.to_string());
    t.chain("from_vm_ip6", FROM_VM_IP6.to_string());
    for (i, p) in ports.iter().enumerate() {
        t.chain(format!("from_p{}", index(i)), from_port_chain(index(i), p));
    }
    let mut c = String::from(
        "\tchain forward {\n\t\ttype filter hook forward priority -200; policy accept;\n",
    );
    // br_netfilter hands no VLAN-tagged IP to the stateful stage, and the guard below sees
    // their tag, not IP: no tagged frame reaches a guest.
    let _ = writeln!(
        c,
        "\t\tether type {{ 8021q, 8021ad }} oifname \"{}*\" counter drop comment \"VLAN-tagged frame to a guest\"",
        names::TAP_PREFIX
    );
    if !ports.is_empty() {
        let _ = writeln!(c, "\t\toifname vmap {{ {} }}", taps("to"));
    }
    let _ = writeln!(
        c,
        "\t\toifname \"{}*\" counter drop comment \"guest port without rules\"\n\t}}",
        names::TAP_PREFIX
    );
    t.chain("forward", c);
    for i in 0..ports.len() {
        t.chain(
            format!("to_p{}", index(i)),
            format!(
                "\tchain to_p{n} {{ meta mark set meta mark | 0x{n:08x} accept; }}\n",
                n = index(i)
            ),
        );
    }
    t.chain(
        "postrouting",
        format!(
            "\tchain postrouting {{
\t\ttype filter hook postrouting priority 0; policy accept;
\t\tether type {{ ip, ip6 }} meta mark & 0x0000ffff != 0 meta mark & 0x{PASSED:08x} == 0 counter drop comment \"not seen by the stateful stage\"
\t\tmeta mark set 0x00000000
\t}}
"
        ),
    );
    t
}

/// What every guest may not send whatever its rules: DHCP and router advertisement servers.
const FROM_VM_IP4: &str = "\
\tchain from_vm_ip4 {
\t\tudp sport 67 udp dport 68 counter drop comment \"DHCP server in a guest\"
\t\tip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept comment \"DHCP discover/request\"
\t}
";
const FROM_VM_IP6: &str = "\
\tchain from_vm_ip6 {
\t\ticmpv6 type nd-router-advert counter drop comment \"router advertisement from a guest\"
\t\tudp sport 547 udp dport 546 counter drop comment \"DHCPv6 server in a guest\"
\t\tip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } accept comment \"duplicate address detection\"
\t}
";

/// The addresses a port may send from: its fixed IPs and address pairs (each with the MAC it
/// goes with) and the link-local address of its MAC.
struct Sources {
    macs: BTreeSet<String>,
    v4: BTreeSet<(String, IpNet)>,
    v6: BTreeSet<(String, IpNet)>,
}

fn sources(p: &HostPort) -> Sources {
    let mac = p.mac.to_ascii_lowercase();
    let mut s = Sources {
        macs: BTreeSet::from([mac.clone()]),
        v4: BTreeSet::new(),
        v6: BTreeSet::new(),
    };
    let mut add = |mac: &str, net: IpNet| {
        let e = (mac.to_string(), net.trunc());
        match net {
            IpNet::V4(_) => s.v4.insert(e),
            IpNet::V6(_) => s.v6.insert(e),
        };
    };
    for ip in &p.ips {
        add(&mac, IpNet::from(*ip));
    }
    if let Some(ll) = link_local(&mac) {
        add(&mac, IpNet::from(IpAddr::V6(ll)));
    }
    for pair in &p.address_pairs {
        let m = pair.mac.to_ascii_lowercase();
        add(&m, pair.ip);
    }
    for pair in &p.address_pairs {
        s.macs.insert(pair.mac.to_ascii_lowercase());
    }
    // An interval set refuses overlapping elements: a pair covering the port's own address
    // (`0.0.0.0/0`, the subnet, a VRRP range) keeps only the covering one, per MAC.
    s.v4 = without_covered(&s.v4);
    s.v6 = without_covered(&s.v6);
    s
}

/// The elements no other element of the same MAC covers.
fn without_covered(set: &BTreeSet<(String, IpNet)>) -> BTreeSet<(String, IpNet)> {
    set.iter()
        .filter(|(m, net)| {
            !set.iter()
                .any(|(m2, other)| m2 == m && other != net && other.contains(net))
        })
        .cloned()
        .collect()
}

/// The EUI-64 link-local address of a MAC.
pub fn link_local(mac: &str) -> Option<Ipv6Addr> {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if b.len() != 6 {
        return None;
    }
    Some(Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        b[0] ^ 0x02,
        b[1],
        b[2],
        0xff,
        0xfe,
        b[3],
        b[4],
        b[5],
    ]))
}

fn elements<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> String) -> String {
    let v: Vec<String> = items.into_iter().map(f).collect();
    if v.is_empty() {
        String::new()
    } else {
        format!(" elements = {{ {} }};", v.join(", "))
    }
}

fn spoofing_sets(t: &mut Table, n: u32, p: &HostPort) {
    let s = sources(p);
    t.set(
        format!("p{n}_mac"),
        format!(
            "\tset p{n}_mac {{ type ether_addr;{} }}\n",
            elements(&s.macs, |m| m.clone())
        ),
    );
    t.set(
        format!("p{n}_v4"),
        format!(
            "\tset p{n}_v4 {{ type ether_addr . ipv4_addr; flags interval;{} }}\n",
            elements(&s.v4, |(m, ip)| format!("{m} . {ip}"))
        ),
    );
    t.set(
        format!("p{n}_v6"),
        format!(
            "\tset p{n}_v6 {{ type ether_addr . ipv6_addr; flags interval;{} }}\n",
            elements(&s.v6, |(m, ip)| format!("{m} . {ip}"))
        ),
    );
    // The targets a neighbor advertisement may name: nft 1.0.6 has no `icmpv6 taddr`, so the
    // raw payload as a 128-bit number. Only single addresses: a port with an IPv6 prefix among
    // its address pairs is not checked for NA targets (the prefix is its to announce).
    if s.v6.iter().all(|(_, net)| net.prefix_len() == 128) {
        t.set(
            format!("p{n}_nd"),
            format!(
                "\tset p{n}_nd {{ typeof ether saddr . @th,64,128;{} }}\n",
                elements(
                    s.v6.iter().filter_map(|(m, net)| match net.addr() {
                        IpAddr::V6(a) => Some((m, a)),
                        IpAddr::V4(_) => None,
                    }),
                    |(m, a)| format!("{m} . 0x{:032x}", u128::from(a))
                )
            ),
        );
    }
}

fn from_port_chain(n: u32, p: &HostPort) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\tchain from_p{n} {{ # port {}", p.id);
    let _ = writeln!(out, "\t\tmeta mark set 0x{:08x}", n << 16);
    if !p.port_security {
        out.push_str("\t\taccept comment \"port security disabled\"\n\t}\n");
        return out;
    }
    let checks_nd = sources(p).v6.iter().all(|(_, net)| net.prefix_len() == 128);
    let _ = writeln!(
        out,
        "\t\tether saddr != @p{n}_mac counter drop comment \"MAC spoofing\"
\t\tether type arp arp saddr ether . arp saddr ip @p{n}_v4 accept
\t\tether type arp arp saddr ether @p{n}_mac arp saddr ip 0.0.0.0 accept comment \"ARP probe\"
\t\tether type arp counter drop comment \"ARP spoofing\"
\t\tether type ip jump from_vm_ip4
\t\tether type ip ether saddr . ip saddr @p{n}_v4 accept
\t\tether type ip counter drop comment \"IPv4 spoofing\"
\t\tether type ip6 jump from_vm_ip6"
    );
    if checks_nd {
        let _ = writeln!(out, "\t\tether type ip6 icmpv6 type nd-neighbor-advert ether saddr . @th,64,128 != @p{n}_nd counter drop comment \"NA target spoofing\"");
    }
    let _ = writeln!(
        out,
        "\t\tether type ip6 ether saddr . ip6 saddr @p{n}_v6 accept
\t\tether type ip6 counter drop comment \"IPv6 spoofing\"
\t\tcounter drop comment \"other ethertypes\"
\t}}"
    );
    out
}

fn group_set(id: &str, v: EtherType) -> String {
    remote_set(RemoteSet::Group, id, v)
}

/// What an address set of the inet table holds: a security group's members' addresses, or
/// an address group's CIDRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RemoteSet {
    Group,
    AddressGroup,
}

impl RemoteSet {
    fn what(self) -> &'static str {
        match self {
            RemoteSet::Group => "group",
            RemoteSet::AddressGroup => "address group",
        }
    }
}

fn remote_set(kind: RemoteSet, id: &str, v: EtherType) -> String {
    let fam = match v {
        EtherType::IPv4 => "v4",
        EtherType::IPv6 => "v6",
    };
    let prefix = match kind {
        RemoteSet::Group => "sg",
        RemoteSet::AddressGroup => "ag",
    };
    format!("{prefix}_{}_{fam}", names::nft_ident(id))
}

fn inet_table(
    ports: &[&HostPort],
    bridges: &[(String, u16)],
    groups: &BTreeMap<&str, &SecurityGroupRules>,
    // The addresses of remote groups, then of address groups.
    sources: &[&BTreeMap<&str, &[IpNet]>; 2],
) -> Table {
    let mut t = Table::new("inet");
    // The groups of local ports with port security, and the remote groups and address
    // groups their rules name.
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut remotes = BTreeSet::new();
    for p in ports.iter().filter(|p| p.port_security) {
        for g in p
            .security_groups
            .iter()
            .filter_map(|g| groups.get(g.as_str()))
        {
            used.insert(g.id.as_str());
            for r in &g.rules {
                match &r.remote {
                    Remote::Group(rg) => {
                        remotes.insert((RemoteSet::Group, rg.as_str()));
                    }
                    Remote::AddressGroup(ag) => {
                        remotes.insert((RemoteSet::AddressGroup, ag.as_str()));
                    }
                    Remote::Any | Remote::Prefix(_) => {}
                }
            }
        }
    }
    for (kind, rg) in &remotes {
        let from = match kind {
            RemoteSet::Group => sources[0],
            RemoteSet::AddressGroup => sources[1],
        };
        let addrs = from.get(rg).copied().unwrap_or_default();
        for (v, want4) in [(EtherType::IPv4, true), (EtherType::IPv6, false)] {
            let (ty, mut set): (&str, Vec<IpNet>) = if want4 {
                (
                    "ipv4_addr",
                    addrs
                        .iter()
                        .filter(|a| matches!(a, IpNet::V4(_)))
                        .map(IpNet::trunc)
                        .collect(),
                )
            } else {
                (
                    "ipv6_addr",
                    addrs
                        .iter()
                        .filter(|a| matches!(a, IpNet::V6(_)))
                        .map(IpNet::trunc)
                        .collect(),
                )
            };
            set.sort();
            set.dedup();
            // Overlapping intervals are refused: keep only prefixes no other one covers.
            let kept: Vec<IpNet> = set
                .iter()
                .filter(|a| !set.iter().any(|b| b != *a && b.contains(*a)))
                .copied()
                .collect();
            let name = remote_set(*kind, rg, v);
            t.set(
                name.clone(),
                format!(
                    "\tset {name} {{ type {ty}; flags interval;{} }} # {} {rg}\n",
                    elements(kept, |a| a.to_string()),
                    kind.what()
                ),
            );
        }
    }
    let mut c = String::from(
        "\tchain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n",
    );
    if !bridges.is_empty() {
        let zones: Vec<String> = bridges
            .iter()
            .map(|(b, z)| format!("\"{b}\" : {z}"))
            .collect();
        let _ = writeln!(
            c,
            "\t\tct zone set iifname map {{ {} }} comment \"one conntrack zone per network\"",
            zones.join(", ")
        );
    }
    c.push_str("\t}\n");
    t.chain("prerouting", c);

    // Two base chains on the forward hook: the in-port's egress rules first, then the
    // out-port's ingress rules. A rule's `accept` ends its base chain only, so an allowed
    // egress goes on to the ingress stage while a drop ends it all; and a rule can live in
    // its group's chain, which every port of the group jumps to (a rule changed is one chain
    // rewritten, however many ports the group has).
    const STATEFUL: &str = "\
\t\tmeta mark 0x00000000 accept comment \"no guest port involved\"
\t\tct state established,related accept
\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert, mld-listener-query, mld-listener-report, mld2-listener-report } accept comment \"neighbor discovery is untracked\"
\t\tct state invalid counter drop
";
    let mut c = String::from(
        "\tchain egress {\n\t\ttype filter hook forward priority filter - 1; policy accept;\n",
    );
    c.push_str(STATEFUL);
    if !ports.is_empty() {
        let egress: Vec<String> = (0..ports.len())
            .map(|i| format!("0x{:08x} : jump egress_p{}", in_mark(i), index(i)))
            .collect();
        let _ = writeln!(
            c,
            "\t\tmeta mark & 0x7fff0000 vmap {{ {} }}",
            egress.join(", ")
        );
    }
    c.push_str("\t}\n");
    t.chain("egress", c);
    let mut c = format!(
        "\tchain forward {{
\t\ttype filter hook forward priority filter; policy accept;
\t\tmeta mark 0x00000000 accept comment \"no guest port involved\"
\t\tmeta mark set meta mark | 0x{PASSED:08x}
"
    );
    c.push_str(STATEFUL.split_once('\n').map_or("", |(_, rest)| rest));
    if !ports.is_empty() {
        let ingress: Vec<String> = (0..ports.len())
            .map(|i| format!("0x{:08x} : jump ingress_p{}", index(i), index(i)))
            .collect();
        let _ = writeln!(
            c,
            "\t\tmeta mark & 0x0000ffff vmap {{ {} }}",
            ingress.join(", ")
        );
    }
    c.push_str("\t}\n");
    t.chain("forward", c);
    for (i, p) in ports.iter().enumerate() {
        port_chains(&mut t, index(i), p, groups);
    }
    for g in used {
        group_chains(&mut t, groups[g]);
    }
    t
}

/// A group's chain per direction: a rule that matches accepts (which ends the egress or the
/// ingress stage), the rest returns to the port's chain for its next group.
fn group_chain(direction: Direction, id: &str) -> String {
    let dir = match direction {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    };
    format!("{dir}_sg_{}", names::nft_ident(id))
}

fn group_chains(t: &mut Table, g: &SecurityGroupRules) {
    for dir in [Direction::Egress, Direction::Ingress] {
        let name = group_chain(dir, &g.id);
        let mut c = format!("\tchain {name} {{ # group {}\n", g.id);
        for r in g.rules.iter().filter(|r| r.direction == dir) {
            if let Some(m) = rule_match(r) {
                let _ = writeln!(c, "\t\t{m}accept comment \"rule {}\"", r.id);
            }
        }
        c.push_str("\t}\n");
        t.chain(name, c);
    }
}

/// A port's egress and ingress chains: a jump to each of its groups' chains (one accepts
/// what it allows), then drop.
fn port_chains(t: &mut Table, n: u32, p: &HostPort, groups: &BTreeMap<&str, &SecurityGroupRules>) {
    if !p.port_security {
        t.chain(
            format!("egress_p{n}"),
            format!("\tchain egress_p{n} {{ accept; }}\n"),
        );
        t.chain(
            format!("ingress_p{n}"),
            format!("\tchain ingress_p{n} {{ accept; }}\n"),
        );
        return;
    }
    let mut sgs: Vec<&str> = p
        .security_groups
        .iter()
        .map(String::as_str)
        .filter(|g| groups.contains_key(g))
        .collect();
    sgs.sort_unstable();
    sgs.dedup();
    let jumps = |dir: Direction| -> String {
        sgs.iter()
            .map(|g| format!("\t\tjump {}\n", group_chain(dir, g)))
            .collect()
    };
    // A guest's DHCP client always reaches the servers, whatever its groups' egress rules
    // (as Neutron's firewall allows it before them).
    t.chain(
        format!("egress_p{n}"),
        format!(
            "\tchain egress_p{n} {{ # port {}
\t\tudp sport 68 udp dport 67 accept comment \"DHCP client\"
\t\tudp sport 546 udp dport 547 accept comment \"DHCPv6 client\"
{}\t\tcounter drop\n\t}}\n",
            p.id,
            jumps(Direction::Egress)
        ),
    );
    t.chain(
        format!("ingress_p{n}"),
        format!(
            "\tchain ingress_p{n} {{ # port {}
\t\tmeta mark & 0x7fff0000 0 udp sport 67 udp dport 68 accept comment \"DHCP from the network's own ports\"
\t\tmeta mark & 0x7fff0000 0 udp sport 547 udp dport 546 accept comment \"DHCPv6 from the network's own ports\"
{}\t\tcounter drop
\t}}
",
            p.id,
            jumps(Direction::Ingress)
        ),
    );
}

/// The match of one rule (ending in a space), or None when it can match nothing (a prefix of
/// the other IP version).
fn rule_match(r: &FilterRule) -> Option<String> {
    let (ip, fam) = match r.ethertype {
        EtherType::IPv4 => ("ip", "ipv4"),
        EtherType::IPv6 => ("ip6", "ipv6"),
    };
    let side = match r.direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut m = String::new();
    match &r.remote {
        Remote::Any => {
            let _ = write!(m, "meta nfproto {fam} ");
        }
        Remote::Prefix(p) => {
            let same = matches!(
                (p, r.ethertype),
                (IpNet::V4(_), EtherType::IPv4) | (IpNet::V6(_), EtherType::IPv6)
            );
            if !same {
                return None;
            }
            let _ = write!(m, "{ip} {side} {} ", p.trunc());
        }
        Remote::Group(g) => {
            let _ = write!(m, "{ip} {side} @{} ", group_set(g, r.ethertype));
        }
        Remote::AddressGroup(g) => {
            let _ = write!(
                m,
                "{ip} {side} @{} ",
                remote_set(RemoteSet::AddressGroup, g, r.ethertype)
            );
        }
    }
    if let Some(proto) = r.protocol {
        let named = match proto {
            6 => Some("tcp"),
            17 => Some("udp"),
            132 => Some("sctp"),
            _ => None,
        };
        match (named, proto, r.port_min, r.port_max) {
            (Some(l4), _, Some(lo), hi) => {
                let hi = hi.unwrap_or(lo);
                if hi == lo {
                    let _ = write!(m, "{l4} dport {lo} ");
                } else {
                    let _ = write!(m, "{l4} dport {lo}-{hi} ");
                }
            }
            (Some(l4), _, None, _) => {
                let _ = write!(m, "meta l4proto {l4} ");
            }
            (None, 1, ty, code) if r.ethertype == EtherType::IPv4 => {
                icmp(&mut m, "icmp", ty, code);
            }
            (None, 58, ty, code) if r.ethertype == EtherType::IPv6 => {
                icmp(&mut m, "icmpv6", ty, code);
            }
            _ => {
                let _ = write!(m, "meta l4proto {proto} ");
            }
        }
    }
    Some(m)
}

fn icmp(m: &mut String, kw: &str, ty: Option<u16>, code: Option<u16>) {
    match (ty, code) {
        (Some(t), Some(c)) => {
            let _ = write!(m, "{kw} type {t} {kw} code {c} ");
        }
        (Some(t), None) => {
            let _ = write!(m, "{kw} type {t} ");
        }
        _ => {
            let l4 = if kw == "icmp" { "icmp" } else { "ipv6-icmp" };
            let _ = write!(m, "meta l4proto {l4} ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_addresses_are_eui64() {
        assert_eq!(
            link_local("fa:16:3e:00:00:0a")
                .map(|a| a.to_string())
                .as_deref(),
            Some("fe80::f816:3eff:fe00:a")
        );
        assert_eq!(link_local("nonsense"), None);
    }

    #[test]
    fn a_prefix_of_the_other_version_matches_nothing() {
        let r = FilterRule {
            id: "r".into(),
            direction: Direction::Ingress,
            ethertype: EtherType::IPv6,
            protocol: None,
            port_min: None,
            port_max: None,
            remote: Remote::Prefix("10.0.0.0/8".parse().unwrap()),
        };
        assert_eq!(rule_match(&r), None);
    }
}
