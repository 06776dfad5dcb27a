//! Where routers run, and what a host's data plane builds of them. A router with ports is
//! scheduled to one live data-plane host (the one running the fewest routers) by binding its
//! ports there, as Neutron binds a router's ports to its L3 agent's host; when that host's
//! agent has been silent longer than the down time, the router moves to a live host (the next
//! time any live host asks for its networking), so its traffic comes back without an operator.

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_agent_api as proto;
use ferrostack_store::now_micros;
use ipnet::IpNet;

use crate::db::{self, Conn};
use crate::error::Result;
use crate::model::{FloatingIpStatus, Port, PortStatus, OWNER_ROUTER_GATEWAY};
use crate::NetworkService;

impl NetworkService {
    /// The data-plane hosts whose agents reported within the down time.
    async fn live_hosts(&self, conn: &mut Conn) -> Result<BTreeSet<String>> {
        let now = now_micros();
        let down = self.config.agent_down_micros();
        Ok(db::hosts::list(conn)
            .await?
            .into_iter()
            .filter(|h| now - h.heartbeat_at < down)
            .map(|h| h.host)
            .collect())
    }

    /// Places router `id` on a host: it stays where its ports are bound while that host is
    /// alive; otherwise it goes to the live host running the fewest routers. A router
    /// without ports runs nowhere; one whose hosts are all silent stays until one is back.
    /// The hosts it leaves and joins, and those sharing its networks, are woken; true when
    /// it was placed anew (and they were).
    pub async fn schedule_router(&self, id: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        // Racing schedulers (two hosts failing it over) queue on the router's row.
        db::lock_row(&mut tx, "routers", id).await?;
        let placed = db::ports::router_hosts(&mut tx).await?;
        let current: BTreeSet<&str> = placed
            .iter()
            .filter(|(r, _)| r == id)
            .map(|(_, h)| h.as_str())
            .collect();
        if current.is_empty() {
            return Ok(false);
        }
        let live = self.live_hosts(&mut tx).await?;
        let target = match current.iter().find(|h| live.contains(**h)) {
            Some(h) => h.to_string(),
            None => {
                let mut load: BTreeMap<&str, usize> =
                    live.iter().map(|h| (h.as_str(), 0)).collect();
                for (_, h) in placed.iter().filter(|(r, _)| r != id) {
                    if let Some(n) = load.get_mut(h.as_str()) {
                        *n += 1;
                    }
                }
                match load.iter().min_by_key(|(h, n)| (**n, **h)) {
                    Some((h, _)) => h.to_string(),
                    None => return Ok(false),
                }
            }
        };
        if current.len() == 1 && current.contains(target.as_str()) {
            return Ok(false);
        }
        let from: Vec<String> = current
            .iter()
            .filter(|h| !h.is_empty() && **h != target)
            .map(|h| h.to_string())
            .collect();
        db::ports::bind_router_ports(&mut tx, id, &target, now_micros()).await?;
        tx.commit().await?;
        if !from.is_empty() {
            tracing::info!(router = id, from = ?from, to = %target, "router moved to a live host");
        }
        self.wake_hosts(&from);
        self.wake_router(id).await;
        Ok(true)
    }

    /// Schedules every router whose host is silent (or that has an unbound port). Called
    /// when a live host asks for its networking, so a router never waits for an operator.
    pub(crate) async fn fail_over_routers(&self) -> Result<()> {
        let mut conn = self.read().await?;
        let stranded =
            db::ports::stranded_routers(&mut conn, now_micros() - self.config.agent_down_micros())
                .await?;
        drop(conn);
        for id in stranded {
            self.schedule_router(&id).await?;
        }
        Ok(())
    }

    /// Schedules router `id` after a change, best effort (a failure is logged: the next
    /// host to ask for its networking schedules it again), and wakes the hosts it was on.
    pub(crate) async fn router_changed(&self, id: &str, was_on: &[String]) {
        let woken = match self.schedule_router(id).await {
            Ok(placed) => placed,
            Err(e) => {
                tracing::warn!(router = id, error = %e, "scheduling a router");
                false
            }
        };
        self.wake_hosts(was_on);
        if !woken {
            self.wake_router(id).await;
        }
    }

    /// The hosts of the networks router `id` has ports on (its own host among them).
    pub(crate) async fn router_hosts_now(&self, id: &str) -> Vec<String> {
        let Ok(mut conn) = self.read().await else {
            return Vec::new();
        };
        db::hosts::select_hosts(&mut conn, ROUTER_NETWORK_HOSTS, id)
            .await
            .unwrap_or_default()
    }

    /// Wakes the hosts of the networks router `id` has ports on (its own host among them).
    pub(crate) async fn wake_router(&self, id: &str) {
        let hosts = self.router_hosts_now(id).await;
        self.wake_hosts(&hosts);
    }

    pub(crate) fn wake_hosts(&self, hosts: &[String]) {
        if let Some(wake) = self.host_waker.get() {
            hosts.iter().filter(|h| !h.is_empty()).for_each(|h| wake(h));
        }
    }

    /// The host router `id` runs on (none while it runs nowhere); 404 for no router.
    pub async fn router_host(&self, id: &str) -> Result<Vec<String>> {
        let mut conn = self.read().await?;
        if db::routers::get(&mut conn, id).await?.is_none() {
            return Err(crate::error::NetworkError::not_found(
                "RouterNotFound",
                format!("Router {id} could not be found"),
            ));
        }
        Ok(db::ports::router_hosts(&mut conn)
            .await?
            .into_iter()
            .filter(|(r, h)| r == id && !h.is_empty())
            .map(|(_, h)| h)
            .collect())
    }

    /// The host serving network `id`'s DHCP (none while nobody does); 404 for no network.
    pub async fn dhcp_host(&self, id: &str) -> Result<Vec<String>> {
        let mut conn = self.read().await?;
        if db::networks::get(&mut conn, id).await?.is_none() {
            return Err(crate::error::NetworkError::network_not_found(id));
        }
        Ok(db::ports::list(
            &mut conn,
            &db::ports::PortQuery {
                network_id: Some(id),
                device_owner: Some(crate::model::OWNER_DHCP),
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .map(|p| p.binding_host_id)
        .filter(|h| !h.is_empty())
        .collect())
    }

    /// The routers `host` runs, as its data plane builds them, and the networks their ports
    /// are on.
    pub(crate) async fn host_routers(
        &self,
        host: &str,
    ) -> Result<(Vec<proto::HostRouter>, BTreeSet<String>)> {
        let mut conn = self.read().await?;
        let ids = db::ports::routers_on(&mut conn, host).await?;
        let mut out = Vec::new();
        let mut networks = BTreeSet::new();
        for id in ids {
            let Some(r) = db::routers::get(&mut conn, &id).await? else {
                continue;
            };
            let ports = db::ports::list(
                &mut conn,
                &db::ports::PortQuery {
                    device_id: Some(&id),
                    binding_host: Some(host),
                    ..Default::default()
                },
            )
            .await?;
            let mut router = proto::HostRouter {
                id: id.clone(),
                interfaces: Vec::new(),
                gateway: None,
                routes: r
                    .routes
                    .iter()
                    .map(|x| (x.destination, x.nexthop))
                    .collect(),
                floating_ips: Vec::new(),
                port_forwardings: Vec::new(),
            };
            for p in &ports {
                let Some(wire) = router_port(&mut conn, p).await? else {
                    continue;
                };
                networks.insert(p.network_id.clone());
                if p.device_owner == OWNER_ROUTER_GATEWAY {
                    let mut next_hops = Vec::new();
                    for f in &p.fixed_ips {
                        if let Some(s) = db::subnets::get(&mut conn, &f.subnet_id).await? {
                            next_hops.extend(s.gateway_ip);
                        }
                    }
                    router.gateway = Some(proto::RouterGateway {
                        port: wire,
                        next_hops,
                        enable_snat: r.enable_snat,
                    });
                } else {
                    router.interfaces.push(wire);
                }
            }
            if router.gateway.is_some() {
                let fips = db::floating_ips::for_router(&mut conn, &id).await?;
                for f in &fips {
                    if f.port_id.is_some() {
                        continue;
                    }
                    for pf in db::port_forwardings::of_floating_ip(&mut conn, &f.id).await? {
                        router.port_forwardings.push(proto::PortForward {
                            id: pf.id,
                            floating_ip_id: f.id.clone(),
                            floating_ip: f.floating_ip_address,
                            protocol: pf.protocol,
                            external_port: pf.external_port,
                            internal_ip: pf.internal_ip_address,
                            internal_port: pf.internal_port,
                        });
                    }
                }
                router.floating_ips = fips
                    .into_iter()
                    .filter_map(|f| {
                        f.port_id.as_ref()?;
                        Some(proto::FloatingNat {
                            id: f.id,
                            floating_ip: f.floating_ip_address,
                            fixed_ip: f.fixed_ip_address?,
                        })
                    })
                    .collect();
            }
            if !r.admin_state_up {
                // An administratively down router forwards nothing: no ports on its host.
                router.interfaces.clear();
                router.gateway = None;
                router.floating_ips.clear();
                router.port_forwardings.clear();
            }
            out.push(router);
        }
        Ok((out, networks))
    }

    /// Applies `host`'s report of its routers: the ports of those set up are ACTIVE (the
    /// others DOWN), and so are the floating IPs it translates.
    pub(crate) async fn apply_router_report(
        &self,
        host: &str,
        report: &proto::NetworkingReport,
    ) -> Result<()> {
        let up: BTreeSet<&str> = report.routers.iter().map(String::as_str).collect();
        let translated: BTreeSet<&str> = report.floating_ips.iter().map(String::as_str).collect();
        let mut tx = self.write().await?;
        let ids = db::ports::routers_on(&mut tx, host).await?;
        let now = now_micros();
        for id in &ids {
            let active = up.contains(id.as_str());
            let ports = db::ports::list(
                &mut tx,
                &db::ports::PortQuery {
                    device_id: Some(id),
                    binding_host: Some(host),
                    ..Default::default()
                },
            )
            .await?;
            let status = if active {
                PortStatus::Active
            } else {
                PortStatus::Down
            };
            for p in ports.iter().filter(|p| p.status != status) {
                db::ports::set_status(&mut tx, &p.id, status, now).await?;
            }
            for f in db::floating_ips::for_router(&mut tx, id).await? {
                let want = if active && translated.contains(f.id.as_str()) {
                    FloatingIpStatus::Active
                } else {
                    FloatingIpStatus::Down
                };
                if f.status != want {
                    db::floating_ips::set_status(&mut tx, &f.id, want, now).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Hosts with ports on the networks of router `$1`'s ports.
const ROUTER_NETWORK_HOSTS: &str = "SELECT DISTINCT binding_host_id FROM ports \
     WHERE binding_host_id <> '' AND network_id IN (SELECT network_id FROM ports WHERE device_id = $1)";

/// A router's port as its host wires it: the addresses with their subnets' prefixes.
async fn router_port(conn: &mut Conn, p: &Port) -> Result<Option<proto::RouterPort>> {
    let Some(net) = db::networks::get(conn, &p.network_id).await? else {
        return Ok(None);
    };
    let mut addresses = Vec::new();
    let mut ipv6_subnets: Vec<proto::Ipv6Subnet> = Vec::new();
    // An interface advertises its IPv6 subnets (Neutron's radvd); a gateway hears the
    // outside's advertisements instead.
    let interface = p.device_owner != OWNER_ROUTER_GATEWAY;
    for f in &p.fixed_ips {
        if let Some(s) = db::subnets::get(conn, &f.subnet_id).await? {
            if let Ok(a) = IpNet::new(f.ip_address, s.cidr.prefix_len()) {
                addresses.push(a);
            }
            if interface
                && s.cidr.addr().is_ipv6()
                && !ipv6_subnets.iter().any(|x| x.cidr == s.cidr)
            {
                ipv6_subnets.push(proto::Ipv6Subnet {
                    cidr: s.cidr,
                    ra_mode: s.ipv6_ra_mode.map(wire_mode),
                    dns_nameservers: s.dns_nameservers.clone(),
                });
            }
        }
    }
    Ok(Some(proto::RouterPort {
        port_id: p.id.clone(),
        network_id: p.network_id.clone(),
        mac: p.mac_address.clone(),
        addresses,
        mtu: u32::try_from(net.mtu).unwrap_or(1500),
        ipv6_subnets,
    }))
}

/// A subnet's IPv6 mode as the agent protocol carries it.
pub(crate) fn wire_mode(m: crate::model::Ipv6Mode) -> proto::Ipv6Mode {
    match m {
        crate::model::Ipv6Mode::Slaac => proto::Ipv6Mode::Slaac,
        crate::model::Ipv6Mode::Dhcpv6Stateful => proto::Ipv6Mode::Dhcpv6Stateful,
        crate::model::Ipv6Mode::Dhcpv6Stateless => proto::Ipv6Mode::Dhcpv6Stateless,
    }
}
