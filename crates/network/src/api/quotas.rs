//! `/v2.0/quotas`: per-project limits, their defaults and usage (`details`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::{authorize, input, State};
use crate::error::{NetworkError, Result};

fn target(project: &str) -> Value {
    json!({"project_id": project, "tenant_id": project})
}

fn body(limits: &BTreeMap<String, i64>) -> Value {
    Value::Object(limits.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

pub async fn list(state: State, auth: Auth) -> Result<Response> {
    let svc = &state.0;
    authorize(svc, &auth, "get_quota", &json!({})).and_then(|_| {
        if auth.is_admin {
            Ok(())
        } else {
            Err(NetworkError::policy("rule:get_quota"))
        }
    })?;
    let list: Vec<Value> = svc
        .quotas_set()
        .await?
        .into_iter()
        .map(|(p, q)| {
            let mut v = body(&q);
            v["project_id"] = json!(p);
            v["tenant_id"] = json!(p);
            v
        })
        .collect();
    Ok(axum::Json(json!({ "quotas": list })).into_response())
}

pub async fn show(state: State, auth: Auth, Path(project): Path<String>) -> Result<Response> {
    let svc = &state.0;
    authorize(svc, &auth, "get_quota", &target(&project))?;
    let q = svc.quota_of(&project).await?;
    Ok(axum::Json(json!({ "quota": body(&q) })).into_response())
}

pub async fn defaults(state: State, auth: Auth, Path(project): Path<String>) -> Result<Response> {
    let svc = &state.0;
    authorize(svc, &auth, "get_quota", &target(&project))?;
    Ok(axum::Json(json!({ "quota": body(&svc.default_quota()) })).into_response())
}

pub async fn details(state: State, auth: Auth, Path(project): Path<String>) -> Result<Response> {
    let svc = &state.0;
    authorize(svc, &auth, "get_quota", &target(&project))?;
    let usage = svc.quota_usage(&project).await?;
    let q: Map<String, Value> = usage
        .into_iter()
        .map(|(r, u)| (r, json!({"limit": u.limit, "used": u.used, "reserved": 0})))
        .collect();
    Ok(axum::Json(json!({ "quota": q })).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path(project): Path<String>,
    bytes: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    authorize(svc, &auth, "update_quota", &target(&project))?;
    let obj = input::update_body(&bytes, "quota")?;
    let mut limits = BTreeMap::new();
    for k in obj.keys() {
        let v = input::integer(&obj, k)?
            .ok_or_else(|| NetworkError::invalid_attr(k, "'None' is not an integer"))?;
        limits.insert(k.clone(), v);
    }
    let q = svc.set_quota(&project, &limits).await?;
    Ok(axum::Json(json!({ "quota": body(&q) })).into_response())
}

pub async fn reset(state: State, auth: Auth, Path(project): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    authorize(svc, &auth, "delete_quota", &target(&project))?;
    svc.reset_quota(&project).await?;
    Ok(StatusCode::NO_CONTENT)
}
