//! `/os-quota-sets/{project_id}` (show, detail, defaults, update, delete) and
//! `/os-quota-class-sets/{class}` (show, update).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::input::{self, MAX_INT};
use super::State;
use crate::error::{ComputeError, Result};
use crate::model::{QUOTA_DEFAULTS, QUOTA_INJECTED_RESOURCES, QUOTA_NETWORK_RESOURCES};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route(
            "/os-quota-sets/{project_id}",
            get(show).put(update).delete(remove),
        )
        .route("/os-quota-sets/{project_id}/detail", get(detail))
        .route("/os-quota-sets/{project_id}/defaults", get(defaults))
        .route(
            "/os-quota-class-sets/{class}",
            get(class_show).put(class_update),
        )
}

/// Quota-set resources shown at this microversion, in Nova's order.
fn set_resources(v: Microversion) -> Vec<&'static str> {
    QUOTA_DEFAULTS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !(v.at_least(2, 36) && QUOTA_NETWORK_RESOURCES.contains(k)))
        .filter(|k| !(v.at_least(2, 57) && QUOTA_INJECTED_RESOURCES.contains(k)))
        .collect()
}

/// Quota-class resources: as quota sets, except that the server group ones only appear
/// from 2.50, which is also where the network ones go.
fn class_resources(v: Microversion) -> Vec<&'static str> {
    QUOTA_DEFAULTS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| {
            if v.at_least(2, 50) {
                !QUOTA_NETWORK_RESOURCES.contains(k)
            } else {
                !["server_groups", "server_group_members"].contains(k)
            }
        })
        .filter(|k| !(v.at_least(2, 57) && QUOTA_INJECTED_RESOURCES.contains(k)))
        .collect()
}

fn render(
    id: Option<&str>,
    resources: &[&str],
    value: impl Fn(&str) -> Value,
) -> Map<String, Value> {
    let mut o = Map::new();
    if let Some(id) = id {
        o.insert("id".into(), json!(id));
    }
    for r in resources {
        o.insert((*r).to_string(), value(r));
    }
    o
}

fn user_param(pairs: &[(String, String)]) -> Option<String> {
    input::query_get(pairs, "user_id")
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-quota-sets:show",
        &json!({"project_id": project_id}),
    )?;
    svc.require_project(&project_id).await?;
    let user = user_param(&input::query_pairs(q.as_deref()));
    let limits = svc.quota_limits(&project_id, user.as_deref()).await?;
    let body = render(Some(&project_id), &set_resources(v), |r| {
        json!(limits.get(r).copied().unwrap_or(-1))
    });
    Ok(axum::Json(json!({ "quota_set": body })).into_response())
}

pub async fn detail(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-quota-sets:detail",
        &json!({"project_id": project_id}),
    )?;
    svc.require_project(&project_id).await?;
    let user = user_param(&input::query_pairs(q.as_deref()));
    let limits = svc.quota_limits(&project_id, user.as_deref()).await?;
    let mut usage = svc.quota_usage(&project_id, user.as_deref()).await?;
    // Nova does not count these per-user resources in quota details.
    usage.remove("key_pairs");
    let body = render(Some(&project_id), &set_resources(v), |r| {
        json!({
            "in_use": usage.get(r).copied().unwrap_or(0),
            "limit": limits.get(r).copied().unwrap_or(-1),
            "reserved": 0,
        })
    });
    Ok(axum::Json(json!({ "quota_set": body })).into_response())
}

pub async fn defaults(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(project_id): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-quota-sets:defaults",
        &json!({"project_id": project_id}),
    )?;
    svc.require_project(&project_id).await?;
    let limits = svc.quota_class("default").await?;
    let body = render(Some(&project_id), &set_resources(v), |r| {
        json!(limits.get(r).copied().unwrap_or(-1))
    });
    Ok(axum::Json(json!({ "quota_set": body })).into_response())
}

/// Parses `{"<key>": {resource: limit, ...}}` with the resources settable at this version;
/// `force` is accepted when `with_force`.
fn parse_limits(
    body: &Value,
    key: &str,
    resources: &[&str],
    with_force: bool,
) -> Result<(BTreeMap<String, i64>, bool)> {
    let mut allowed: Vec<&str> = resources.to_vec();
    if with_force {
        allowed.push("force");
    }
    let o = input::envelope(body, key, &allowed, &[])?;
    let mut force = false;
    let mut out = BTreeMap::new();
    for (k, val) in o {
        if k == "force" {
            force = input::boolean("force", val)?;
            continue;
        }
        out.insert(k.clone(), input::integer(k, val, -1, MAX_INT, true)?);
    }
    Ok((out, force))
}

pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-quota-sets:update",
        &json!({"project_id": project_id}),
    )?;
    svc.require_project(&project_id).await?;
    let user = user_param(&input::query_pairs(q.as_deref()));
    let (requested, force) = parse_limits(&body, "quota_set", &set_resources(v), true)?;

    let limits = svc
        .update_quotas(&project_id, user.as_deref(), &requested, force)
        .await?;
    let body = render(None, &set_resources(v), |r| {
        json!(limits.get(r).copied().unwrap_or(-1))
    });
    Ok(axum::Json(json!({ "quota_set": body })).into_response())
}

pub async fn remove(
    state: State,
    auth: Auth,
    Path(project_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<StatusCode> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-quota-sets:delete",
        &json!({"project_id": project_id}),
    )?;
    let user = user_param(&input::query_pairs(q.as_deref()));
    svc.delete_quotas(&project_id, user.as_deref()).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn class_show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(class): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-quota-class-sets:show",
        &json!({}),
    )?;
    let limits = svc.quota_class(&class).await?;
    let body = render(Some(&class), &class_resources(v), |r| {
        json!(limits.get(r).copied().unwrap_or(-1))
    });
    Ok(axum::Json(json!({ "quota_class_set": body })).into_response())
}

pub async fn class_update(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(class): Path<String>,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-quota-class-sets:update",
        &json!({}),
    )?;
    if class.is_empty() || class.chars().count() > 255 {
        return Err(ComputeError::BadRequest(
            "quota_class_name has a length outside 1 to 255 characters.".into(),
        ));
    }
    // Before 2.50 the schema still lists the network resources (ignored) and not the
    // server group ones; from 2.50 it is exactly the shown resources.
    let mut settable = class_resources(v);
    if !v.at_least(2, 50) {
        settable.retain(|r| !QUOTA_NETWORK_RESOURCES.contains(r));
        settable.extend(QUOTA_NETWORK_RESOURCES);
    }
    let (requested, _) = parse_limits(&body, "quota_class_set", &settable, false)?;
    let limits = svc.update_quota_class(&class, &requested).await?;
    let body = render(None, &class_resources(v), |r| {
        json!(limits.get(r).copied().unwrap_or(-1))
    });
    Ok(axum::Json(json!({ "quota_class_set": body })).into_response())
}
