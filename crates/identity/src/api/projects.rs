//! `/v3/projects` (with tags and hierarchy) and `/v3/users/{id}/projects`.

use std::collections::{HashMap, HashSet};

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
use crate::app::roles;
use crate::db::{self, projects::ProjectFilter};
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{new_id, Project, DEFAULT_DOMAIN_ID};
use crate::Identity;

/// Deepest project hierarchy accepted (Keystone's `max_project_tree_depth` default).
const MAX_DEPTH: usize = 5;
const MAX_TAGS: usize = 80;

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

pub async fn get_project(id: &Identity, project_id: &str) -> Result<Project> {
    let mut conn = id.db.pool.acquire().await?;
    db::projects::get(&mut conn, project_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("project", project_id))
}

fn check_tag_value(t: &str) -> Result<()> {
    if t.is_empty() || t.chars().count() > 255 || t.contains('/') || t.contains(',') {
        return Err(IdentityError::validation(format!(
            "Invalid input for field 'tags': '{t}' must be 1 to 255 characters without '/' or ','."
        )));
    }
    Ok(())
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
                check_tag_value(&s)?;
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            if out.len() > MAX_TAGS {
                return Err(IdentityError::validation(format!(
                    "A project may have at most {MAX_TAGS} tags."
                )));
            }
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
    let mut conn = id.db.pool.acquire().await?;
    // The domain: explicit, else the parent's, else the token's, else the default domain.
    let (domain_id, parent_id) = match parent_id {
        Some(pid) => match db::projects::get(&mut conn, &pid).await? {
            Some(parent) => {
                if domain_id.as_ref().is_some_and(|d| *d != parent.domain_id) {
                    return Err(IdentityError::validation(
                        "Cannot create a project in a different domain than its parent.",
                    ));
                }
                if db::projects::ancestors(&mut conn, &parent.id).await?.len() + 2 > MAX_DEPTH {
                    return Err(IdentityError::Forbidden(format!(
                        "Max hierarchy depth reached for {} branch.",
                        parent.id
                    )));
                }
                (parent.domain_id, Some(parent.id))
            }
            // A parent_id naming a domain makes a top-level project of that domain.
            None if db::domains::get(&mut *conn, &pid).await?.is_some() => (pid, None),
            // Keystone turns a missing parent into a validation error (400).
            None => {
                return Err(IdentityError::validation(format!(
                    "Could not find project: {pid}."
                )))
            }
        },
        None => {
            let d = domain_id
                .or_else(|| auth.project.as_ref().map(|p| p.domain_id.clone()))
                .or_else(|| auth.domain.as_ref().map(|d| d.id.clone()))
                .unwrap_or_else(|| DEFAULT_DOMAIN_ID.to_string());
            (d, None)
        }
    };
    drop(conn);
    let p = Project {
        id: new_id(),
        name: name.clone(),
        domain_id,
        parent_id,
        description,
        enabled,
        tags,
        extra: o,
    };
    auth.enforce(&id.policy, "identity:create_project", &target(&p))?;
    if db::domains::get(&id.db.pool, &p.domain_id).await?.is_none() {
        return Err(IdentityError::validation(format!(
            "Could not find domain: {}.",
            p.domain_id
        )));
    }
    let mut tx = id.db.begin_write().await?;
    db::projects::insert(&mut tx, &p).await.map_err(conflict_or(
        "project",
        format!("it is not permitted to have two projects with the same name in the same domain : {name}"),
    ))?;
    id.commit_change(tx, vec![]).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"project": wire(id, &p)})),
    )
        .into_response())
}

fn tag_filter(q: &HashMap<String, String>, p: &Project) -> bool {
    let split = |k: &str| -> Option<Vec<&str>> { q.get(k).map(|v| v.split(',').collect()) };
    let has = |t: &&str| p.tags.iter().any(|x| x == t);
    split("tags").is_none_or(|ts| ts.iter().all(has))
        && split("tags-any").is_none_or(|ts| ts.iter().any(has))
        && split("not-tags").is_none_or(|ts| !ts.iter().all(has))
        && split("not-tags-any").is_none_or(|ts| !ts.iter().any(has))
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
    let filter = ProjectFilter {
        name: q.get("name").cloned(),
        domain_id: q.get("domain_id").cloned(),
        parent_id: q.get("parent_id").cloned(),
        enabled: q.get("enabled").map(|e| wire::query_bool(e)),
        ids: None,
    };
    let mut conn = id.db.pool.acquire().await?;
    let projects = db::projects::list(&mut conn, &filter).await?;
    let limit_domain = auth.domain.as_ref().map(|d| d.id.clone());
    let list: Vec<Value> = projects
        .iter()
        .filter(|p| limit_domain.as_ref().is_none_or(|d| *d == p.domain_id))
        .filter(|p| tag_filter(&q, p))
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
    let p = get_project(id, &project_id).await?;
    auth.enforce(&id.policy, "identity:get_project", &target(&p))?;
    let mut body = wire(id, &p);
    let mut conn = id.db.pool.acquire().await?;
    if q.contains_key("parents_as_list") {
        let mut parents = Vec::new();
        for pid in db::projects::ancestors(&mut conn, &p.id).await? {
            if let Some(pp) = db::projects::get(&mut conn, &pid).await? {
                parents.push(json!({"project": wire(id, &pp)}));
            }
        }
        body["parents"] = json!(parents);
    }
    if q.contains_key("subtree_as_list") {
        let all = db::projects::list(&mut conn, &ProjectFilter::default()).await?;
        let mut below: HashSet<String> = HashSet::from([p.id.clone()]);
        let mut subtree = Vec::new();
        // Walk outwards from the project until no new descendants appear.
        loop {
            let before = below.len();
            for c in &all {
                if c.parent_id.as_ref().is_some_and(|pp| below.contains(pp))
                    && below.insert(c.id.clone())
                {
                    subtree.push(json!({"project": wire(id, c)}));
                }
            }
            if below.len() == before {
                break;
            }
        }
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
    let mut p = get_project(id, &project_id).await?;
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
    let was_enabled = p.enabled;
    if let Some(e) = take_opt_bool(&mut o, "enabled")? {
        p.enabled = e;
    }
    if let Some(t) = take_tags(&mut o)? {
        p.tags = t;
    }
    o.remove("options");
    p.extra.extend(o);
    let mut tx = id.db.begin_write().await?;
    db::projects::update(&mut tx, &p)
        .await
        .map_err(conflict_or(
            "project",
            format!(
            "it is not permitted to have two projects with the same name in the same domain : {}",
            p.name
        ),
        ))?;
    let mut events = vec![];
    if was_enabled && !p.enabled {
        let now = ferrostack_store::now_micros();
        events.push(crate::model::RevocationEvent {
            project_id: p.id.clone(),
            issued_before: now,
            revoked_at: now,
            ..Default::default()
        });
    }
    id.commit_change(tx, events).await?;
    Ok(axum::Json(json!({"project": wire(id, &p)})).into_response())
}

async fn remove(state: State, auth: Auth, Path(project_id): Path<String>) -> Result<StatusCode> {
    let id = &state.0;
    let p = get_project(id, &project_id).await?;
    auth.enforce(&id.policy, "identity:delete_project", &target(&p))?;
    let mut tx = id.db.begin_write().await?;
    if db::projects::children_count(&mut tx, &p.id).await? > 0 {
        return Err(IdentityError::ForbiddenWithReason(format!(
            "Cannot delete the project {} since it is not a leaf in the hierarchy.",
            p.id
        )));
    }
    db::assignments::delete_for_target(&mut *tx, &p.id).await?;
    // As Keystone: the project's limits go with it.
    db::limits::delete_for_owner(&mut *tx, &p.id).await?;
    db::projects::delete(&mut tx, &p.id).await?;
    let now = ferrostack_store::now_micros();
    let ev = crate::model::RevocationEvent {
        project_id: p.id.clone(),
        issued_before: now,
        revoked_at: now,
        ..Default::default()
    };
    id.commit_change(tx, vec![ev]).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tags

async fn tags_target(
    id: &Identity,
    auth: &Auth,
    project_id: &str,
    action: &str,
) -> Result<Project> {
    let p = get_project(id, project_id).await?;
    auth.enforce(&id.policy, action, &target(&p))?;
    Ok(p)
}

async fn save_tags(id: &Identity, p: &Project) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::projects::set_tags(&mut tx, &p.id, &p.tags).await?;
    tx.commit().await?;
    Ok(())
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
    save_tags(id, &p).await?;
    Ok(axum::Json(tags_body(id, &p)).into_response())
}

async fn clear_tags(
    state: State,
    auth: Auth,
    Path(project_id): Path<String>,
) -> Result<StatusCode> {
    let id = &state.0;
    let mut p = tags_target(id, &auth, &project_id, "identity:delete_project_tags").await?;
    p.tags.clear();
    save_tags(id, &p).await?;
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
    let mut p = tags_target(id, &auth, &project_id, "identity:create_project_tag").await?;
    check_tag_value(&tag)?;
    if !p.tags.contains(&tag) {
        if p.tags.len() >= MAX_TAGS {
            return Err(IdentityError::validation(format!(
                "A project may have at most {MAX_TAGS} tags."
            )));
        }
        p.tags.push(tag.clone());
        save_tags(id, &p).await?;
    }
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
    let mut p = tags_target(id, &auth, &project_id, "identity:delete_project_tag").await?;
    if !p.tags.contains(&tag) {
        return Err(IdentityError::not_found("project tag", tag));
    }
    p.tags.retain(|t| *t != tag);
    save_tags(id, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- projects of a user

/// Projects on which `user_id` has any role: directly, through a group, or inherited.
pub async fn projects_for_user(id: &Identity, user_id: &str) -> Result<Vec<Project>> {
    let mut conn = id.db.pool.acquire().await?;
    let actors = roles::actors(&mut conn, user_id).await?;
    let assignments = db::assignments::list_for_actors(&mut *conn, &actors).await?;
    if assignments.is_empty() {
        return Ok(vec![]);
    }
    let all = db::projects::list(&mut conn, &ProjectFilter::default()).await?;
    let parents: HashMap<&str, Option<&str>> = all
        .iter()
        .map(|p| (p.id.as_str(), p.parent_id.as_deref()))
        .collect();
    let mut out = Vec::new();
    for p in &all {
        let mut ancestors = Vec::new();
        let mut cur = p.parent_id.as_deref();
        while let Some(c) = cur {
            ancestors.push(c.to_string());
            cur = parents.get(c).copied().flatten();
            if ancestors.len() > 64 {
                break;
            }
        }
        if p.enabled
            && assignments
                .iter()
                .any(|a| roles::applies_to_project(a, p, &ancestors))
        {
            out.push(p.clone());
        }
    }
    Ok(out)
}

async fn user_projects(state: State, auth: Auth, Path(user_id): Path<String>) -> Result<Response> {
    let id = &state.0;
    let user = db::users::get(&id.db.pool, &user_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("user", &user_id))?;
    auth.enforce(
        &id.policy,
        "identity:list_user_projects",
        &json!({"user_id": user.id, "target": {"user": {"id": user.id, "domain_id": user.domain_id}}, "domain_id": user.domain_id}),
    )?;
    let list: Vec<Value> = projects_for_user(id, &user.id)
        .await?
        .iter()
        .map(|p| wire(id, p))
        .collect();
    Ok(axum::Json(json!({"projects": list, "links": wire::collection_links(id, &format!("users/{user_id}/projects"))})).into_response())
}
