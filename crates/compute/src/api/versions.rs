//! Version discovery (`/compute/` and `/compute/v2.1/`).

use axum::response::{IntoResponse, Response};
use ferrostack_api::ApiError;
use serde_json::{json, Value};

use super::{State, VERSIONS};

fn v21_entry(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": VERSIONS.max.to_string(),
        "min_version": VERSIONS.min.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v2.1/")}],
        "media-types": [{"base": "application/json",
                          "type": "application/vnd.openstack.compute+json;version=2.1"}],
    })
}

/// The legacy v2.0 API as Nova lists it (first, as clients and Tempest expect); only its
/// version document is served.
fn v20_entry(base: &str) -> Value {
    json!({
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v2/")}],
        "media-types": [{"base": "application/json",
                          "type": "application/vnd.openstack.compute+json;version=2"}],
    })
}

pub async fn versions(svc: State) -> Response {
    let base = format!("{}/compute", svc.config.public_url);
    axum::Json(json!({"versions": [v20_entry(&base), v21_entry(&base)]})).into_response()
}

pub async fn v21(svc: State) -> Response {
    let base = format!("{}/compute", svc.config.public_url);
    axum::Json(json!({"version": v21_entry(&base)})).into_response()
}

pub async fn v20(svc: State) -> Response {
    let base = format!("{}/compute", svc.config.public_url);
    axum::Json(json!({"version": v20_entry(&base)})).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}
