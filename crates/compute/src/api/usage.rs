//! `/os-simple-tenant-usage`: per-project usage (server hours, and vCPU, RAM and disk hours)
//! over a period; index for admins (all projects), show for one project.

use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use serde_json::{json, Map, Value};

use super::input;
use super::State;
use crate::app::usage::hours_in;
use crate::error::{ComputeError, Result};
use crate::model::UsageInstance;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-simple-tenant-usage", get(index))
        .route("/os-simple-tenant-usage/{tenant_id}", get(show))
}

/// Nova's accepted datetime formats (naive, UTC); a missing value is now.
fn parse_time(v: Option<&str>, now: i64) -> Result<i64> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(now);
    };
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err(ComputeError::BadRequest(
        "Invalid datetime string: Datetime is in invalid format".into(),
    ))
}

struct Period {
    start: i64,
    stop: i64,
    detailed: bool,
}

fn period(pairs: &[(String, String)]) -> Result<Period> {
    let now = ferrostack_store::now_micros();
    let start = parse_time(input::query_get(pairs, "start"), now)?;
    let stop = parse_time(input::query_get(pairs, "end"), now)?;
    if start >= stop {
        return Err(ComputeError::BadRequest(
            "Invalid start time. The start time cannot occur after the end time.".into(),
        ));
    }
    Ok(Period {
        start,
        // Nothing is used in the future.
        stop: stop.min(now),
        detailed: input::query_get(pairs, "detailed") == Some("1"),
    })
}

/// Hours of `i` inside the period.
fn hours(i: &UsageInstance, p: &Period) -> f64 {
    hours_in(i, p.start, p.stop)
}

fn server_usage(i: &UsageInstance, p: &Period, now: i64) -> Value {
    let launched = i.launched_at.unwrap_or_default();
    let (state, uptime_end) = match i.terminated_at {
        Some(t) => ("terminated".to_string(), t),
        None => (i.vm_state.clone(), now),
    };
    json!({
        "hours": hours(i, p),
        "flavor": i.flavor_name,
        "instance_id": i.uuid,
        "name": i.name,
        "tenant_id": i.project_id,
        "memory_mb": i.memory_mb,
        "local_gb": i.local_gb,
        "vcpus": i.vcpus,
        "started_at": input::nova_time(launched),
        "ended_at": i.terminated_at.map(input::nova_time),
        "state": state,
        "uptime": (uptime_end - launched) / 1_000_000,
    })
}

/// Per-project summaries in first-seen order, and the page's instance uuids.
fn summarize(instances: &[UsageInstance], p: &Period, detailed: bool) -> Vec<Value> {
    let now = ferrostack_store::now_micros();
    let mut order: Vec<String> = Vec::new();
    let mut by: std::collections::HashMap<String, Map<String, Value>> = Default::default();
    for i in instances {
        let h = hours(i, p);
        let s = by.entry(i.project_id.clone()).or_insert_with(|| {
            order.push(i.project_id.clone());
            let mut m = Map::new();
            m.insert("tenant_id".into(), json!(i.project_id));
            if detailed {
                m.insert("server_usages".into(), json!([]));
            }
            for k in [
                "total_local_gb_usage",
                "total_vcpus_usage",
                "total_memory_mb_usage",
                "total_hours",
            ] {
                m.insert(k.into(), json!(0.0));
            }
            m.insert("start".into(), json!(input::nova_time(p.start)));
            m.insert("stop".into(), json!(input::nova_time(p.stop)));
            m
        });
        let add = |s: &mut Map<String, Value>, k: &str, x: f64| {
            let cur = s[k].as_f64().unwrap_or(0.0);
            s.insert(k.into(), json!(cur + x));
        };
        add(s, "total_local_gb_usage", i.local_gb as f64 * h);
        add(s, "total_vcpus_usage", i.vcpus as f64 * h);
        add(s, "total_memory_mb_usage", i.memory_mb as f64 * h);
        add(s, "total_hours", h);
        if detailed {
            if let Some(Value::Array(list)) = s.get_mut("server_usages") {
                list.push(server_usage(i, p, now));
            }
        }
    }
    order
        .into_iter()
        .filter_map(|t| by.remove(&t).map(Value::Object))
        .collect()
}

/// Loads the instances of the period and takes the 2.40 page (`limit`/`marker` by uuid).
async fn page(
    svc: &ComputeService,
    v: Microversion,
    pairs: &[(String, String)],
    p: &Period,
    project: Option<&str>,
) -> Result<(Vec<UsageInstance>, Option<usize>)> {
    let all = svc.usage_instances(p.start, p.stop, project).await?;
    if !v.at_least(2, 40) {
        return Ok((all, None));
    }
    let (limit, marker) = input::limit_marker(pairs)?;
    let start = match marker {
        None => 0,
        Some(m) => {
            all.iter().position(|i| i.uuid == m).ok_or_else(|| {
                ComputeError::BadRequest(format!("Marker {m} could not be found."))
            })? + 1
        }
    };
    let limit = limit.unwrap_or(1000);
    Ok((
        all.into_iter().skip(start).take(limit).collect(),
        Some(limit),
    ))
}

fn links(
    svc: &ComputeService,
    path: &str,
    pairs: &[(String, String)],
    items: &[UsageInstance],
    limit: Option<usize>,
) -> Option<Value> {
    let limit = limit?;
    let last = items.last()?;
    if limit == 0 || items.len() < limit {
        return None;
    }
    let mut q: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "marker" && k != "limit")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    q.push(format!("limit={limit}"));
    q.push(format!("marker={}", last.uuid));
    Some(json!([{
        "rel": "next",
        "href": format!("{}/compute/v2.1/{path}?{}", svc.config.public_url, q.join("&")),
    }]))
}

pub async fn index(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-simple-tenant-usage:list",
        &json!({}),
    )?;
    let pairs = input::query_pairs(q.as_deref());
    let p = period(&pairs)?;
    let (items, limit) = page(svc, v, &pairs, &p, None).await?;
    let mut body = json!({"tenant_usages": summarize(&items, &p, p.detailed)});
    if let Some(l) = links(svc, "os-simple-tenant-usage", &pairs, &items, limit) {
        body["tenant_usages_links"] = l;
    }
    Ok(axum::Json(body).into_response())
}

pub async fn show(
    state: State,
    auth: Auth,
    v: Microversion,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-simple-tenant-usage:show",
        &json!({"project_id": tenant_id}),
    )?;
    let pairs = input::query_pairs(q.as_deref());
    let p = period(&pairs)?;
    let (items, limit) = page(svc, v, &pairs, &p, Some(&tenant_id)).await?;
    let usage = summarize(&items, &p, true)
        .into_iter()
        .next()
        .unwrap_or_else(|| json!({}));
    let mut body = json!({ "tenant_usage": usage });
    let path = format!("os-simple-tenant-usage/{tenant_id}");
    if let Some(l) = links(svc, &path, &pairs, &items, limit) {
        body["tenant_usage_links"] = l;
    }
    Ok(axum::Json(body).into_response())
}
