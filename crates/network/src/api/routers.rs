//! `/v2.0/routers` and their `add_router_interface` / `remove_router_interface` actions.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, authorize_attrs, collection_url, created, hide_attrs, query, wire, State};
use crate::app::ports::IpRequest;
use crate::app::routers::{GatewayRequest, InterfaceRef, NewRouter, RouterChanges};
use crate::error::{NetworkError, Result};
use crate::ipam;
use crate::model::{HostRoute, Router};
use crate::NetworkService;

fn target(r: &Router) -> Value {
    wire::router(r)
}

fn view(svc: &NetworkService, auth: &Auth, r: &Router) -> Value {
    let t = target(r);
    hide_attrs(svc, auth, "get_router", t.clone(), &t)
}

/// `external_gateway_info`: absent (unchanged), `null` or `{}` (none), or a gateway.
fn gateway(obj: &Obj) -> Result<Option<Option<GatewayRequest>>> {
    match obj.get("external_gateway_info") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Object(m)) if m.is_empty() => Ok(Some(None)),
        Some(Value::Object(m)) => {
            input::only(m, &["network_id", "enable_snat", "external_fixed_ips"])?;
            let network_id = input::string(m, "network_id", 255)?.ok_or_else(|| {
                NetworkError::invalid_attr("external_gateway_info", "'network_id' is required")
            })?;
            let fixed_ips = match input::objects(m, "external_fixed_ips")? {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(|f| {
                            Ok(IpRequest {
                                subnet_id: input::string(f, "subnet_id", 255)?,
                                ip_address: match input::string(f, "ip_address", 64)? {
                                    None => None,
                                    Some(s) => Some(ipam::parse_ip(&s).map_err(|e| {
                                        NetworkError::invalid_attr("external_fixed_ips", e)
                                    })?),
                                },
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                ),
            };
            Ok(Some(Some(GatewayRequest {
                network_id,
                enable_snat: input::boolean(m, "enable_snat")?,
                fixed_ips,
            })))
        }
        Some(v) => Err(NetworkError::invalid_attr(
            "external_gateway_info",
            format!("'{v}' is not a dictionary"),
        )),
    }
}

fn routes(obj: &Obj) -> Result<Option<Vec<HostRoute>>> {
    let Some(list) = input::objects(obj, "routes")? else {
        return Ok(None);
    };
    let mut out: Vec<HostRoute> = Vec::new();
    for r in &list {
        input::only(r, &["destination", "nexthop"])?;
        let d = input::string(r, "destination", 64)?.unwrap_or_default();
        let n = input::string(r, "nexthop", 64)?.unwrap_or_default();
        let route = HostRoute {
            destination: ipam::parse_prefix(&d)
                .map_err(|e| NetworkError::invalid_attr("routes", e))?,
            nexthop: ipam::parse_ip(&n).map_err(|e| NetworkError::invalid_attr("routes", e))?,
        };
        if out.contains(&route) {
            return Err(NetworkError::invalid_attr(
                "routes",
                format!("Duplicate route {d} via {n}"),
            ));
        }
        out.push(route);
    }
    Ok(Some(out))
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "router", "routers")?;
    let mut out = Vec::new();
    for obj in &objs {
        input::only(
            obj,
            &[
                "name",
                "description",
                "admin_state_up",
                "external_gateway_info",
                "project_id",
                "tenant_id",
                "availability_zone_hints",
            ],
        )?;
        let project = crate::app::owner_for(&auth, input::project(obj)?.as_deref())?;
        let t = json!({"project_id": project, "tenant_id": project});
        authorize(svc, &auth, "create_router", &t)?;
        authorize_attrs(svc, &auth, "create_router", obj, &t, &[])?;
        let req = NewRouter {
            project_id: Some(project),
            name: input::string(obj, "name", 255)?.unwrap_or_default(),
            description: input::string(obj, "description", 255)?.unwrap_or_default(),
            admin_state_up: input::boolean(obj, "admin_state_up")?.unwrap_or(true),
            gateway: gateway(obj)?.flatten(),
            az_hints: input::strings(obj, "availability_zone_hints")?.unwrap_or_default(),
        };
        if let Some(gw) = &req.gateway {
            // The gateway's network must be one the caller sees.
            svc.find_network(&gw.network_id, &auth).await?;
        }
        let r = svc.create_router(&auth, req).await?;
        out.push(view(svc, &auth, &r));
    }
    Ok(created("router", "routers", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_routers(&auth)
        .await?
        .iter()
        .filter_map(|r| {
            let t = target(r);
            svc.policy
                .enforce("get_router", &t, &creds)
                .then(|| hide_attrs(svc, &auth, "get_router", t.clone(), &t))
        })
        .collect();
    Ok(axum::Json(lq.render(items, "routers", &collection_url(svc, "routers"))?).into_response())
}

async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<Router> {
    let r = svc.find_router(id, auth).await?;
    if !svc
        .policy
        .enforce("get_router", &target(&r), &auth.credentials())
    {
        return Err(NetworkError::not_found(
            "RouterNotFound",
            format!("Router {id} could not be found"),
        ));
    }
    Ok(r)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let r = readable(svc, &auth, &id).await?;
    let v = query::project(view(svc, &auth, &r), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "router": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "router")?;
    input::only(
        &obj,
        &[
            "name",
            "description",
            "admin_state_up",
            "external_gateway_info",
            "routes",
        ],
    )?;
    let r = readable(svc, &auth, &id).await?;
    let t = target(&r);
    authorize(svc, &auth, "update_router", &t)?;
    authorize_attrs(svc, &auth, "update_router", &obj, &t, &[])?;
    let gw = gateway(&obj)?;
    if let Some(Some(g)) = &gw {
        svc.find_network(&g.network_id, &auth).await?;
    }
    let changes = RouterChanges {
        name: input::string(&obj, "name", 255)?,
        description: input::string(&obj, "description", 255)?,
        admin_state_up: input::boolean(&obj, "admin_state_up")?,
        gateway: gw,
        routes: routes(&obj)?,
    };
    let r = svc
        .update_router(&id, changes, input::if_match(&headers)?)
        .await?;
    Ok(axum::Json(json!({ "router": view(svc, &auth, &r) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let r = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_router", &target(&r))?;
    svc.delete_router(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of an interface action: `{"subnet_id": ...}` or `{"port_id": ...}`.
fn interface_ref(body: &[u8]) -> Result<InterfaceRef> {
    let v: Value = ferrostack_api::json::parse(body)?;
    let obj = v.as_object().cloned().unwrap_or_default();
    let subnet = input::string(&obj, "subnet_id", 255)?;
    let port = input::string(&obj, "port_id", 255)?;
    match (subnet, port) {
        (Some(s), None) => Ok(InterfaceRef::Subnet(s)),
        (None, Some(p)) => Ok(InterfaceRef::Port(p)),
        (Some(_), Some(_)) => Err(NetworkError::bad_request(
            "BadRequest",
            "Bad router request: Cannot specify both subnet-id and port-id.",
        )),
        (None, None) => Err(NetworkError::bad_request(
            "BadRequest",
            "Bad router request: Either subnet_id or port_id must be specified.",
        )),
    }
}

pub async fn add_interface(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let what = interface_ref(&body)?;
    let r = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "add_router_interface", &target(&r))?;
    let info = svc.add_interface(&auth, &id, what).await?;
    Ok(axum::Json(wire::interface(&info)).into_response())
}

pub async fn remove_interface(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let what = interface_ref(&body)?;
    let r = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "remove_router_interface", &target(&r))?;
    let info = svc.remove_interface(&auth, &id, what).await?;
    Ok(axum::Json(wire::interface(&info)).into_response())
}
