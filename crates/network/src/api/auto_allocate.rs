//! `/v2.0/auto-allocated-topology/{project_id}` (get-me-a-network): `GET` answers the
//! project's network, making the topology the first time (`?fields=dry-run` only checks that
//! it could); `DELETE` removes it. The id `None` means the caller's own project, as the
//! client sends when none is named.

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::json;

use super::{authorize, State};
use crate::error::{NetworkError, Result};

/// The project asked about: the caller's for `None`; another only for admins.
fn project_of(auth: &Auth, id: &str) -> Result<String> {
    let own = auth.project_id().unwrap_or("");
    let project = if id == "None" { own } else { id };
    if !auth.is_admin && project != own {
        return Err(NetworkError::new(
            StatusCode::FORBIDDEN,
            "NotAuthorized",
            "Not authorized.",
        ));
    }
    Ok(project.to_string())
}

pub async fn show(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    let project = project_of(&auth, &id)?;
    authorize(
        svc,
        &auth,
        "get_auto_allocated_topology",
        &json!({ "project_id": project, "tenant_id": project }),
    )?;
    let fields: Vec<String> = url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.into_owned())
        .collect();
    if fields.iter().any(|f| f == "dry-run") {
        svc.check_auto_allocation().await?;
        return Ok(axum::Json(json!({
            "auto_allocated_topology": { "id": "dry-run=pass", "tenant_id": project }
        }))
        .into_response());
    }
    if !fields.is_empty() {
        return Err(NetworkError::bad_request(
            "BadRequest",
            "Bad auto_allocate request: Unrecognized field.",
        ));
    }
    let network = svc.auto_allocated_network(&auth, &project).await?;
    Ok(axum::Json(json!({
        "auto_allocated_topology": {
            "id": network,
            "tenant_id": project,
            "project_id": project,
        }
    }))
    .into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let project = project_of(&auth, &id)?;
    authorize(
        svc,
        &auth,
        "delete_auto_allocated_topology",
        &json!({ "project_id": project, "tenant_id": project }),
    )?;
    svc.delete_auto_allocated_topology(&auth, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}
