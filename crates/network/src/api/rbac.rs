//! `/v2.0/rbac-policies` (networks only: `access_as_shared`, `access_as_external`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::input::{self, Obj};
use super::{authorize, authorize_attrs, collection_url, created, query, wire, State};
use crate::app::rbac::{rbac_not_found, NewRbacPolicy};
use crate::error::{NetworkError, Result};
use crate::model::{RbacAction, RbacPolicy};
use crate::NetworkService;

fn target(p: &RbacPolicy) -> Value {
    wire::rbac(p)
}

/// `target_tenant` or `target_project` (both: they must agree).
fn target_project(obj: &Obj) -> Result<Option<String>> {
    let a = input::string(obj, "target_tenant", 255)?;
    let b = input::string(obj, "target_project", 255)?;
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(NetworkError::invalid_attr(
            "target_project",
            "'target_tenant' and 'target_project' do not match",
        )),
        (Some(x), _) | (None, Some(x)) => Ok(Some(x)),
        (None, None) => Ok(None),
    }
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let (objs, bulk) = input::create_body(&body, "rbac_policy", "rbac_policies")?;
    let mut out = Vec::new();
    for obj in &objs {
        input::only(
            obj,
            &[
                "object_type",
                "object_id",
                "action",
                "target_tenant",
                "target_project",
                "project_id",
                "tenant_id",
            ],
        )?;
        match input::string(obj, "object_type", 255)?.as_deref() {
            Some("network") => {}
            Some(other) => {
                return Err(NetworkError::invalid_attr(
                    "object_type",
                    format!("'{other}' is not in ['network']"),
                ))
            }
            None => {
                return Err(NetworkError::invalid_attr(
                    "object_type",
                    "'object_type' is required",
                ))
            }
        }
        let action = input::string(obj, "action", 255)?
            .as_deref()
            .and_then(RbacAction::parse)
            .ok_or_else(|| {
                NetworkError::invalid_attr(
                    "action",
                    "'action' must be access_as_shared or access_as_external",
                )
            })?;
        let target_project = target_project(obj)?.ok_or_else(|| {
            NetworkError::invalid_attr("target_tenant", "'target_tenant' is required")
        })?;
        let project = crate::app::owner_for(&auth, input::project(obj)?.as_deref())?;
        let t = json!({"project_id": project, "tenant_id": project,
                       "target_tenant": target_project, "target_project": target_project});
        authorize(svc, &auth, "create_rbac_policy", &t)?;
        authorize_attrs(svc, &auth, "create_rbac_policy", obj, &t, &[])?;
        let p = svc
            .create_rbac(
                &auth,
                NewRbacPolicy {
                    project_id: Some(project),
                    object_id: input::string(obj, "object_id", 255)?.ok_or_else(|| {
                        NetworkError::invalid_attr("object_id", "'object_id' is required")
                    })?,
                    action,
                    target_project,
                },
            )
            .await?;
        out.push(wire::rbac(&p));
    }
    Ok(created("rbac_policy", "rbac_policies", bulk, out))
}

pub async fn list(state: State, auth: Auth, RawQuery(q): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let lq = query::ListQuery::parse(q.as_deref())?;
    let creds = auth.credentials();
    let items: Vec<Value> = svc
        .list_rbac(&auth)
        .await?
        .iter()
        .map(target)
        .filter(|t| svc.policy.enforce("get_rbac_policy", t, &creds))
        .collect();
    Ok(axum::Json(lq.render(
        items,
        "rbac_policies",
        &collection_url(svc, "rbac-policies"),
    )?)
    .into_response())
}

async fn readable(svc: &NetworkService, auth: &Auth, id: &str) -> Result<RbacPolicy> {
    let p = svc.find_rbac(id, auth).await?;
    if !svc
        .policy
        .enforce("get_rbac_policy", &target(&p), &auth.credentials())
    {
        return Err(rbac_not_found(id));
    }
    Ok(p)
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let p = readable(svc, &auth, &id).await?;
    let v = query::project(wire::rbac(&p), &query::fields_of(q.as_deref()));
    Ok(axum::Json(json!({ "rbac_policy": v })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let obj = input::update_body(&body, "rbac_policy")?;
    input::only(&obj, &["target_tenant", "target_project"])?;
    let p = readable(svc, &auth, &id).await?;
    let new_target = target_project(&obj)?.ok_or_else(|| {
        NetworkError::invalid_attr("target_tenant", "'target_tenant' is required")
    })?;
    let mut t = target(&p);
    t["target_tenant"] = json!(new_target);
    t["target_project"] = json!(new_target);
    authorize(svc, &auth, "update_rbac_policy", &t)?;
    authorize_attrs(svc, &auth, "update_rbac_policy", &obj, &t, &[])?;
    let p = svc.update_rbac(&id, new_target).await?;
    Ok(axum::Json(json!({ "rbac_policy": wire::rbac(&p) })).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let p = readable(svc, &auth, &id).await?;
    authorize(svc, &auth, "delete_rbac_policy", &target(&p))?;
    svc.delete_rbac(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
