//! `/v3/projects` (with tags and hierarchy) and `/v3/users/{id}/projects`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, Json};
use http::StatusCode;
use serde_json::{json, Value};

use super::wire::{
    self, body_object, drop_readonly, take_opt_bool, take_opt_string, take_stripped_name,
    with_extra,
};
use super::State;
use crate::app::projects::{self, ProjectQuery, TagFilter};
use crate::app::users;
use crate::error::{IdentityError, Result};
use crate::model::{new_id, Project, DEFAULT_DOMAIN_ID};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route(
            "/projects/{project_id}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/projects/{project_id}/tags",
            get(list_tags).put(replace_tags).delete(clear_tags),
        )
        .route(
            "/projects/{project_id}/tags/{tag}",
            get(check_tag).put(add_tag).delete(remove_tag),
        )
        .route("/users/{user_id}/projects", get(user_projects))
}

pub fn wire(id: &Identity, p: &Project) -> Value {
    with_extra(
        json!({
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "description": p.description,
            "enabled": p.enabled,
            "parent_id": p.parent_id.clone().unwrap_or_else(|| p.domain_id.clone()),
            "is_domain": false,
            "tags": p.tags,
            "options": {},
            "links": wire::self_link(id, &format!("projects/{}", p.id)),
        }),
        &p.extra,
    )
}

pub fn target(p: &Project) -> Value {
    json!({"target": {"project": {"id": p.id, "domain_id": p.domain_id, "name": p.name}},
           "project_id": p.id, "domain_id": p.domain_id})
}

fn take_tags(o: &mut wire::Object) -> Result<Option<Vec<String>>> {
    match o.remove("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for v in a {
                let s = v
                    .as_str()
                    .ok_or_else(|| wire::type_error("tags", &v, "string"))?
                    .to_string();
                projects::check_tag(&s)?;
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            projects::check_tags(&out)?;
            Ok(Some(out))
        }
        Some(other) => Err(wire::type_error("tags", &other, "array")),
    }
}

async fn create(state: State, auth: Auth, Json(body): Json<Value>) -> Result<Response> {
    let id = &state.0;
    let mut o = body_object(body, "project")?;
    drop_readonly(&mut o, None)?;
    let name = take_stripped_name(&mut o, "name", 64)?;
    if take_opt_bool(&mut o, "is_domain")?.unwrap_or(false) {
        return Err(IdentityError::validation(
            "Projects acting as domains are not supported; create a domain.",
        ));
    }
    let description = take_opt_string(&mut o, "description", 65535)?.unwrap_or_default();
    let enabled = take_opt_bool(&mut o, "enabled")?.unwrap_or(true);
    let tags = take_tags(&mut o)?.unwrap_or_default();
    let domain_id = take_opt_string(&mut o, "domain_id", 64)?;
    let parent_id = take_opt_string(&mut o, "parent_id", 64)?;
    o.remove("options");
    // The domain: explicit, else the parent's, else the token's, else the default domain.
    let default_domain = auth
        .project
        .as_ref()
        .map(|p| p.domain_id.clone())
        .or_else(|| auth.domain.as_ref().map(|d| d.id.clone()))
        .unwrap_or_else(|| DEFAULT_DOMAIN_ID.to_string());
    let (domain_id, parent_id) =
        projects::placement(id, domain_id, parent_id, default_domain).await?;
    let p = Project {
        id: new_id(),
        name,
        domain_id,
        parent_id,
        description,
        enabled,
        tags,
        extra: o,
    };
    auth.enforce(&id.policy, "identity:create_project", &target(&p))?;
    projects::create(id, &p).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"project": wire(id, &p)})),
    )
        .into_response())
}

/// A comma-separated list of tags from the query string.
fn tags_param(q: &HashMap<String, String>, k: &str) -> Option<Vec<String>> {
    q.get(k).map(|v| v.split(',').map(str::to_string).collect())
}

async fn list(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    // As Keystone: a domain-scoped caller is checked against its own domain and sees only
    // that domain's projects.
    let target_domain = auth
        .domain
        .as_ref()
        .map(|d| d.id.clone())
        .or_else(|| q.get("domain_id").cloned());
    auth.enforce(
        &id.policy,
        "identity:list_projects",
        &json!({"domain_id": target_domain, "target": {"domain_id": target_domain}}),
    )?;
    if q.get("is_domain").is_some_and(|v| wire::query_bool(v)) {
        return Ok(axum::Json(
            json!({"projects": [], "links": wire::collection_links(id, "projects")}),
        )
        .into_response());
    }
    let query = ProjectQuery {
        name: q.get("name").cloned(),
        domain_id: q.get("domain_id").cloned(),
        parent_id: q.get("parent_id").cloned(),
        enabled: q.get("enabled").map(|e| wire::query_bool(e)),
        only_domain: auth.domain.as_ref().map(|d| d.id.clone()),
        tags: TagFilter {
            all: tags_param(&q, "tags"),
            any: tags_param(&q, "tags-any"),
            not_all: tags_param(&q, "not-tags"),
            not_any: tags_param(&q, "not-tags-any"),
        },
    };
    let list: Vec<Value> = projects::list(id, &query)
        .await?
        .iter()
        .map(|p| wire(id, p))
        .collect();
    Ok(
        axum::Json(json!({"projects": list, "links": wire::collection_links(id, "projects")}))
            .into_response(),
    )
}

async fn show(
    state: State,
    auth: Auth,
    Path(project_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    let p = projects::get(id, &project_id).await?;
    auth.enforce(&id.policy, "identity:get_project", &target(&p))?;
    let mut body = wire(id, &p);
    if q.contains_key("parents_as_list") {
        let parents: Vec<Value> = projects::parents(id, &p)
            .await?
            .iter()
            .map(|pp| json!({"project": wire(id, pp)}))
            .collect();
        body["parents"] = json!(parents);
    }
    if q.contains_key("subtree_as_list") {
        let subtree: Vec<Value> = projects::subtree(id, &p)
            .await?
            .iter()
            .map(|c| json!({"project": wire(id, c)}))
            .collect();
        body["subtree"] = json!(subtree);
    }
    Ok(axum::Json(json!({ "project": body })).into_response())
}

async fn update(
    state: State,
    auth: Auth,
    Path(project_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let mut p = projects::get(id, &project_id).await?;
    auth.enforce(&id.policy, "identity:update_project", &target(&p))?;
    let mut o = body_object(body, "project")?;
    drop_readonly(&mut o, Some(&project_id))?;
    for fixed in ["domain_id", "parent_id", "is_domain"] {
        if let Some(v) = o.remove(fixed) {
            let same = match fixed {
                "domain_id" => v.as_str() == Some(p.domain_id.as_str()),
                "parent_id" => v.as_str() == Some(p.parent_id.as_deref().unwrap_or(&p.domain_id)),
                _ => v == Value::Bool(false),
            };
            if !same {
                return Err(IdentityError::validation(format!(
                    "Update of `{fixed}` is not allowed."
                )));
            }
        }
    }
    if o.contains_key("name") {
        p.name = take_stripped_name(&mut o, "name", 64)?;
    }
    if let Some(d) = take_opt_string(&mut o, "description", 65535)? {
        p.description = d;
    }
    if let Some(e) = take_opt_bool(&mut o, "enabled")? {
        p.enabled = e;
    }
    if let Some(t) = take_tags(&mut o)? {
        p.tags = t;
    }
    o.remove("options");
    p.extra.extend(o);
    projects::update(id, &p).await?;
    Ok(axum::Json(json!({"project": wire(id, &p)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(project_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let p = projects::get(id, &project_id).await?;
    auth.enforce(&id.policy, "identity:delete_project", &target(&p))?;
    projects::delete(id, &p.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tags

async fn tags_target(
    id: &Identity,
    auth: &Auth,
    project_id: &str,
    action: &str,
) -> Result<Project> {
    let p = projects::get(id, project_id).await?;
    auth.enforce(&id.policy, action, &target(&p))?;
    Ok(p)
}

/// Keystone's tag list body: `{"tags": [...], "links": {"self": ...}}`.
fn tags_body(id: &Identity, p: &Project) -> Value {
    json!({"tags": p.tags, "links": wire::self_link(id, &format!("projects/{}/tags", p.id))})
}

async fn list_tags(state: State, auth: Auth, Path(project_id): Path<String>) -> Result<Response> {
    let p = tags_target(&state.0, &auth, &project_id, "identity:list_project_tags").await?;
    Ok(axum::Json(tags_body(&state.0, &p)).into_response())
}

async fn replace_tags(
    state: State,
    auth: Auth,
    Path(project_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let mut p = tags_target(id, &auth, &project_id, "identity:update_project_tags").await?;
    let mut o = match body {
        Value::Object(o) => o,
        _ => {
            return Err(IdentityError::validation(
                "Expecting to find tags in request body.",
            ))
        }
    };
    p.tags = take_tags(&mut o)?
        .ok_or_else(|| IdentityError::validation("Expecting to find tags in request body."))?;
    projects::set_tags(id, &p.id, &p.tags).await?;
    Ok(axum::Json(tags_body(id, &p)).into_response())
}

async fn clear_tags(
    state: State,
    auth: Auth,
    Path(project_id): Path<String>,
) -> Result<StatusCode> {
    let id = &state.0;
    let p = tags_target(id, &auth, &project_id, "identity:delete_project_tags").await?;
    projects::set_tags(id, &p.id, &[]).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn check_tag(
    state: State,
    auth: Auth,
    Path((project_id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let p = tags_target(&state.0, &auth, &project_id, "identity:get_project_tag").await?;
    if p.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(IdentityError::not_found("project tag", tag))
    }
}

async fn add_tag(
    state: State,
    auth: Auth,
    Path((project_id, tag)): Path<(String, String)>,
) -> Result<Response> {
    let id = &state.0;
    let p = tags_target(id, &auth, &project_id, "identity:create_project_tag").await?;
    projects::add_tag(id, &p, &tag).await?;
    // As Keystone: 201 with no body and the tag's URL in Location.
    let location = format!(
        "{}/projects/{}/tags/{}",
        id.config.v3_url(),
        p.id,
        percent_encode(&tag)
    );
    Ok((StatusCode::CREATED, [(http::header::LOCATION, location)]).into_response())
}

/// Percent-encodes a path segment (tags may hold any character but '/' and ',').
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn remove_tag(
    state: State,
    auth: Auth,
    Path((project_id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = &state.0;
    let p = tags_target(id, &auth, &project_id, "identity:delete_project_tag").await?;
    projects::remove_tag(id, &p, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- projects of a user

async fn user_projects(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let user = users::get(id, &user_id).await?;
    auth.enforce(
        &id.policy,
        "identity:list_user_projects",
        &json!({"user_id": user.id, "target": {"user": {"id": user.id, "domain_id": user.domain_id}}, "domain_id": user.domain_id}),
    )?;
    let list: Vec<Value> = projects::for_user(id, &user.id)
        .await?
        .iter()
        .map(|p| wire(id, p))
        .collect();
    Ok(axum::Json(json!({"projects": list, "links": wire::collection_links(id, &format!("users/{user_id}/projects"))})).into_response())
}
