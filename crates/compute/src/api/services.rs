//! `os-services` (compute services and their status) and `os-hypervisors` (compute nodes).

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
use crate::db::{hosts, instances};
use crate::error::ComputeError;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-services", get(list_services))
        .route(
            "/os-services/{id}",
            axum::routing::put(update_service).delete(delete_service),
        )
        .route("/os-hypervisors", get(list_hypervisors))
        .route("/os-hypervisors/detail", get(detail_hypervisors))
        .route("/os-hypervisors/statistics", get(statistics))
        .route("/os-hypervisors/{id}", get(show_hypervisor))
        .route("/os-hypervisors/{id}/uptime", get(hypervisor_uptime))
        .route("/os-hypervisors/{id}/search", get(search_hypervisors))
        .route("/os-hypervisors/{id}/servers", get(hypervisor_servers))
}

fn is_up(svc: &ComputeService, s: &hosts::Service) -> bool {
    crate::model::service_is_up(
        s.forced_down,
        s.last_seen_up,
        ferrostack_store::now_micros(),
        svc.config.service_down_time,
    )
}

/// A service as Nova shows it; `zone` is its host's availability zone.
fn service_view(svc: &ComputeService, s: &hosts::Service, zone: &str, v: Microversion) -> Value {
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
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let list = hosts::services(&mut conn)
        .await
        .map_err(ComputeError::from)?;
    let zones = svc.host_zones(&mut conn).await?;
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
    let out: Vec<Value> = list
        .iter()
        .filter(|s| {
            get("host").is_none_or(|h| s.host == h) && get("binary").is_none_or(|b| s.binary == b)
        })
        .map(|s| {
            let zone = zones
                .get(&s.host)
                .unwrap_or(&svc.config.default_availability_zone);
            service_view(&svc, s, zone, v)
        })
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
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let s = hosts::service_by_uuid(&mut conn, &id)
        .await
        .map_err(ComputeError::from)?
        .ok_or_else(|| ApiError::not_found(format!("Service {id} could not be found.")))?;
    drop(conn);
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
    write_status(&svc, s.id, disabled, forced).await?;
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let s = hosts::service_by_uuid(&mut conn, &id)
        .await
        .map_err(ComputeError::from)?
        .ok_or_else(|| ApiError::not_found("gone"))?;
    let zone = svc.host_zone(&mut conn, &s.host).await?;
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
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let service = hosts::service_by_host(&mut conn, &host, &binary)
        .await
        .map_err(ComputeError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!("Could not find binary {binary} on host {host}."))
        })?;
    drop(conn);
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
    let reason_ref = disabled.as_ref().map(|(d, r)| (*d, r.as_deref()));
    write_status(svc, service.id, reason_ref, forced).await?;
    Ok(axum::Json(json!({ "service": out })).into_response())
}

/// Writes a service's disabled state (with its reason) and forced-down flag, each when given;
/// the scheduler's cached host states are stale after it.
async fn write_status(
    svc: &ComputeService,
    id: i64,
    disabled: Option<(bool, Option<&str>)>,
    forced: Option<bool>,
) -> Result<(), ApiError> {
    let mut tx = svc.db.begin_write().await.map_err(ComputeError::from)?;
    hosts::set_service_status(
        &mut tx,
        id,
        disabled,
        forced,
        ferrostack_store::now_micros(),
    )
    .await
    .map_err(ComputeError::from)?;
    tx.commit().await.map_err(ComputeError::from)?;
    svc.hosts.invalidate().await;
    Ok(())
}

async fn delete_service(
    svc: State,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.enforce(&svc.policy, "os_compute_api:os-services:delete", &json!({}))?;
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let s = match id.parse::<i64>() {
        Ok(n) => hosts::service_by_id(&mut conn, n).await,
        Err(_) => hosts::service_by_uuid(&mut conn, &id).await,
    }
    .map_err(ComputeError::from)?
    .ok_or_else(|| ApiError::not_found(format!("Service {id} could not be found.")))?;
    let busy = instances::host_map(&mut conn)
        .await
        .map_err(ComputeError::from)?
        .iter()
        .any(|(_, h)| *h == s.host);
    if busy {
        return Err(ApiError::conflict("Unable to delete compute service that is hosting instances. Migrate or delete the instances first.".to_string()));
    }
    let node = hosts::node_by_host(&mut conn, &s.host)
        .await
        .map_err(ComputeError::from)?;
    drop(conn);
    let mut tx = svc.db.begin_write().await.map_err(ComputeError::from)?;
    hosts::delete_service(&mut tx, s.id, &s.host)
        .await
        .map_err(ComputeError::from)?;
    tx.commit().await.map_err(ComputeError::from)?;
    if let Some(n) = node {
        svc.placement
            .delete_provider(&n.uuid)
            .await
            .map_err(ComputeError::from)?;
    }
    svc.hosts.invalidate().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn hypervisor_list(svc: &ComputeService) -> Result<Vec<HypervisorRow>, ApiError> {
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let nodes = hosts::nodes(&mut conn).await.map_err(ComputeError::from)?;
    let services = hosts::services(&mut conn)
        .await
        .map_err(ComputeError::from)?;
    let usage = instances::usage_by_host(&mut conn)
        .await
        .map_err(ComputeError::from)?;
    Ok(nodes
        .into_iter()
        .map(|n| {
            let s = services
                .iter()
                .find(|s| s.host == n.host && s.binary == "nova-compute")
                .cloned();
            let u = usage.get(&n.host).copied().unwrap_or((0, 0, 0, 0));
            (n, s, u)
        })
        .collect())
}

fn hypervisor_view(
    svc: &ComputeService,
    n: &hosts::Node,
    s: Option<&hosts::Service>,
    u: (i64, i64, i64, i64),
    v: Microversion,
    detailed: bool,
) -> Value {
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
            let (count, vcpus, ram, disk) = u;
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

/// A hypervisor row of [`hypervisor_list`].
type HypervisorRow = (hosts::Node, Option<hosts::Service>, (i64, i64, i64, i64));

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
fn matching(list: Vec<HypervisorRow>, pattern: &str) -> Result<Vec<HypervisorRow>, ApiError> {
    let found: Vec<HypervisorRow> = list
        .into_iter()
        .filter(|(n, _, _)| n.hypervisor_hostname.contains(pattern))
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
    let mut conn = svc.db.pool.acquire().await.map_err(ComputeError::from)?;
    let placed = instances::host_map(&mut conn)
        .await
        .map_err(ComputeError::from)?;
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
    let mut list = hypervisor_list(&svc).await?;
    if let Some(p) = &pattern {
        list = matching(list, p)?;
    }
    let mut views: Vec<(Value, &str)> = list
        .iter()
        .map(|(n, s, u)| {
            (
                hypervisor_view(&svc, n, s.as_ref(), *u, v, detailed),
                n.host.as_str(),
            )
        })
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
) -> Result<HypervisorRow, ApiError> {
    if v.at_least(2, 53) && uuid::Uuid::parse_str(id).is_err() {
        return Err(ApiError::bad_request(format!("Invalid uuid {id}")));
    }
    hypervisor_list(svc)
        .await?
        .into_iter()
        .find(|(n, _, _)| n.uuid == id || n.id.to_string() == id)
        .ok_or_else(|| ApiError::not_found(format!("Hypervisor with ID {id} could not be found.")))
}

/// `GET /os-hypervisors/{id}/uptime` (until 2.88, when `uptime` moved into the show view).
async fn hypervisor_uptime(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if v.at_least(2, 88) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:uptime",
        &json!({}),
    )?;
    let (n, s, u) = find_hypervisor(&svc, &id, v).await?;
    let mut view = hypervisor_view(&svc, &n, s.as_ref(), u, v, false);
    view["uptime"] = json!(uptime_text(n.uptime_seconds));
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
    if v.at_least(2, 53) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:search",
        &json!({}),
    )?;
    let list = matching(hypervisor_list(&svc).await?, &pattern)?;
    let out: Vec<Value> = list
        .iter()
        .map(|(n, s, u)| hypervisor_view(&svc, n, s.as_ref(), *u, v, false))
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
    if v.at_least(2, 53) {
        return Err(ApiError::not_found("The resource could not be found."));
    }
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-hypervisors:servers",
        &json!({}),
    )?;
    let list = matching(hypervisor_list(&svc).await?, &pattern)?;
    let mut views: Vec<(Value, &str)> = list
        .iter()
        .map(|(n, s, u)| {
            (
                hypervisor_view(&svc, n, s.as_ref(), *u, v, false),
                n.host.as_str(),
            )
        })
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
    let (n, s, u) = find_hypervisor(&svc, &id, v).await?;
    let mut views = [(
        hypervisor_view(&svc, &n, s.as_ref(), u, v, true),
        n.host.as_str(),
    )];
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
    let list = hypervisor_list(&svc).await?;
    let mut t = json!({"count": 0, "vcpus": 0, "memory_mb": 0, "local_gb": 0, "vcpus_used": 0, "memory_mb_used": 0,
        "local_gb_used": 0, "free_ram_mb": 0, "free_disk_gb": 0, "current_workload": 0, "running_vms": 0, "disk_available_least": 0});
    for (n, _, (count, vcpus, ram, disk)) in &list {
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
