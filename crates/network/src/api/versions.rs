//! Version discovery: `GET /` (the one version, 200 as Neutron answers) and `GET /v2.0/`
//! (the core resources).

use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::State;

pub async fn versions(state: State) -> Response {
    let href = format!("{}/networking/v2.0/", state.0.config.public_url);
    axum::Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": href, "rel": "self"}],
    }]}))
    .into_response()
}

pub async fn resources(state: State) -> Response {
    let base = format!("{}/networking/v2.0", state.0.config.public_url);
    let res = |name: &str, coll: &str| {
        json!({"name": name, "collection": coll,
               "links": [{"href": format!("{base}/{coll}"), "rel": "self"}]})
    };
    axum::Json(json!({"resources": [
        res("subnet", "subnets"),
        res("network", "networks"),
        res("port", "ports"),
    ]}))
    .into_response()
}
