//! The networking a host's agent should build (its bound ports, their networks with the other
//! hosts' VXLAN endpoints, their security groups and the addresses of remote groups), and what
//! its reports change (ports wired on their host become ACTIVE). The agent protocol's types
//! are the answer; the compute service's agent link calls these for each host.

use std::collections::{BTreeMap, BTreeSet};

use ferrostack_agent_api as proto;
use ferrostack_store::now_micros;
use ipnet::IpNet;

use crate::db::{self, Conn};
use crate::error::Result;
use crate::model::{
    Direction, EtherType, NetworkType, Port, PortStatus, SecurityGroupRule, Subnet, OWNER_DHCP,
};
use crate::NetworkService;

impl NetworkService {
    /// Records that `host` runs a data plane whose VXLAN tunnels end at `vtep` (its agent's
    /// registration; again at every heartbeat).
    pub async fn register_host(&self, host: &str, vtep: proto::Vtep) -> Result<()> {
        let mut tx = self.write().await?;
        db::hosts::upsert(&mut tx, host, &vtep.ip.to_string(), vtep.port, now_micros()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Everything `host`'s data plane should carry: the ports bound to it, and `also`
    /// (ports of guests moving to or from it, bound to the other side).
    pub async fn host_networking(
        &self,
        host: &str,
        also: &[String],
    ) -> Result<proto::HostNetworking> {
        if let Err(e) = self.fail_over_routers().await {
            tracing::warn!(error = %e, "moving the routers of silent hosts");
        }
        let (routers, router_networks) = self.host_routers(host).await?;
        let mut conn = self.read().await?;
        let mut ports: Vec<Port> = db::ports::list(
            &mut conn,
            &db::ports::PortQuery {
                binding_host: Some(host),
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .filter(|p| !super::is_service_owner(&p.device_owner))
        .collect();
        for id in also {
            if !ports.iter().any(|p| p.id == *id) {
                if let Some(p) = db::ports::get(&mut conn, id).await? {
                    ports.push(p);
                }
            }
        }
        if ports.is_empty() && routers.is_empty() {
            return Ok(proto::HostNetworking::default());
        }
        let vteps: BTreeMap<String, proto::Vtep> = db::hosts::list(&mut conn)
            .await?
            .into_iter()
            .map(|h| {
                let vtep = proto::Vtep {
                    ip: h.vtep_ip,
                    port: h.vtep_port,
                };
                (h.host, vtep)
            })
            .collect();
        let mut out = proto::HostNetworking::default();
        let guest_networks: BTreeSet<&str> = ports.iter().map(|p| p.network_id.as_str()).collect();
        let network_ids: BTreeSet<&str> = guest_networks
            .iter()
            .copied()
            .chain(router_networks.iter().map(String::as_str))
            .collect();
        for id in network_ids {
            if let Some(n) = db::networks::get(&mut conn, id).await? {
                out.networks
                    .push(segment(&mut conn, &n, host, &vteps).await?);
            }
        }
        // DHCP goes with guests: a network only a router of this host is on is served
        // where its guests are.
        let carried: Vec<String> = out
            .networks
            .iter()
            .filter(|n| guest_networks.contains(n.id.as_str()))
            .map(|n| n.id.clone())
            .collect();
        out.routers = routers;
        drop(conn);
        out.dhcp = self.dhcp_servers(host, &carried).await?;
        let mut conn = self.read().await?;
        let mut groups = BTreeSet::new();
        for p in &ports {
            groups.extend(p.security_groups.iter().cloned());
            out.ports.push(host_port(p));
        }
        let mut remotes = BTreeSet::new();
        let mut address_groups = BTreeSet::new();
        for g in &groups {
            let rules = db::security_groups::rules_of(&mut conn, g).await?;
            remotes.extend(rules.iter().filter_map(|r| r.remote_group_id.clone()));
            address_groups.extend(
                rules
                    .iter()
                    .filter_map(|r| r.remote_address_group_id.clone()),
            );
            out.security_groups.push(proto::SecurityGroupRules {
                id: g.clone(),
                rules: rules.iter().filter_map(filter_rule).collect(),
            });
        }
        for g in remotes {
            let (ips, pairs) = db::ports::group_member_addresses(&mut conn, &g).await?;
            let mut addresses: BTreeSet<IpNet> = ips.into_iter().map(IpNet::from).collect();
            addresses.extend(
                pairs
                    .iter()
                    .filter_map(|a| crate::ipam::parse_prefix(a).ok()),
            );
            out.remote_groups.push(proto::GroupMembers {
                id: g,
                addresses: addresses.into_iter().collect(),
            });
        }
        for ag in address_groups {
            // A group deleted meanwhile (its rules go first) is an empty set.
            let addresses = db::address_groups::get(&mut conn, &ag)
                .await?
                .map(|g| g.addresses)
                .unwrap_or_default();
            out.address_groups
                .push(proto::GroupMembers { id: ag, addresses });
        }
        Ok(out)
    }

    /// Whether every one of `ports` is ACTIVE (wired on its host); a port that does not
    /// exist is not.
    /// Whether the ports of a guest on `host` are wired there as far as they will be: every
    /// one ACTIVE, except those administratively down (never wired); true at once for a host
    /// without a data plane (nothing would ever wire them).
    pub async fn ports_are_active(&self, ports: &[String], host: &str) -> Result<bool> {
        let mut conn = self.read().await?;
        if !db::hosts::list(&mut conn)
            .await?
            .iter()
            .any(|h| h.host == host)
        {
            return Ok(true);
        }
        for id in ports {
            match db::ports::get(&mut conn, id).await? {
                Some(p) if p.status == PortStatus::Active || !p.admin_state_up => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Applies `host`'s report: its bound ports it wired are ACTIVE, the others DOWN.
    pub async fn apply_host_report(
        &self,
        host: &str,
        report: &proto::NetworkingReport,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let ports = db::ports::list(
            &mut tx,
            &db::ports::PortQuery {
                binding_host: Some(host),
                ..Default::default()
            },
        )
        .await?;
        let wired: BTreeSet<&str> = report.wired.iter().map(String::as_str).collect();
        let now = now_micros();
        for p in ports
            .iter()
            .filter(|p| !super::is_service_owner(&p.device_owner))
        {
            let status = if wired.contains(p.id.as_str()) {
                PortStatus::Active
            } else {
                PortStatus::Down
            };
            if p.status != status {
                db::ports::set_status(&mut tx, &p.id, status, now).await?;
            }
        }
        tx.commit().await?;
        self.apply_router_report(host, report).await
    }
}

impl NetworkService {
    /// Wakes the agents of the hosts carrying network `network_id` (a port, subnet or DHCP
    /// entry of it changed). Best effort: an agent not woken converges at its next resync.
    pub(crate) async fn wake_network(&self, network_id: &str) {
        self.wake_where(
            "SELECT DISTINCT binding_host_id FROM ports WHERE network_id = $1 AND binding_host_id <> ''",
            network_id,
        )
        .await
    }

    /// Wakes the agents of the hosts whose ports' filters security group `group_id` touches:
    /// its members' hosts, and those of ports in groups that name it as their remote group.
    pub(crate) async fn wake_group(&self, group_id: &str) {
        self.wake_where(
            "SELECT DISTINCT p.binding_host_id FROM ports p JOIN port_security_groups g ON g.port_id = p.id \
             WHERE p.binding_host_id <> '' AND (g.security_group_id = $1 OR g.security_group_id IN \
             (SELECT security_group_id FROM security_group_rules WHERE remote_group_id = $1))",
            group_id,
        )
        .await
    }

    /// Wakes the hosts of ports in security groups whose rules name address group `id`.
    pub(crate) async fn wake_address_group(&self, id: &str) {
        self.wake_where(
            "SELECT DISTINCT p.binding_host_id FROM ports p JOIN port_security_groups g ON g.port_id = p.id \
             WHERE p.binding_host_id <> '' AND g.security_group_id IN \
             (SELECT security_group_id FROM security_group_rules WHERE remote_address_group_id = $1)",
            id,
        )
        .await
    }

    async fn wake_where(&self, sql: &str, id: &str) {
        let Some(wake) = self.host_waker.get() else {
            return;
        };
        let hosts = match self.read().await {
            Ok(mut conn) => db::hosts::select_hosts(&mut conn, sql, id).await,
            Err(e) => {
                tracing::warn!(error = %e, "finding the hosts to wake");
                return;
            }
        };
        match hosts {
            Ok(hosts) => hosts.iter().for_each(|h| wake(h)),
            Err(e) => tracing::warn!(error = %e, "finding the hosts to wake"),
        }
    }
}

// A host's DHCP servers move to another host once its agent has been silent for the
// agent down time (`NetworkConfig::agent_down_time`); a host that no longer carries a
// network gives its DHCP up at once.

impl NetworkService {
    /// The DHCP servers `host` runs among the networks it carries (`networks`): a network
    /// with DHCP on is served by the host its DHCP port is bound to. The first host that
    /// carries it makes that port; a live host takes it over from one whose agent went
    /// silent (the DHCP agent's HA, without a scheduler of its own).
    async fn dhcp_servers(
        &self,
        host: &str,
        networks: &[String],
    ) -> Result<Vec<proto::DhcpServer>> {
        let mut out = Vec::new();
        for id in networks {
            let mut conn = self.read().await?;
            let subnets: Vec<Subnet> = db::subnets::for_network(&mut conn, id)
                .await?
                .into_iter()
                .filter(|s| s.enable_dhcp && s.ip_version() == 4)
                .collect();
            if subnets.is_empty() {
                continue;
            }
            // A host may keep the network's DHCP while its agent is alive and it still
            // carries the network (a guest port of it is bound there).
            let carriers: BTreeSet<String> = db::ports::hosts_on_network(&mut conn, id)
                .await?
                .into_iter()
                .filter(|(_, owner)| !super::is_service_owner(owner))
                .map(|(host, _)| host)
                .collect();
            let alive: BTreeSet<String> = db::hosts::list(&mut conn)
                .await?
                .into_iter()
                .filter(|h| now_micros() - h.heartbeat_at < self.config.agent_down_micros())
                .map(|h| h.host)
                .filter(|h| carriers.contains(h))
                .collect();
            let current = dhcp_port(&mut conn, id).await?;
            drop(conn);
            let port = match current {
                Some(p) if p.binding_host_id == host => p,
                Some(p) if alive.contains(&p.binding_host_id) => continue,
                _ => match self.take_dhcp(host, id, &alive).await? {
                    Some(p) => p,
                    None => continue,
                },
            };
            let mut conn = self.read().await?;
            let Some(net) = db::networks::get(&mut conn, id).await? else {
                continue;
            };
            let on_network = db::ports::addresses_on_network(&mut conn, id).await?;
            let served: BTreeMap<&str, &Subnet> =
                subnets.iter().map(|s| (s.id.as_str(), s)).collect();
            let hosts = on_network
                .into_iter()
                .filter(|a| a.port_id != port.id && served.contains_key(a.subnet_id.as_str()))
                .map(|a| proto::DhcpHost {
                    hostname: if a.dns_name.is_empty() {
                        format!("host-{}", a.ip_address.to_string().replace(['.', ':'], "-"))
                    } else {
                        a.dns_name
                    },
                    mac: a.mac_address,
                    ip: a.ip_address,
                })
                .collect();
            let addresses = port
                .fixed_ips
                .iter()
                .filter_map(|f| {
                    let s = served.get(f.subnet_id.as_str())?;
                    IpNet::new(f.ip_address, s.cidr.prefix_len()).ok()
                })
                .collect();
            out.push(proto::DhcpServer {
                network_id: id.clone(),
                port_id: port.id.clone(),
                mac: port.mac_address.clone(),
                addresses,
                mtu: u32::try_from(net.mtu).unwrap_or(1500),
                subnets: subnets
                    .iter()
                    .map(|s| proto::DhcpSubnet {
                        id: s.id.clone(),
                        cidr: s.cidr,
                        gateway: s.gateway_ip,
                        dns_nameservers: s.dns_nameservers.clone(),
                        host_routes: s
                            .host_routes
                            .iter()
                            .map(|r| (r.destination, r.nexthop))
                            .collect(),
                        ipv6_address_mode: s.ipv6_address_mode.map(super::router_hosts::wire_mode),
                    })
                    .collect(),
                hosts,
            });
        }
        Ok(out)
    }

    /// Makes network `id`'s DHCP port bound to `host`, or binds it to `host` when the host it
    /// is bound to is not alive; None when another live host got it first.
    async fn take_dhcp(
        &self,
        host: &str,
        id: &str,
        alive: &BTreeSet<String>,
    ) -> Result<Option<Port>> {
        let mut tx = self.write().await?;
        // Racing hosts queue on the network's row; the first one makes the port.
        db::lock_row(&mut tx, "networks", id).await?;
        let Some(net) = db::networks::get(&mut tx, id).await? else {
            return Ok(None);
        };
        let mut port = match dhcp_port(&mut tx, id).await? {
            Some(p) if p.binding_host_id == host => return Ok(Some(p)),
            Some(p) if alive.contains(&p.binding_host_id) => return Ok(None),
            Some(p) => p,
            None => {
                self.service_port(
                    &mut tx,
                    &net,
                    &net.project_id,
                    OWNER_DHCP,
                    &format!("dhcp-{id}"),
                    None,
                )
                .await?
            }
        };
        let from = std::mem::replace(&mut port.binding_host_id, host.to_string());
        port.revision_number += 1;
        port.updated_at = now_micros();
        db::ports::update(&mut tx, &port).await?;
        tx.commit().await?;
        if !from.is_empty() {
            tracing::info!(network = id, from = %from, to = host, "DHCP server moved to a live host");
        }
        Ok(Some(port))
    }
}

/// The network's DHCP port, if it has one.
async fn dhcp_port(conn: &mut Conn, network_id: &str) -> Result<Option<Port>> {
    Ok(db::ports::list(
        conn,
        &db::ports::PortQuery {
            network_id: Some(network_id),
            device_owner: Some(OWNER_DHCP),
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .next())
}

/// A network as `host` carries it: a VXLAN network lists the other hosts with ports on it
/// and those ports' MACs.
async fn segment(
    conn: &mut Conn,
    n: &crate::model::Network,
    host: &str,
    vteps: &BTreeMap<String, proto::Vtep>,
) -> Result<proto::NetSegment> {
    let mtu = u32::try_from(n.mtu).unwrap_or(1500);
    let seg = &n.segment;
    let kind = match seg.network_type {
        NetworkType::Flat => proto::SegmentKind::Flat {
            physical_network: seg.physical_network.clone().unwrap_or_default(),
        },
        NetworkType::Vlan => proto::SegmentKind::Vlan {
            physical_network: seg.physical_network.clone().unwrap_or_default(),
            vlan: seg
                .segmentation_id
                .and_then(|v| u16::try_from(v).ok())
                .unwrap_or(0),
        },
        NetworkType::Vxlan => {
            let mut peers: BTreeMap<proto::Vtep, BTreeSet<String>> = BTreeMap::new();
            for (other, mac) in db::ports::remote_macs(conn, &n.id, host).await? {
                if let Some(v) = vteps.get(&other) {
                    peers.entry(*v).or_default().insert(mac);
                }
            }
            proto::SegmentKind::Vxlan {
                vni: seg
                    .segmentation_id
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(0),
                peers: peers
                    .into_iter()
                    .map(|(vtep, macs)| proto::VxlanPeer {
                        vtep,
                        macs: macs.into_iter().collect(),
                    })
                    .collect(),
            }
        }
    };
    Ok(proto::NetSegment {
        id: n.id.clone(),
        mtu,
        kind,
    })
}

fn host_port(p: &Port) -> proto::HostPort {
    proto::HostPort {
        id: p.id.clone(),
        network_id: p.network_id.clone(),
        mac: p.mac_address.clone(),
        ips: p.fixed_ips.iter().map(|f| f.ip_address).collect(),
        address_pairs: p
            .allowed_address_pairs
            .iter()
            .filter_map(|a| {
                Some(proto::AddressPair {
                    mac: a.mac_address.clone(),
                    ip: crate::ipam::parse_prefix(&a.ip_address).ok()?,
                })
            })
            .collect(),
        port_security: p.port_security_enabled,
        security_groups: p.security_groups.clone(),
        admin_state_up: p.admin_state_up,
    }
}

/// A rule as the data plane filters with it; None for what it cannot express (a protocol
/// without a number).
fn filter_rule(r: &SecurityGroupRule) -> Option<proto::FilterRule> {
    let remote = match (
        &r.remote_ip_prefix,
        &r.remote_group_id,
        &r.remote_address_group_id,
    ) {
        (Some(p), _, _) => proto::Remote::Prefix(*p),
        (None, Some(g), _) => proto::Remote::Group(g.clone()),
        (None, None, Some(ag)) => proto::Remote::AddressGroup(ag.clone()),
        (None, None, None) => proto::Remote::Any,
    };
    let port = |v: Option<i64>| v.and_then(|x| u16::try_from(x).ok());
    Some(proto::FilterRule {
        id: r.id.clone(),
        direction: match r.direction {
            Direction::Ingress => proto::Direction::Ingress,
            Direction::Egress => proto::Direction::Egress,
        },
        ethertype: match r.ethertype {
            EtherType::V4 => proto::EtherType::IPv4,
            EtherType::V6 => proto::EtherType::IPv6,
        },
        protocol: match r.protocol.as_deref() {
            None | Some("any") => None,
            Some(p) => Some(super::security_groups::protocol_number(p)?),
        },
        port_min: port(r.port_range_min),
        port_max: port(r.port_range_max),
        remote,
    })
}
