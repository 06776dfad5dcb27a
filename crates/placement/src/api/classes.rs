//! `/resource_classes` (1.2): standard classes are fixed, custom ones start with `CUSTOM_`.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{Auth, Json};
use http::{header, StatusCode};
use serde_json::{json, Value};

use super::{gate, object, only, reply, Base, State};
use crate::error::Result;
use crate::model::is_custom_name;

fn wire(base: &str, name: &str) -> Value {
    json!({
        "name": name,
        "links": [{"rel": "self", "href": format!("{base}/resource_classes/{name}")}],
    })
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
    let classes = svc.resource_classes().await?;
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
    svc.resource_class(&name).await?;
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
    svc.create_class(&name).await?;
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
    if v.at_least(1, 7) {
        if !svc.ensure_class(&name).await? {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let mut resp = StatusCode::CREATED.into_response();
        if let Ok(l) = format!("{base}/resource_classes/{name}").parse() {
            resp.headers_mut().insert(header::LOCATION, l);
        }
        return Ok(resp);
    }
    // The body is checked before the class is looked up (a 400 before a 404).
    let new_name = custom_name(ferrostack_api::json::parse(&body)?)?;
    svc.rename_class(&name, &new_name).await?;
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
    svc.delete_class(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
