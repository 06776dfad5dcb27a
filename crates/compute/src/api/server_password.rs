//! `/servers/{id}/os-server-password`: the (guest-encrypted) password the guest posted to the
//! metadata service, kept in system metadata.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{ApiError, Auth};
use serde_json::json;

use super::server_views::target;
use super::State;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new().route("/servers/{id}/os-server-password", get(show).delete(clear))
}

async fn show(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-password:show",
        &target(&inst),
    )?;
    let password = svc.server_password(&inst).await?;
    Ok(axum::Json(json!({"password": password})).into_response())
}

/// Forgets the stored password (the guest's own password does not change).
async fn clear(svc: State, auth: Auth, Path(id): Path<String>) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-password:clear",
        &target(&inst),
    )?;
    svc.set_server_password(&inst, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
