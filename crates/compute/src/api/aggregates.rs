//! `/os-aggregates` (admin): list, create, show, update, delete, and the actions add_host,
//! remove_host and set_metadata. Placement aggregates mirror Nova's: a host's provider is
//! put in the aggregates (by uuid) its host is in.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use serde_json::{json, Map, Value};

use super::input;
use super::State;
use crate::app::aggregates::{check_zone_name, AggregateUpdate};
use crate::error::{ComputeError, Result};
use crate::model::Aggregate;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-aggregates", get(index).post(create))
        .route("/os-aggregates/{id}", get(show).put(update).delete(remove))
        .route("/os-aggregates/{id}/action", post(action))
}

fn parse_id(id: &str) -> Result<i64> {
    id.parse::<i64>().map_err(|_| {
        ComputeError::BadRequest("Invalid input received: id must be an integer".into())
    })
}

fn render(a: &Aggregate, v: Microversion, details: bool) -> Value {
    let mut o = Map::new();
    o.insert("availability_zone".into(), json!(a.availability_zone));
    o.insert("created_at".into(), json!(input::nova_time(a.created_at)));
    o.insert("deleted".into(), json!(false));
    o.insert("deleted_at".into(), Value::Null);
    if details {
        o.insert("hosts".into(), json!(a.hosts));
        o.insert("metadata".into(), json!(a.metadata));
    }
    o.insert("id".into(), json!(a.id));
    o.insert("name".into(), json!(a.name));
    o.insert(
        "updated_at".into(),
        json!(a.updated_at.map(input::nova_time)),
    );
    if v.at_least(2, 41) {
        o.insert("uuid".into(), json!(a.uuid));
    }
    Value::Object(o)
}

fn one(a: &Aggregate, v: Microversion) -> Response {
    axum::Json(json!({"aggregate": render(a, v, true)})).into_response()
}

/// Availability zone names: printable, no ':', not starting or ending with whitespace.
fn check_az(value: &Value) -> Result<Option<String>> {
    if value.is_null() {
        return Ok(None);
    }
    let s = input::string("availability_zone", value, 1, 255)?;
    check_zone_name(s)?;
    Ok(Some(s.to_string()))
}

pub async fn index(state: State, auth: Auth, v: Microversion) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-aggregates:index",
        &json!({}),
    )?;
    let all = svc.aggregates().await?;
    let list: Vec<Value> = all.iter().map(|a| render(a, v, true)).collect();
    Ok(axum::Json(json!({ "aggregates": list })).into_response())
}

pub async fn create(
    state: State,
    auth: Auth,
    v: Microversion,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-aggregates:create",
        &json!({}),
    )?;
    let o = input::envelope(
        &body,
        "aggregate",
        &["name", "availability_zone"],
        &["name"],
    )?;
    let name = input::name("name", &o["name"])?.to_string();
    let az = match o.get("availability_zone") {
        None => None,
        Some(z) => check_az(z)?,
    };
    let a = svc.create_aggregate(&name, az.as_deref()).await?;
    Ok(axum::Json(json!({"aggregate": render(&a, v, false)})).into_response())
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(&svc.policy, "os_compute_api:os-aggregates:show", &json!({}))?;
    let a = svc.aggregate(parse_id(&id)?).await?;
    Ok(one(&a, v))
}

pub async fn update(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-aggregates:update",
        &json!({}),
    )?;
    let id = parse_id(&id)?;
    let o = input::envelope(&body, "aggregate", &["name", "availability_zone"], &[])?;
    if o.is_empty() {
        return Err(input::invalid(
            "aggregate",
            &json!({}),
            "{} is not valid under any of the given schemas",
        ));
    }
    let name = match o.get("name") {
        None => None,
        Some(n) => Some(input::string("name", n, 1, 255)?.trim().to_string()),
    };
    let az = o.get("availability_zone").map(check_az).transpose()?;
    let a = svc
        .update_aggregate(
            id,
            &AggregateUpdate {
                name,
                availability_zone: az,
            },
        )
        .await?;
    Ok(one(&a, v))
}

pub async fn remove(state: State, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-aggregates:delete",
        &json!({}),
    )?;
    let id = parse_id(&id)?;
    svc.delete_aggregate(id).await?;
    Ok(http::StatusCode::OK.into_response())
}

pub async fn action(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response> {
    let svc = &state.0;
    let name = body
        .as_object()
        .and_then(|o| {
            ["add_host", "remove_host", "set_metadata"]
                .into_iter()
                .find(|k| o.contains_key(*k))
        })
        .ok_or_else(|| {
            ComputeError::BadRequest("There is no such action in the request body.".into())
        })?;
    auth.enforce(
        &svc.policy,
        &format!("os_compute_api:os-aggregates:{name}"),
        &json!({}),
    )?;
    let id = parse_id(&id)?;
    let a = match name {
        "add_host" => {
            let o = input::envelope(&body, name, &["host"], &["host"])?;
            let host = input::string("host", &o["host"], 1, 255)?;
            svc.aggregate_add_host(id, host).await?
        }
        "remove_host" => {
            let o = input::envelope(&body, name, &["host"], &["host"])?;
            let host = input::string("host", &o["host"], 1, 255)?;
            svc.aggregate_remove_host(id, host).await?
        }
        _ => {
            let o = input::envelope(&body, name, &["metadata"], &["metadata"])?;
            let meta = input::metadata("metadata", &o["metadata"], true)?;
            svc.set_aggregate_metadata(id, &meta).await?
        }
    };
    Ok(one(&a, v))
}
