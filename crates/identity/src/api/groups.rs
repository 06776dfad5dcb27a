//! `/v3/groups` and group membership.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{
    self, body_object, drop_readonly, take_opt_string, take_stripped_name, with_extra,
};
use super::State;
use crate::app::groups::{self, GroupFilter};
use crate::app::users;
use crate::error::{IdentityError, Result};
use crate::model::{new_id, Group, DEFAULT_DOMAIN_ID};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{group_id}", get(show).patch(update).delete(remove))
        .route("/groups/{group_id}/users", get(members))
        .route(
            "/groups/{group_id}/users/{user_id}",
            get(check_member).put(add_member).delete(remove_member),
        )
}

pub fn wire(id: &Identity, g: &Group) -> Value {
    with_extra(
        json!({
            "id": g.id,
            "name": g.name,
            "domain_id": g.domain_id,
            "description": g.description,
            "links": wire::self_link(id, &format!("groups/{}", g.id)),
        }),
        &g.extra,
    )
}

pub fn target(g: &Group) -> Value {
    json!({"target": {"group": {"id": g.id, "domain_id": g.domain_id}}, "group_id": g.id, "domain_id": g.domain_id})
}

async fn create(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    let mut o = body_object(body, "group")?;
    drop_readonly(&mut o, None)?;
    let name = take_stripped_name(&mut o, "name", 64)?;
    let domain_id = take_opt_string(&mut o, "domain_id", 64)?
        .or_else(|| auth.project.as_ref().map(|p| p.domain_id.clone()))
        .or_else(|| auth.domain.as_ref().map(|d| d.id.clone()))
        .unwrap_or_else(|| DEFAULT_DOMAIN_ID.to_string());
    let g = Group {
        id: new_id(),
        name,
        domain_id,
        description: take_opt_string(&mut o, "description", 65535)?.unwrap_or_default(),
        extra: o,
    };
    auth.enforce(&id.policy, "identity:create_group", &target(&g))?;
    groups::create(id, &g).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"group": wire(id, &g)})),
    )
        .into_response())
}

async fn list(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    // As Keystone: a domain-scoped caller is checked against its own domain and sees only that
    // domain's groups.
    let token_domain = auth.domain.as_ref().map(|d| d.id.clone());
    let target_domain = token_domain.clone().or_else(|| q.get("domain_id").cloned());
    auth.enforce(
        &id.policy,
        "identity:list_groups",
        &json!({"domain_id": target_domain, "target": {"domain_id": target_domain, "group": {"domain_id": target_domain}}}),
    )?;
    let filter = GroupFilter {
        domain_id: q.get("domain_id").cloned(),
        name: q.get("name").cloned(),
        only_domain: token_domain,
    };
    let groups: Vec<Value> = groups::list(id, &filter)
        .await?
        .iter()
        .map(|g| wire(id, g))
        .collect();
    Ok(
        axum::Json(json!({"groups": groups, "links": wire::collection_links(id, "groups")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(group_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let g = groups::get(id, &group_id).await?;
    auth.enforce(&id.policy, "identity:get_group", &target(&g))?;
    Ok(axum::Json(json!({"group": wire(id, &g)})).into_response())
}

async fn update(
    state: State,
    auth: Auth,
    Path(group_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let mut g = groups::get(id, &group_id).await?;
    auth.enforce(&id.policy, "identity:update_group", &target(&g))?;
    let mut o = body_object(body, "group")?;
    drop_readonly(&mut o, Some(&group_id))?;
    if let Some(d) = o.remove("domain_id") {
        if d.as_str() != Some(g.domain_id.as_str()) {
            return Err(IdentityError::validation(
                "Update of `domain_id` is not allowed.",
            ));
        }
    }
    if o.contains_key("name") {
        g.name = take_stripped_name(&mut o, "name", 64)?;
    }
    if let Some(d) = take_opt_string(&mut o, "description", 65535)? {
        g.description = d;
    }
    g.extra.extend(o);
    groups::update(id, &g).await?;
    Ok(axum::Json(json!({"group": wire(id, &g)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(group_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let g = groups::get(id, &group_id).await?;
    auth.enforce(&id.policy, "identity:delete_group", &target(&g))?;
    groups::delete(id, &g.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(state: State, auth: Auth, Path(group_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let g = groups::get(id, &group_id).await?;
    auth.enforce(&id.policy, "identity:list_users_in_group", &target(&g))?;
    let users: Vec<Value> = groups::members(id, &g.id)
        .await?
        .iter()
        .map(|u| super::users::wire(id, u))
        .collect();
    Ok(axum::Json(json!({"users": users, "links": wire::collection_links(id, &format!("groups/{group_id}/users"))})).into_response())
}

fn membership_target(g: &Group, u: &crate::model::User) -> Value {
    json!({"target": {"group": {"id": g.id, "domain_id": g.domain_id}, "user": {"id": u.id, "domain_id": u.domain_id}},
           "group_id": g.id, "user_id": u.id, "domain_id": g.domain_id})
}

async fn check_member(
    state: State,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let g = groups::get(id, &group_id).await?;
    let u = users::get(id, &user_id).await?;
    auth.enforce(
        &id.policy,
        "identity:check_user_in_group",
        &membership_target(&g, &u),
    )?;
    groups::check_member(id, &g, &u).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(
    state: State,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let g = groups::get(id, &group_id).await?;
    let u = users::get(id, &user_id).await?;
    auth.enforce(
        &id.policy,
        "identity:add_user_to_group",
        &membership_target(&g, &u),
    )?;
    groups::add_member(id, &g, &u).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    state: State,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let g = groups::get(id, &group_id).await?;
    let u = users::get(id, &user_id).await?;
    auth.enforce(
        &id.policy,
        "identity:remove_user_from_group",
        &membership_target(&g, &u),
    )?;
    groups::remove_member(id, &g, &u).await?;
    Ok(StatusCode::NO_CONTENT)
}
