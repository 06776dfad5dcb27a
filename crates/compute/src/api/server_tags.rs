//! `/servers/{id}/tags` (microversion 2.26+): the server's tags, as a set and one by one.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Value};

use super::input::{invalid, repr};
use super::server_views::target;
use super::State;
use crate::app::server_tags::{tag_problem, MAX_TAGS};
use crate::error::ComputeError;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route(
            "/servers/{id}/tags",
            get(index).put(update_all).delete(delete_all),
        )
        .route(
            "/servers/{id}/tags/{tag}",
            get(show).put(update).delete(remove),
        )
}

fn rule(name: &str) -> String {
    format!("os_compute_api:os-server-tags:{name}")
}

/// Below 2.26 these routes do not exist (Nova's 404 for a method of no such version).
fn since_2_26(v: Microversion) -> Result<(), ApiError> {
    if v.at_least(2, 26) {
        Ok(())
    } else {
        Err(ApiError::not_found("The resource could not be found."))
    }
}

/// The jsonschema message for an item of a tag list that is no tag.
fn tag_error(v: &Value) -> Option<String> {
    let Some(s) = v.as_str() else {
        return Some(format!("{} is not of type 'string'", repr(v)));
    };
    tag_problem(s).map(|p| format!("{} {}", repr(v), p.message()))
}

/// `{"tags": [...]}` as Nova's schema checks it; duplicates collapse (a set).
fn tags_body(body: &Value) -> Result<Vec<String>, ComputeError> {
    let outer = body.as_object().ok_or_else(|| {
        ComputeError::BadRequest(format!("{} is not of type 'object'", repr(body)))
    })?;
    let tags = outer
        .get("tags")
        .ok_or_else(|| ComputeError::BadRequest("'tags' is a required property".into()))?;
    if let Some(extra) = outer.keys().find(|k| k.as_str() != "tags") {
        return Err(ComputeError::BadRequest(format!(
            "Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    let list = tags.as_array().ok_or_else(|| {
        invalid(
            "tags",
            tags,
            format!("{} is not of type 'array'", repr(tags)),
        )
    })?;
    if list.len() > MAX_TAGS {
        return Err(invalid("tags", tags, format!("{} is too long", repr(tags))));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        if let Some(msg) = tag_error(t) {
            // Nova names the failing array item by its index.
            return Err(invalid(&i.to_string(), t, msg));
        }
        let t = t.as_str().unwrap_or_default().to_string();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

async fn index(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    since_2_26(v)?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("index"), &target(&inst))?;
    Ok(axum::Json(json!({"tags": inst.tags})).into_response())
}

async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    since_2_26(v)?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("show"), &target(&inst))?;
    if !inst.tags.contains(&tag) {
        return Err(ApiError::not_found(format!(
            "Server {id} has no tag '{tag}'"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// PUT one tag: 201 with its Location when added, 204 when the server already had it.
async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    since_2_26(v)?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("update"), &target(&inst))?;
    if !svc.add_server_tag(&inst, &tag).await? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut resp = StatusCode::CREATED.into_response();
    let location = format!(
        "{}/compute/v2.1/servers/{id}/tags/{}",
        svc.config.public_url,
        url::form_urlencoded::byte_serialize(tag.as_bytes()).collect::<String>()
    );
    if let Ok(h) = http::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(http::header::LOCATION, h);
    }
    Ok(resp)
}

/// PUT the whole set.
async fn update_all(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    since_2_26(v)?;
    // Nova checks the body's schema before looking the server up.
    let tags = tags_body(&body)?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("update_all"), &target(&inst))?;
    let tags = svc.replace_server_tags(&inst, &tags).await?;
    Ok(axum::Json(json!({"tags": tags})).into_response())
}

async fn remove(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    since_2_26(v)?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("delete"), &target(&inst))?;
    svc.delete_server_tag(&inst, &tag).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_all(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    since_2_26(v)?;
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(&svc.policy, &rule("delete_all"), &target(&inst))?;
    svc.delete_server_tags(&inst).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
