//! `/v2.0/floatingips/{id}/port_forwardings`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, collection_url, created, query, State};
use crate::app::port_forwardings::{port_forwarding_not_found, ForwardingRequest};
use crate::error::{NetworkError, Result};
use crate::model::{FloatingIp, PortForwarding};
use crate::NetworkService;

const FIELDS: [&str; 6] = [
    "internal_port_id",
    "internal_ip_address",
    "internal_port",
    "external_port",
    "protocol",
    "description",
];

fn wire(p: &PortForwarding) -> Value {
    json!({
        "id": p.id,
        "internal_port_id": p.internal_port_id,
        "internal_ip_address": p.internal_ip_address.to_string(),
        "internal_port": p.internal_port,
        "external_port": p.external_port,
        "protocol": p.protocol,
        "description": p.description,
    })
}

/// The policy target: the forwarding with its floating IP's project as parent.
fn target(fip: &FloatingIp, p: Option<&PortForwarding>) -> Value {
    let mut t = p.map(wire).unwrap_or_else(|| json!({}));
    t["project_id"] = json!(fip.project_id);
    t["tenant_id"] = json!(fip.project_id);
    t["ext_parent:project_id"] = json!(fip.project_id);
    t
}

fn port_number(obj: &Obj, key: &str) -> Result<Option<u16>> {
    match input::integer(obj, key)? {
        None => Ok(None),
        Some(n) => u16::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| {
                NetworkError::invalid_attr(key, format!("Invalid port '{n}', not in range 1-65535"))
            }),
    }
}

fn request(obj: &Obj) -> Result<ForwardingRequest> {
    input::only(obj, &FIELDS)?;
    Ok(ForwardingRequest {
        internal_port_id: input::string(obj, "internal_port_id", 36)?,
        internal_ip_address: input::ip(obj, "internal_ip_address")?,
        internal_port: port_number(obj, "internal_port")?,
        external_port: port_number(obj, "external_port")?,
        protocol: input::string(obj, "protocol", 40)?.map(|p| p.to_ascii_lowercase()),
        description: input::string(obj, "description", 255)?,
    })
}

async fn parent(svc: &NetworkService, auth: &Auth, fip: &str) -> Result<FloatingIp> {
    super::floating_ips::readable(svc, auth, fip).await
}

pub async fn create(
    state: State,
    auth: Auth,
    Path(fip_id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "port_forwarding")?;
    let fip = parent(svc, &auth, &fip_id).await?;
    authorize(
        svc,
        &auth,
        "create_floatingip_port_forwarding",
        &target(&fip, None),
    )?;
    let pf = svc
        .create_port_forwarding(&auth, &fip.id, request(&obj)?)
        .await?;
    Ok(created(
        "port_forwarding",
        "port_forwardings",
        false,
        vec![wire(&pf)],
    ))
}

pub async fn list(
    state: State,
    auth: Auth,
    Path(fip_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let fip = parent(svc, &auth, &fip_id).await?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_port_forwardings(&fip)
        .await?
        .iter()
        .filter(|p| {
            svc.policy.enforce(
                "get_floatingip_port_forwarding",
                &target(&fip, Some(p)),
                &creds,
            )
        })
        .map(wire)
        .collect();
    let url = collection_url(svc, &format!("floatingips/{fip_id}/port_forwardings"));
    Ok(axum::Json(lq.render(items, "port_forwardings", &url)?).into_response())
}

async fn readable(
    svc: &NetworkService,
    auth: &Auth,
    fip: &FloatingIp,
    id: &str,
) -> Result<PortForwarding> {
    let p = svc.find_port_forwarding(fip, id).await?;
    if !svc.policy.enforce(
        "get_floatingip_port_forwarding",
        &target(fip, Some(&p)),
        &auth.credentials(),
    ) {
        return Err(port_forwarding_not_found(&fip.id, id));
    }
    Ok(p)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path((fip_id, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let fip = parent(svc, &auth, &fip_id).await?;
    let p = readable(svc, &auth, &fip, &id).await?;
    let v = query::project(wire(&p), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "port_forwarding": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path((fip_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "port_forwarding")?;
    let fip = parent(svc, &auth, &fip_id).await?;
    let p = readable(svc, &auth, &fip, &id).await?;
    authorize(
        svc,
        &auth,
        "update_floatingip_port_forwarding",
        &target(&fip, Some(&p)),
    )?;
    let p = svc
        .update_port_forwarding(&auth, &fip, &id, request(&obj)?)
        .await?;
    Ok(axum::Json(json!({ "port_forwarding": wire(&p) })).into_response())
}

pub async fn remove(
    state: State,
    auth: Auth,
    Path((fip_id, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    let fip = parent(svc, &auth, &fip_id).await?;
    let p = readable(svc, &auth, &fip, &id).await?;
    authorize(
        svc,
        &auth,
        "delete_floatingip_port_forwarding",
        &target(&fip, Some(&p)),
    )?;
    svc.delete_port_forwarding(&fip, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
