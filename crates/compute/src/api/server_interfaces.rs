//! `/servers/{id}/os-interface`: the server's ports (Nova's interface attachments): list,
//! show, attach (a port, or a new port on a network) and detach, hot-plugged into the guest.

use axum::extract::{Extension, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::request::RequestId;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Value};

use super::server_views::target;
use super::State;
use crate::app::server_interfaces::AttachRequest;
use crate::peers::{NicRequest, PortView};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/servers/{id}/os-interface", get(index).post(create))
        .route(
            "/servers/{id}/os-interface/{port_id}",
            get(show).delete(remove),
        )
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// The body of an attach, validated as Nova's schema: `port_id` or `net_id` (uuids, not
/// both), at most one fixed IP and only with `net_id`, a `tag` from 2.49.
fn attach_request(body: &Value, v: Microversion) -> Result<AttachRequest, ApiError> {
    let Some(top) = body.as_object() else {
        return Err(bad("The request body is not an object."));
    };
    if let Some(k) = top.keys().find(|k| *k != "interfaceAttachment") {
        return Err(bad(format!(
            "Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let empty = serde_json::Map::new();
    let obj = match top.get("interfaceAttachment") {
        None => &empty,
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute interfaceAttachment. Value: {other}. {other} is not of type 'object'"
            )))
        }
    };
    let allowed: &[&str] = if v.at_least(2, 49) {
        &["port_id", "net_id", "fixed_ips", "tag"]
    } else {
        &["port_id", "net_id", "fixed_ips"]
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute interfaceAttachment. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let id = |k: &str| -> Result<Option<String>, ApiError> {
        match obj.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!(
                "Invalid input for field/attribute {k}. Value: {other}. {other} is not a 'uuid'"
            ))),
        }
    };
    let (port, net) = (id("port_id")?, id("net_id")?);
    let fixed_ip = match obj.get("fixed_ips") {
        None => None,
        Some(Value::Array(a)) if a.len() <= 1 => match a.first() {
            None => None,
            Some(f) => {
                let ip = f
                    .get("ip_address")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<std::net::IpAddr>().ok())
                    .filter(|_| f.as_object().is_some_and(|o| o.len() == 1))
                    .ok_or_else(|| {
                        bad(format!(
                            "Invalid input for field/attribute fixed_ips. Value: {f}. {f} is not a valid IP address"
                        ))
                    })?;
                Some(ip)
            }
        },
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute fixed_ips. Value: {other}. {other} is not a list of at most 1 address"
            )))
        }
    };
    if let Some(tag) = obj.get("tag") {
        if !tag
            .as_str()
            .is_some_and(|t| t.len() <= 60 && !t.contains(['/', ',']))
        {
            return Err(bad(format!(
                "Invalid input for field/attribute tag. Value: {tag}. {tag} is not a valid tag"
            )));
        }
    }
    match (port, net) {
        (Some(_), Some(_)) => Err(bad("Must not input both network_id and port_id")),
        (Some(_), None) | (None, None) if fixed_ip.is_some() => {
            Err(bad("Must input network_id when request IP address"))
        }
        (Some(p), None) => Ok(AttachRequest::Nic(NicRequest::Port(p))),
        (None, Some(id)) => Ok(AttachRequest::Nic(NicRequest::Network { id, fixed_ip })),
        (None, None) => Ok(AttachRequest::Any),
    }
}

async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-attach-interfaces:create",
        &target(&inst),
    )?;
    let what = attach_request(&body, v)?;
    let port = svc.attach_interface(&inst, &auth, &rid.0, what).await?;
    Ok(axum::Json(json!({"interfaceAttachment": wire(&port, v)})).into_response())
}

async fn remove(
    svc: State,
    auth: Auth,
    Extension(rid): Extension<RequestId>,
    Path((id, port_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-attach-interfaces:delete",
        &target(&inst),
    )?;
    svc.detach_interface(&inst, &auth, &rid.0, &port_id).await?;
    Ok(StatusCode::ACCEPTED)
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
