//! `/servers/{id}/os-interface`: the server's ports (Nova's interface attachments). Attaching
//! and detaching (hot-plug) are not served yet.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Value};

use super::server_views::target;
use super::State;
use crate::peers::PortView;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/servers/{id}/os-interface", get(index))
        .route("/servers/{id}/os-interface/{port_id}", get(show))
}

fn wire(p: &PortView, v: Microversion) -> Value {
    let mut o = json!({
        "port_state": p.status,
        "fixed_ips": p.fixed_ips.iter()
            .map(|(subnet, ip)| json!({"subnet_id": subnet, "ip_address": ip.to_string()}))
            .collect::<Vec<_>>(),
        "port_id": p.port_id,
        "net_id": p.network_id,
        "mac_addr": p.mac,
    });
    if v.at_least(2, 70) {
        o["tag"] = Value::Null;
    }
    o
}

async fn index(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-attach-interfaces:list",
        &target(&inst),
    )?;
    let ports = svc.server_interfaces(&inst).await?;
    let list: Vec<Value> = ports.iter().map(|p| wire(p, v)).collect();
    Ok(axum::Json(json!({"interfaceAttachments": list})).into_response())
}

async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, port_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-attach-interfaces:show",
        &target(&inst),
    )?;
    let port = svc.server_interface(&inst, &port_id).await?;
    Ok(axum::Json(json!({"interfaceAttachment": wire(&port, v)})).into_response())
}
