//! `/servers/{id}/metadata`: the server's user metadata, as a whole and item by item.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Map, Value};

use super::input::{self, repr};
use super::server_views::target;
use super::State;
use crate::error::ComputeError;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route(
            "/servers/{id}/metadata",
            get(index).put(update_all).post(create),
        )
        .route(
            "/servers/{id}/metadata/{key}",
            get(show).put(update).delete(remove),
        )
}

fn rule(name: &str) -> String {
    format!("os_compute_api:server-metadata:{name}")
}

/// `{"<key>": {metadata}}` as Nova's schema checks it; string values only.
pub(super) fn metadata_body(
    body: &Value,
    key: &str,
) -> Result<BTreeMap<String, String>, ComputeError> {
    let outer = body.as_object().ok_or_else(|| {
        ComputeError::BadRequest(format!("{} is not of type 'object'", repr(body)))
    })?;
    let inner = outer
        .get(key)
        .ok_or_else(|| ComputeError::BadRequest(format!("'{key}' is a required property")))?;
    if let Some(extra) = outer.keys().find(|k| k.as_str() != key) {
        return Err(ComputeError::BadRequest(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    if key == "meta" {
        if let Some(o) = inner.as_object() {
            if o.is_empty() {
                return Err(input::invalid(
                    key,
                    inner,
                    format!("{} does not have enough properties", repr(inner)),
                ));
            }
            if o.len() > 1 {
                return Err(input::invalid(
                    key,
                    inner,
                    format!("{} has too many properties", repr(inner)),
                ));
            }
        }
    }
    Ok(input::metadata(key, inner, false)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

async fn index(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("index"), &target(&inst))?;
    Ok(axum::Json(json!({"metadata": inst.metadata})).into_response())
}

async fn show(
    svc: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("show"), &target(&inst))?;
    let value = inst
        .metadata
        .get(&key)
        .ok_or_else(|| ApiError::not_found("Metadata item was not found"))?;
    let mut meta = Map::new();
    meta.insert(key, json!(value));
    Ok(axum::Json(json!({"meta": meta})).into_response())
}

/// POST: merges into the existing metadata (200, as Nova answers for compatibility).
async fn create(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    // Nova checks the body's schema before looking the server up.
    let items = metadata_body(&body, "metadata")?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("create"), &target(&inst))?;
    let all = svc
        .update_metadata(&inst, &auth, items, false, "update metadata")
        .await?;
    Ok(axum::Json(json!({"metadata": all})).into_response())
}

/// PUT: replaces the whole metadata.
async fn update_all(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    // Nova checks the body's schema before looking the server up.
    let items = metadata_body(&body, "metadata")?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("update_all"), &target(&inst))?;
    let all = svc
        .update_metadata(&inst, &auth, items, true, "update metadata")
        .await?;
    Ok(axum::Json(json!({"metadata": all})).into_response())
}

/// PUT of one item: `{"meta": {key: value}}` with the key of the URI.
async fn update(
    svc: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let items = metadata_body(&body, "meta")?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("update"), &target(&inst))?;
    if !items.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    svc.update_metadata(&inst, &auth, items.clone(), false, "update metadata")
        .await?;
    Ok(axum::Json(json!({"meta": items})).into_response())
}

async fn remove(
    svc: State,
    auth: Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("delete"), &target(&inst))?;
    svc.delete_metadata_item(&inst, &auth, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
