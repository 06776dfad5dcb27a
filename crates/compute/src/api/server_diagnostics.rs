//! `/servers/{id}/diagnostics` (admin by default policy).

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::{ApiError, Auth};

use serde_json::{json, Map, Value};

use super::server_views::target;
use super::State;
use crate::app::server_diagnostics::Diagnostics;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new().route("/servers/{id}/diagnostics", get(index))
}

async fn index(
    svc: State,
    auth: Auth,
    v: Microversion,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inst = svc.find_server(&auth, &id).await?;
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-server-diagnostics",
        &target(&inst),
    )?;
    let d = svc.diagnostics(&inst).await?;
    let body = if v.at_least(2, 48) {
        standardized(&d)
    } else {
        driver_dict(&d)
    };
    Ok(axum::Json(body).into_response())
}

/// The 2.48+ standardized body: the host's measurements where it gave them (QEMU hosts),
/// else what the controller knows with zero counters (the fake driver keeps none).
fn standardized(d: &Diagnostics) -> Value {
    let mut body = json!({
        "state": d.state,
        // Tempest's schema accepts only Nova's driver names; every host here is of the
        // libvirt/QEMU kind (the fake one stands in for it, as Nova's own fake driver does).
        "driver": "libvirt",
        "hypervisor": "fake",
        "hypervisor_os": "linux",
        "uptime": d.uptime,
        "config_drive": d.config_drive,
        "num_cpus": d.vcpus,
        "num_nics": 0,
        "num_disks": d.disks,
        "memory_details": {"maximum": d.ram, "used": 0},
        "cpu_details": (0..d.vcpus)
            .map(|i| json!({"id": i, "time": 0, "utilisation": 0}))
            .collect::<Vec<_>>(),
        "disk_details": (0..d.disks)
            .map(|_| json!({"read_bytes": 0, "read_requests": 0, "write_bytes": 0,
                            "write_requests": 0, "errors_count": 0}))
            .collect::<Vec<_>>(),
        "nic_details": [],
    });
    if let (Some(Value::Object(m)), Some(o)) = (&d.measured, body.as_object_mut()) {
        for key in [
            "hypervisor",
            "uptime",
            "num_disks",
            "memory_details",
            "cpu_details",
            "disk_details",
        ] {
            if let Some(v) = m.get(key) {
                o.insert(key.into(), v.clone());
            }
        }
    }
    body
}

/// The older driver-specific dict (libvirt's keys) before 2.48, with the host's counters
/// where it measured them.
fn driver_dict(d: &Diagnostics) -> Value {
    let std = standardized(d);
    let mut o = Map::new();
    for (i, cpu) in std["cpu_details"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        o.insert(format!("cpu{i}_time"), cpu["time"].clone());
    }
    o.insert("memory".into(), json!(d.ram * 1024));
    let measured = d.measured.is_some();
    for (dev, disk) in ["vda", "vdb", "vdc", "vdd"]
        .iter()
        .zip(std["disk_details"].as_array().into_iter().flatten())
    {
        for (k, from) in [
            ("errors", "errors_count"),
            ("read", "read_bytes"),
            ("read_req", "read_requests"),
            ("write", "write_bytes"),
            ("write_req", "write_requests"),
        ] {
            let v = if k == "errors" && !measured {
                json!(-1)
            } else {
                disk[from].clone()
            };
            o.insert(format!("{dev}_{k}"), v);
        }
    }
    Value::Object(o)
}
