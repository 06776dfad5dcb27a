//! `/v2.0/networks`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, authorize_attrs, collection_url, created, hide_attrs, query, wire, State};
use crate::app::networks::{NetworkChanges, NewNetwork};
use crate::error::{NetworkError, Result};
use crate::model::{Network, NetworkType};
use crate::NetworkService;

const CREATE_ATTRS: [&str; 14] = [
    "name",
    "description",
    "admin_state_up",
    "shared",
    "router:external",
    "is_default",
    "mtu",
    "port_security_enabled",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "availability_zone_hints",
    "project_id",
    "tenant_id",
];

const UPDATE_ATTRS: [&str; 8] = [
    "name",
    "description",
    "admin_state_up",
    "shared",
    "router:external",
    "is_default",
    "mtu",
    "port_security_enabled",
];

/// The policy target of a network, and its view: its attributes (`project_id`,
/// `router:external`, ...), with `shared` as the caller sees it (shared with its project by
/// an RBAC policy counts, as in Neutron).
pub(crate) fn target(n: &Network, auth: &Auth) -> Value {
    let mut t = wire::network(n);
    t["shared"] = json!(n.shared_with(auth.project_id().unwrap_or("")));
    t
}

fn view(svc: &NetworkService, auth: &Auth, n: &Network) -> Value {
    let t = target(n, auth);
    hide_attrs(svc, auth, "get_network", t.clone(), &t)
}

fn parse_new(obj: &Obj) -> Result<NewNetwork> {
    input::only(obj, &CREATE_ATTRS)?;
    let network_type = match input::string(obj, "provider:network_type", 255)? {
        None => None,
        Some(t) => Some(NetworkType::parse(&t).ok_or_else(|| {
            NetworkError::invalid_input(format!("provider:network_type {t} is not supported"))
        })?),
    };
    Ok(NewNetwork {
        project_id: input::project(obj)?,
        name: input::string(obj, "name", 255)?.unwrap_or_default(),
        description: input::string(obj, "description", 255)?.unwrap_or_default(),
        admin_state_up: input::boolean(obj, "admin_state_up")?.unwrap_or(true),
        shared: input::boolean(obj, "shared")?.unwrap_or(false),
        router_external: input::boolean(obj, "router:external")?.unwrap_or(false),
        is_default: input::boolean(obj, "is_default")?.unwrap_or(false),
        mtu: input::integer(obj, "mtu")?,
        port_security_enabled: input::boolean(obj, "port_security_enabled")?.unwrap_or(true),
        network_type,
        physical_network: input::string(obj, "provider:physical_network", 64)?,
        segmentation_id: input::integer(obj, "provider:segmentation_id")?,
        az_hints: input::strings(obj, "availability_zone_hints")?.unwrap_or_default(),
    })
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "network", "networks")?;
    let defaults = [
        ("shared", json!(false)),
        ("router:external", json!(false)),
        ("is_default", json!(false)),
        ("port_security_enabled", json!(true)),
    ];
    let mut out = Vec::new();
    for obj in &objs {
        let req = parse_new(obj)?;
        let project = crate::app::owner_for(&auth, req.project_id.as_deref())?;
        let t = json!({"project_id": project, "tenant_id": project});
        authorize(svc, &auth, "create_network", &t)?;
        authorize_attrs(svc, &auth, "create_network", obj, &t, &defaults)?;
        let n = svc.create_network(&auth, req).await?;
        out.push(view(svc, &auth, &n));
    }
    Ok(created("network", "networks", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_networks(&auth)
        .await?
        .iter()
        .filter_map(|n| {
            let t = target(n, &auth);
            svc.policy
                .enforce("get_network", &t, &creds)
                .then(|| hide_attrs(svc, &auth, "get_network", t.clone(), &t))
        })
        .collect();
    Ok(axum::Json(lq.render(items, "networks", &collection_url(svc, "networks"))?).into_response())
}

/// The network when the caller may read it; 404 otherwise.
async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<Network> {
    let n = svc.find_network(id, auth).await?;
    if !svc
        .policy
        .enforce("get_network", &target(&n, auth), &auth.credentials())
    {
        return Err(NetworkError::network_not_found(id));
    }
    Ok(n)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let n = readable(svc, &auth, &id).await?;
    let v = query::project(view(svc, &auth, &n), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "network": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "network")?;
    input::only(&obj, &UPDATE_ATTRS)?;
    let n = readable(svc, &auth, &id).await?;
    let t = target(&n, &auth);
    authorize(svc, &auth, "update_network", &t)?;
    authorize_attrs(svc, &auth, "update_network", &obj, &t, &[])?;
    let changes = NetworkChanges {
        name: input::string(&obj, "name", 255)?,
        description: input::string(&obj, "description", 255)?,
        admin_state_up: input::boolean(&obj, "admin_state_up")?,
        shared: input::boolean(&obj, "shared")?,
        router_external: input::boolean(&obj, "router:external")?,
        is_default: input::boolean(&obj, "is_default")?,
        mtu: input::integer(&obj, "mtu")?,
        port_security_enabled: input::boolean(&obj, "port_security_enabled")?,
    };
    let n = svc
        .update_network(&id, changes, input::if_match(&headers)?)
        .await?;
    Ok(axum::Json(json!({ "network": view(svc, &auth, &n) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let n = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_network", &target(&n, &auth))?;
    svc.delete_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
