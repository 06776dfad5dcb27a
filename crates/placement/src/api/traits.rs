//! `/traits` and `/resource_providers/{uuid}/traits` (1.6).

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{Auth, Json};
use http::{header, StatusCode};
use serde_json::{json, Value};

use super::query::Query;
use super::{gate, invalid, object, only, reply, required_int, Base, State};
use crate::error::{PlacementError, Result};
use crate::model::NameFilter;

pub async fn list(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    gate(v, 1, 6)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:traits:list", &json!({}))?;
    let q = Query::parse(raw);
    q.check_keys(|k| k == "name" || k == "associated")?;
    let name = match q.one("name")? {
        None => NameFilter::All,
        Some(n) => {
            if let Some(list) = n.strip_prefix("in:") {
                NameFilter::In(list.split(',').map(str::to_string).collect())
            } else if let Some(prefix) = n.strip_prefix("startswith:") {
                NameFilter::StartsWith(prefix.to_string())
            } else {
                return Err(PlacementError::BadRequest(format!(
                    "Badly formatted name parameter. Expected name query string parameter in \
                     form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{n}\""
                )));
            }
        }
    };
    let associated = match q.one("associated")? {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(PlacementError::BadRequest(format!(
                "Invalid query string parameters: '{other}' is not one of ['true', 'false']"
            )))
        }
    };
    let traits = svc.list_traits(&name, associated).await?;
    Ok(reply(StatusCode::OK, json!({"traits": traits})))
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(name): Path<String>,
) -> Result<Response> {
    gate(v, 1, 6)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:traits:show", &json!({}))?;
    svc.get_trait(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /traits/{name}`: creates a custom trait (201) or confirms it exists (204).
pub async fn create(
    state: State,
    auth: Auth,
    v: Microversion,
    Base(base): Base,
    Path(name): Path<String>,
) -> Result<Response> {
    gate(v, 1, 6)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:traits:update", &json!({}))?;
    let status = if svc.ensure_trait(&name).await? {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    };
    let mut resp = status.into_response();
    if let Ok(l) = format!("{base}/traits/{name}").parse() {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}

pub async fn remove(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(name): Path<String>,
) -> Result<Response> {
    gate(v, 1, 6)?;
    let svc = &state.0;
    auth.enforce(&svc.policy, "placement:traits:delete", &json!({}))?;
    svc.delete_trait(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn provider_list(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
) -> Result<Response> {
    gate(v, 1, 6)?;
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:traits:list",
        &json!({}),
    )?;
    let traits = svc.provider_traits(&uuid).await?;
    Ok(reply(
        StatusCode::OK,
        json!({"traits": traits.value, "resource_provider_generation": traits.generation}),
    ))
}

pub async fn provider_set(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    gate(v, 1, 6)?;
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:traits:update",
        &json!({}),
    )?;
    svc.provider(&uuid).await?;
    let m = object(body)?;
    only(&m, &["traits", "resource_provider_generation"])?;
    let generation = required_int(&m, "resource_provider_generation", i64::MIN, i64::MAX)?;
    let traits: Vec<String> = match m.get("traits") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| match t {
                Value::String(s) if !s.is_empty() && s.len() <= 255 => Ok(s.clone()),
                other => Err(invalid(format!("{other} is not a valid trait name"))),
            })
            .collect::<Result<_>>()?,
        Some(other) => return Err(invalid(format!("{other} is not of type 'array'"))),
        None => return Err(invalid("'traits' is a required property")),
    };
    let generation = svc.set_provider_traits(&uuid, generation, &traits).await?;
    let mut sorted = traits;
    sorted.sort();
    sorted.dedup();
    Ok(reply(
        StatusCode::OK,
        json!({"traits": sorted, "resource_provider_generation": generation}),
    ))
}

pub async fn provider_clear(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(uuid): Path<String>,
) -> Result<Response> {
    gate(v, 1, 6)?;
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:resource_providers:traits:delete",
        &json!({}),
    )?;
    svc.clear_provider_traits(&uuid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
