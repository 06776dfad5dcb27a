//! `/v3/users/{user_id}/application_credentials`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};

use super::wire::{self, body_object, take_name, take_opt_bool, take_opt_string};
use super::State;
use crate::app::{password, roles::RoleGraph};
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{new_id, ApplicationCredential};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route(
            "/users/{user_id}/application_credentials",
            get(list).post(create),
        )
        .route(
            "/users/{user_id}/application_credentials/{cred_id}",
            get(show).delete(remove),
        )
}

fn wire(id: &Identity, ac: &ApplicationCredential, graph: &RoleGraph) -> Value {
    let roles: Vec<Value> = ac
        .role_ids
        .iter()
        .filter_map(|r| graph.roles.get(r))
        .map(|r| json!({"id": r.id, "name": r.name, "domain_id": r.domain_id}))
        .collect();
    json!({
        "id": ac.id,
        "name": ac.name,
        "description": ac.description,
        "user_id": ac.user_id,
        "project_id": ac.project_id,
        "expires_at": ac.expires_at.map(|t| wire::micros_to_iso(t).trim_end_matches('Z').to_string()),
        "unrestricted": ac.unrestricted,
        "roles": roles,
        "access_rules": [],
        "system": null,
        "links": wire::self_link(id, &format!("users/{}/application_credentials/{}", ac.user_id, ac.id)),
    })
}

fn owner_target(user_id: &str) -> Value {
    json!({"user_id": user_id, "target": {"user": {"id": user_id}}})
}

async fn create(
    state: State,
    auth: Auth,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(
        &id.policy,
        "identity:create_application_credential",
        &owner_target(&user_id),
    )?;
    if auth.user_id != user_id {
        return Err(IdentityError::ForbiddenWithReason(
            "Application credentials are created by their own user.".into(),
        ));
    }
    if auth
        .application_credential
        .as_ref()
        .is_some_and(|a| a.restricted)
    {
        return Err(IdentityError::ForbiddenWithReason(
            "A restricted application credential cannot create another application credential."
                .into(),
        ));
    }
    let project = auth.project.as_ref().ok_or_else(|| {
        IdentityError::ForbiddenWithReason("A project-scoped token is required.".into())
    })?;
    let mut o = body_object(body, "application_credential")?;
    let name = take_name(&mut o, "name", 255)?;
    let description = take_opt_string(&mut o, "description", 255)?.unwrap_or_default();
    let secret = take_opt_string(&mut o, "secret", 4096)?
        .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::thread_rng(), 64));
    let expires_at = match take_opt_string(&mut o, "expires_at", 64)? {
        Some(s) => Some(wire::parse_time("expires_at", &s)?),
        None => None,
    };
    if expires_at.is_some_and(|e| e <= ferrostack_store::now_micros()) {
        return Err(IdentityError::validation(
            "Invalid input for field 'expires_at': the time is in the past.",
        ));
    }
    let unrestricted = take_opt_bool(&mut o, "unrestricted")?.unwrap_or(false);
    let token_roles = &auth.roles;
    // No roles, or an empty list (what the openstack client sends without --role), delegates
    // every role of the token, as in Keystone.
    let role_ids: Vec<String> = match o.remove("roles") {
        None | Some(Value::Null) => token_roles.iter().map(|r| r.id.clone()).collect(),
        Some(Value::Array(list)) if list.is_empty() => {
            token_roles.iter().map(|r| r.id.clone()).collect()
        }
        Some(Value::Array(list)) => {
            let mut ids = Vec::new();
            for r in list {
                let found = token_roles.iter().find(|t| {
                    r.get("id").and_then(Value::as_str) == Some(t.id.as_str())
                        || r.get("name").and_then(Value::as_str) == Some(t.name.as_str())
                });
                match found {
                    Some(t) => ids.push(t.id.clone()),
                    // As Keystone (30.0.0, keystone/api/users.py `_get_roles`): an unknown role
                    // name is 404; any other role the token does not carry is 400.
                    None => {
                        if let (None, Some(n)) =
                            (r.get("id"), r.get("name").and_then(Value::as_str))
                        {
                            if db::roles::get_by_name(&id.db.pool, None, n)
                                .await?
                                .is_none()
                            {
                                return Err(IdentityError::not_found("role", n));
                            }
                        }
                        return Err(IdentityError::validation(
                            "Invalid application credential: Cannot create an application credential with \
                             unassigned role",
                        ));
                    }
                }
            }
            // As Keystone: the roles the chosen ones imply are delegated (and listed) too.
            let mut conn = id.db.pool.acquire().await?;
            let graph = RoleGraph::load(&mut conn).await?;
            for r in graph.closure(ids.clone().iter()) {
                if !ids.contains(&r) {
                    ids.push(r);
                }
            }
            ids
        }
        Some(other) => return Err(wire::type_error("roles", &other, "array")),
    };
    if !o
        .get("access_rules")
        .is_none_or(|v| v.as_array().is_some_and(|a| a.is_empty()))
    {
        return Err(IdentityError::validation("Access rules are not supported."));
    }
    o.remove("access_rules");
    if let Some(k) = o.keys().next() {
        return Err(IdentityError::validation(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let ac = ApplicationCredential {
        id: new_id(),
        name: name.clone(),
        user_id: user_id.clone(),
        project_id: project.id.clone(),
        secret_hash: password::hash(secret.clone()).await?,
        description,
        expires_at,
        unrestricted,
        role_ids,
    };
    let mut tx = id.db.begin_write().await?;
    db::app_creds::insert(&mut tx, &ac)
        .await
        .map_err(conflict_or(
            "application_credential",
            format!("Duplicate entry found with name {name}"),
        ))?;
    id.commit_change(tx, vec![]).await?;
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let mut body = wire(id, &ac, &graph);
    body["secret"] = json!(secret);
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"application_credential": body})),
    )
        .into_response())
}

async fn list(
    state: State,
    auth: Auth,
    Path(user_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    auth.enforce(
        &id.policy,
        "identity:list_application_credentials",
        &owner_target(&user_id),
    )?;
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let list: Vec<Value> = db::app_creds::list_for_user(&mut conn, &user_id)
        .await?
        .iter()
        .filter(|a| q.get("name").is_none_or(|n| *n == a.name))
        .map(|a| wire(id, a, &graph))
        .collect();
    Ok(axum::Json(json!({"application_credentials": list,
        "links": wire::collection_links(id, &format!("users/{user_id}/application_credentials"))}))
    .into_response())
}

async fn find(id: &Identity, user_id: &str, cred_id: &str) -> Result<ApplicationCredential> {
    let mut conn = id.db.pool.acquire().await?;
    db::app_creds::get(&mut conn, cred_id)
        .await?
        .filter(|a| a.user_id == user_id)
        .ok_or_else(|| IdentityError::not_found("application credential", cred_id))
}

async fn show(
    state: State,
    auth: Auth,
    Path((user_id, cred_id)): Path<(String, String)>,
) -> Result<Response> {
    let id = &state.0;
    let ac = find(id, &user_id, &cred_id).await?;
    auth.enforce(
        &id.policy,
        "identity:get_application_credential",
        &owner_target(&ac.user_id),
    )?;
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    Ok(axum::Json(json!({"application_credential": wire(id, &ac, &graph)})).into_response())
}

async fn remove(
    state: State,
    auth: Auth,
    Path((user_id, cred_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let ac = find(id, &user_id, &cred_id).await?;
    auth.enforce(
        &id.policy,
        "identity:delete_application_credential",
        &owner_target(&ac.user_id),
    )?;
    if auth
        .application_credential
        .as_ref()
        .is_some_and(|a| a.restricted)
    {
        return Err(IdentityError::ForbiddenWithReason(
            "A restricted application credential cannot delete application credentials.".into(),
        ));
    }
    let mut tx = id.db.begin_write().await?;
    db::app_creds::delete(&mut tx, &ac.id).await?;
    // Tokens obtained with it stop validating: the generation bump drops cached validations
    // and a fresh validation finds the credential gone.
    id.commit_change(tx, vec![]).await?;
    Ok(StatusCode::NO_CONTENT)
}
