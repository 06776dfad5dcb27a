//! `/v2.0/extensions`: exactly the API extensions this service implements (clients and
//! Tempest decide what to call from this list).

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use serde_json::{json, Value};

use crate::error::{NetworkError, Result};

/// (alias, name, description) of every implemented extension.
pub const EXTENSIONS: [(&str, &str, &str); 34] = [
    ("address-group", "Address group", "Support address group"),
    ("agent", "agent", "The agent management extension."),
    ("auto-allocated-topology", "Auto Allocated Topology Services", "Auto Allocated Topology Services."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)"),
    ("floating-ip-port-forwarding", "Floating IP Port Forwarding", "Allows a floating IP to forward its ports to the ports of others."),
    ("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    ("network_availability_zone", "Network Availability Zone", "Availability zone support for network."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    ("rbac-policies", "RBAC Policies", "Allows creation and modification of policies that control tenant access to resources."),
    ("access_as_external", "Access as external network", "Allows creation of RBAC policies for external networks."),
    ("revision-if-match", "If-Match constraints based on revision_number", "Extension indicating that If-Match based on revision_number is supported."),
    ("security-group", "security-group", "The security groups extension."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("subnet-external-network", "Subnet External Network", "Informs if the subnet is associated to an external network."),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip", "Enables to set tag on resources with standard attribute."),
    ("tag-ext", "Tag support for resources: subnet, subnetpool, port, router", "Extends tag support to more L2 and L3 resources."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
];

fn entry((alias, name, description): (&str, &str, &str)) -> Value {
    json!({
        "alias": alias,
        "name": name,
        "description": description,
        "updated": "2025-01-01T00:00:00-00:00",
        "links": [],
    })
}

pub async fn list(_auth: Auth) -> Response {
    let list: Vec<Value> = EXTENSIONS.iter().copied().map(entry).collect();
    axum::Json(json!({ "extensions": list })).into_response()
}

pub async fn show(_auth: Auth, Path(alias): Path<String>) -> Result<Response> {
    let e = EXTENSIONS
        .iter()
        .copied()
        .find(|(a, _, _)| *a == alias)
        .ok_or_else(|| {
            NetworkError::not_found(
                "ExtensionNotFound",
                format!("Extension with alias {alias} does not exist"),
            )
        })?;
    Ok(axum::Json(json!({ "extension": entry(e) })).into_response())
}
