//! `/v2/images/{id}/members`: sharing an image with other projects.

use axum::body::Bytes;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::{wire, State};
use crate::error::{ImageError, Result};
use crate::model::MemberStatus;
use crate::ImageService;

pub async fn create(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "add_member").await?;
    ImageService::check_shared(&img)?;
    let req: Value = ferrostack_api::json::parse(&body)?;
    let member_id = req
        .get("member")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && m.len() <= 255)
        .ok_or_else(|| ImageError::BadRequest("The request needs a 'member' project id.".into()))?;
    let m = svc.add_member(&img, member_id).await?;
    Ok(axum::Json(wire::member(&m)).into_response())
}

pub async fn list(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "get_members").await?;
    let members: Vec<Value> = svc
        .list_members(&img, &auth)
        .await?
        .iter()
        .map(wire::member)
        .collect();
    Ok(axum::Json(json!({"members": members, "schema": "/v2/schemas/members"})).into_response())
}

pub async fn show(
    state: State,
    auth: Auth,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Response> {
    let svc = &state.0;
    let (img, m) = svc.find_member(&id, &auth, &member_id).await?;
    auth.enforce(&svc.policy, "get_member", &svc.target(&img, &auth).await?)?;
    ImageService::check_member_visible(&img, &m, &auth)?;
    Ok(axum::Json(wire::member(&m)).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path((id, member_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let (img, m) = svc.find_member(&id, &auth, &member_id).await?;
    let target = json!({"project_id": img.owner, "member_id": m.member_id, "visibility": img.visibility.as_str()});
    auth.enforce(&svc.policy, "modify_member", &target)?;
    let req: Value = ferrostack_api::json::parse(&body)?;
    let s = req.get("status").and_then(Value::as_str).unwrap_or("");
    let status = MemberStatus::parse(s).ok_or_else(|| {
        ImageError::BadRequest(format!(
            "Invalid status '{s}': use pending, accepted or rejected."
        ))
    })?;
    let m = svc.set_member_status(m, status).await?;
    Ok(axum::Json(wire::member(&m)).into_response())
}

pub async fn remove(
    state: State,
    auth: Auth,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    let (img, _) = svc.find_member(&id, &auth, &member_id).await?;
    auth.enforce(
        &svc.policy,
        "delete_member",
        &svc.target(&img, &auth).await?,
    )?;
    svc.remove_member(&id, &member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
