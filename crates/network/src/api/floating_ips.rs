//! `/v2.0/floatingips`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::input;
use super::{authorize, authorize_attrs, collection_url, created, query, wire, State};
use crate::app::floating_ips::{floating_ip_not_found, FloatingIpChanges, NewFloatingIp};
use crate::error::{NetworkError, Result};
use crate::model::FloatingIp;
use crate::NetworkService;

fn target(f: &FloatingIp) -> Value {
    wire::floating_ip(f)
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "floatingip", "floatingips")?;
    let mut out = Vec::new();
    for obj in &objs {
        input::only(
            obj,
            &[
                "floating_network_id",
                "floating_ip_address",
                "subnet_id",
                "port_id",
                "fixed_ip_address",
                "description",
                "project_id",
                "tenant_id",
            ],
        )?;
        let project = crate::app::owner_for(&auth, input::project(obj)?.as_deref())?;
        let t = json!({"project_id": project, "tenant_id": project});
        authorize(svc, &auth, "create_floatingip", &t)?;
        authorize_attrs(svc, &auth, "create_floatingip", obj, &t, &[])?;
        let req = NewFloatingIp {
            project_id: Some(project),
            floating_network_id: input::string(obj, "floating_network_id", 255)?.ok_or_else(
                || {
                    NetworkError::invalid_attr(
                        "floating_network_id",
                        "'floating_network_id' is required",
                    )
                },
            )?,
            floating_ip_address: input::ip(obj, "floating_ip_address")?,
            subnet_id: input::string(obj, "subnet_id", 255)?,
            port_id: match obj.get("port_id") {
                None | Some(Value::Null) => None,
                _ => input::string(obj, "port_id", 255)?,
            },
            fixed_ip_address: input::ip(obj, "fixed_ip_address")?,
            description: input::string(obj, "description", 255)?.unwrap_or_default(),
        };
        let f = svc.create_floating_ip(&auth, req).await?;
        out.push(wire::floating_ip(&f));
    }
    Ok(created("floatingip", "floatingips", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_floating_ips(&auth)
        .await?
        .iter()
        .map(target)
        .filter(|t| svc.policy.enforce("get_floatingip", t, &creds))
        .collect();
    Ok(
        axum::Json(lq.render(items, "floatingips", &collection_url(svc, "floatingips"))?)
            .into_response(),
    )
}

pub(crate) async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<FloatingIp> {
    let f = svc.find_floating_ip(id, auth).await?;
    if !svc
        .policy
        .enforce("get_floatingip", &target(&f), &auth.credentials())
    {
        return Err(floating_ip_not_found(id));
    }
    Ok(f)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let f = readable(svc, &auth, &id).await?;
    let v = query::project(wire::floating_ip(&f), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "floatingip": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "floatingip")?;
    input::only(&obj, &["port_id", "fixed_ip_address", "description"])?;
    let f = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "update_floatingip", &target(&f))?;
    let changes = FloatingIpChanges {
        port_id: match obj.get("port_id") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(_) => Some(input::string(&obj, "port_id", 255)?),
        },
        fixed_ip_address: input::ip(&obj, "fixed_ip_address")?,
        description: input::string(&obj, "description", 255)?,
    };
    let f = svc
        .update_floating_ip(&auth, &id, changes, input::if_match(&headers)?)
        .await?;
    Ok(axum::Json(json!({ "floatingip": wire::floating_ip(&f) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let f = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_floatingip", &target(&f))?;
    svc.delete_floating_ip(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
