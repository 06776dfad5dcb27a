//! Behaviour of the built-in Neutron (network) defaults.

// Test code: a panic is a failed test, and test data stays in range.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::collections::BTreeMap;

use ferrostack_policy::{Credentials, Enforcer, Scope};
use serde_json::{json, Value};

const NETWORK_YAML: &str = include_str!("../src/defaults/network.yaml");

/// Role sets as keystone's implied roles expand them.
const ADMIN: &[&str] = &["admin", "manager", "member", "reader"];
const MANAGER: &[&str] = &["manager", "member", "reader"];
const MEMBER: &[&str] = &["member", "reader"];
const READER: &[&str] = &["reader"];

fn user(project: &str, roles: &[&str]) -> Credentials {
    Credentials {
        user_id: format!("u-{project}"),
        user_domain_id: "default".into(),
        project_id: Some(project.into()),
        project_domain_id: Some("default".into()),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Credentials::default()
    }
}

/// An admin of the cloud's admin project: a cloud admin.
fn cloud_admin() -> Credentials {
    Credentials {
        is_admin_project: true,
        ..user("admin", ADMIN)
    }
}

/// Nova, as Neutron's service user.
fn service() -> Credentials {
    user("service", &["service"])
}

fn network(project: &str, shared: bool, external: bool) -> Value {
    json!({"id": "net-1", "project_id": project, "shared": shared, "router:external": external})
}

#[test]
fn defaults_load_with_every_neutron_rule() {
    let e = Enforcer::try_with_defaults().expect("embedded defaults load");

    // Every rule of network.yaml is loaded as written (no other defaults file replaced it).
    let entries: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(NETWORK_YAML).unwrap();
    assert_eq!(entries.len(), 362);
    for (name, entry) in &entries {
        let check = match entry {
            serde_yaml::Value::String(s) => s.clone(),
            other => other["check"].as_str().unwrap().to_owned(),
        };
        let check = check.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(e.check_str(name), Some(check.as_str()), "{name}");
        // Every rule reference resolves.
        for tok in check.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
            if let Some(target) = tok.strip_prefix("rule:") {
                assert!(
                    e.has_rule(target),
                    "{name} references unknown rule {target}"
                );
            }
        }
        // Actions are project-scoped, as Neutron declares them; base rules have no scope.
        let scopes = e.scope_types(name).unwrap();
        assert!(
            scopes.is_empty() || scopes == [Scope::Project],
            "{name}: {scopes:?}"
        );
    }

    let expected = [
        // base.py
        "admin_only",
        "neutron_owner",
        "neutron_admin_or_owner",
        "admin_or_network_owner",
        "admin_owner_or_network_owner",
        "network_owner",
        "regular_user",
        "shared",
        "context_is_advsvc",
        "context_with_global_access",
        "admin_or_ext_parent_owner",
        "ext_parent_owner",
        "sg_owner",
        // network.py
        "external",
        "create_network",
        "create_network:shared",
        "create_network:router:external",
        "create_network:is_default",
        "create_network:port_security_enabled",
        "create_network:segments",
        "create_network:provider:network_type",
        "create_network:provider:physical_network",
        "create_network:provider:segmentation_id",
        "create_network:tags",
        "get_network",
        "get_network:segments",
        "get_network:provider:network_type",
        "get_network:provider:physical_network",
        "get_network:provider:segmentation_id",
        "get_network:tags",
        "update_network",
        "update_network:segments",
        "update_network:shared",
        "update_network:provider:network_type",
        "update_network:provider:physical_network",
        "update_network:provider:segmentation_id",
        "update_network:router:external",
        "update_network:is_default",
        "update_network:port_security_enabled",
        "update_network:tags",
        "delete_network",
        "delete_network:tags",
        // subnet.py, subnetpool.py
        "external_network",
        "create_subnet",
        "create_subnet:segment_id",
        "create_subnet:service_types",
        "get_subnet",
        "get_subnet:segment_id",
        "update_subnet",
        "delete_subnet",
        "shared_subnetpools",
        "create_subnetpool",
        "create_subnetpool:shared",
        "create_subnetpool:is_default",
        "get_subnetpool",
        "update_subnetpool:is_default",
        "onboard_network_subnets",
        "add_prefixes",
        "remove_prefixes",
        // port.py
        "network_device",
        "admin_or_data_plane_int",
        "create_port",
        "create_port:device_id",
        "create_port:device_owner",
        "create_port:mac_address",
        "create_port:fixed_ips",
        "create_port:fixed_ips:ip_address",
        "create_port:fixed_ips:subnet_id",
        "create_port:port_security_enabled",
        "create_port:binding:host_id",
        "create_port:binding:profile",
        "create_port:binding:vnic_type",
        "create_port:allowed_address_pairs",
        "create_port:allowed_address_pairs:mac_address",
        "create_port:allowed_address_pairs:ip_address",
        "create_port:hints",
        "create_port:trusted",
        "get_port",
        "get_port:binding:vif_type",
        "get_port:binding:vif_details",
        "get_port:binding:host_id",
        "get_port:binding:profile",
        "get_port:resource_request",
        "update_port",
        "update_port:device_owner",
        "update_port:mac_address",
        "update_port:fixed_ips",
        "update_port:binding:host_id",
        "update_port:binding:profile",
        "update_port:allowed_address_pairs",
        "update_port:data_plane_status",
        "delete_port",
        "get_port_binding",
        "create_port_binding",
        "activate",
        // router.py
        "create_router",
        "create_router:distributed",
        "create_router:ha",
        "create_router:external_gateway_info",
        "create_router:external_gateway_info:network_id",
        "create_router:external_gateway_info:enable_snat",
        "create_router:external_gateway_info:external_fixed_ips",
        "get_router",
        "get_router:distributed",
        "get_router:ha",
        "update_router",
        "update_router:external_gateway_info:external_fixed_ips",
        "delete_router",
        "add_router_interface",
        "remove_router_interface",
        "add_extraroutes",
        "remove_extraroutes",
        "add_external_gateways",
        "update_external_gateways:external_gateways:enable_snat",
        "remove_external_gateways",
        // floating IPs, pools, port forwardings
        "create_floatingip",
        "create_floatingip:floating_ip_address",
        "get_floatingip",
        "update_floatingip",
        "delete_floatingip",
        "get_floatingip_pool",
        "create_floatingip_port_forwarding",
        "get_floatingip_port_forwarding",
        "update_floatingip_port_forwarding",
        "delete_floatingip_port_forwarding",
        // security groups and rules, address groups and scopes
        "admin_or_sg_owner",
        "admin_owner_or_sg_owner",
        "shared_security_group",
        "rule_default_sg",
        "create_security_group",
        "get_security_group",
        "create_security_group_rule",
        "get_security_group_rule",
        "delete_security_group_rule",
        "create_default_security_group_rule",
        "shared_address_groups",
        "get_address_group",
        "shared_address_scopes",
        "create_address_scope:shared",
        "get_address_scope",
        // rbac.py, quotas.py, the rest
        "restrict_wildcard",
        "create_rbac_policy",
        "create_rbac_policy:target_tenant",
        "create_rbac_policy:target_project",
        "update_rbac_policy:target_project",
        "get_rbac_policy",
        "delete_rbac_policy",
        "get_quota",
        "update_quota",
        "delete_quota",
        "get_availability_zone",
        "get_network_ip_availability",
        "create_agent",
        "get_agent",
        "get_dhcp-networks",
        "create_l3-router",
        "get_l3-agents",
        "get_auto_allocated_topology",
        "delete_auto_allocated_topology",
        "create_network_segment_range",
        "get_network_segment_range:tags",
        "create_segment",
        "get_segment",
        "create_segments_tags",
        "get_service_provider",
        "get_policy",
        "create_policy_bandwidth_limit_rule",
        "create_trunk",
        "add_subports",
        "create_log",
        "create_metering_label",
        "create_ndp_proxy",
        "create_local_ip",
        "create_local_ip_port_association",
        "create_router_conntrack_helper",
        "get_flavor",
    ];
    for name in expected {
        assert!(e.has_rule(name), "missing default rule {name}");
    }

    // Rules other services already define keep their meaning.
    assert_eq!(e.check_str("default"), Some("rule:admin_required"));
    assert_eq!(e.check_str("owner"), Some("user_id:%(user_id)s"));
    assert_eq!(e.check_str("service_api"), Some("role:service"));
    assert!(e
        .check_str("context_is_admin")
        .unwrap()
        .contains("is_admin_project:True"));
}

#[test]
fn members_create_networks_but_only_admins_set_privileged_attributes() {
    let e = Enforcer::with_defaults();
    let mine = json!({"project_id": "proj-a", "shared": true, "provider:network_type": "vlan"});
    let member = user("proj-a", MEMBER);
    assert!(e.enforce("create_network", &mine, &member));
    assert!(e.enforce("create_network:port_security_enabled", &mine, &member));
    for attr in [
        "create_network:shared",
        "create_network:router:external",
        "create_network:is_default",
        "create_network:segments",
        "create_network:provider:network_type",
        "create_network:provider:physical_network",
        "create_network:provider:segmentation_id",
    ] {
        assert!(!e.enforce(attr, &mine, &member), "{attr}");
        assert!(!e.enforce(attr, &mine, &user("proj-a", MANAGER)), "{attr}");
        assert!(e.enforce(attr, &mine, &cloud_admin()), "{attr}");
    }
    assert!(e.enforce("create_network", &mine, &cloud_admin()));
    // Readers create nothing; nobody creates in another project but the admin.
    assert!(!e.enforce("create_network", &mine, &user("proj-a", READER)));
    assert!(!e.enforce("create_network", &mine, &user("proj-b", MEMBER)));
    // An admin of an ordinary project is no cloud admin.
    let project_admin = user("proj-a", ADMIN);
    assert!(e.enforce("create_network", &mine, &project_admin));
    assert!(!e.enforce("create_network:shared", &mine, &project_admin));
    // Project-scoped rules: a system-scoped token is refused.
    let system_admin = Credentials {
        project_id: None,
        system_scope: Some("all".into()),
        ..user("x", ADMIN)
    };
    assert!(!e.enforce("create_network:shared", &mine, &system_admin));
}

#[test]
fn other_projects_read_shared_and_external_networks_only() {
    let e = Enforcer::with_defaults();
    let reader_b = user("proj-b", READER);
    assert!(!e.enforce("get_network", &network("proj-a", false, false), &reader_b));
    assert!(e.enforce("get_network", &network("proj-a", true, false), &reader_b));
    assert!(e.enforce("get_network", &network("proj-a", false, true), &reader_b));
    // Missing fields are false.
    assert!(!e.enforce("get_network", &json!({"project_id": "proj-a"}), &reader_b));
    // The owner's reader, the admin and the service read it.
    assert!(e.enforce(
        "get_network",
        &network("proj-a", false, false),
        &user("proj-a", READER)
    ));
    assert!(e.enforce(
        "get_network",
        &network("proj-a", false, false),
        &cloud_admin()
    ));
    assert!(e.enforce("get_network", &network("proj-a", false, false), &service()));
    // Provider attributes are the admin's to see.
    let net = network("proj-a", true, false);
    assert!(!e.enforce(
        "get_network:provider:network_type",
        &net,
        &user("proj-a", MEMBER)
    ));
    assert!(e.enforce("get_network:provider:network_type", &net, &cloud_admin()));
    // Tags follow the network (but not for the service role).
    assert!(e.enforce(
        "get_network:tags",
        &network("proj-a", true, false),
        &reader_b
    ));
    assert!(!e.enforce(
        "get_network:tags",
        &network("proj-a", false, false),
        &reader_b
    ));
    // Changing another project's shared network is not allowed.
    assert!(!e.enforce("update_network", &net, &user("proj-b", MEMBER)));
    assert!(!e.enforce("delete_network", &net, &user("proj-b", MEMBER)));
}

#[test]
fn network_owner_reads_and_deletes_ports_of_other_projects_on_its_network() {
    let e = Enforcer::with_defaults();
    let port = json!({
        "project_id": "proj-b",
        "network_id": "net-1",
        "network:project_id": "proj-a",
        "shared": false,
        "device_owner": "compute:nova",
    });
    let member_a = user("proj-a", MEMBER);
    assert!(e.enforce("get_port", &port, &member_a));
    assert!(e.enforce("get_port", &port, &user("proj-a", READER)));
    assert!(e.enforce("delete_port", &port, &member_a));
    // Updating the port itself is for its own project (or the admin, the service).
    assert!(!e.enforce("update_port", &port, &member_a));
    assert!(e.enforce("update_port", &port, &user("proj-b", MEMBER)));
    // A third project sees nothing.
    assert!(!e.enforce("get_port", &port, &user("proj-c", MEMBER)));
    // Without the network's project in the target the network owner has no access.
    let bare = json!({"project_id": "proj-b"});
    assert!(!e.enforce("get_port", &bare, &member_a));
    assert!(e.enforce("get_port", &bare, &user("proj-b", READER)));
}

#[test]
fn ports_on_other_projects_networks() {
    let e = Enforcer::with_defaults();
    let member_b = user("proj-b", MEMBER);
    let on = |shared: bool, owner: &str| {
        json!({
            "project_id": "proj-b",
            "network:project_id": owner,
            "shared": shared,
            "device_owner": "compute:nova",
        })
    };
    // A port on another project's network needs the network shared.
    assert!(!e.enforce("create_port", &on(false, "proj-a"), &member_b));
    assert!(e.enforce("create_port", &on(true, "proj-a"), &member_b));
    assert!(e.enforce("create_port", &on(false, "proj-b"), &member_b));
    assert!(e.enforce(
        "create_port:fixed_ips:subnet_id",
        &on(true, "proj-a"),
        &member_b
    ));
    assert!(!e.enforce(
        "create_port:fixed_ips:ip_address",
        &on(true, "proj-a"),
        &member_b
    ));
    assert!(!e.enforce("create_port:mac_address", &on(true, "proj-a"), &member_b));
    assert!(e.enforce("create_port:mac_address", &on(false, "proj-b"), &member_b));
    // device_owner: anything but network:* is free; network:* is the network owner's.
    assert!(e.enforce("create_port:device_owner", &on(true, "proj-a"), &member_b));
    let router_port = json!({
        "project_id": "proj-b",
        "network:project_id": "proj-a",
        "device_owner": "network:router_interface",
    });
    assert!(!e.enforce("create_port:device_owner", &router_port, &member_b));
    assert!(e.enforce(
        "create_port:device_owner",
        &router_port,
        &user("proj-a", MEMBER)
    ));
    assert!(e.enforce("update_port:device_owner", &router_port, &cloud_admin()));
    // Bindings are for the service (and the admin).
    let mine = on(false, "proj-b");
    assert!(!e.enforce("update_port:binding:host_id", &mine, &member_b));
    assert!(e.enforce("update_port:binding:host_id", &mine, &service()));
    assert!(e.enforce("update_port:binding:host_id", &mine, &cloud_admin()));
    assert!(!e.enforce("update_port:binding:profile", &mine, &cloud_admin()));
    assert!(e.enforce("update_port:binding:profile", &mine, &service()));
    assert!(!e.enforce("get_port:binding:vif_details", &mine, &member_b));
    assert!(e.enforce("update_port:binding:vnic_type", &mine, &member_b));
    // update_port:mac_address takes a manager of the network's project.
    assert!(!e.enforce("update_port:mac_address", &mine, &member_b));
    assert!(e.enforce("update_port:mac_address", &mine, &user("proj-b", MANAGER)));
}

#[test]
fn subnets_follow_their_network() {
    let e = Enforcer::with_defaults();
    let subnet = |shared: bool, external: bool| {
        json!({
            "project_id": "proj-a",
            "network:project_id": "proj-a",
            "shared": shared,
            "router:external": external,
        })
    };
    let reader_b = user("proj-b", READER);
    assert!(!e.enforce("get_subnet", &subnet(false, false), &reader_b));
    assert!(e.enforce("get_subnet", &subnet(true, false), &reader_b));
    assert!(e.enforce("get_subnet", &subnet(false, true), &reader_b));
    assert!(!e.enforce("get_subnet:segment_id", &subnet(true, false), &reader_b));
    // Subnets are created by the network's owner (a shared network is not enough).
    let on_a = json!({"project_id": "proj-b", "network:project_id": "proj-a", "shared": true});
    assert!(!e.enforce("create_subnet", &on_a, &user("proj-b", MEMBER)));
    assert!(e.enforce("create_subnet", &on_a, &user("proj-a", MEMBER)));
    assert!(!e.enforce("create_subnet:segment_id", &on_a, &user("proj-a", MEMBER)));
}

#[test]
fn routers_security_group_rules_and_rbac() {
    let e = Enforcer::with_defaults();
    let member = user("proj-a", MEMBER);
    let router = json!({"project_id": "proj-a", "external_gateway_info": {"network_id": "ext"}});
    assert!(e.enforce("create_router", &router, &member));
    assert!(e.enforce(
        "create_router:external_gateway_info:network_id",
        &router,
        &member
    ));
    assert!(!e.enforce(
        "create_router:external_gateway_info:enable_snat",
        &router,
        &member
    ));
    assert!(!e.enforce("create_router:ha", &router, &member));
    assert!(!e.enforce("update_router:distributed", &router, &member));
    assert!(e.enforce("add_router_interface", &router, &member));
    assert!(!e.enforce("add_router_interface", &router, &user("proj-b", MEMBER)));

    let rule = json!({"project_id": "proj-a", "security_group:project_id": "proj-a"});
    assert!(e.enforce("create_security_group_rule", &rule, &member));
    assert!(e.enforce("get_security_group_rule", &rule, &user("proj-a", READER)));
    assert!(!e.enforce("create_security_group_rule", &rule, &user("proj-b", MEMBER)));
    assert!(!e.enforce("create_security_group_rule", &rule, &user("proj-a", READER)));

    // Members share with one project, never with everyone.
    let to_b =
        json!({"project_id": "proj-a", "target_tenant": "proj-b", "target_project": "proj-b"});
    let to_all = json!({"project_id": "proj-a", "target_tenant": "*", "target_project": "*"});
    assert!(e.enforce("create_rbac_policy", &to_all, &member));
    assert!(e.enforce("create_rbac_policy:target_tenant", &to_b, &member));
    assert!(e.enforce("create_rbac_policy:target_project", &to_b, &member));
    assert!(!e.enforce("create_rbac_policy:target_tenant", &to_all, &member));
    assert!(!e.enforce("create_rbac_policy:target_project", &to_all, &member));
    assert!(e.enforce("create_rbac_policy:target_project", &to_all, &cloud_admin()));

    // Port forwardings belong to the floating IP's project.
    let pf = json!({"ext_parent:project_id": "proj-a"});
    assert!(e.enforce("create_floatingip_port_forwarding", &pf, &member));
    assert!(!e.enforce(
        "create_floatingip_port_forwarding",
        &pf,
        &user("proj-b", MEMBER)
    ));

    // Quotas: a project's readers read its own (as in Neutron before 2026.1 and in Nova),
    // other projects do not; only the admin changes them.
    let quota = json!({"project_id": "proj-a"});
    assert!(e.enforce("get_quota", &quota, &user("proj-a", MANAGER)));
    assert!(e.enforce("get_quota", &quota, &member));
    assert!(!e.enforce("get_quota", &quota, &user("proj-b", MEMBER)));
    assert!(!e.enforce("update_quota", &quota, &user("proj-a", MANAGER)));
    assert!(e.enforce("update_quota", &quota, &cloud_admin()));
}

#[test]
fn actions_without_a_rule_are_the_admins() {
    // Neutron's own default is admin_or_owner; the shared default here is admin-only.
    let e = Enforcer::with_defaults();
    let mine = json!({"project_id": "proj-a"});
    assert!(!e.enforce("get_not_a_neutron_action", &mine, &user("proj-a", ADMIN)));
    assert!(e.enforce("get_not_a_neutron_action", &mine, &cloud_admin()));
}

#[test]
fn tenant_id_style_overrides_find_parent_keys() {
    // A policy file from Neutron before 2026.1 checks the network owner as tenant_id.
    let mut e = Enforcer::with_defaults();
    e.load_overrides(r#""network_owner": "tenant_id:%(network:tenant_id)s""#)
        .unwrap();
    let port = json!({"project_id": "proj-b", "network:tenant_id": "proj-a"});
    assert!(e.enforce("get_port", &port, &user("proj-a", READER)));
    assert!(!e.enforce("get_port", &port, &user("proj-c", READER)));
}
