//! The floating IP proxy of the compute API, as Nova serves it over Neutron (removed at
//! 2.36): `/os-floating-ips` (the project's floating IPs: list, show, allocate from a pool,
//! release) and `/os-floating-ip-pools` (the external networks' names). The server actions
//! `addFloatingIp` and `removeFloatingIp` (removed at 2.44) are in `server_actions.rs` and
//! use [`associate`] and [`disassociate`] here.

use std::net::IpAddr;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Value};

use super::State;
use crate::instance::Instance;
use crate::peers::FloatingIpView;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-floating-ips", get(list).post(create))
        .route("/os-floating-ips/{id}", get(show).delete(remove))
        .route("/os-floating-ip-pools", get(pools))
}

fn wire(f: &FloatingIpView) -> Value {
    json!({
        "id": f.id,
        "ip": f.ip.to_string(),
        "pool": f.pool_name,
        "fixed_ip": f.fixed_ip.map(|ip| ip.to_string()),
        "instance_id": f.instance_id,
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Floating IP not found for ID {id}"))
}

async fn list(svc: State, auth: Auth, v: Microversion) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-floating-ips:list")?;
    let all = svc.networking.floating_ips(&auth).await?;
    let list: Vec<Value> = all.iter().map(wire).collect();
    Ok(axum::Json(json!({ "floating_ips": list })).into_response())
}

async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-floating-ips:show")?;
    let f = svc
        .networking
        .floating_ip(&auth, Some(&id), None)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(json!({ "floating_ip": wire(&f) })).into_response())
}

/// `{"pool": name-or-id}` (Nova's schema: an object or null, `pool` a string or null).
async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-floating-ips:create")?;
    // The body is optional: none, `null` or an object.
    let body: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|_| ApiError::bad_request("Malformed request body"))?,
        )
    };
    let pool = match body.as_ref() {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => match o.get("pool") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.as_str()),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute pool. Value: {other}. {other} is not of type 'string', 'null'"
                )))
            }
        },
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute body. Value: {other}. {other} is not of type 'object', 'null'"
            )))
        }
    };
    let f = svc.networking.allocate_floating_ip(&auth, pool).await?;
    Ok(axum::Json(json!({ "floating_ip": wire(&f) })).into_response())
}

async fn remove(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-floating-ips:delete")?;
    svc.networking.release_floating_ip(&auth, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn pools(svc: State, auth: Auth, v: Microversion) -> Result<Response, ApiError> {
    super::proxy_check(&svc, &auth, v, "os_compute_api:os-floating-ip-pools")?;
    let names = svc.networking.floating_ip_pools(&auth).await?;
    let list: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    Ok(axum::Json(json!({ "floating_ip_pools": list })).into_response())
}

/// An address of an action's body (Nova's schema: an IPv4 or IPv6 address).
pub fn address(args: &Value, action: &str, key: &str) -> Result<Option<IpAddr>, ApiError> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid input for field/attribute {key}. Value: {s}. '{s}' is not a 'ipv4' or 'ipv6' address ({action})"
            ))
        }),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

/// `addFloatingIp`: the caller's floating IP `address` to the server's `fixed` address (its
/// first IPv4 address when none is named), as Nova checks it.
pub async fn associate(
    svc: &ComputeService,
    auth: &Auth,
    inst: &Instance,
    address: IpAddr,
    fixed: Option<IpAddr>,
) -> Result<(), ApiError> {
    let ports = svc.networking.server_ports(&inst.uuid).await?;
    let addresses: Vec<(&str, IpAddr)> = ports
        .iter()
        .flat_map(|p| p.fixed_ips.iter().map(|(_, ip)| (p.port_id.as_str(), *ip)))
        .collect();
    if addresses.is_empty() {
        return Err(ApiError::bad_request("No fixed IPs associated to instance"));
    }
    let (port, fixed) = match fixed {
        Some(f) => *addresses
            .iter()
            .find(|(_, ip)| *ip == f)
            .ok_or_else(|| ApiError::bad_request("Specified fixed address not assigned to instance"))?,
        None => *addresses.iter().find(|(_, ip)| ip.is_ipv4()).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Unable to associate floating IP {address} to any fixed IPs for instance {}. Instance has no fixed IPv4 addresses to associate.",
                inst.uuid
            ))
        })?,
    };
    let f = svc
        .networking
        .floating_ip(auth, None, Some(address))
        .await?
        .ok_or_else(|| ApiError::not_found("floating IP not found"))?;
    svc.networking
        .point_floating_ip(auth, &f.id, Some((port, fixed)))
        .await
        .map_err(|e| match ApiError::from(e) {
            e if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::FORBIDDEN => e,
            e => ApiError::bad_request(format!(
                "Unable to associate floating IP {address} to fixed IP {fixed} for instance {}. Error: {}",
                inst.uuid, e.message
            )),
        })
}

/// `removeFloatingIp`: the caller's floating IP `address`, which must point at this server.
pub async fn disassociate(
    svc: &ComputeService,
    auth: &Auth,
    inst: &Instance,
    address: IpAddr,
) -> Result<(), ApiError> {
    let f = svc
        .networking
        .floating_ip(auth, None, Some(address))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("Floating IP not found for address {address}."))
        })?;
    if f.instance_id.as_deref() != Some(inst.uuid.as_str()) {
        return Err(ApiError::conflict(format!(
            "Floating IP {address} is not associated with instance {}.",
            inst.uuid
        )));
    }
    svc.networking
        .point_floating_ip(auth, &f.id, None)
        .await
        .map_err(ApiError::from)
}
