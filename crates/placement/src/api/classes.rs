//! `/resource_classes` (1.2): standard classes are fixed, custom ones start with `CUSTOM_`.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{Auth, Json};
use http::{header, StatusCode};
use serde_json::{json, Value};

use super::{gate, object, only, reply, Base, State};
use crate::db;
use crate::error::{codes, on_unique, PlacementError, Result};
use crate::model::is_custom_name;

fn wire(base: &str, name: &str) -> Value {
    json!({
        "name": name,
        "links": [{"rel": "self", "href": format!("{base}/resource_classes/{name}")}],
    })
}

fn not_found(name: &str) -> PlacementError {
    PlacementError::NotFound(format!("No such resource class {name}."))
}

/// The `name` of a body, which must be a valid custom class name.
fn custom_name(body: Value) -> Result<String> {
    let m = object(body)?;
    only(&m, &["name"])?;
    let name = super::string(&m, "name", 255)?
        .ok_or_else(|| super::invalid("'name' is a required property"))?;
    if !is_custom_name(&name) {
        return Err(super::invalid(format!(
            "'{name}' does not match '^CUSTOM\\\\_[A-Z0-9_]+$'"
        )));
    }
    Ok(name)
}

pub async fn list(state: State, auth: Auth, v: Microversion, Base(base): Base) -> Result<Response> {
    gate(v, 1, 2)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:resource_classes:list", &json!({}))?;
    let mut conn = svc.db.pool.acquire().await?;
    let classes = db::resource_classes::list(&mut conn).await?;
    let out: Vec<Value> = classes.iter().map(|c| wire(&base, &c.name)).collect();
    Ok(reply(StatusCode::OK, json!({"resource_classes": out})))
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    Path(name): Path<String>,
) -> Result<Response> {
    gate(v, 1, 2)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:resource_classes:show", &json!({}))?;
    let mut conn = svc.db.pool.acquire().await?;
    db::resource_classes::get(&mut conn, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    Ok(reply(StatusCode::OK, wire(&base, &name)))
}

pub async fn create(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    Json(body): Json<Value>,
) -> Result<Response> {
    gate(v, 1, 2)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:resource_classes:create", &json!({}))?;
    let name = custom_name(body)?;
    let exists = || {
        PlacementError::conflict_code(
            codes::DUPLICATE_NAME,
            format!("Conflicting resource class already exists: {name}"),
        )
    };
    let mut tx = svc.db.begin_write().await?;
    if db::resource_classes::get(&mut tx, &name).await?.is_some() {
        return Err(exists());
    }
    db::resource_classes::insert_custom(&mut tx, &name)
        .await
        .map_err(on_unique(codes::DUPLICATE_NAME, exists().to_string()))?;
    tx.commit().await?;
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(l) = format!("{base}/resource_classes/{name}").parse() {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}

/// Before 1.7 renames a custom class (body `{"name": ...}`); from 1.7 creates it if needed
/// (201) or confirms it exists (204), without a body.
pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    gate(v, 1, 2)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:resource_classes:update", &json!({}))?;
    let mut tx = svc.db.begin_write().await?;
    let current = db::resource_classes::get(&mut tx, &name).await?;
    if v.at_least(1, 7) {
        if current.is_some() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        if !is_custom_name(&name) {
            return Err(super::invalid(format!(
                "'{name}' does not match '^CUSTOM\\\\_[A-Z0-9_]+$'"
            )));
        }
        db::resource_classes::insert_custom(&mut tx, &name).await?;
        tx.commit().await?;
        let mut resp = StatusCode::CREATED.into_response();
        if let Ok(l) = format!("{base}/resource_classes/{name}").parse() {
            resp.headers_mut().insert(header::LOCATION, l);
        }
        return Ok(resp);
    }
    let new_name = custom_name(ferrostack_api::json::parse(&body)?)?;
    let current = current.ok_or_else(|| not_found(&name))?;
    if current.standard {
        return Err(PlacementError::BadRequest(format!(
            "Cannot update standard resource class {name}"
        )));
    }
    if db::resource_classes::get(&mut tx, &new_name)
        .await?
        .is_some()
    {
        return Err(PlacementError::conflict_code(
            codes::DUPLICATE_NAME,
            format!("Resource class already exists: {new_name}"),
        ));
    }
    db::resource_classes::rename(&mut tx, &name, &new_name).await?;
    tx.commit().await?;
    Ok(reply(StatusCode::OK, wire(&base, &new_name)))
}

pub async fn remove(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(name): Path<String>,
) -> Result<Response> {
    gate(v, 1, 2)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:resource_classes:delete", &json!({}))?;
    let mut tx = svc.db.begin_write().await?;
    let rc = db::resource_classes::get(&mut tx, &name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    if rc.standard {
        return Err(PlacementError::BadRequest(format!(
            "Error in delete resource class: Cannot delete standard resource class {name}."
        )));
    }
    if db::inventories::class_in_use(&mut tx, &name).await? {
        return Err(PlacementError::Conflict(format!(
            "Error in delete resource class: Cannot delete resource class {name}. Class is in \
             use in inventory."
        )));
    }
    db::resource_classes::delete(&mut tx, &name).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
