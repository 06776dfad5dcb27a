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
use crate::db;
use crate::db::aggregates::AZ_KEY;
use crate::error::{ComputeError, Result};
use crate::model::Aggregate;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-aggregates", get(index).post(create))
        .route("/os-aggregates/{id}", get(show).put(update).delete(remove))
        .route("/os-aggregates/{id}/action", post(action))
}

const COMPUTE_BINARY: &str = "nova-compute";

fn not_found(id: i64) -> ComputeError {
    ComputeError::NotFound(format!("Aggregate {id} could not be found."))
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
    let edge = |c: Option<char>| c.is_some_and(char::is_whitespace);
    if s.contains(':')
        || s.chars().any(char::is_control)
        || edge(s.chars().next())
        || edge(s.chars().last())
    {
        return Err(ComputeError::BadRequest(
            "An invalid 'name' value was provided. The name must be: printable characters \
             except :.Can not start or end with whitespace."
                .into(),
        ));
    }
    Ok(Some(s.to_string()))
}

/// Nova refuses to put a host in two different zones: with the aggregate's zone set to
/// `zone`, every host of `hosts` must have no other zone through another aggregate.
fn check_zone_conflict(
    all: &[Aggregate],
    agg_id: i64,
    hosts: &[String],
    zone: Option<&str>,
) -> std::result::Result<(), String> {
    let Some(zone) = zone else { return Ok(()) };
    let mut others: Vec<String> = all
        .iter()
        .filter(|a| a.id != agg_id && a.hosts.iter().any(|h| hosts.contains(h)))
        .filter_map(|a| a.availability_zone.clone())
        .filter(|z| z != zone)
        .collect();
    others.sort();
    others.dedup();
    if others.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "One or more hosts already in availability zone(s) {}",
            input::repr(&json!(others))
        ))
    }
}

async fn load(svc: &ComputeService, id: i64) -> Result<Aggregate> {
    let mut conn = svc.db.pool.acquire().await?;
    db::aggregates::get(&mut conn, id)
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn index(state: State, auth: Auth, v: Microversion) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-aggregates:index",
        &json!({}),
    )?;
    let mut conn = svc.db.pool.acquire().await?;
    let all = db::aggregates::all(&mut conn).await?;
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
    let mut tx = svc.db.begin_write().await?;
    if db::aggregates::name_taken(&mut tx, &name, None).await? {
        return Err(ComputeError::Conflict(format!(
            "Aggregate {name} already exists."
        )));
    }
    let a = db::aggregates::insert(&mut tx, &name, az.as_deref()).await?;
    tx.commit().await?;
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
    let a = load(svc, parse_id(&id)?).await?;
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
    let mut tx = svc.db.begin_write().await?;
    let all = db::aggregates::all(&mut tx).await?;
    let agg = all
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| not_found(id))?;
    if let Some(name) = &name {
        if db::aggregates::name_taken(&mut tx, name, Some(id)).await? {
            return Err(ComputeError::Conflict(format!(
                "Aggregate {name} already exists."
            )));
        }
        db::aggregates::rename(&mut tx, id, name).await?;
    }
    if let Some(az) = &az {
        check_zone_conflict(&all, id, &agg.hosts, az.as_deref()).map_err(|reason| {
            ComputeError::BadRequest(format!("Cannot update aggregate {id}. Reason: {reason}."))
        })?;
        db::aggregates::set_metadata(&mut tx, id, AZ_KEY, az.as_deref()).await?;
    }
    let a = db::aggregates::get(&mut tx, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    tx.commit().await?;
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
    let mut tx = svc.db.begin_write().await?;
    let a = db::aggregates::get(&mut tx, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !a.hosts.is_empty() {
        return Err(ComputeError::BadRequest(format!(
            "Cannot remove host from aggregate {id}. Reason: Host aggregate is not empty."
        )));
    }
    db::aggregates::delete(&mut tx, id).await?;
    tx.commit().await?;
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
            add_host(svc, id, host).await?
        }
        "remove_host" => {
            let o = input::envelope(&body, name, &["host"], &["host"])?;
            let host = input::string("host", &o["host"], 1, 255)?;
            remove_host(svc, id, host).await?
        }
        _ => {
            let o = input::envelope(&body, name, &["metadata"], &["metadata"])?;
            let meta = input::metadata("metadata", &o["metadata"], true)?;
            set_metadata(svc, id, &meta).await?
        }
    };
    Ok(one(&a, v))
}

async fn add_host(svc: &ComputeService, id: i64, host: &str) -> Result<Aggregate> {
    let mut tx = svc.db.begin_write().await?;
    if db::hosts::service_by_host(&mut tx, host, COMPUTE_BINARY)
        .await?
        .is_none()
    {
        return Err(ComputeError::NotFound(format!(
            "Compute host {host} could not be found."
        )));
    }
    let all = db::aggregates::all(&mut tx).await?;
    let agg = all
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| not_found(id))?;
    if agg.hosts.iter().any(|h| h == host) {
        return Err(ComputeError::Conflict(format!(
            "Aggregate {id} already has host {host}."
        )));
    }
    check_zone_conflict(
        &all,
        id,
        &[host.to_string()],
        agg.availability_zone.as_deref(),
    )
    .map_err(|reason| {
        ComputeError::BadRequest(format!(
            "Cannot add host to aggregate {id}. Reason: {reason}."
        ))
    })?;
    db::aggregates::add_host(&mut tx, id, host).await?;
    tx.commit().await?;
    sync_placement(svc, host).await?;
    load(svc, id).await
}

async fn remove_host(svc: &ComputeService, id: i64, host: &str) -> Result<Aggregate> {
    let gone = || ComputeError::NotFound(format!("Cannot remove host {host} in aggregate {id}"));
    let mut tx = svc.db.begin_write().await?;
    if db::aggregates::get(&mut tx, id).await?.is_none() {
        return Err(not_found(id));
    }
    if db::hosts::service_by_host(&mut tx, host, COMPUTE_BINARY)
        .await?
        .is_none()
    {
        return Err(gone());
    }
    if !db::aggregates::remove_host(&mut tx, id, host).await? {
        return Err(gone());
    }
    tx.commit().await?;
    sync_placement(svc, host).await?;
    load(svc, id).await
}

async fn set_metadata(
    svc: &ComputeService,
    id: i64,
    meta: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<Aggregate> {
    let mut tx = svc.db.begin_write().await?;
    let all = db::aggregates::all(&mut tx).await?;
    let agg = all
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| not_found(id))?;
    if let Some(az) = meta.get(AZ_KEY) {
        if let Some(z) = az {
            check_az(&json!(z))?;
        }
        check_zone_conflict(&all, id, &agg.hosts, az.as_deref()).map_err(|reason| {
            ComputeError::BadRequest(format!(
                "Cannot update metadata of aggregate {id}. Reason: {reason}."
            ))
        })?;
    }
    for (k, v) in meta {
        db::aggregates::set_metadata(&mut tx, id, k, v.as_deref()).await?;
    }
    tx.commit().await?;
    load(svc, id).await
}

/// Puts the host's resource provider in exactly the placement aggregates of the Nova
/// aggregates the host belongs to (Nova does this on add/remove host). A host without a
/// compute node yet has no provider; its agent syncs aggregates when it registers.
async fn sync_placement(svc: &ComputeService, host: &str) -> Result<()> {
    let mut conn = svc.db.pool.acquire().await?;
    let Some(node) = db::hosts::node_by_host(&mut conn, host).await? else {
        return Ok(());
    };
    let uuids: Vec<String> = db::aggregates::all(&mut conn)
        .await?
        .into_iter()
        .filter(|a| a.hosts.iter().any(|h| h == host))
        .map(|a| a.uuid)
        .collect();
    drop(conn);
    svc.placement
        .set_provider_aggregates(&node.uuid, &uuids)
        .await?;
    Ok(())
}
