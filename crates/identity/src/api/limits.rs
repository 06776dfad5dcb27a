//! Unified limits: `/v3/registered_limits`, `/v3/limits`, `/v3/limits/model` (flat model).

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{self, body_object, take_name, take_opt_string};
use super::State;
use crate::app::limits::{self, LimitFilter, LimitViewer};
use crate::app::projects;
use crate::error::{IdentityError, Result};
use crate::model::{new_id, Limit, RegisteredLimit};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route(
            "/registered_limits",
            get(list_registered).post(create_registered),
        )
        .route(
            "/registered_limits/{limit_id}",
            get(show_registered)
                .patch(update_registered)
                .delete(delete_registered),
        )
        .route("/limits", get(list_limits).post(create_limits))
        .route("/limits/model", get(model))
        .route(
            "/limits/{limit_id}",
            get(show_limit).patch(update_limit).delete(delete_limit),
        )
}

fn registered_wire(id: &Identity, l: &RegisteredLimit) -> Value {
    json!({"id": l.id, "service_id": l.service_id, "region_id": l.region_id, "resource_name": l.resource_name,
           "default_limit": l.default_limit, "description": l.description,
           "links": wire::self_link(id, &format!("registered_limits/{}", l.id))})
}

fn limit_wire(id: &Identity, l: &Limit) -> Value {
    json!({"id": l.id, "project_id": l.project_id, "domain_id": l.domain_id, "service_id": l.service_id,
           "region_id": l.region_id, "resource_name": l.resource_name, "resource_limit": l.resource_limit,
           "description": l.description, "links": wire::self_link(id, &format!("limits/{}", l.id))})
}

/// The filters of a limit listing's query string.
fn filter(q: &HashMap<String, String>) -> LimitFilter {
    LimitFilter {
        service_id: q.get("service_id").cloned(),
        region_id: q.get("region_id").cloned(),
        resource_name: q.get("resource_name").cloned(),
        project_id: q.get("project_id").cloned(),
        domain_id: q.get("domain_id").cloned(),
    }
}

fn take_count(o: &mut wire::Object, field: &str) -> Result<i64> {
    match o.remove(field) {
        // Keystone's schema: an integer from -1 to 2147483647 (a signed 32-bit INT).
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|v| (-1..=i64::from(i32::MAX)).contains(v))
            .ok_or_else(|| {
                IdentityError::validation(format!(
                    "Invalid input for field '{field}': {n} is not an integer from -1 to 2147483647"
                ))
            }),
        Some(other) => Err(wire::type_error(field, &other, "integer")),
        None => Err(IdentityError::validation(format!(
            "'{field}' is a required property"
        ))),
    }
}

fn no_extra(o: &wire::Object) -> Result<()> {
    match o.keys().next() {
        Some(k) => Err(IdentityError::validation(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

fn list_body(body: Value, key: &str) -> Result<Vec<wire::Object>> {
    match body.get(key) {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| {
                v.as_object().cloned().ok_or_else(|| {
                    IdentityError::validation(format!("Each of {key} must be an object."))
                })
            })
            .collect(),
        _ => Err(IdentityError::validation(format!(
            "Expecting to find a non-empty list {key} in request body."
        ))),
    }
}

// ---- registered limits

async fn create_registered(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:create_registered_limits", &json!({}))?;
    let mut out = Vec::new();
    for mut o in list_body(body, "registered_limits")? {
        let l = RegisteredLimit {
            id: new_id(),
            service_id: take_name(&mut o, "service_id", 64)?,
            region_id: take_opt_string(&mut o, "region_id", 255)?,
            resource_name: take_name(&mut o, "resource_name", 255)?,
            default_limit: take_count(&mut o, "default_limit")?,
            description: take_opt_string(&mut o, "description", 255)?.unwrap_or_default(),
        };
        no_extra(&o)?;
        limits::check_refs(id, &l.service_id, l.region_id.as_deref()).await?;
        out.push(l);
    }
    limits::create_registered(id, &out).await?;
    let list: Vec<Value> = out.iter().map(|l| registered_wire(id, l)).collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"registered_limits": list})),
    )
        .into_response())
}

async fn list_registered(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_registered_limits", &json!({}))?;
    let list: Vec<Value> = limits::list_registered(id, &filter(&q))
        .await?
        .iter()
        .map(|l| registered_wire(id, l))
        .collect();
    Ok(axum::Json(json!({"registered_limits": list, "links": wire::collection_links(id, "registered_limits")})).into_response())
}

async fn show_registered(
    state: State,
    auth: Auth,
    Path(limit_id): Path<String>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_registered_limit", &json!({}))?;
    Ok(axum::Json(
        json!({"registered_limit": registered_wire(id, &limits::get_registered(id, &limit_id).await?)}),
    )
    .into_response())
}

async fn update_registered(
    state: State,
    auth: Auth,
    Path(limit_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:update_registered_limit", &json!({}))?;
    let mut l = limits::get_registered(id, &limit_id).await?;
    let mut o = body_object(body, "registered_limit")?;
    let identity_change = ["service_id", "region_id", "resource_name"]
        .iter()
        .any(|k| o.contains_key(*k));
    if identity_change {
        limits::check_registered_movable(id, &l).await?;
    }
    if o.contains_key("service_id") {
        l.service_id = take_name(&mut o, "service_id", 64)?;
    }
    if o.contains_key("region_id") {
        l.region_id = take_opt_string(&mut o, "region_id", 255)?;
    }
    if o.contains_key("resource_name") {
        l.resource_name = take_name(&mut o, "resource_name", 255)?;
    }
    if o.contains_key("default_limit") {
        l.default_limit = take_count(&mut o, "default_limit")?;
    }
    if let Some(d) = take_opt_string(&mut o, "description", 255)? {
        l.description = d;
    }
    no_extra(&o)?;
    limits::update_registered(id, &l).await?;
    Ok(axum::Json(json!({"registered_limit": registered_wire(id, &l)})).into_response())
}

async fn delete_registered(
    state: State,
    auth: Auth,
    Path(limit_id): Path<String>,
) -> Result<StatusCode> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:delete_registered_limit", &json!({}))?;
    let l = limits::get_registered(id, &limit_id).await?;
    limits::delete_registered(id, &l).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- limits

async fn create_limits(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:create_limits", &json!({}))?;
    let mut out = Vec::new();
    for mut o in list_body(body, "limits")? {
        let l = Limit {
            id: new_id(),
            project_id: take_opt_string(&mut o, "project_id", 64)?,
            domain_id: take_opt_string(&mut o, "domain_id", 64)?,
            service_id: take_name(&mut o, "service_id", 64)?,
            region_id: take_opt_string(&mut o, "region_id", 255)?,
            resource_name: take_name(&mut o, "resource_name", 255)?,
            resource_limit: take_count(&mut o, "resource_limit")?,
            description: take_opt_string(&mut o, "description", 255)?.unwrap_or_default(),
        };
        no_extra(&o)?;
        limits::check_new_limit(id, &l).await?;
        out.push(l);
    }
    limits::create_limits(id, &out).await?;
    let list: Vec<Value> = out.iter().map(|l| limit_wire(id, l)).collect();
    Ok((StatusCode::CREATED, axum::Json(json!({"limits": list}))).into_response())
}

async fn list_limits(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_limits", &json!({}))?;
    // Non-admins see the limits of their own project (or domain) only.
    let viewer = LimitViewer {
        cloud_wide: auth.system || auth.is_admin,
        project_id: auth.project_id().map(str::to_string),
        domain_id: auth.domain.as_ref().map(|d| d.id.clone()),
    };
    let list: Vec<Value> = limits::list_limits(id, &viewer, &filter(&q))
        .await?
        .iter()
        .map(|l| limit_wire(id, l))
        .collect();
    Ok(
        axum::Json(json!({"limits": list, "links": wire::collection_links(id, "limits")}))
            .into_response(),
    )
}

async fn show_limit(state: State, auth: Auth, Path(limit_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let l = limits::get_limit(id, &limit_id).await?;
    let project_domain = match &l.project_id {
        Some(p) => Some(projects::get(id, p).await?.domain_id),
        None => None,
    };
    auth.enforce(
        &id.policy,
        "identity:get_limit",
        &json!({"target": {"limit": {"project_id": l.project_id, "domain": {"id": l.domain_id},
                                     "project": {"domain_id": project_domain}}}}),
    )?;
    Ok(axum::Json(json!({"limit": limit_wire(id, &l)})).into_response())
}

async fn update_limit(
    state: State,
    auth: Auth,
    Path(limit_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:update_limit", &json!({}))?;
    let mut l = limits::get_limit(id, &limit_id).await?;
    let mut o = body_object(body, "limit")?;
    if o.contains_key("resource_limit") {
        l.resource_limit = take_count(&mut o, "resource_limit")?;
    }
    if let Some(d) = take_opt_string(&mut o, "description", 255)? {
        l.description = d;
    }
    no_extra(&o)?;
    limits::update_limit(id, &l).await?;
    Ok(axum::Json(json!({"limit": limit_wire(id, &l)})).into_response())
}

async fn delete_limit(
    state: State,
    auth: Auth,
    Path(limit_id): Path<String>,
) -> Result<StatusCode> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:delete_limit", &json!({}))?;
    limits::delete_limit(id, &limit_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn model(state: State, auth: Auth) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_limit_model", &json!({}))?;
    Ok(axum::Json(json!({"model": {"name": "flat",
        "description": "Limit enforcement and validation does not take project hierarchy into consideration."}}))
    .into_response())
}
