//! `GET /limits`: the caller's (or, for admins, `tenant_id`'s) absolute limits and usage.

use axum::extract::RawQuery;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use serde_json::{json, Map, Value};

use super::input;
use super::State;
use crate::error::Result;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new().route("/limits", get(index))
}

/// Quota resource -> the absolute limit names Nova shows for it.
const LIMIT_NAMES: [(&str, &[&str]); 12] = [
    ("ram", &["maxTotalRAMSize"]),
    ("instances", &["maxTotalInstances"]),
    ("cores", &["maxTotalCores"]),
    ("key_pairs", &["maxTotalKeypairs"]),
    ("floating_ips", &["maxTotalFloatingIps"]),
    ("metadata_items", &["maxServerMeta", "maxImageMeta"]),
    ("injected_files", &["maxPersonality"]),
    ("injected_file_content_bytes", &["maxPersonalitySize"]),
    ("security_groups", &["maxSecurityGroups"]),
    ("security_group_rules", &["maxSecurityGroupRules"]),
    ("server_groups", &["maxServerGroups"]),
    ("server_group_members", &["maxServerGroupMembers"]),
];

const USED_NAMES: [(&str, &str); 6] = [
    ("totalRAMUsed", "ram"),
    ("totalCoresUsed", "cores"),
    ("totalInstancesUsed", "instances"),
    ("totalFloatingIpsUsed", "floating_ips"),
    ("totalSecurityGroupsUsed", "security_groups"),
    ("totalServerGroupsUsed", "server_groups"),
];

/// Resources `/limits` leaves out at this microversion.
fn filtered(v: Microversion) -> Vec<&'static str> {
    let mut out = vec![];
    if v.at_least(2, 36) {
        out.extend(["floating_ips", "security_groups", "security_group_rules"]);
    }
    if v.at_least(2, 57) {
        out.extend(["injected_files", "injected_file_content_bytes"]);
    }
    out
}

pub async fn index(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let pairs = input::query_pairs(q.as_deref());
    let own = auth.project_id().unwrap_or_default().to_string();
    auth.enforce(
        &svc.policy,
        "os_compute_api:limits",
        &json!({"project_id": own}),
    )?;
    let project = match input::query_get(&pairs, "tenant_id") {
        Some(t) if t != own => {
            auth.enforce(
                &svc.policy,
                "os_compute_api:limits:other_project",
                &json!({"project_id": t}),
            )?;
            t.to_string()
        }
        _ => own,
    };
    let (limits, usage) = svc.project_limits(&project).await?;
    let skip = filtered(v);
    let mut absolute = Map::new();
    for (resource, names) in LIMIT_NAMES {
        if skip.contains(&resource) {
            continue;
        }
        for name in names {
            // maxImageMeta went away at 2.39 with the image proxy APIs.
            if *name == "maxImageMeta" && v.at_least(2, 39) {
                continue;
            }
            absolute.insert((*name).to_string(), json!(limits.limit(resource)));
        }
    }
    for (name, resource) in USED_NAMES {
        if skip.contains(&resource) {
            continue;
        }
        absolute.insert(
            name.to_string(),
            json!(usage.get(resource).copied().unwrap_or(0)),
        );
    }
    let body = json!({"limits": {"rate": Value::Array(vec![]), "absolute": absolute}});
    Ok(axum::Json(body).into_response())
}
