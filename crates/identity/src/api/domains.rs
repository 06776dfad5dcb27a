//! `/v3/domains`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{
    self, body_object, drop_readonly, take_opt_bool, take_opt_string, take_stripped_name,
    with_extra,
};
use super::State;
use crate::app::domains::{self, DomainFilter};
use crate::error::Result;
use crate::model::{new_id, Domain};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route("/domains", get(list).post(create))
        .route(
            "/domains/{domain_id}",
            get(show).patch(update).delete(remove),
        )
}

pub fn wire(id: &Identity, d: &Domain) -> Value {
    with_extra(
        json!({
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "enabled": d.enabled,
            "tags": [],
            "options": {},
            "links": wire::self_link(id, &format!("domains/{}", d.id)),
        }),
        &d.extra,
    )
}

fn target(d: &Domain) -> Value {
    json!({"target": {"domain": {"id": d.id, "name": d.name}}, "domain_id": d.id})
}

async fn create(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:create_domain", &json!({}))?;
    let mut o = body_object(body, "domain")?;
    drop_readonly(&mut o, None)?;
    let name = take_stripped_name(&mut o, "name", 64)?;
    let d = Domain {
        id: take_opt_string(&mut o, "explicit_domain_id", 64)?.unwrap_or_else(new_id),
        name,
        description: take_opt_string(&mut o, "description", 65535)?.unwrap_or_default(),
        enabled: take_opt_bool(&mut o, "enabled")?.unwrap_or(true),
        extra: {
            o.remove("tags");
            o.remove("options");
            o
        },
    };
    domains::create(id, &d).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"domain": wire(id, &d)})),
    )
        .into_response())
}

async fn list(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_domains", &json!({}))?;
    let filter = DomainFilter {
        name: q.get("name").cloned(),
        enabled: q.get("enabled").map(|e| wire::query_bool(e)),
    };
    let domains: Vec<Value> = domains::list(id, &filter)
        .await?
        .iter()
        .map(|d| wire(id, d))
        .collect();
    Ok(
        axum::Json(json!({"domains": domains, "links": wire::collection_links(id, "domains")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(domain_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let d = domains::get(id, &domain_id).await?;
    auth.enforce(&id.policy, "identity:get_domain", &target(&d))?;
    Ok(axum::Json(json!({"domain": wire(id, &d)})).into_response())
}

async fn update(
    state: State,
    auth: Auth,
    Path(domain_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let mut d = domains::get(id, &domain_id).await?;
    auth.enforce(&id.policy, "identity:update_domain", &target(&d))?;
    let mut o = body_object(body, "domain")?;
    drop_readonly(&mut o, Some(&domain_id))?;
    if o.contains_key("name") {
        d.name = take_stripped_name(&mut o, "name", 64)?;
    }
    if let Some(desc) = take_opt_string(&mut o, "description", 65535)? {
        d.description = desc;
    }
    if let Some(e) = take_opt_bool(&mut o, "enabled")? {
        d.enabled = e;
    }
    o.remove("tags");
    o.remove("options");
    d.extra.extend(o);
    domains::update(id, &d).await?;
    Ok(axum::Json(json!({"domain": wire(id, &d)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(domain_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let d = domains::get(id, &domain_id).await?;
    auth.enforce(&id.policy, "identity:delete_domain", &target(&d))?;
    domains::delete(id, &d.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
