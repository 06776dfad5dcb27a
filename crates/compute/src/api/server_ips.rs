//! `/servers/{id}/ips`: the server's addresses by network.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{ApiError, Auth};
use serde_json::json;

use super::server_views::target;
use super::State;
use crate::app::server_ips::instance_addresses;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/servers/{id}/ips", get(index))
        .route("/servers/{id}/ips/{label}", get(show))
}

async fn index(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, "os_compute_api:ips:index", &target(&inst))?;
    Ok(axum::Json(json!({"addresses": instance_addresses(&inst)})).into_response())
}

async fn show(
    svc: State,
    auth: Auth,
    Path((id, label)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, "os_compute_api:ips:show", &target(&inst))?;
    let mut all = instance_addresses(&inst);
    let ips = all
        .remove(&label)
        .ok_or_else(|| ApiError::not_found("Instance is not a member of specified network"))?;
    let mut body = serde_json::Map::new();
    body.insert(label, json!(ips));
    Ok(axum::Json(body).into_response())
}
