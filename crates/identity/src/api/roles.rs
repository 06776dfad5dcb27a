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
use crate::app::roles::RoleGraph;
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{new_id, Role};
use crate::Identity;

/// Roles that may not be implied by another (Keystone's `prohibited_implied_role`).
const PROHIBITED_IMPLIED: [&str; 1] = ["admin"];

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

pub async fn get_role(id: &Identity, role_id: &str) -> Result<Role> {
    db::roles::get(&id.db.pool, role_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("role", role_id))
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
        name: name.clone(),
        domain_id,
        description,
        extra: o,
    };
    auth.enforce(
        &id.policy,
        &action("create", r.domain_id.as_deref()),
        &target(&r),
    )?;
    if let Some(d) = &r.domain_id {
        if db::domains::get(&id.db.pool, d).await?.is_none() {
            return Err(IdentityError::validation(format!(
                "Could not find domain: {d}."
            )));
        }
    }
    let mut tx = id.db.begin_write().await?;
    db::roles::insert(&mut *tx, &r).await.map_err(conflict_or(
        "role",
        format!("Duplicate entry found with name {name}"),
    ))?;
    id.commit_change(tx, vec![]).await?;
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
    let roles: Vec<Value> = db::roles::list(&id.db.pool, domain.as_deref())
        .await?
        .iter()
        .filter(|r| q.get("name").is_none_or(|n| *n == r.name))
        .map(|r| wire(id, r))
        .collect();
    Ok(
        axum::Json(json!({"roles": roles, "links": wire::collection_links(id, "roles")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(role_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let r = get_role(id, &role_id).await?;
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
    let mut r = get_role(id, &role_id).await?;
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
    let mut tx = id.db.begin_write().await?;
    db::roles::update(&mut *tx, &r).await.map_err(conflict_or(
        "role",
        format!("Duplicate entry found with name {}", r.name),
    ))?;
    id.commit_change(tx, vec![]).await?;
    Ok(axum::Json(json!({"role": wire(id, &r)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(role_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let r = get_role(id, &role_id).await?;
    auth.enforce(
        &id.policy,
        &action("delete", r.domain_id.as_deref()),
        &target(&r),
    )?;
    let mut tx = id.db.begin_write().await?;
    // Assignments and implication rules go with the role (ON DELETE CASCADE).
    db::roles::delete(&mut *tx, &r.id).await?;
    id.commit_change(tx, vec![]).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- implied roles

async fn pair(id: &Identity, prior_id: &str, implied_id: &str) -> Result<(Role, Role)> {
    Ok((
        get_role(id, prior_id).await?,
        get_role(id, implied_id).await?,
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
    if PROHIBITED_IMPLIED.contains(&implied.name.as_str()) {
        return Err(IdentityError::ForbiddenWithReason(format!(
            "{} role may not be implied.",
            implied.name
        )));
    }
    if implied.domain_id.is_some() && prior.domain_id.is_none() {
        return Err(IdentityError::ForbiddenWithReason(
            "A global role cannot imply a domain-specific role.".into(),
        ));
    }
    let mut tx = id.db.begin_write().await?;
    let graph = RoleGraph::load(&mut tx).await?;
    if prior.id == implied.id || graph.implies(&implied.id, &prior.id) {
        return Err(IdentityError::validation(format!(
            "Implying {} from {} would create a cycle of implied roles.",
            implied.name, prior.name
        )));
    }
    db::roles::add_implied(&mut *tx, &prior.id, &implied.id).await?;
    id.commit_change(tx, vec![]).await?;
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
    let rules = db::roles::implied_rules(&id.db.pool).await?;
    if !rules
        .iter()
        .any(|(p, i)| *p == prior.id && *i == implied.id)
    {
        return Err(IdentityError::not_found(
            "implied role",
            format!("{prior_id} implies {implied_id}"),
        ));
    }
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
    let rules = db::roles::implied_rules(&id.db.pool).await?;
    if !rules
        .iter()
        .any(|(p, i)| *p == prior.id && *i == implied.id)
    {
        return Err(IdentityError::not_found(
            "implied role",
            format!("{prior_id} implies {implied_id}"),
        ));
    }
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
    let mut tx = id.db.begin_write().await?;
    if !db::roles::remove_implied(&mut *tx, &prior.id, &implied.id).await? {
        return Err(IdentityError::not_found(
            "implied role",
            format!("{prior_id} implies {implied_id}"),
        ));
    }
    id.commit_change(tx, vec![]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_implied(state: State, auth: Auth, Path(prior_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:list_implied_roles", &json!({}))?;
    let prior = get_role(id, &prior_id).await?;
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let rules = db::roles::implied_rules(&mut *conn).await?;
    let implies: Vec<Value> = rules
        .iter()
        .filter(|(p, _)| *p == prior.id)
        .filter_map(|(_, i)| graph.roles.get(i))
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
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let rules = db::roles::implied_rules(&mut *conn).await?;
    let mut by_prior: Vec<(String, Vec<Value>)> = Vec::new();
    for (p, i) in &rules {
        let Some(ir) = graph.roles.get(i) else {
            continue;
        };
        match by_prior.iter_mut().find(|(k, _)| k == p) {
            Some((_, v)) => v.push(brief(id, ir)),
            None => by_prior.push((p.clone(), vec![brief(id, ir)])),
        }
    }
    let list: Vec<Value> = by_prior
        .iter()
        .filter_map(|(p, implies)| {
            graph
                .roles
                .get(p)
                .map(|pr| json!({"prior_role": brief(id, pr), "implies": implies}))
        })
        .collect();
    Ok(axum::Json(
        json!({"role_inferences": list, "links": wire::self_link(id, "role_inferences")}),
    )
    .into_response())
}
