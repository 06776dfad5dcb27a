//! `/v2/images/{id}/members`: sharing an image with other projects.

use axum::body::Bytes;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::{wire, State};
use crate::db;
use crate::error::{ImageError, Result};
use crate::model::{Member, MemberStatus, Visibility};

fn shared_only(img: &crate::model::Image) -> Result<()> {
    if img.visibility != Visibility::Shared {
        return Err(ImageError::Forbidden(format!(
            "Only shared images have members. Image {} is {}.",
            img.id,
            img.visibility.as_str()
        )));
    }
    Ok(())
}

pub async fn create(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "add_member").await?;
    shared_only(&img)?;
    let req: Value = ferrostack_api::json::parse(&body)?;
    let member_id = req
        .get("member")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && m.len() <= 255)
        .ok_or_else(|| ImageError::BadRequest("The request needs a 'member' project id.".into()))?
        .to_string();
    if db::members::get(&svc.db.pool, &id, &member_id)
        .await?
        .is_some()
    {
        return Err(ImageError::Conflict(format!(
            "Member {member_id} already exists for image {id}."
        )));
    }
    let now = ferrostack_store::now_micros();
    let m = Member {
        image_id: id.clone(),
        member_id,
        status: MemberStatus::Pending,
        created_at: now,
        updated_at: now,
    };
    db::members::insert(&svc.db.writer, &m).await?;
    Ok(axum::Json(wire::member(&m)).into_response())
}

pub async fn list(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "get_members").await?;
    shared_only(&img)?;
    let project = auth.project_id().unwrap_or_default();
    let owner_view = img.owner == project || auth.is_admin;
    let members: Vec<Value> = db::members::list_for_image(&svc.db.pool, &id)
        .await?
        .iter()
        // A member sees only its own membership.
        .filter(|m| owner_view || m.member_id == project)
        .map(wire::member)
        .collect();
    Ok(axum::Json(json!({"members": members, "schema": "/v2/schemas/members"})).into_response())
}

async fn find_member(
    svc: &crate::ImageService,
    auth: &Auth,
    id: &str,
    member_id: &str,
) -> Result<(crate::model::Image, Member)> {
    let img = svc.find(id, auth).await?;
    let m = db::members::get(&svc.db.pool, id, member_id)
        .await?
        .ok_or_else(|| {
            ImageError::NotFoundMsg(format!("{member_id} is not a member of image {id}"))
        })?;
    Ok((img, m))
}

pub async fn show(
    state: State,
    auth: Auth,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Response> {
    let svc = &state.0;
    let (img, m) = find_member(svc, &auth, &id, &member_id).await?;
    auth.enforce(&svc.policy, "get_member", &svc.target(&img, &auth).await?)?;
    let project = auth.project_id().unwrap_or_default();
    if img.owner != project && m.member_id != project && !auth.is_admin {
        return Err(ImageError::NotFoundMsg(format!(
            "{member_id} is not a member of image {id}"
        )));
    }
    Ok(axum::Json(wire::member(&m)).into_response())
}

pub async fn update(
    state: State,
    auth: Auth,
    Path((id, member_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let (img, mut m) = find_member(svc, &auth, &id, &member_id).await?;
    let target = json!({"project_id": img.owner, "member_id": m.member_id, "visibility": img.visibility.as_str()});
    auth.enforce(&svc.policy, "modify_member", &target)?;
    let req: Value = ferrostack_api::json::parse(&body)?;
    let s = req.get("status").and_then(Value::as_str).unwrap_or("");
    let status = MemberStatus::parse(s).ok_or_else(|| {
        ImageError::BadRequest(format!(
            "Invalid status '{s}': use pending, accepted or rejected."
        ))
    })?;
    db::members::set_status(&svc.db.writer, &id, &member_id, status).await?;
    m.status = status;
    m.updated_at = ferrostack_store::now_micros();
    Ok(axum::Json(wire::member(&m)).into_response())
}

pub async fn remove(
    state: State,
    auth: Auth,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    let (img, _) = find_member(svc, &auth, &id, &member_id).await?;
    auth.enforce(
        &svc.policy,
        "delete_member",
        &svc.target(&img, &auth).await?,
    )?;
    db::members::delete(&svc.db.writer, &id, &member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
