//! The compute image proxy (`/images`, removed at 2.36; `/images/{id}/metadata`, removed at
//! 2.39): Nova's view of Glance images. As Nova calls Glance with the user's token, these
//! handlers call the image service's own router in process as the caller, so Glance's
//! visibility rules, filters and policies decide; this module only translates.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth, Json};
use ferrostack_image::model::{Image, Status};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use super::server_metadata::metadata_body;
use super::server_views::iso;
use super::State;
use crate::ComputeService;

pub fn routes() -> Router<Arc<ComputeService>> {
    Router::new()
        .route("/images", get(list))
        .route("/images/detail", get(detail))
        .route("/images/{id}", get(show).delete(remove))
        .route(
            "/images/{id}/metadata",
            get(metadata).post(merge_metadata).put(replace_metadata),
        )
        .route(
            "/images/{id}/metadata/{key}",
            get(metadata_item)
                .put(set_metadata_item)
                .delete(remove_metadata_item),
        )
}

fn image_not_found() -> ApiError {
    ApiError::not_found("Image not found.")
}

/// Calls the image API (`/v2...`) as `auth`; returns its status and JSON body.
async fn glance(
    svc: &ComputeService,
    auth: &Auth,
    method: Method,
    path: &str,
    patch: Option<Value>,
) -> Result<(StatusCode, Value), ApiError> {
    let mut builder = Request::builder().method(method).uri(path);
    let body = match patch {
        Some(ops) => {
            builder = builder.header(
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            );
            Body::from(ops.to_string())
        }
        None => Body::empty(),
    };
    let mut req = builder.body(body).map_err(ApiError::internal)?;
    ferrostack_api::auth::act_as(&mut req, auth.0.clone());
    let resp = svc
        .image
        .router()
        .oneshot(req)
        .await
        .map_err(ApiError::internal)?;
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .map_err(ApiError::internal)?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, body))
}

/// A Glance error as Nova reports it.
fn glance_error(status: StatusCode, body: &Value, forbidden: &str) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => image_not_found(),
        StatusCode::FORBIDDEN => ApiError::forbidden(forbidden),
        _ => ApiError::new(
            status,
            body["message"].as_str().unwrap_or("Image service error"),
        ),
    }
}

fn links(svc: &ComputeService, id: &str) -> Value {
    let base = format!("{}/compute", svc.config.public_url);
    json!([
        {"rel": "self", "href": format!("{base}/v2.1/images/{id}")},
        {"rel": "bookmark", "href": format!("{base}/images/{id}")},
        {"rel": "alternate", "type": "application/vnd.openstack.image",
         "href": format!("{}/image/images/{id}", svc.config.public_url)},
    ])
}

/// Nova's image status: Glance's upper-cased into its five values.
fn status(s: Status) -> (&'static str, i64) {
    match s {
        Status::Active => ("ACTIVE", 100),
        Status::Saving | Status::Uploading | Status::Importing => ("SAVING", 50),
        Status::Queued => ("SAVING", 25),
        Status::Deleted => ("DELETED", 0),
        Status::Killed => ("ERROR", 0),
        Status::Deactivated => ("UNKNOWN", 0),
    }
}

fn detail_view(svc: &ComputeService, i: &Image) -> Value {
    let (st, progress) = status(i.status);
    let mut out = json!({
        "id": i.id, "name": i.name, "minRam": i.min_ram, "minDisk": i.min_disk,
        "metadata": i.properties, "created": iso(i.created_at), "updated": iso(i.updated_at),
        "status": st, "progress": progress, "OS-EXT-IMG-SIZE:size": i.size,
        "links": links(svc, &i.id),
    });
    if let Some(server) = i.properties.get("instance_uuid").and_then(Value::as_str) {
        let base = format!("{}/compute", svc.config.public_url);
        out["server"] = json!({"id": server, "links": [
            {"rel": "self", "href": format!("{base}/v2.1/servers/{server}")},
            {"rel": "bookmark", "href": format!("{base}/servers/{server}")},
        ]});
    }
    if let Some(auto) = i.properties.get("auto_disk_config").and_then(Value::as_str) {
        let on = super::input::parse_bool(auto) == Some(true);
        out["OS-DCF:diskConfig"] = json!(if on { "AUTO" } else { "MANUAL" });
    }
    out
}

/// Nova's list filters as Glance's: `server` and `type` are properties, `changes-since` is
/// `updated_at=gte:`, `status` is lower-cased; paging passes through.
fn glance_query(q: &[(String, String)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in q {
        match k.as_str() {
            "name" | "limit" | "marker" => {
                out.append_pair(k, v);
            }
            "status" => {
                out.append_pair("status", &v.to_lowercase());
            }
            "changes-since" => {
                out.append_pair("updated_at", &format!("gte:{v}"));
            }
            // A server reference may be its URL.
            "server" => {
                out.append_pair("instance_uuid", v.rsplit('/').next().unwrap_or(v));
            }
            "type" => {
                out.append_pair("image_type", v);
            }
            "minRam" => {
                out.append_pair("min_ram", v);
            }
            "minDisk" => {
                out.append_pair("min_disk", v);
            }
            k if k.starts_with("property-") => {
                out.append_pair(&k["property-".len()..], v);
            }
            _ => {}
        }
    }
    out.finish()
}

/// One page of Glance's list: the images' (id, name) and whether more follow.
async fn list_page(
    svc: &ComputeService,
    auth: &Auth,
    q: &[(String, String)],
) -> Result<(Vec<(String, Value)>, bool), ApiError> {
    let (s, body) = glance(
        svc,
        auth,
        Method::GET,
        &format!("/v2/images?{}", glance_query(q)),
        None,
    )
    .await?;
    if !s.is_success() {
        // Glance's 400s (a bad marker, limit or time) keep their message.
        return Err(ApiError::new(
            s,
            body["message"]
                .as_str()
                .unwrap_or("Invalid image list request"),
        ));
    }
    let page = body["images"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| Some((i["id"].as_str()?.to_string(), i["name"].clone())))
                .collect()
        })
        .unwrap_or_default();
    Ok((page, body.get("next").is_some()))
}

/// The next link of a page Glance says more images follow.
fn page_links(svc: &ComputeService, kind: &str, last: &str, q: &[(String, String)]) -> Value {
    let base = format!("{}/compute", svc.config.public_url);
    super::next_links(&base, kind, q, last)
}

async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 36)?;
    let (page, more) = list_page(&svc, &auth, &q).await?;
    let images: Vec<Value> = page
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "links": links(&svc, id)}))
        .collect();
    let mut body = json!({ "images": images });
    if let (true, Some((last, _))) = (more, page.last()) {
        body["images_links"] = page_links(&svc, "images", last, &q);
    }
    Ok(axum::Json(body).into_response())
}

async fn detail(
    svc: State,
    auth: Auth,
    v: Microversion,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 36)?;
    let (page, more) = list_page(&svc, &auth, &q).await?;
    let mut images = Vec::with_capacity(page.len());
    for (id, _) in &page {
        // Listed a moment ago; one deleted meanwhile is left out.
        if let Ok(i) = svc.image.find(id, &auth).await {
            images.push(detail_view(&svc, &i));
        }
    }
    let mut body = json!({ "images": images });
    if let (true, Some((last, _))) = (more, page.last()) {
        body["images_links"] = page_links(&svc, "images/detail", last, &q);
    }
    Ok(axum::Json(body).into_response())
}

async fn find(svc: &ComputeService, auth: &Auth, id: &str) -> Result<Image, ApiError> {
    svc.image
        .find(id, auth)
        .await
        .map_err(|_| image_not_found())
}

async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 36)?;
    let i = find(&svc, &auth, &id).await?;
    Ok(axum::Json(json!({"image": detail_view(&svc, &i)})).into_response())
}

async fn remove(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 36)?;
    let (s, body) = glance(
        &svc,
        &auth,
        Method::DELETE,
        &format!("/v2/images/{id}"),
        None,
    )
    .await?;
    if !s.is_success() {
        return Err(glance_error(
            s,
            &body,
            "You are not allowed to delete the image.",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn metadata(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 39)?;
    let i = find(&svc, &auth, &id).await?;
    Ok(axum::Json(json!({"metadata": i.properties})).into_response())
}

async fn metadata_item(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 39)?;
    let i = find(&svc, &auth, &id).await?;
    let value = i
        .properties
        .get(&key)
        .ok_or_else(|| ApiError::not_found("Invalid metadata key"))?;
    let mut meta = Map::new();
    meta.insert(key, value.clone());
    Ok(axum::Json(json!({ "meta": meta })).into_response())
}

/// Writes the image's properties: `set` added or replaced, `unset` removed, within the
/// `metadata_items` limit; answers the properties after the change.
async fn write_properties(
    svc: &ComputeService,
    auth: &Auth,
    image: &Image,
    set: &Map<String, Value>,
    unset: &[String],
) -> Result<Map<String, Value>, ApiError> {
    let mut after = image.properties.clone();
    for k in unset {
        after.remove(k);
    }
    after.extend(set.clone());
    svc.check_image_metadata_quota(auth.project_id().unwrap_or_default(), after.len())
        .await?;
    let mut ops: Vec<Value> = unset
        .iter()
        .map(|k| json!({"op": "remove", "path": format!("/{k}")}))
        .collect();
    ops.extend(
        set.iter()
            .map(|(k, v)| json!({"op": "add", "path": format!("/{k}"), "value": v})),
    );
    if !ops.is_empty() {
        let path = format!("/v2/images/{}", image.id);
        let (s, body) = glance(svc, auth, Method::PATCH, &path, Some(Value::Array(ops))).await?;
        if !s.is_success() {
            return Err(match s {
                StatusCode::FORBIDDEN => ApiError::forbidden(
                    body["message"]
                        .as_str()
                        .unwrap_or("You are not allowed to update the image."),
                ),
                _ => glance_error(s, &body, ""),
            });
        }
    }
    Ok(after)
}

fn string_map(items: std::collections::BTreeMap<String, String>) -> Map<String, Value> {
    items.into_iter().map(|(k, v)| (k, json!(v))).collect()
}

/// POST: merges into the image's properties.
async fn merge_metadata(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 39)?;
    let items = string_map(metadata_body(&body, "metadata")?);
    let i = find(&svc, &auth, &id).await?;
    let all = write_properties(&svc, &auth, &i, &items, &[]).await?;
    Ok(axum::Json(json!({"metadata": all})).into_response())
}

/// PUT: replaces every property.
async fn replace_metadata(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 39)?;
    let items = string_map(metadata_body(&body, "metadata")?);
    let i = find(&svc, &auth, &id).await?;
    let unset: Vec<String> = i
        .properties
        .keys()
        .filter(|k| !items.contains_key(*k))
        .cloned()
        .collect();
    let all = write_properties(&svc, &auth, &i, &items, &unset).await?;
    Ok(axum::Json(json!({"metadata": all})).into_response())
}

/// PUT of one item: `{"meta": {key: value}}` with the key of the URI.
async fn set_metadata_item(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 39)?;
    let items = string_map(metadata_body(&body, "meta")?);
    if !items.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    let i = find(&svc, &auth, &id).await?;
    write_properties(&svc, &auth, &i, &items, &[]).await?;
    Ok(axum::Json(json!({ "meta": items })).into_response())
}

async fn remove_metadata_item(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 39)?;
    let i = find(&svc, &auth, &id).await?;
    if !i.properties.contains_key(&key) {
        return Err(ApiError::not_found("Invalid metadata key"));
    }
    write_properties(&svc, &auth, &i, &Map::new(), &[key]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
