//! `/v2.0/{collection}/{id}/tags[/{tag}]` for networks, subnets, ports, routers, floating IPs,
//! security groups and subnet pools. Reading needs the resource to be readable; changing
//! needs its update rule (Neutron's tag rules follow the owner the same way).

use axum::body::Bytes;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::{authorize, input, State};
use crate::error::{NetworkError, Result};
use crate::NetworkService;

/// The resource's policy target and its singular name, when the caller sees it (404 else).
async fn resource(
    svc: &NetworkService,
    auth: &Auth,
    collection: &str,
    id: &str,
) -> Result<(Value, &'static str)> {
    let owner = |p: &str| json!({"project_id": p, "tenant_id": p});
    Ok(match collection {
        "networks" => (
            super::networks::target(&svc.find_network(id, auth).await?, auth),
            "network",
        ),
        "subnets" => (
            owner(&svc.find_subnet(id, auth).await?.0.project_id),
            "subnet",
        ),
        "ports" => (owner(&svc.find_port(id, auth).await?.0.project_id), "port"),
        "routers" => (
            owner(&svc.find_router(id, auth).await?.project_id),
            "router",
        ),
        "floatingips" => (
            owner(&svc.find_floating_ip(id, auth).await?.project_id),
            "floatingip",
        ),
        "security-groups" => (
            owner(&svc.find_group(id, auth).await?.project_id),
            "security_group",
        ),
        "subnetpools" => (
            owner(&svc.find_subnetpool(id, auth).await?.project_id),
            "subnetpool",
        ),
        other => {
            return Err(NetworkError::not_found(
                "HTTPNotFound",
                format!("Resource {other} does not take tags."),
            ))
        }
    })
}

async fn writable(svc: &NetworkService, auth: &Auth, collection: &str, id: &str) -> Result<()> {
    let (t, singular) = resource(svc, auth, collection, id).await?;
    authorize(svc, auth, &format!("update_{singular}"), &t)
}

pub async fn list(
    state: State,
    auth: Auth,
    Path((collection, id)): Path<(String, String)>,
) -> Result<Response> {
    let svc = &state.0;
    resource(svc, &auth, &collection, &id).await?;
    Ok(axum::Json(json!({"tags": svc.tags_of(&id).await?})).into_response())
}

pub async fn replace(
    state: State,
    auth: Auth,
    Path((collection, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let v: Value = ferrostack_api::json::parse(&body)?;
    let obj = v.as_object().cloned().unwrap_or_default();
    let tags = input::strings(&obj, "tags")?
        .ok_or_else(|| NetworkError::invalid_attr("tags", "'tags' is required"))?;
    writable(svc, &auth, &collection, &id).await?;
    let tags = svc.replace_tags(&id, &tags).await?;
    Ok(axum::Json(json!({ "tags": tags })).into_response())
}

pub async fn clear(
    state: State,
    auth: Auth,
    Path((collection, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    writable(svc, &auth, &collection, &id).await?;
    svc.clear_tags(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check(
    state: State,
    auth: Auth,
    Path((collection, id, tag)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    resource(svc, &auth, &collection, &id).await?;
    if svc.tags_of(&id).await?.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NetworkError::not_found(
            "TagNotFound",
            format!("Tag {tag} could not be found for {id}."),
        ))
    }
}

pub async fn add(
    state: State,
    auth: Auth,
    Path((collection, id, tag)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    writable(svc, &auth, &collection, &id).await?;
    svc.add_tag(&id, &tag).await?;
    Ok(StatusCode::CREATED)
}

pub async fn remove(
    state: State,
    auth: Auth,
    Path((collection, id, tag)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    writable(svc, &auth, &collection, &id).await?;
    svc.remove_tag(&id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}
