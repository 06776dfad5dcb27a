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
use crate::app::password;
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
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

pub async fn get_user(id: &Identity, user_id: &str) -> Result<User> {
    db::users::get(&id.db.pool, user_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("user", user_id))
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
    let mut u = User {
        id: new_id(),
        name: name.clone(),
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
    if db::domains::get(&id.db.pool, &u.domain_id).await?.is_none() {
        // As Keystone (DomainNotFound): 404.
        return Err(IdentityError::not_found("domain", &u.domain_id));
    }
    if let Some(pw) = pw {
        u.password_hash = Some(password::hash(pw).await?);
    }
    let mut tx = id.db.begin_write().await?;
    db::users::insert(&mut *tx, &u).await.map_err(conflict_or(
        "user",
        format!(
            "Duplicate entry found with name {name} at domain ID {}",
            u.domain_id
        ),
    ))?;
    id.commit_change(tx, vec![]).await?;
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
    let domain = q.get("domain_id").cloned().or_else(|| token_domain.clone());
    let users: Vec<Value> = db::users::list(
        &id.db.pool,
        domain.as_deref(),
        q.get("name").map(String::as_str),
    )
    .await?
    .iter()
    .filter(|u| token_domain.as_ref().is_none_or(|d| *d == u.domain_id))
    .filter(|u| {
        q.get("enabled")
            .is_none_or(|e| wire::query_bool(e) == u.enabled)
    })
    .map(|u| wire(id, u))
    .collect();
    Ok(
        axum::Json(json!({"users": users, "links": wire::collection_links(id, "users")}))
            .into_response(),
    )
}

async fn show(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let u = get_user(id, &user_id).await?;
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
    let mut u = get_user(id, &user_id).await?;
    auth.enforce(&id.policy, "identity:update_user", &target(&u))?;
    guard_administrators(id, &auth, &u).await?;
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
    let was_enabled = u.enabled;
    if let Some(e) = take_opt_bool(&mut o, "enabled")? {
        u.enabled = e;
    }
    if o.contains_key("default_project_id") {
        u.default_project_id = take_opt_string(&mut o, "default_project_id", 64)?;
    }
    let new_password = take_password(&mut o)?;
    o.remove("options");
    u.extra.extend(o);
    let hash = match new_password {
        Some(pw) => Some(password::hash(pw).await?),
        None => None,
    };
    let mut tx = id.db.begin_write().await?;
    db::users::update(&mut *tx, &u).await.map_err(conflict_or(
        "user",
        format!(
            "Duplicate entry found with name {} at domain ID {}",
            u.name, u.domain_id
        ),
    ))?;
    let mut events = vec![];
    if let Some(h) = &hash {
        db::users::set_password(&mut *tx, &u.id, h).await?;
        events.push(Identity::revoke_user_event(&u.id, None));
    }
    if was_enabled && !u.enabled {
        events.push(Identity::revoke_user_event(&u.id, None));
        // As Keystone: a disabled user's application credentials are deleted.
        db::app_creds::delete_for_user(&mut tx, &u.id).await?;
    }
    id.commit_change(tx, events).await?;
    Ok(axum::Json(json!({"user": wire(id, &u)})).into_response())
}

/// A user holding `admin` somewhere is changed or deleted by cloud admins only (a domain
/// manager passes `identity:update_user` for every user of its domain).
async fn guard_administrators(id: &Identity, auth: &Auth, u: &User) -> Result<()> {
    if auth.is_admin {
        return Ok(());
    }
    let mut conn = id.db.pool.acquire().await?;
    if crate::app::roles::holds_admin_anywhere(&mut conn, &u.id).await? {
        return Err(IdentityError::ForbiddenWithReason(format!(
            "User {} holds the admin role: only a cloud administrator may change it.",
            u.id
        )));
    }
    Ok(())
}

async fn remove(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let u = get_user(id, &user_id).await?;
    auth.enforce(&id.policy, "identity:delete_user", &target(&u))?;
    guard_administrators(id, &auth, &u).await?;
    let mut tx = id.db.begin_write().await?;
    db::assignments::delete_for_actor(&mut *tx, &u.id).await?;
    db::users::delete(&mut *tx, &u.id).await?;
    id.commit_change(tx, vec![Identity::revoke_user_event(&u.id, None)])
        .await?;
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
    // The original password is checked as a login is: a locked-out user cannot change it,
    // and a wrong one counts toward the lockout (anyone may call this without a token).
    let user = id
        .password_user(&crate::app::auth::UserRef::Id(user_id), &original)
        .await?;
    if !user.enabled {
        return Err(IdentityError::Unauthorized);
    }
    let hash = password::hash(new).await?;
    let mut tx = id.db.begin_write().await?;
    db::users::set_password(&mut *tx, &user.id, &hash).await?;
    id.commit_change(tx, vec![Identity::revoke_user_event(&user.id, None)])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_groups(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let u = get_user(id, &user_id).await?;
    auth.enforce(&id.policy, "identity:list_groups_for_user", &target(&u))?;
    let groups: Vec<Value> = db::groups::list_for_user(&id.db.pool, &u.id)
        .await?
        .iter()
        .map(|g| super::groups::wire(id, g))
        .collect();
    Ok(axum::Json(json!({"groups": groups, "links": wire::collection_links(id, &format!("users/{user_id}/groups"))})).into_response())
}
