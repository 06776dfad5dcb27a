//! `os-services`: compute services and their status. Compute nodes (`os-hypervisors`) are in
//! `hypervisors.rs`.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Value};

use super::servers::iso;
use super::State;
use crate::app::services::StatusChange;
use crate::model::Service;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-services", get(list_services))
        .route(
            "/os-services/{id}",
            axum::routing::put(update_service).delete(delete_service),
        )
}

/// Whether the service is up now (Nova's `service_is_up`).
pub(super) fn is_up(svc: &ComputeService, s: &Service) -> bool {
    crate::model::service_is_up(
        s.forced_down,
        s.last_seen_up,
        ferrostack_store::now_micros(),
        svc.config.service_down_time,
    )
}

/// A service as Nova shows it; `zone` is its host's availability zone.
fn service_view(svc: &ComputeService, s: &Service, zone: &str, v: Microversion) -> Value {
    let mut out = json!({
        "id": if v.at_least(2, 53) { json!(s.uuid) } else { json!(s.id) },
        "binary": s.binary, "host": s.host, "zone": zone,
        "status": if s.disabled { "disabled" } else { "enabled" },
        "state": if is_up(svc, s) { "up" } else { "down" },
        "updated_at": s.last_seen_up.or(s.updated_at).map(iso),
        "disabled_reason": s.disabled_reason,
    });
    if v.at_least(2, 11) {
        out["forced_down"] = json!(s.forced_down);
    }
    out
}

async fn list_services(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    auth.enforce(&svc.policy, "os_compute_api:os-services:list", &json!({}))?;
    let list = svc.services_with_zones().await?;
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    let out: Vec<Value> = list
        .iter()
        .filter(|(s, _)| {
            get("host").is_none_or(|h| s.host == h) && get("binary").is_none_or(|b| s.binary == b)
        })
        .map(|(s, zone)| service_view(&svc, s, zone, v))
        .collect();
    Ok(axum::Json(json!({"services": out})).into_response())
}

async fn update_service(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    auth.enforce(&svc.policy, "os_compute_api:os-services:update", &json!({}))?;
    if !v.at_least(2, 53) {
        return legacy_update(&svc, v, &id, &body).await;
    }
    let (s, _) = svc
        .service_by_uuid(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Service {id} could not be found.")))?;
    let status = body.get("status").and_then(|x| x.as_str());
    let reason = body.get("disabled_reason").and_then(|x| x.as_str());
    let forced = body.get("forced_down").and_then(|x| x.as_bool());
    if status.is_none() && forced.is_none() {
        return Err(ApiError::bad_request(
            "No updates were requested. Fields 'status' or 'forced_down' should be specified.",
        ));
    }
    let disabled = match status {
        Some("enabled") => Some((false, None)),
        Some("disabled") => Some((true, reason)),
        Some(other) => return Err(ApiError::bad_request(format!("Invalid input for field/attribute status. Value: {other}. '{other}' is not one of ['enabled', 'disabled']"))),
        None => None,
    };
    if reason.is_some() && status != Some("disabled") {
        return Err(ApiError::bad_request(
            "Specifying 'disabled_reason' with status 'enabled' is invalid.",
        ));
    }
    svc.set_service_status(
        s.id,
        StatusChange {
            disabled,
            forced_down: forced,
        },
    )
    .await?;
    let (s, zone) = svc
        .service_by_uuid(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("gone"))?;
    Ok(axum::Json(json!({"service": service_view(&svc, &s, &zone, v)})).into_response())
}

/// Before 2.53 a service is named by host and binary, and the path says what to do:
/// `enable`, `disable`, `disable-log-reason` and (2.11) `force-down`.
async fn legacy_update(
    svc: &ComputeService,
    v: Microversion,
    action: &str,
    body: &Value,
) -> Result<Response, ApiError> {
    let known = matches!(action, "enable" | "disable" | "disable-log-reason")
        || (action == "force-down" && v.at_least(2, 11));
    if !known {
        return Err(ApiError::not_found("Unknown action"));
    }
    let o = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Invalid input for field/attribute body."))?;
    let mut allowed = vec!["host", "binary", "disabled_reason"];
    if v.at_least(2, 11) {
        allowed.push("forced_down");
    }
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match o.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if (1..=255).contains(&s.chars().count()) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute {k}. Value: {other}."
            ))),
        }
    };
    let required = |k: &str| -> Result<String, ApiError> {
        text(k)?.ok_or_else(|| ApiError::bad_request(format!("'{k}' is a required property")))
    };
    let (host, binary) = (required("host")?, required("binary")?);
    let reason = text("disabled_reason")?;
    let service = svc.service_by_host(&host, &binary).await?.ok_or_else(|| {
        ApiError::not_found(format!("Could not find binary {binary} on host {host}."))
    })?;
    let (disabled, forced, out) = match action {
        "enable" => (
            Some((false, None)),
            None,
            json!({"host": host, "binary": binary, "status": "enabled"}),
        ),
        "disable" => (
            Some((true, None)),
            None,
            json!({"host": host, "binary": binary, "status": "disabled"}),
        ),
        "disable-log-reason" => {
            let reason =
                reason.ok_or_else(|| ApiError::bad_request("Missing disabled reason field"))?;
            let out = json!({"host": host, "binary": binary, "status": "disabled",
                             "disabled_reason": reason});
            (Some((true, Some(reason))), None, out)
        }
        _ => {
            let forced = match o.get("forced_down") {
                Some(f) => super::input::boolean("forced_down", f)?,
                None => return Err(ApiError::bad_request("Missing forced_down field")),
            };
            let out = json!({"host": host, "binary": binary, "forced_down": forced});
            (None, Some(forced), out)
        }
    };
    let change = StatusChange {
        disabled: disabled.as_ref().map(|(d, r)| (*d, r.as_deref())),
        forced_down: forced,
    };
    svc.set_service_status(service.id, change).await?;
    Ok(axum::Json(json!({ "service": out })).into_response())
}

async fn delete_service(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.enforce(&svc.policy, "os_compute_api:os-services:delete", &json!({}))?;
    let s = svc
        .service_by_id_or_uuid(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Service {id} could not be found.")))?;
    svc.delete_service(&s).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
