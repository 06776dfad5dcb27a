//! `os-hosts` (deprecated in Nova at 2.43; 404 from then on): services by host and zone, a
//! host's resources per project, enabling/disabling its compute service. Host power actions
//! and maintenance mode answer 501, as Nova does for drivers without them: the controller does
//! not power hosts.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth, Json};
use serde_json::{json, Value};

use super::State;
use crate::app::services::{StatusChange, COMPUTE_BINARY};
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-hosts", get(list))
        .route("/os-hosts/{host}", get(show).put(update))
        .route("/os-hosts/{host}/{action}", get(power_action))
}

/// Nova removed the API at 2.43.
fn check_version(v: Microversion) -> Result<(), ApiError> {
    super::removed_at(v, 43)
}

fn not_found(host: &str) -> ApiError {
    ApiError::not_found(format!("Compute host {host} could not be found."))
}

/// The topic Nova shows for a service binary (`nova-compute` -> `compute`).
fn topic(binary: &str) -> &str {
    binary.strip_prefix("nova-").unwrap_or(binary)
}

/// Enabled services with their zone; `?zone=` (non-empty) keeps one zone.
async fn list(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    check_version(v)?;
    auth.enforce(&svc.policy, "os_compute_api:os-hosts:list", &json!({}))?;
    let zone = q
        .iter()
        .rev()
        .find(|(k, _)| k == "zone")
        .map(|(_, z)| z.as_str())
        .filter(|z| !z.is_empty());
    let services = svc.services_with_zones().await?;
    let out: Vec<Value> = services
        .iter()
        .filter(|(s, _)| !s.disabled)
        .filter(|(_, z)| zone.is_none_or(|want| want == z))
        .map(|(s, z)| json!({"host_name": s.host, "service": topic(&s.binary), "zone": z}))
        .collect();
    Ok(axum::Json(json!({"hosts": out})).into_response())
}

/// The host's totals, what is in use now, the sum over its instances, then per project.
async fn show(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(host): Path<String>,
) -> Result<Response, ApiError> {
    check_version(v)?;
    auth.enforce(&svc.policy, "os_compute_api:os-hosts:show", &json!({}))?;
    let report = svc.host_report(&host).await?;
    let (node, now) = (&report.node, &report.used_now);
    let resource = |project: &str, cpu: i64, memory_mb: i64, disk_gb: i64| {
        json!({"resource": {"host": host, "project": project, "cpu": cpu,
                            "memory_mb": memory_mb, "disk_gb": disk_gb}})
    };
    let (cpu, ram, disk) = report.per_project.iter().fold((0, 0, 0), |(c, m, d), p| {
        (c + p.vcpus, m + p.memory_mb, d + p.disk_gb)
    });
    let mut out = vec![
        resource("(total)", node.vcpus, node.memory_mb, node.local_gb),
        resource("(used_now)", now.vcpus, now.memory_mb, now.local_gb),
        resource("(used_max)", cpu, ram, disk),
    ];
    out.extend(
        report
            .per_project
            .iter()
            .map(|p| resource(&p.project_id, p.vcpus, p.memory_mb, p.disk_gb)),
    );
    Ok(axum::Json(json!({"host": out})).into_response())
}

/// `enable`/`disable` in any case, as Nova's schema allows.
fn read_enabled(
    body: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("enable") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("disable") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {other}. {other} is not one of \
             ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE']"
        ))),
    }
}

/// `status` enables or disables the host's compute service; `maintenance_mode` is not
/// supported (501).
async fn update(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(host): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    check_version(v)?;
    auth.enforce(&svc.policy, "os_compute_api:os-hosts:update", &json!({}))?;
    let Some(o) = body.as_object() else {
        return Err(ApiError::bad_request(
            "Invalid input for field/attribute body. The body must be an object.",
        ));
    };
    if let Some(k) = o
        .keys()
        .find(|k| !matches!(k.as_str(), "status" | "maintenance_mode"))
    {
        return Err(ApiError::bad_request(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let status = read_enabled(o, "status")?;
    let maintenance = read_enabled(o, "maintenance_mode")?;
    if status.is_none() && maintenance.is_none() {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute body. Value: {body}. {body} is not valid under \
             any of the given schemas"
        )));
    }
    let service = svc
        .service_by_host(&host, COMPUTE_BINARY)
        .await?
        .ok_or_else(|| not_found(&host))?;
    if maintenance.is_some() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "Virt driver does not implement host maintenance mode.",
        ));
    }
    let mut out = json!({"host": host});
    if let Some(enabled) = status {
        let change = StatusChange {
            disabled: Some((!enabled, None)),
            forced_down: None,
        };
        svc.set_service_status(service.id, change).await?;
        out["status"] = json!(if enabled { "enabled" } else { "disabled" });
    }
    Ok(axum::Json(out).into_response())
}

/// `startup`, `shutdown`, `reboot`: 404 for an unknown host, 501 otherwise (no driver powers
/// its host from the API).
async fn power_action(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path((host, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_version(v)?;
    let rule = match action.as_str() {
        "startup" => "os_compute_api:os-hosts:start",
        "shutdown" => "os_compute_api:os-hosts:shutdown",
        "reboot" => "os_compute_api:os-hosts:reboot",
        _ => return Err(ApiError::not_found("The resource could not be found.")),
    };
    auth.enforce(&svc.policy, rule, &json!({}))?;
    svc.compute_node(&host).await?;
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "The requested functionality is not supported.",
    ))
}
