//! `/v3/regions`, `/v3/services`, `/v3/endpoints`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{
    self, body_object, drop_readonly, take_name, take_opt_bool, take_opt_string, with_extra,
};
use super::State;
use crate::app::catalog::{self, EndpointFilter};
use crate::error::{IdentityError, Result};
use crate::model::{new_id, Endpoint, Region, Service};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route("/regions", get(list_regions).post(create_region))
        .route(
            "/regions/{region_id}",
            get(show_region)
                .put(put_region)
                .patch(update_region)
                .delete(delete_region),
        )
        .route("/services", get(list_services).post(create_service))
        .route(
            "/services/{service_id}",
            get(show_service)
                .patch(update_service)
                .delete(delete_service),
        )
        .route("/endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/endpoints/{endpoint_id}",
            get(show_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
}

fn json_ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

// ---- regions

fn region_wire(id: &Identity, r: &Region) -> Value {
    with_extra(
        json!({"id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
               "links": wire::self_link(id, &format!("regions/{}", r.id))}),
        &r.extra,
    )
}

async fn insert_region(
    id: &Identity,
    auth: &Auth,
    region_id: Option<String>,
    body: Value,
) -> Result<Response> {
    auth.enforce(&id.policy, "identity:create_region", &json!({}))?;
    let mut o = body_object(body, "region")?;
    let body_id = take_opt_string(&mut o, "id", 255)?;
    o.remove("links");
    let rid = match (region_id, body_id) {
        (Some(p), Some(b)) if p != b => {
            return Err(IdentityError::validation(
                "The region id in the path and in the body differ.",
            ))
        }
        (Some(p), _) => p,
        (None, Some(b)) => b,
        (None, None) => new_id(),
    };
    let parent = take_opt_string(&mut o, "parent_region_id", 255)?;
    if let Some(p) = &parent {
        // Keystone: RegionNotFound (404) for the parent.
        catalog::get_region(id, p).await?;
    }
    let r = Region {
        id: rid,
        description: take_opt_string(&mut o, "description", 255)?.unwrap_or_default(),
        parent_region_id: parent,
        extra: o,
    };
    catalog::create_region(id, &r).await?;
    Ok(created(json!({"region": region_wire(id, &r)})))
}

async fn create_region(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    insert_region(&state.0, &auth, None, body).await
}

async fn put_region(
    state: State,
    auth: Auth,
    Path(region_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    insert_region(&state.0, &auth, Some(region_id), body).await
}

async fn list_regions(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_regions", &json!({}))?;
    let list: Vec<Value> = catalog::list_regions(id, q.get("parent_region_id").map(String::as_str))
        .await?
        .iter()
        .map(|r| region_wire(id, r))
        .collect();
    Ok(json_ok(
        json!({"regions": list, "links": wire::collection_links(id, "regions")}),
    ))
}

async fn show_region(state: State, auth: Auth, Path(region_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_region", &json!({}))?;
    Ok(json_ok(
        json!({"region": region_wire(id, &catalog::get_region(id, &region_id).await?)}),
    ))
}

async fn update_region(
    state: State,
    auth: Auth,
    Path(region_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:update_region", &json!({}))?;
    let mut r = catalog::get_region(id, &region_id).await?;
    let mut o = body_object(body, "region")?;
    drop_readonly(&mut o, Some(&region_id))?;
    if let Some(d) = take_opt_string(&mut o, "description", 255)? {
        r.description = d;
    }
    if o.contains_key("parent_region_id") {
        r.parent_region_id = take_opt_string(&mut o, "parent_region_id", 255)?;
        if let Some(parent) = r.parent_region_id.clone() {
            catalog::check_region_parent(id, &region_id, &parent).await?;
        }
    }
    r.extra.extend(o);
    catalog::update_region(id, &r).await?;
    Ok(json_ok(json!({"region": region_wire(id, &r)})))
}

async fn delete_region(
    state: State,
    auth: Auth,
    Path(region_id): Path<String>,
) -> Result<StatusCode> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:delete_region", &json!({}))?;
    catalog::delete_region(id, &region_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- services

fn service_wire(id: &Identity, s: &Service) -> Value {
    with_extra(
        json!({"id": s.id, "type": s.service_type, "name": s.name, "description": s.description,
               "enabled": s.enabled, "links": wire::self_link(id, &format!("services/{}", s.id))}),
        &s.extra,
    )
}

async fn create_service(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:create_service", &json!({}))?;
    let mut o = body_object(body, "service")?;
    drop_readonly(&mut o, None)?;
    let s = Service {
        id: new_id(),
        service_type: take_name(&mut o, "type", 255)?,
        name: take_opt_string(&mut o, "name", 255)?.unwrap_or_default(),
        description: take_opt_string(&mut o, "description", 65535)?.unwrap_or_default(),
        enabled: take_opt_bool(&mut o, "enabled")?.unwrap_or(true),
        extra: o,
    };
    catalog::create_service(id, &s).await?;
    Ok(created(json!({"service": service_wire(id, &s)})))
}

async fn list_services(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_services", &json!({}))?;
    let list: Vec<Value> = catalog::list_services(
        id,
        q.get("type").map(String::as_str),
        q.get("name").map(String::as_str),
    )
    .await?
    .iter()
    .map(|s| service_wire(id, s))
    .collect();
    Ok(json_ok(
        json!({"services": list, "links": wire::collection_links(id, "services")}),
    ))
}

async fn show_service(
    state: State,
    auth: Auth,
    Path(service_id): Path<String>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_service", &json!({}))?;
    Ok(json_ok(
        json!({"service": service_wire(id, &catalog::get_service(id, &service_id).await?)}),
    ))
}

async fn update_service(
    state: State,
    auth: Auth,
    Path(service_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:update_service", &json!({}))?;
    let mut s = catalog::get_service(id, &service_id).await?;
    let mut o = body_object(body, "service")?;
    drop_readonly(&mut o, Some(&service_id))?;
    if o.contains_key("type") {
        s.service_type = take_name(&mut o, "type", 255)?;
    }
    if let Some(n) = take_opt_string(&mut o, "name", 255)? {
        s.name = n;
    }
    if let Some(d) = take_opt_string(&mut o, "description", 65535)? {
        s.description = d;
    }
    if let Some(e) = take_opt_bool(&mut o, "enabled")? {
        s.enabled = e;
    }
    s.extra.extend(o);
    catalog::update_service(id, &s).await?;
    Ok(json_ok(json!({"service": service_wire(id, &s)})))
}

async fn delete_service(
    state: State,
    auth: Auth,
    Path(service_id): Path<String>,
) -> Result<StatusCode> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:delete_service", &json!({}))?;
    catalog::delete_service(id, &service_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- endpoints

fn endpoint_wire(id: &Identity, e: &Endpoint) -> Value {
    with_extra(
        json!({"id": e.id, "interface": e.interface, "region_id": e.region_id, "region": e.region_id,
               "service_id": e.service_id, "url": e.url, "enabled": e.enabled,
               "links": wire::self_link(id, &format!("endpoints/{}", e.id))}),
        &e.extra,
    )
}

fn check_interface(i: &str) -> Result<()> {
    if ["public", "internal", "admin"].contains(&i) {
        Ok(())
    } else {
        Err(IdentityError::validation(format!(
            "Invalid input for field 'interface': '{i}' is not one of ['admin', 'internal', 'public']"
        )))
    }
}

fn check_url(u: &str) -> Result<()> {
    if url_like(u) {
        Ok(())
    } else {
        Err(IdentityError::validation(format!(
            "Invalid input for field 'url': '{u}' is not a valid URL"
        )))
    }
}

fn url_like(u: &str) -> bool {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

/// The region of an endpoint body and whether it is to be created when missing: `region_id`
/// must name an existing region; the legacy `region` attribute creates a missing one, as
/// Keystone does.
async fn endpoint_region(id: &Identity, o: &mut wire::Object) -> Result<(Option<String>, bool)> {
    let region_id = take_opt_string(o, "region_id", 255)?;
    let legacy = take_opt_string(o, "region", 255)?;
    match (region_id, legacy) {
        (Some(r), _) => {
            catalog::check_endpoint_region(id, &r).await?;
            Ok((Some(r), false))
        }
        (None, Some(r)) => Ok((Some(r), true)),
        (None, None) => Ok((None, false)),
    }
}

async fn create_endpoint(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:create_endpoint", &json!({}))?;
    let mut o = body_object(body, "endpoint")?;
    drop_readonly(&mut o, None)?;
    let service_id = take_name(&mut o, "service_id", 64)?;
    catalog::check_endpoint_service(id, &service_id).await?;
    let interface = take_name(&mut o, "interface", 16)?;
    check_interface(&interface)?;
    let url = take_name(&mut o, "url", 225)?;
    check_url(&url)?;
    let (region_id, ensure_region) = endpoint_region(id, &mut o).await?;
    let e = Endpoint {
        id: new_id(),
        service_id,
        region_id,
        interface,
        url,
        enabled: take_opt_bool(&mut o, "enabled")?.unwrap_or(true),
        extra: o,
    };
    catalog::create_endpoint(id, &e, ensure_region).await?;
    Ok(created(json!({"endpoint": endpoint_wire(id, &e)})))
}

async fn list_endpoints(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_endpoints", &json!({}))?;
    let filter = EndpointFilter {
        interface: q.get("interface").cloned(),
        service_id: q.get("service_id").cloned(),
        region_id: q.get("region_id").cloned(),
    };
    let list: Vec<Value> = catalog::list_endpoints(id, &filter)
        .await?
        .iter()
        .map(|e| endpoint_wire(id, e))
        .collect();
    Ok(json_ok(
        json!({"endpoints": list, "links": wire::collection_links(id, "endpoints")}),
    ))
}

async fn show_endpoint(
    state: State,
    auth: Auth,
    Path(endpoint_id): Path<String>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_endpoint", &json!({}))?;
    Ok(json_ok(
        json!({"endpoint": endpoint_wire(id, &catalog::get_endpoint(id, &endpoint_id).await?)}),
    ))
}

async fn update_endpoint(
    state: State,
    auth: Auth,
    Path(endpoint_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:update_endpoint", &json!({}))?;
    let mut e = catalog::get_endpoint(id, &endpoint_id).await?;
    let mut o = body_object(body, "endpoint")?;
    drop_readonly(&mut o, Some(&endpoint_id))?;
    if o.contains_key("service_id") {
        e.service_id = take_name(&mut o, "service_id", 64)?;
        catalog::check_endpoint_service(id, &e.service_id).await?;
    }
    if o.contains_key("interface") {
        e.interface = take_name(&mut o, "interface", 16)?;
        check_interface(&e.interface)?;
    }
    if o.contains_key("url") {
        e.url = take_name(&mut o, "url", 225)?;
        check_url(&e.url)?;
    }
    let mut ensure_region = false;
    if o.contains_key("region_id") || o.contains_key("region") {
        (e.region_id, ensure_region) = endpoint_region(id, &mut o).await?;
    }
    if let Some(en) = take_opt_bool(&mut o, "enabled")? {
        e.enabled = en;
    }
    e.extra.extend(o);
    catalog::update_endpoint(id, &e, ensure_region).await?;
    Ok(json_ok(json!({"endpoint": endpoint_wire(id, &e)})))
}

async fn delete_endpoint(
    state: State,
    auth: Auth,
    Path(endpoint_id): Path<String>,
) -> Result<StatusCode> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:delete_endpoint", &json!({}))?;
    catalog::delete_endpoint(id, &endpoint_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls() {
        assert!(super::url_like("http://127.0.0.1:5000/identity"));
        assert!(!super::url_like("ftp://x"));
        assert!(!super::url_like("http://"));
    }
}
