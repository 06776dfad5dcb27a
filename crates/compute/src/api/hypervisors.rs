//! `os-hypervisors`: compute nodes, their resources and use, their servers, and the totals.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Value};

use super::services::is_up;
use super::State;
use crate::app::hypervisors::Hypervisor;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-hypervisors", get(list_hypervisors))
        .route("/os-hypervisors/detail", get(detail_hypervisors))
        .route("/os-hypervisors/statistics", get(statistics))
        .route("/os-hypervisors/{id}", get(show_hypervisor))
        .route("/os-hypervisors/{id}/uptime", get(hypervisor_uptime))
        .route("/os-hypervisors/{id}/search", get(search_hypervisors))
        .route("/os-hypervisors/{id}/servers", get(hypervisor_servers))
}

fn hypervisor_view(svc: &ComputeService, h: &Hypervisor, v: Microversion, detailed: bool) -> Value {
    let (n, s, u) = (&h.node, h.service.as_ref(), &h.usage);
    let mut out = json!({
        "id": if v.at_least(2, 53) { json!(n.uuid) } else { json!(n.id) },
        "hypervisor_hostname": n.hypervisor_hostname,
        "state": if s.is_some_and(|s| is_up(svc, s)) { "up" } else { "down" },
        "status": if s.is_some_and(|s| s.disabled) { "disabled" } else { "enabled" },
    });
    if detailed {
        out["host_ip"] = json!(n.host_ip);
        out["hypervisor_type"] = json!(n.hypervisor_type);
        out["hypervisor_version"] = json!(n.hypervisor_version);
        out["service"] = json!({"host": n.host, "id": s.map(|s| if v.at_least(2, 53) { json!(s.uuid) } else { json!(s.id) }), "disabled_reason": s.and_then(|s| s.disabled_reason.clone())});
        if v.at_least(2, 88) {
            out["uptime"] = json!(uptime_text(n.uptime_seconds));
        } else {
            let (count, vcpus, ram, disk) = (u.instances, u.vcpus, u.memory_mb, u.local_gb);
            out["vcpus"] = json!(n.vcpus);
            out["memory_mb"] = json!(n.memory_mb);
            out["local_gb"] = json!(n.local_gb);
            out["vcpus_used"] = json!(vcpus);
            out["memory_mb_used"] = json!(ram);
            out["local_gb_used"] = json!(disk);
            out["free_ram_mb"] = json!(n.memory_mb - ram);
            out["free_disk_gb"] = json!(n.local_gb - disk);
            out["current_workload"] = json!(0);
            out["running_vms"] = json!(count);
            out["disk_available_least"] = json!(n.local_gb - disk);
            out["cpu_info"] = serde_json::from_str::<Value>(&n.cpu_info)
                .map(|c| {
                    if v.at_least(2, 28) {
                        c
                    } else {
                        json!(c.to_string())
                    }
                })
                .unwrap_or(json!({}));
        }
    }
    out
}

/// Nova's 2.53 list filters: `hypervisor_hostname_pattern` (a substring; nothing matching is
/// 404) and `with_servers`.
fn list_filters(
    q: &[(String, String)],
    v: Microversion,
) -> Result<(Option<String>, bool), ApiError> {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    if !v.at_least(2, 53) {
        return Ok((None, false));
    }
    let pattern = get("hypervisor_hostname_pattern").map(str::to_string);
    let with_servers = match get("with_servers") {
        None => false,
        Some(b) => parse_bool(b).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid input for query parameters with_servers. Value: {b}. \
                 Expected a boolean."
            ))
        })?,
    };
    if pattern.is_some() && (get("limit").is_some() || get("marker").is_some()) {
        return Err(ApiError::bad_request(
            "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is \
             not supported.",
        ));
    }
    Ok((pattern, with_servers))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Hypervisors whose hostname contains `pattern`; none is 404, as in Nova.
fn matching(list: Vec<Hypervisor>, pattern: &str) -> Result<Vec<Hypervisor>, ApiError> {
    let found: Vec<Hypervisor> = list
        .into_iter()
        .filter(|h| h.node.hypervisor_hostname.contains(pattern))
        .collect();
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "No hypervisor matching '{pattern}' could be found."
        )));
    }
    Ok(found)
}

/// `servers` of each hypervisor's view: (uuid, Nova-style instance name) of the instances on
/// its host. Empty lists are shown only when `always` (2.53's `with_servers`).
async fn add_servers(
    svc: &ComputeService,
    views: &mut [(Value, &str)],
    always: bool,
) -> Result<(), ApiError> {
    let placed = svc.placed_instances().await?;
    for (view, host) in views.iter_mut() {
        let servers: Vec<Value> = placed
            .iter()
            .filter(|(_, h)| h == host)
            .map(|(uuid, _)| json!({"uuid": uuid, "name": format!("instance-{}", &uuid[..8.min(uuid.len())])}))
            .collect();
        if always || !servers.is_empty() {
            view["servers"] = json!(servers);
        }
    }
    Ok(())
}

async fn list_or_detail(
    svc: State,
    auth: Auth,
    v: Microversion,
    q: Vec<(String, String)>,
    detailed: bool,
) -> Result<Response, ApiError> {
    let rule = if detailed {
        "os_compute_api:os-hypervisors:list-detail"
    } else {
        "os_compute_api:os-hypervisors:list"
    };
    auth.enforce(&svc.policy, rule, &json!({}))?;
    let (pattern, with_servers) = list_filters(&q, v)?;
    let mut list = svc.hypervisors().await?;
    if let Some(p) = &pattern {
        list = matching(list, p)?;
    }
    let mut views: Vec<(Value, &str)> = list
        .iter()
        .map(|h| (hypervisor_view(&svc, h, v, detailed), h.node.host.as_str()))
        .collect();
    if with_servers {
        add_servers(&svc, &mut views, true).await?;
    }
    let out: Vec<Value> = views.into_iter().map(|(v, _)| v).collect();
    Ok(axum::Json(json!({"hypervisors": out})).into_response())
}

async fn list_hypervisors(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    list_or_detail(svc, auth, v, q, false).await
}

async fn detail_hypervisors(
    svc: State,
    auth: Auth,
    v: Microversion,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    list_or_detail(svc, auth, v, q, true).await
}

/// The hypervisor `id` names: its uuid from 2.53 (anything else is 400, as in Nova), its
/// integer id or uuid before.
async fn find_hypervisor(
    svc: &ComputeService,
    id: &str,
    v: Microversion,
) -> Result<Hypervisor, ApiError> {
    if v.at_least(2, 53) && uuid::Uuid::parse_str(id).is_err() {
        return Err(ApiError::bad_request(format!("Invalid uuid {id}")));
    }
    svc.hypervisors()
        .await?
        .into_iter()
        .find(|h| h.node.uuid == id || h.node.id.to_string() == id)
        .ok_or_else(|| ApiError::not_found(format!("Hypervisor with ID {id} could not be found.")))
}

/// `GET /os-hypervisors/{id}/uptime` (until 2.88, when `uptime` moved into the show view).
async fn hypervisor_uptime(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 88)?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:uptime",
        &json!({}),
    )?;
    let h = find_hypervisor(&svc, &id, v).await?;
    let mut view = hypervisor_view(&svc, &h, v, false);
    view["uptime"] = json!(uptime_text(h.node.uptime_seconds));
    Ok(axum::Json(json!({"hypervisor": view})).into_response())
}

/// The host's uptime as the `uptime` command prints it (what Nova's libvirt driver returns).
fn uptime_text(seconds: i64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hours, minutes) = (rest / 3600, rest % 3600 / 60);
    match days {
        0 => format!(" up {hours}:{minutes:02}"),
        1 => format!(" up 1 day, {hours}:{minutes:02}"),
        d => format!(" up {d} days, {hours}:{minutes:02}"),
    }
}

/// `GET /os-hypervisors/{pattern}/search` (before 2.53).
async fn search_hypervisors(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(pattern): Path<String>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 53)?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:search",
        &json!({}),
    )?;
    let list = matching(svc.hypervisors().await?, &pattern)?;
    let out: Vec<Value> = list
        .iter()
        .map(|h| hypervisor_view(&svc, h, v, false))
        .collect();
    Ok(axum::Json(json!({"hypervisors": out})).into_response())
}

/// `GET /os-hypervisors/{pattern}/servers` (before 2.53; later `?with_servers=true`).
async fn hypervisor_servers(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(pattern): Path<String>,
) -> Result<Response, ApiError> {
    super::removed_at(v, 53)?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:servers",
        &json!({}),
    )?;
    let list = matching(svc.hypervisors().await?, &pattern)?;
    let mut views: Vec<(Value, &str)> = list
        .iter()
        .map(|h| (hypervisor_view(&svc, h, v, false), h.node.host.as_str()))
        .collect();
    add_servers(&svc, &mut views, false).await?;
    let out: Vec<Value> = views.into_iter().map(|(v, _)| v).collect();
    Ok(axum::Json(json!({"hypervisors": out})).into_response())
}

async fn show_hypervisor(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:show",
        &json!({}),
    )?;
    let (_, with_servers) = list_filters(&q, v)?;
    let h = find_hypervisor(&svc, &id, v).await?;
    let mut views = [(hypervisor_view(&svc, &h, v, true), h.node.host.as_str())];
    if with_servers {
        add_servers(&svc, &mut views, true).await?;
    }
    let [(view, _)] = views;
    Ok(axum::Json(json!({"hypervisor": view})).into_response())
}

async fn statistics(svc: State, auth: Auth) -> Result<Response, ApiError> {
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:statistics",
        &json!({}),
    )?;
    let list = svc.hypervisors().await?;
    let mut t = json!({"count": 0, "vcpus": 0, "memory_mb": 0, "local_gb": 0, "vcpus_used": 0, "memory_mb_used": 0,
        "local_gb_used": 0, "free_ram_mb": 0, "free_disk_gb": 0, "current_workload": 0, "running_vms": 0, "disk_available_least": 0});
    for h in &list {
        let n = &h.node;
        let (count, vcpus, ram, disk) = (
            &h.usage.instances,
            &h.usage.vcpus,
            &h.usage.memory_mb,
            &h.usage.local_gb,
        );
        let add = |t: &mut Value, k: &str, x: i64| t[k] = json!(t[k].as_i64().unwrap_or(0) + x);
        add(&mut t, "count", 1);
        add(&mut t, "vcpus", n.vcpus);
        add(&mut t, "memory_mb", n.memory_mb);
        add(&mut t, "local_gb", n.local_gb);
        add(&mut t, "vcpus_used", *vcpus);
        add(&mut t, "memory_mb_used", *ram);
        add(&mut t, "local_gb_used", *disk);
        add(&mut t, "free_ram_mb", n.memory_mb - ram);
        add(&mut t, "free_disk_gb", n.local_gb - disk);
        add(&mut t, "disk_available_least", n.local_gb - disk);
        add(&mut t, "running_vms", *count);
    }
    Ok(axum::Json(json!({"hypervisor_statistics": t})).into_response())
}
