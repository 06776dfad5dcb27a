//! The networking proxies of the compute API, as Nova serves them over Neutron (removed at
//! 2.36): `/os-networks` (every network the caller sees, by id and name; the nova-network
//! fields are null) and `/os-tenant-networks` (id, name as `label`, first CIDR). Changing
//! networks here is nova-network's and answers 410 Gone, as in Nova.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Value};

use super::State;
use crate::peers::NetworkView;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-networks", get(list).post(gone))
        .route("/os-networks/add", post(gone))
        .route("/os-networks/{id}", get(show).delete(gone))
        .route("/os-networks/{id}/action", post(gone))
        .route("/os-tenant-networks", get(tenant_list).post(gone))
        .route("/os-tenant-networks/{id}", get(tenant_show).delete(gone))
}

/// Removed with the other networking proxies at 2.36.
fn check_version(v: Microversion) -> Result<(), ApiError> {
    super::removed_at(v, 36)
}

async fn gone(v: Microversion) -> Result<Response, ApiError> {
    check_version(v)?;
    Err(ApiError::new(
        http::StatusCode::GONE,
        "Network adding, changing and deleting was removed with nova-network.",
    ))
}

/// Nova's `network_dict` over a Neutron network: the id and label; the nova-network fields
/// (and, for admins, their admin fields) are null.
fn network(n: &NetworkView, admin: bool) -> Value {
    let mut o = json!({
        "id": n.id, "label": n.name, "cidr": null, "netmask": null, "gateway": null,
        "broadcast": null, "dns1": null, "dns2": null, "cidr_v6": null, "gateway_v6": null,
        "netmask_v6": null,
    });
    if admin {
        for k in [
            "created_at",
            "updated_at",
            "deleted_at",
            "deleted",
            "injected",
            "bridge",
            "vlan",
            "vpn_public_address",
            "vpn_public_port",
            "vpn_private_address",
            "dhcp_start",
            "project_id",
            "host",
            "bridge_interface",
            "multi_host",
            "priority",
            "rxtx_base",
            "mtu",
            "dhcp_server",
            "enable_dhcp",
            "share_address",
        ] {
            o[k] = Value::Null;
        }
    }
    o
}

fn tenant_network(n: &NetworkView) -> Value {
    json!({"id": n.id, "label": n.name, "cidr": n.cidrs.first()})
}

async fn visible(
    svc: &ComputeService,
    auth: &Auth,
    v: Microversion,
    rule: &str,
) -> Result<Vec<NetworkView>, ApiError> {
    check_version(v)?;
    auth.enforce(
        &svc.policy,
        rule,
        &json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    Ok(svc.networking.visible_networks(auth).await?)
}

fn one(nets: Vec<NetworkView>, id: &str) -> Result<NetworkView, ApiError> {
    nets.into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| ApiError::not_found(format!("Network {id} could not be found.")))
}

async fn list(svc: State, auth: Auth, v: Microversion) -> Result<Response, ApiError> {
    let nets = visible(&svc, &auth, v, "os_compute_api:os-networks:list").await?;
    let list: Vec<Value> = nets.iter().map(|n| network(n, auth.is_admin)).collect();
    Ok(axum::Json(json!({ "networks": list })).into_response())
}

async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let nets = visible(&svc, &auth, v, "os_compute_api:os-networks:view").await?;
    let n = one(nets, &id)?;
    Ok(axum::Json(json!({ "network": network(&n, auth.is_admin) })).into_response())
}

async fn tenant_list(svc: State, auth: Auth, v: Microversion) -> Result<Response, ApiError> {
    let nets = visible(&svc, &auth, v, "os_compute_api:os-tenant-networks:list").await?;
    let list: Vec<Value> = nets.iter().map(tenant_network).collect();
    Ok(axum::Json(json!({ "networks": list })).into_response())
}

async fn tenant_show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let nets = visible(&svc, &auth, v, "os_compute_api:os-tenant-networks:show").await?;
    let n = one(nets, &id)?;
    Ok(axum::Json(json!({ "network": tenant_network(&n) })).into_response())
}
