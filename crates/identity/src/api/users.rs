//! `/v3/users`, self-service password change, and a user's groups.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{
    self, body_object, drop_readonly, take_opt_bool, take_opt_string, take_stripped_name,
    with_extra,
};
use super::State;
use crate::app::users::{self, UserFilter};
use crate::error::{IdentityError, Result};
use crate::model::{new_id, User, DEFAULT_DOMAIN_ID};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{user_id}", get(show).patch(update).delete(remove))
        .route("/users/{user_id}/password", post(change_password))
        .route("/users/{user_id}/groups", get(user_groups))
}

pub fn wire(id: &Identity, u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": u.password_expires_at.map(wire::micros_to_iso),
        "options": {},
        "links": wire::self_link(id, &format!("users/{}", u.id)),
    });
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    with_extra(v, &u.extra)
}

pub fn target(u: &User) -> Value {
    json!({"target": {"user": {"id": u.id, "domain_id": u.domain_id}}, "user_id": u.id, "domain_id": u.domain_id})
}

fn take_password(o: &mut wire::Object) -> Result<Option<String>> {
    match o.remove("password") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wire::type_error("password", &other, "string")),
    }
}

async fn create(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    let mut o = body_object(body, "user")?;
    drop_readonly(&mut o, None)?;
    let name = take_stripped_name(&mut o, "name", 255)?;
    let domain_id = take_opt_string(&mut o, "domain_id", 64)?
        .or_else(|| auth.project.as_ref().map(|p| p.domain_id.clone()))
        .or_else(|| auth.domain.as_ref().map(|d| d.id.clone()))
        .unwrap_or_else(|| DEFAULT_DOMAIN_ID.to_string());
    let enabled = take_opt_bool(&mut o, "enabled")?.unwrap_or(true);
    let default_project_id = take_opt_string(&mut o, "default_project_id", 64)?;
    let pw = take_password(&mut o)?;
    o.remove("options");
    let u = User {
        id: new_id(),
        name,
        domain_id,
        enabled,
        password_hash: None,
        password_expires_at: None,
        default_project_id,
        extra: o,
        failed_auth_count: 0,
        failed_auth_at: None,
    };
    auth.enforce(&id.policy, "identity:create_user", &target(&u))?;
    let u = users::create(id, u, pw).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"user": wire(id, &u)})),
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
    // domain's users (whatever domain_id it asks for).
    let token_domain = auth.domain.as_ref().map(|d| d.id.clone());
    let target_domain = token_domain.clone().or_else(|| q.get("domain_id").cloned());
    auth.enforce(
        &id.policy,
        "identity:list_users",
        &json!({"domain_id": target_domain, "target": {"domain_id": target_domain}}),
    )?;
    let filter = UserFilter {
        domain_id: q.get("domain_id").cloned(),
        name: q.get("name").cloned(),
        enabled: q.get("enabled").map(|e| wire::query_bool(e)),
        only_domain: token_domain,
    };
    let users: Vec<Value> = users::list(id, &filter)
        .await?
        .iter()
        .map(|u| wire(id, u))
        .collect();
    Ok(
        axum::Json(json!({"users": users, "links": wire::collection_links(id, "users")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let u = users::get(id, &user_id).await?;
    auth.enforce(&id.policy, "identity:get_user", &target(&u))?;
    Ok(axum::Json(json!({"user": wire(id, &u)})).into_response())
}

async fn update(
    state: State,
    auth: Auth,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let mut u = users::get(id, &user_id).await?;
    auth.enforce(&id.policy, "identity:update_user", &target(&u))?;
    users::check_changeable(id, auth.is_admin, &u).await?;
    let mut o = body_object(body, "user")?;
    drop_readonly(&mut o, Some(&user_id))?;
    if let Some(d) = o.remove("domain_id") {
        if d.as_str() != Some(u.domain_id.as_str()) {
            return Err(IdentityError::validation(
                "Update of `domain_id` is not allowed.",
            ));
        }
    }
    if o.contains_key("name") {
        u.name = take_stripped_name(&mut o, "name", 255)?;
    }
    if let Some(e) = take_opt_bool(&mut o, "enabled")? {
        u.enabled = e;
    }
    if o.contains_key("default_project_id") {
        u.default_project_id = take_opt_string(&mut o, "default_project_id", 64)?;
    }
    let new_password = take_password(&mut o)?;
    o.remove("options");
    u.extra.extend(o);
    users::update(id, &u, new_password).await?;
    Ok(axum::Json(json!({"user": wire(id, &u)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let u = users::get(id, &user_id).await?;
    auth.enforce(&id.policy, "identity:delete_user", &target(&u))?;
    users::check_changeable(id, auth.is_admin, &u).await?;
    users::delete(id, &u.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/users/{id}/password`: needs the original password, not a token.
async fn change_password(
    state: State,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<StatusCode> {
    let id = &state.0;
    let mut o = body_object(body, "user")?;
    let original = match o.remove("original_password") {
        Some(Value::String(s)) => s,
        Some(other) => return Err(wire::type_error("original_password", &other, "string")),
        None => {
            return Err(IdentityError::validation(
                "'original_password' is a required property",
            ))
        }
    };
    let new = take_password(&mut o)?
        .ok_or_else(|| IdentityError::validation("'password' is a required property"))?;
    users::change_password(id, user_id, &original, new).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_groups(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let u = users::get(id, &user_id).await?;
    auth.enforce(&id.policy, "identity:list_groups_for_user", &target(&u))?;
    let groups: Vec<Value> = users::groups(id, &u.id)
        .await?
        .iter()
        .map(|g| super::groups::wire(id, g))
        .collect();
    Ok(axum::Json(json!({"groups": groups, "links": wire::collection_links(id, &format!("users/{user_id}/groups"))})).into_response())
}
