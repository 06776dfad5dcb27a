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
use crate::app::app_creds::{self, NewAppCred, RoleSpec};
use crate::error::{IdentityError, Result};
use crate::model::{ApplicationCredential, Role};
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

/// The wire form of `ac`, whose existing roles are `roles`.
fn wire(id: &Identity, ac: &ApplicationCredential, roles: &[Role]) -> Value {
    let roles: Vec<Value> = roles
        .iter()
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
    let project_id = app_creds::check_creator(&auth, &user_id)?;
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
    // No roles, or an empty list (what the openstack client sends without --role), delegates
    // every role of the token, as in Keystone.
    let requested = match o.remove("roles") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|r| RoleSpec {
                    has_id: r.get("id").is_some(),
                    id: r.get("id").and_then(Value::as_str).map(str::to_string),
                    name: r.get("name").and_then(Value::as_str).map(str::to_string),
                })
                .collect(),
        ),
        Some(other) => return Err(wire::type_error("roles", &other, "array")),
    };
    let role_ids = app_creds::delegated_roles(id, &auth.roles, requested).await?;
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
    let (ac, roles) = app_creds::create(
        id,
        NewAppCred {
            name,
            description,
            user_id,
            project_id,
            secret: secret.clone(),
            expires_at,
            unrestricted,
            role_ids,
        },
    )
    .await?;
    let mut body = wire(id, &ac, &roles);
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
    let list: Vec<Value> = app_creds::list(id, &user_id, q.get("name").map(String::as_str))
        .await?
        .iter()
        .map(|(a, roles)| wire(id, a, roles))
        .collect();
    Ok(axum::Json(json!({"application_credentials": list,
        "links": wire::collection_links(id, &format!("users/{user_id}/application_credentials"))}))
    .into_response())
}

async fn show(
    state: State,
    auth: Auth,
    Path((user_id, cred_id)): Path<(String, String)>,
) -> Result<Response> {
    let id = &state.0;
    let ac = app_creds::find(id, &user_id, &cred_id).await?;
    auth.enforce(
        &id.policy,
        "identity:get_application_credential",
        &owner_target(&ac.user_id),
    )?;
    let roles = app_creds::roles_of(id, &ac).await?;
    Ok(axum::Json(json!({"application_credential": wire(id, &ac, &roles)})).into_response())
}

async fn remove(
    state: State,
    auth: Auth,
    Path((user_id, cred_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let ac = app_creds::find(id, &user_id, &cred_id).await?;
    auth.enforce(
        &id.policy,
        "identity:delete_application_credential",
        &owner_target(&ac.user_id),
    )?;
    app_creds::delete(id, &auth, &ac.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
