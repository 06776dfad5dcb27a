//! `POST /os-server-external-events`: how Neutron, Cinder and Ironic tell Nova that something
//! happened to a server (a port plugged, a volume extended, a power change). Each event is
//! answered per server as Nova does: 200 for a server on a host, 404 for an unknown server,
//! 422 for a server on no host; the whole request is 404 when no event was accepted and 207
//! when only some were.
//!
//! What an event does (nothing yet) is the app layer's (`app/server_external_events.rs`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Value};

use super::State;
use crate::app::server_external_events::{Delivery, ExternalEvent};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new().route("/os-server-external-events", post(create))
}

/// Event names, with the microversion that introduced each.
const NAMES: &[(&str, Microversion)] = &[
    ("network-changed", Microversion(2, 1)),
    ("network-vif-plugged", Microversion(2, 1)),
    ("network-vif-unplugged", Microversion(2, 1)),
    ("network-vif-deleted", Microversion(2, 1)),
    ("volume-extended", Microversion(2, 51)),
    ("power-update", Microversion(2, 76)),
    ("accelerator-request-bound", Microversion(2, 82)),
    ("volume-reimaged", Microversion(2, 93)),
];

const STATUSES: &[&str] = &["failed", "completed", "in-progress"];

fn bad(msg: String) -> ApiError {
    ApiError::bad_request(format!("Invalid input for field/attribute events. {msg}"))
}

/// One validated event.
fn parse_event(e: &Value, v: Microversion) -> Result<ExternalEvent, ApiError> {
    let o = e
        .as_object()
        .ok_or_else(|| bad(format!("Value: {e}. {e} is not of type 'object'")))?;
    if let Some(k) = o
        .keys()
        .find(|k| !["name", "server_uuid", "status", "tag"].contains(&k.as_str()))
    {
        return Err(bad(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("'name' is a required property".into()))?;
    if !NAMES.iter().any(|(n, since)| *n == name && v >= *since) {
        return Err(bad(format!(
            "Value: {name}. '{name}' is not one of the known event names"
        )));
    }
    let server = o
        .get("server_uuid")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("'server_uuid' is a required property".into()))?;
    if uuid::Uuid::parse_str(server).is_err() {
        return Err(bad(format!("Value: {server}. '{server}' is not a 'uuid'")));
    }
    let status = match o.get("status") {
        None => "completed",
        Some(s) => s
            .as_str()
            .filter(|s| STATUSES.contains(s))
            .ok_or_else(|| bad(format!("Value: {s}. {s} is not one of {STATUSES:?}")))?,
    };
    let tag = match o.get("tag") {
        None => None,
        Some(t) => Some(
            t.as_str()
                .filter(|t| t.chars().count() <= 255)
                .ok_or_else(|| {
                    bad(format!(
                        "Value: {t}. 'tag' must be a string of at most 255 characters"
                    ))
                })?
                .to_string(),
        ),
    };
    Ok(ExternalEvent {
        name: name.into(),
        server_uuid: server.into(),
        status: status.into(),
        tag,
    })
}

async fn create(
    svc: State,
    auth: Auth,
    v: Microversion,
    ferrostack_api::Json(body): ferrostack_api::Json<Value>,
) -> Result<Response, ApiError> {
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-external-events:create",
        &json!({}),
    )?;
    let list = body
        .get("events")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("'events' must be a non-empty list".into()))?;
    let events = list
        .iter()
        .map(|e| parse_event(e, v))
        .collect::<Result<Vec<_>, _>>()?;
    let deliveries = svc.deliver_external_events(&events).await?;
    let mut answers = Vec::with_capacity(events.len());
    let mut accepted = 0;
    for (e, delivery) in events.into_iter().zip(deliveries) {
        let (code, status) = match delivery {
            Delivery::ServerNotFound => (404, "failed".to_string()),
            Delivery::ServerOnNoHost => (422, "failed".to_string()),
            Delivery::Accepted => {
                accepted += 1;
                (200, e.status)
            }
        };
        let mut a =
            json!({"name": e.name, "server_uuid": e.server_uuid, "status": status, "code": code});
        if let Some(t) = e.tag {
            a["tag"] = json!(t);
        }
        answers.push(a);
    }
    if accepted == 0 {
        return Err(ApiError::not_found("No instances found for any event"));
    }
    let code = if accepted == answers.len() {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((code, axum::Json(json!({"events": answers}))).into_response())
}
