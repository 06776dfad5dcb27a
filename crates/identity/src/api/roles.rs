//! `/v3/roles` (global and domain-specific) and implied roles.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{self, body_object, drop_readonly, take_name, take_opt_string, with_extra};
use super::State;
use crate::app::roles;
use crate::error::{IdentityError, Result};
use crate::model::{new_id, Role};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route("/roles", get(list).post(create))
        .route("/roles/{role_id}", get(show).patch(update).delete(remove))
        .route("/roles/{prior_id}/implies", get(list_implied))
        .route(
            "/roles/{prior_id}/implies/{implied_id}",
            get(get_implied)
                .head(check_implied)
                .put(create_implied)
                .delete(delete_implied),
        )
        .route("/role_inferences", get(list_inferences))
}

pub fn wire(id: &Identity, r: &Role) -> Value {
    with_extra(
        json!({
            "id": r.id,
            "name": r.name,
            "domain_id": r.domain_id,
            "description": r.description,
            "options": {},
            "links": wire::self_link(id, &format!("roles/{}", r.id)),
        }),
        &r.extra,
    )
}

fn brief(id: &Identity, r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "links": wire::self_link(id, &format!("roles/{}", r.id))})
}

pub fn target(r: &Role) -> Value {
    json!({"target": {"role": {"id": r.id, "name": r.name, "domain_id": r.domain_id}}, "role_id": r.id})
}

/// The action name for `op` on `r`: domain-specific roles have their own rules.
fn action(op: &str, r_domain: Option<&str>) -> String {
    match r_domain {
        Some(_) => format!("identity:{op}_domain_role"),
        None => format!("identity:{op}_role"),
    }
}

async fn create(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    let mut o = body_object(body, "role")?;
    drop_readonly(&mut o, None)?;
    let name = take_name(&mut o, "name", 255)?;
    let domain_id = take_opt_string(&mut o, "domain_id", 64)?;
    let description = take_opt_string(&mut o, "description", 255)?.unwrap_or_default();
    o.remove("options");
    let r = Role {
        id: new_id(),
        name,
        domain_id,
        description,
        extra: o,
    };
    auth.enforce(
        &id.policy,
        &action("create", r.domain_id.as_deref()),
        &target(&r),
    )?;
    roles::create(id, &r).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"role": wire(id, &r)})),
    )
        .into_response())
}

async fn list(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    let domain = q.get("domain_id").cloned();
    auth.enforce(
        &id.policy,
        &action("list", domain.as_deref()),
        &json!({"domain_id": domain}),
    )?;
    let roles: Vec<Value> = roles::list(id, domain.as_deref(), q.get("name").map(String::as_str))
        .await?
        .iter()
        .map(|r| wire(id, r))
        .collect();
    Ok(
        axum::Json(json!({"roles": roles, "links": wire::collection_links(id, "roles")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(role_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let r = roles::get(id, &role_id).await?;
    auth.enforce(
        &id.policy,
        &action("get", r.domain_id.as_deref()),
        &target(&r),
    )?;
    Ok(axum::Json(json!({"role": wire(id, &r)})).into_response())
}

async fn update(
    state: State,
    auth: Auth,
    Path(role_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let mut r = roles::get(id, &role_id).await?;
    auth.enforce(
        &id.policy,
        &action("update", r.domain_id.as_deref()),
        &target(&r),
    )?;
    let mut o = body_object(body, "role")?;
    drop_readonly(&mut o, Some(&role_id))?;
    if let Some(d) = o.remove("domain_id") {
        if d.as_str() != r.domain_id.as_deref() {
            return Err(IdentityError::validation(
                "Update of `domain_id` is not allowed.",
            ));
        }
    }
    if o.contains_key("name") {
        r.name = take_name(&mut o, "name", 255)?;
    }
    if let Some(d) = take_opt_string(&mut o, "description", 255)? {
        r.description = d;
    }
    o.remove("options");
    r.extra.extend(o);
    roles::update(id, &r).await?;
    Ok(axum::Json(json!({"role": wire(id, &r)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(role_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let r = roles::get(id, &role_id).await?;
    auth.enforce(
        &id.policy,
        &action("delete", r.domain_id.as_deref()),
        &target(&r),
    )?;
    roles::delete(id, &r.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- implied roles

async fn pair(id: &Identity, prior_id: &str, implied_id: &str) -> Result<(Role, Role)> {
    Ok((
        roles::get(id, prior_id).await?,
        roles::get(id, implied_id).await?,
    ))
}

fn inference(id: &Identity, prior: &Role, implied: &Role) -> Value {
    json!({
        "role_inference": {"prior_role": brief(id, prior), "implies": brief(id, implied)},
        "links": wire::self_link(id, &format!("roles/{}/implies/{}", prior.id, implied.id)),
    })
}

async fn create_implied(
    state: State,
    auth: Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:create_implied_role", &json!({}))?;
    let (prior, implied) = pair(id, &prior_id, &implied_id).await?;
    roles::add_implied(id, &prior, &implied).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(inference(id, &prior, &implied)),
    )
        .into_response())
}

async fn get_implied(
    state: State,
    auth: Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_implied_role", &json!({}))?;
    let (prior, implied) = pair(id, &prior_id, &implied_id).await?;
    roles::check_implied(id, &prior, &implied).await?;
    Ok(axum::Json(inference(id, &prior, &implied)).into_response())
}

/// `HEAD /v3/roles/{prior}/implies/{implied}`: 204 when the rule exists (as Keystone).
async fn check_implied(
    state: State,
    auth: Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:check_implied_role", &json!({}))?;
    let (prior, implied) = pair(id, &prior_id, &implied_id).await?;
    roles::check_implied(id, &prior, &implied).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_implied(
    state: State,
    auth: Auth,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:delete_implied_role", &json!({}))?;
    let (prior, implied) = pair(id, &prior_id, &implied_id).await?;
    roles::remove_implied(id, &prior, &implied).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_implied(state: State, auth: Auth, Path(prior_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_implied_roles", &json!({}))?;
    let prior = roles::get(id, &prior_id).await?;
    let implies: Vec<Value> = roles::implied_by(id, &prior.id)
        .await?
        .iter()
        .map(|r| brief(id, r))
        .collect();
    Ok(axum::Json(json!({
        "role_inference": {"prior_role": brief(id, &prior), "implies": implies},
        "links": wire::self_link(id, &format!("roles/{}/implies", prior.id)),
    }))
    .into_response())
}

async fn list_inferences(state: State, auth: Auth) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_role_inference_rules", &json!({}))?;
    let list: Vec<Value> = roles::inference_rules(id)
        .await?
        .iter()
        .map(|(prior, implies)| {
            let implies: Vec<Value> = implies.iter().map(|r| brief(id, r)).collect();
            json!({"prior_role": brief(id, prior), "implies": implies})
        })
        .collect();
    Ok(axum::Json(
        json!({"role_inferences": list, "links": wire::self_link(id, "role_inferences")}),
    )
    .into_response())
}
