//! Wire bodies: each domain type rendered as Neutron shows it (full attribute set; `fields`
//! and attribute policies are applied afterwards on the JSON).

use serde_json::{json, Value};

use crate::model::{Network, Port, SecurityGroup, SecurityGroupRule, Subnet};

/// Neutron's time format (`2024-05-01T10:00:00Z`).
pub fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn network(n: &Network) -> Value {
    json!({
        "id": n.id,
        "name": n.name,
        "tenant_id": n.project_id,
        "project_id": n.project_id,
        "admin_state_up": n.admin_state_up,
        "mtu": n.mtu,
        "status": n.status,
        "subnets": n.subnets,
        "shared": n.shared,
        "availability_zone_hints": n.az_hints,
        "availability_zones": ["nova"],
        "ipv4_address_scope": null,
        "ipv6_address_scope": null,
        "router:external": n.router_external,
        "description": n.description,
        "port_security_enabled": n.port_security_enabled,
        "is_default": n.is_default,
        "l2_adjacency": true,
        "provider:network_type": n.segment.network_type.as_str(),
        "provider:physical_network": n.segment.physical_network,
        "provider:segmentation_id": n.segment.segmentation_id,
        "tags": n.tags,
        "created_at": time(n.created_at),
        "updated_at": time(n.updated_at),
        "revision_number": n.revision_number,
    })
}

pub fn subnet(s: &Subnet) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "tenant_id": s.project_id,
        "project_id": s.project_id,
        "network_id": s.network_id,
        "ip_version": s.ip_version(),
        "subnetpool_id": s.subnetpool_id,
        "enable_dhcp": s.enable_dhcp,
        "ipv6_ra_mode": s.ipv6_ra_mode.map(|m| m.as_str()),
        "ipv6_address_mode": s.ipv6_address_mode.map(|m| m.as_str()),
        "gateway_ip": s.gateway_ip.map(|g| g.to_string()),
        "cidr": s.cidr.to_string(),
        "allocation_pools": s.allocation_pools.iter()
            .map(|p| json!({"start": p.start.to_string(), "end": p.end.to_string()}))
            .collect::<Vec<_>>(),
        "host_routes": s.host_routes.iter()
            .map(|r| json!({"destination": r.destination.to_string(), "nexthop": r.nexthop.to_string()}))
            .collect::<Vec<_>>(),
        "dns_nameservers": s.dns_nameservers.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "description": s.description,
        "service_types": [],
        "segment_id": null,
        "tags": s.tags,
        "created_at": time(s.created_at),
        "updated_at": time(s.updated_at),
        "revision_number": s.revision_number,
    })
}

pub fn port(p: &Port) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "network_id": p.network_id,
        "tenant_id": p.project_id,
        "project_id": p.project_id,
        "mac_address": p.mac_address,
        "admin_state_up": p.admin_state_up,
        "status": p.status.as_str(),
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "fixed_ips": p.fixed_ips.iter()
            .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address.to_string()}))
            .collect::<Vec<_>>(),
        "allowed_address_pairs": p.allowed_address_pairs,
        "extra_dhcp_opts": p.extra_dhcp_opts,
        "security_groups": p.security_groups,
        "description": p.description,
        "binding:vnic_type": p.binding_vnic_type,
        "binding:host_id": p.binding_host_id,
        "binding:vif_type": p.vif_type(),
        "binding:vif_details": if p.binding_host_id.is_empty() { json!({}) } else {
            json!({"port_filter": true, "connectivity": "l2"})
        },
        "binding:profile": p.binding_profile,
        "port_security_enabled": p.port_security_enabled,
        "dns_name": p.dns_name,
        "ip_allocation": "immediate",
        "tags": p.tags,
        "created_at": time(p.created_at),
        "updated_at": time(p.updated_at),
        "revision_number": p.revision_number,
    })
}

pub fn rule(r: &SecurityGroupRule, in_default: bool) -> Value {
    let normalized = r.remote_ip_prefix.map(|p| p.to_string());
    json!({
        "id": r.id,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "security_group_id": r.security_group_id,
        "direction": r.direction.as_str(),
        "ethertype": r.ethertype.as_str(),
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix.map(|p| p.to_string()),
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": r.remote_address_group_id,
        "normalized_cidr": normalized,
        "description": r.description,
        "belongs_to_default_sg": in_default,
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
        "revision_number": r.revision_number,
    })
}

pub fn security_group(g: &SecurityGroup, is_default: bool) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "tenant_id": g.project_id,
        "project_id": g.project_id,
        "description": g.description,
        "security_group_rules": g.rules.iter().map(|r| rule(r, is_default)).collect::<Vec<_>>(),
        "stateful": g.stateful,
        "shared": false,
        "tags": g.tags,
        "created_at": time(g.created_at),
        "updated_at": time(g.updated_at),
        "revision_number": g.revision_number,
    })
}

pub fn router(r: &crate::model::Router) -> Value {
    let gw = r.gw_network_id.as_ref().map(|n| {
        json!({
            "network_id": n,
            "enable_snat": r.enable_snat,
            "external_fixed_ips": r.gw_ips.iter()
                .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address.to_string()}))
                .collect::<Vec<_>>(),
        })
    });
    json!({
        "id": r.id,
        "name": r.name,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "admin_state_up": r.admin_state_up,
        "status": r.status,
        "external_gateway_info": gw,
        "routes": r.routes.iter()
            .map(|x| json!({"destination": x.destination.to_string(), "nexthop": x.nexthop.to_string()}))
            .collect::<Vec<_>>(),
        "description": r.description,
        "availability_zone_hints": r.az_hints,
        "availability_zones": ["nova"],
        "tags": r.tags,
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
        "revision_number": r.revision_number,
    })
}

pub fn interface(i: &crate::app::routers::InterfaceInfo) -> Value {
    json!({
        "id": i.router_id,
        "tenant_id": i.project_id,
        "project_id": i.project_id,
        "port_id": i.port_id,
        "network_id": i.network_id,
        "subnet_id": i.subnet_id,
        "subnet_ids": i.subnet_ids,
    })
}

pub fn floating_ip(f: &crate::model::FloatingIp) -> Value {
    json!({
        "id": f.id,
        "tenant_id": f.project_id,
        "project_id": f.project_id,
        "floating_network_id": f.floating_network_id,
        "floating_ip_address": f.floating_ip_address.to_string(),
        "router_id": f.router_id,
        "port_id": f.port_id,
        "fixed_ip_address": f.fixed_ip_address.map(|a| a.to_string()),
        "status": f.status.as_str(),
        "description": f.description,
        "tags": f.tags,
        "created_at": time(f.created_at),
        "updated_at": time(f.updated_at),
        "revision_number": f.revision_number,
    })
}

pub fn address_group(g: &crate::model::AddressGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "tenant_id": g.project_id,
        "project_id": g.project_id,
        "addresses": g.addresses.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        "shared": false,
        "created_at": time(g.created_at),
        "updated_at": time(g.updated_at),
        "revision_number": g.revision_number,
    })
}

pub fn subnetpool(p: &crate::model::SubnetPool) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "tenant_id": p.project_id,
        "project_id": p.project_id,
        "prefixes": p.prefixes.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        "ip_version": p.ip_version,
        "default_prefixlen": p.default_prefixlen,
        "min_prefixlen": p.min_prefixlen,
        "max_prefixlen": p.max_prefixlen,
        "shared": p.shared,
        "is_default": p.is_default,
        "default_quota": p.default_quota,
        "address_scope_id": null,
        "description": p.description,
        "tags": p.tags,
        "created_at": time(p.created_at),
        "updated_at": time(p.updated_at),
        "revision_number": p.revision_number,
    })
}

pub fn rbac(p: &crate::model::RbacPolicy) -> Value {
    json!({
        "id": p.id,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "object_type": "network",
        "object_id": p.object_id,
        "action": p.action.as_str(),
        "target_tenant": p.target_project,
        "target_project": p.target_project,
    })
}
