//! Version discovery: `GET /identity` (300 with the version list) and `GET /identity/v3`.

use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};

use super::State;
use crate::Identity;

fn v3_entry(id: &Identity) -> Value {
    ferrostack_api::version::version_entry(
        "v3.14",
        "stable",
        "2020-04-07T00:00:00Z",
        &format!("{}/", id.config.v3_url()),
        "application/vnd.openstack.identity-v3+json",
    )
}

async fn root(state: State) -> impl IntoResponse {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({"versions": {"values": [v3_entry(&state.0)]}})),
    )
}

async fn v3(state: State) -> impl IntoResponse {
    axum::Json(json!({"version": v3_entry(&state.0)}))
}

/// `/` and, with the trailing slash the version document links to, `/v3/`.
pub fn root_routes() -> Router<std::sync::Arc<Identity>> {
    Router::new().route("/", get(root)).route("/v3/", get(v3))
}

/// Unknown paths under `/identity`: a Keystone 404 (axum's own fallback leaves the body empty).
pub async fn fallback() -> ferrostack_api::ApiError {
    ferrostack_api::ApiError::not_found("The resource could not be found.")
}

pub fn v3_routes() -> Router<std::sync::Arc<Identity>> {
    Router::new().route("/", get(v3))
}
