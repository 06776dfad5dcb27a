//! `/v2/images`: create, list, show, JSON-patch update, delete, tags, deactivate/reactivate.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::Auth;
use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::wire;
use super::State;
use crate::app::images::{counted_properties, Cmp, ImageQuery};
use crate::error::{ImageError, Result};
use crate::model::{Image, Status, Visibility};

/// Glance's default and largest page sizes.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;

fn caller_project(auth: &Auth) -> Result<String> {
    auth.project_id()
        .map(str::to_string)
        .ok_or_else(|| ImageError::Forbidden("A project-scoped token is required.".into()))
}

pub async fn create(state: State, auth: Auth, body: Bytes) -> Result<Response> {
    let svc = &state.0;
    let body: Value = ferrostack_api::json::parse(&body)?;
    let mut o = wire::object(body)?;
    let project = caller_project(&auth)?;
    let now = ferrostack_store::now_micros();
    let id = match o.remove("id") {
        None => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) if uuid::Uuid::parse_str(&s).is_ok() => s,
        Some(other) => {
            return Err(ImageError::BadRequest(format!(
                "Invalid value for 'id': {other} is not a UUID."
            )))
        }
    };
    let mut img = Image {
        id: id.clone(),
        name: None,
        status: Status::Queued,
        visibility: Visibility::Shared,
        protected: false,
        os_hidden: false,
        disk_format: None,
        container_format: None,
        min_disk: 0,
        min_ram: 0,
        size: None,
        virtual_size: None,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        owner: project.clone(),
        properties: Default::default(),
        tags: vec![],
        location: String::new(),
        created_at: now,
        updated_at: now,
    };
    for (k, v) in o {
        wire::set_attribute(&mut img, &k, v, true)?;
    }
    svc.check_property_quota(&img, 0)?;
    if img.owner != project && !auth.is_admin {
        return Err(ImageError::Forbidden(
            "Only admins may create images owned by another project.".into(),
        ));
    }
    let target = json!({"project_id": img.owner, "visibility": img.visibility.as_str()});
    auth.enforce(&svc.policy, "add_image", &target)?;
    check_visibility_policy(svc, &auth, &img)?;
    svc.create_image(&img).await?;
    let mut resp = (StatusCode::CREATED, axum::Json(wire::image(&img))).into_response();
    if let Ok(v) = format!("{}/image/v2/images/{id}", svc.config.public_url).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `publicize_image` / `communitize_image` for the visibility being set.
fn check_visibility_policy(svc: &crate::ImageService, auth: &Auth, img: &Image) -> Result<()> {
    let target = json!({"project_id": img.owner, "visibility": img.visibility.as_str()});
    match img.visibility {
        Visibility::Public => auth.enforce(&svc.policy, "publicize_image", &target)?,
        Visibility::Community => auth.enforce(&svc.policy, "communitize_image", &target)?,
        _ => {}
    }
    Ok(())
}

/// Parses `gt:2016-01-01T00:00:00Z`-style time filters.
fn time_filter(v: &str) -> Result<(Cmp, i64)> {
    let parsed = v.split_once(':').and_then(|(op, t)| {
        let op = match op {
            "gt" => Cmp::Gt,
            "gte" => Cmp::Gte,
            "lt" => Cmp::Lt,
            "lte" => Cmp::Lte,
            "eq" => Cmp::Eq,
            "neq" => Cmp::Neq,
            _ => return None,
        };
        Some((op, t))
    });
    let (op, t) = parsed.unwrap_or((Cmp::Eq, v));
    let ts = chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_micros())
        .map_err(|_| ImageError::BadRequest(format!("Invalid time filter value '{v}'.")))?;
    Ok((op, ts))
}

const SORT_KEYS: [&str; 11] = [
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
];

pub async fn list(state: State, auth: Auth, RawQuery(raw): RawQuery) -> Result<Response> {
    let svc = &state.0;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let project = auth.project_id().unwrap_or_default().to_string();
    auth.enforce(&svc.policy, "get_images", &json!({"project_id": project}))?;

    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ImageError::BadRequest(format!("Invalid limit value '{l}'.")))?
            .min(MAX_LIMIT),
    };
    let visibility = get("visibility");
    if let Some(v) = &visibility {
        if v != "all" && Visibility::parse(v).is_none() {
            return Err(ImageError::BadRequest(format!(
                "Invalid visibility value: {v}"
            )));
        }
    }
    let member_status = get("member_status");
    if let Some(m) = member_status
        .as_deref()
        .filter(|m| !["accepted", "pending", "rejected", "all"].contains(m))
    {
        return Err(ImageError::BadRequest(format!("Invalid status value: {m}")));
    }

    // Sorting: `sort=key:dir,...` or `sort_key`/`sort_dir` (repeatable); default created_at desc.
    let mut sorts: Vec<(String, bool)> = Vec::new();
    if let Some(s) = get("sort") {
        for part in s.split(',') {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            sorts.push((k.trim().to_string(), d.trim() != "asc"));
        }
    } else {
        let keys: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "sort_key")
            .map(|(_, v)| v.clone())
            .collect();
        let dirs: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k == "sort_dir")
            .map(|(_, v)| v.clone())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let d = dirs
                .get(i)
                .or(dirs.last())
                .map(String::as_str)
                .unwrap_or("desc");
            sorts.push((k.clone(), d != "asc"));
        }
    }
    for (k, _) in &sorts {
        if !SORT_KEYS.contains(&k.as_str()) {
            return Err(ImageError::BadRequest(format!("Invalid sort key: {k}")));
        }
    }
    for (k, v) in pairs.iter().filter(|(k, _)| k == "sort_dir") {
        if v != "asc" && v != "desc" {
            return Err(ImageError::BadRequest(format!("Invalid {k} value: {v}")));
        }
    }
    sorts.push(("created_at".into(), true));
    sorts.push(("id".into(), true));

    let known = [
        "limit",
        "marker",
        "sort",
        "sort_key",
        "sort_dir",
        "visibility",
        "member_status",
        "name",
        "status",
        "owner",
        "tag",
        "size_min",
        "size_max",
        "protected",
        "os_hidden",
        "container_format",
        "disk_format",
        "id",
        "created_at",
        "updated_at",
    ];
    let size_bound = |k: &str| -> Result<Option<i64>> {
        get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ImageError::BadRequest(format!("Invalid {k} value '{v}'.")))
            })
            .transpose()
    };
    let (size_min, size_max) = (size_bound("size_min")?, size_bound("size_max")?);
    let created = get("created_at").map(|v| time_filter(&v)).transpose()?;
    let updated = get("updated_at").map(|v| time_filter(&v)).transpose()?;
    let tags: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.clone())
        .collect();
    let os_hidden = get("os_hidden").map(|v| v == "true");
    let ids: Option<Vec<String>> = get("id").map(|v| {
        v.trim_start_matches("in:")
            .split(',')
            .map(str::to_string)
            .collect()
    });

    let properties: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .cloned()
        .collect();
    let query = ImageQuery {
        visibility,
        member_status,
        os_hidden,
        name: get("name"),
        status: get("status"),
        owner: get("owner"),
        protected: get("protected").map(|p| p == "true"),
        container_format: get("container_format"),
        disk_format: get("disk_format"),
        tags,
        size_min,
        size_max,
        created_at: created,
        updated_at: updated,
        ids,
        // Any other query key filters on a free-form property.
        properties,
        sorts,
        marker: get("marker"),
        limit,
    };
    let page = svc.list_images(&auth, &query).await?;
    let mut body = json!({
        "images": page.images.iter().map(wire::image).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if let Some(m) = page.next {
        let mut q: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, _)| k != "marker" && k != "limit")
            .collect();
        q.push(("marker".into(), m));
        q.push(("limit".into(), limit.to_string()));
        let qs = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q)
            .finish();
        body["next"] = json!(format!("/v2/images?{qs}"));
    }
    Ok(axum::Json(body).into_response())
}

pub async fn show(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "get_image").await?;
    Ok(axum::Json(wire::image(&img)).into_response())
}

/// JSON-patch (`application/openstack-images-v2.1-json-patch`): add, replace, remove.
pub async fn update(
    state: State,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let svc = &state.0;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/openstack-images-v2.1-json-patch")
        && !ct.starts_with("application/openstack-images-v2.0-json-patch")
    {
        return Err(ImageError::Api(ferrostack_api::ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type: use application/openstack-images-v2.1-json-patch.",
        )));
    }
    let mut img = svc.find_for(&id, &auth, "modify_image").await?;
    let ops: Value = ferrostack_api::json::parse(&body)?;
    let ops = ops.as_array().ok_or_else(|| {
        ImageError::BadRequest("A JSON-patch body is a list of operations.".into())
    })?;
    let before_visibility = img.visibility;
    let before_properties = counted_properties(&img);
    for op in ops {
        // Two spellings: `{"op": "replace", "path": "/name", ...}` (RFC 6902, v2.1) and Glance's
        // older `{"replace": "/name", "value": ...}`.
        let (kind, path) = match (
            op.get("op").and_then(Value::as_str),
            op.get("path").and_then(Value::as_str),
        ) {
            (Some(k), Some(p)) => (k, p),
            (Some(_), None) => {
                return Err(ImageError::BadRequest("Each change needs a 'path'.".into()))
            }
            _ => ["add", "replace", "remove"]
                .iter()
                .find_map(|k| op.get(*k).and_then(Value::as_str).map(|p| (*k, p)))
                .ok_or_else(|| {
                    ImageError::BadRequest("Each change needs an 'op' and a 'path'.".into())
                })?,
        };
        let key = path
            .strip_prefix('/')
            .filter(|k| !k.is_empty() && !k.contains('/'))
            .ok_or_else(|| {
                ImageError::BadRequest(format!("Invalid JSON pointer for this resource: '{path}'"))
            })?;
        let key = key.replace("~1", "/").replace("~0", "~");
        match kind {
            "add" | "replace" => {
                let value = op
                    .get("value")
                    .cloned()
                    .ok_or_else(|| ImageError::BadRequest(format!("'{kind}' needs a value.")))?;
                let is_property = !wire::CORE.contains(&key.as_str())
                    && !wire::READ_ONLY.contains(&key.as_str())
                    && key != "owner";
                if kind == "replace" && is_property && !img.properties.contains_key(&key) {
                    return Err(ImageError::Conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
                if kind == "add" && is_property && img.properties.contains_key(&key) {
                    // Glance treats add of an existing property as a replace.
                }
                if key == "owner" && !auth.is_admin {
                    return Err(ImageError::Forbidden(
                        "Attribute 'owner' can only be changed by an admin.".into(),
                    ));
                }
                wire::set_attribute(&mut img, &key, value, false)?;
            }
            "remove" => {
                if wire::CORE.contains(&key.as_str())
                    || wire::READ_ONLY.contains(&key.as_str())
                    || key == "owner"
                {
                    return Err(ImageError::Forbidden(format!(
                        "Cannot remove the '{key}' attribute."
                    )));
                }
                if img.properties.remove(&key).is_none() {
                    return Err(ImageError::Conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
            }
            other => {
                return Err(ImageError::BadRequest(format!(
                    "Invalid operation: '{other}'."
                )))
            }
        }
    }
    if img.visibility != before_visibility {
        check_visibility_policy(svc, &auth, &img)?;
    }
    // As Glance: only a change that adds properties is held to the quota.
    svc.check_property_quota(&img, before_properties)?;
    let img = svc.update_image(&img).await?;
    Ok(axum::Json(wire::image(&img)).into_response())
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "delete_image").await?;
    svc.delete_image(&img).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_tag(
    state: State,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "modify_image").await?;
    wire::check_tag(&tag)?;
    svc.add_tag(&img, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/images/{id}/tasks` (2.12): the tasks that worked on a visible image. Imports run
/// in process here and record no tasks (there is no `/v2/tasks` engine), so the list is empty;
/// clients that wait for an image's tasks to finish find nothing pending, which is the truth.
pub async fn tasks(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    svc.find_for(&id, &auth, "get_image").await?;
    Ok(axum::Json(json!({ "tasks": [] })).into_response())
}

pub async fn remove_tag(
    state: State,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let svc = &state.0;
    let img = svc.find_for(&id, &auth, "modify_image").await?;
    svc.remove_tag(&img, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn deactivate(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    set_active(&state.0, &auth, &id, false).await
}

pub async fn reactivate(state: State, auth: Auth, Path(id): Path<String>) -> Result<StatusCode> {
    set_active(&state.0, &auth, &id, true).await
}

/// Deactivates (`active = false`) or reactivates an image; repeating either is a no-op.
async fn set_active(
    svc: &crate::ImageService,
    auth: &Auth,
    id: &str,
    active: bool,
) -> Result<StatusCode> {
    let action = if active { "reactivate" } else { "deactivate" };
    let img = svc.find_for(id, auth, action).await?;
    svc.set_active(&img, active).await?;
    Ok(StatusCode::NO_CONTENT)
}
