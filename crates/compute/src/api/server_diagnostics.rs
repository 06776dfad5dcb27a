//! `/servers/{id}/diagnostics` (admin by default policy).

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};

use super::servers::{find, target};
use super::State;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new().route("/servers/{id}/diagnostics", get(index))
}

async fn index(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inst = find(&svc, &auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-diagnostics",
        &target(&inst),
    )?;
    let body = svc.diagnostics(&inst, v.at_least(2, 48))?;
    Ok(axum::Json(body).into_response())
}
