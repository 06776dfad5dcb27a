//! `/v3/groups` and group membership.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::users::get_user;
use super::wire::{
    self, body_object, drop_readonly, take_opt_string, take_stripped_name, with_extra,
};
use super::State;
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
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

pub async fn get_group(id: &Identity, group_id: &str) -> Result<Group> {
    db::groups::get(&id.db.pool, group_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("group", group_id))
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
        name: name.clone(),
        domain_id,
        description: take_opt_string(&mut o, "description", 65535)?.unwrap_or_default(),
        extra: o,
    };
    auth.enforce(&id.policy, "identity:create_group", &target(&g))?;
    if db::domains::get(&id.db.pool, &g.domain_id).await?.is_none() {
        // As Keystone (DomainNotFound): 404.
        return Err(IdentityError::not_found("domain", &g.domain_id));
    }
    let mut tx = id.db.begin_write().await?;
    db::groups::insert(&mut *tx, &g).await.map_err(conflict_or(
        "group",
        format!(
            "Duplicate entry found with name {name} at domain ID {}",
            g.domain_id
        ),
    ))?;
    id.commit_change(tx, vec![]).await?;
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
    let domain = q.get("domain_id").cloned().or_else(|| token_domain.clone());
    let groups: Vec<Value> = db::groups::list(
        &id.db.pool,
        domain.as_deref(),
        q.get("name").map(String::as_str),
    )
    .await?
    .iter()
    .filter(|g| token_domain.as_ref().is_none_or(|d| *d == g.domain_id))
    .map(|g| wire(id, g))
    .collect();
    Ok(
        axum::Json(json!({"groups": groups, "links": wire::collection_links(id, "groups")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(group_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let g = get_group(id, &group_id).await?;
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
    let mut g = get_group(id, &group_id).await?;
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
    let mut tx = id.db.begin_write().await?;
    db::groups::update(&mut *tx, &g).await.map_err(conflict_or(
        "group",
        format!(
            "Duplicate entry found with name {} at domain ID {}",
            g.name, g.domain_id
        ),
    ))?;
    id.commit_change(tx, vec![]).await?;
    Ok(axum::Json(json!({"group": wire(id, &g)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(group_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let g = get_group(id, &group_id).await?;
    auth.enforce(&id.policy, "identity:delete_group", &target(&g))?;
    let mut tx = id.db.begin_write().await?;
    db::assignments::delete_for_actor(&mut *tx, &g.id).await?;
    db::groups::delete(&mut *tx, &g.id).await?;
    id.commit_change(tx, vec![]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(state: State, auth: Auth, Path(group_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let g = get_group(id, &group_id).await?;
    auth.enforce(&id.policy, "identity:list_users_in_group", &target(&g))?;
    let users: Vec<Value> = db::users::list_in_group(&id.db.pool, &g.id)
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
    let g = get_group(id, &group_id).await?;
    let u = get_user(id, &user_id).await?;
    auth.enforce(
        &id.policy,
        "identity:check_user_in_group",
        &membership_target(&g, &u),
    )?;
    if db::groups::is_member(&id.db.pool, &g.id, &u.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(IdentityError::NotFound {
            kind: "user in group",
            id: format!("{user_id} in {group_id}"),
        })
    }
}

async fn add_member(
    state: State,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let g = get_group(id, &group_id).await?;
    let u = get_user(id, &user_id).await?;
    auth.enforce(
        &id.policy,
        "identity:add_user_to_group",
        &membership_target(&g, &u),
    )?;
    let mut tx = id.db.begin_write().await?;
    db::groups::add_member(&mut *tx, &g.id, &u.id).await?;
    id.commit_change(tx, vec![]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_member(
    state: State,
    auth: Auth,
    Path((group_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let g = get_group(id, &group_id).await?;
    let u = get_user(id, &user_id).await?;
    auth.enforce(
        &id.policy,
        "identity:remove_user_from_group",
        &membership_target(&g, &u),
    )?;
    let mut tx = id.db.begin_write().await?;
    if !db::groups::remove_member(&mut *tx, &g.id, &u.id).await? {
        return Err(IdentityError::NotFound {
            kind: "user in group",
            id: format!("{user_id} in {group_id}"),
        });
    }
    id.commit_change(tx, vec![]).await?;
    Ok(StatusCode::NO_CONTENT)
}
