//! `/os-availability-zone` (zones and whether they are available) and
//! `/os-availability-zone/detail` (admin: the hosts of each zone and their services). Only the
//! detail view shows the `internal` zone of the non-compute services (`app/availability_zones.rs`
//! says which zone a service is in).

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::Auth;
use serde_json::{json, Map, Value};

use super::input;
use super::State;
use crate::app::availability_zones::{Zones, INTERNAL_ZONE};
use crate::error::Result;
use crate::model::service_is_up;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-availability-zone", get(index))
        .route("/os-availability-zone/detail", get(detail))
}

/// API services Nova leaves out of the detail view.
const API_SERVICES: [&str; 2] = ["nova-osapi_compute", "nova-metadata"];

fn zone_entry(name: &str, available: bool, hosts: Value) -> Value {
    json!({"zoneName": name, "zoneState": {"available": available}, "hosts": hosts})
}

pub async fn index(state: State, auth: Auth) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-availability-zone:list",
        &json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    let Zones {
        available,
        unavailable,
        ..
    } = svc.availability_zones().await?;
    let info: Vec<Value> = available
        .iter()
        .map(|z| (z, true))
        .chain(unavailable.iter().map(|z| (z, false)))
        .filter(|(z, _)| z.as_str() != INTERNAL_ZONE)
        .map(|(z, up)| zone_entry(z, up, Value::Null))
        .collect();
    Ok(axum::Json(json!({ "availabilityZoneInfo": info })).into_response())
}

pub async fn detail(state: State, auth: Auth) -> Result<Response> {
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-availability-zone:detail",
        &json!({"project_id": auth.project_id().unwrap_or_default()}),
    )?;
    let Zones {
        services,
        available,
        unavailable,
    } = svc.availability_zones().await?;
    let now = ferrostack_store::now_micros();
    // zone -> host -> binary -> state
    let mut by_zone: BTreeMap<&str, BTreeMap<&str, Map<String, Value>>> = BTreeMap::new();
    for (zone, s) in &services {
        if s.disabled || API_SERVICES.contains(&s.binary.as_str()) {
            continue;
        }
        by_zone
            .entry(zone.as_str())
            .or_default()
            .entry(s.host.as_str())
            .or_default()
            .insert(
                s.binary.clone(),
                json!({
                    "available": service_is_up(
                        s.forced_down,
                        s.last_seen_up,
                        now,
                        svc.config.service_down_time,
                    ),
                    "active": !s.disabled,
                    "updated_at": s.updated_at.or(s.last_seen_up).map(input::nova_time),
                }),
            );
    }
    let mut info: Vec<Value> = available
        .iter()
        .map(|z| {
            zone_entry(
                z,
                true,
                json!(by_zone.remove(z.as_str()).unwrap_or_default()),
            )
        })
        .collect();
    info.extend(
        unavailable
            .iter()
            .map(|z| zone_entry(z, false, Value::Null)),
    );
    Ok(axum::Json(json!({ "availabilityZoneInfo": info })).into_response())
}
