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
    let d = svc.diagnostics(&inst)?;
    let body = if v.at_least(2, 48) {
        standardized(&d)
    } else {
        driver_dict(&d)
    };
    Ok(axum::Json(body).into_response())
}

/// The 2.48+ standardized body. The fake driver keeps no counters: times and bytes are 0.
fn standardized(d: &Diagnostics) -> Value {
    json!({
        "state": d.state,
        // Tempest's schema accepts only Nova's driver names; the fake driver stands in for
        // the libvirt/QEMU kind of host (as Nova's own fake driver reports).
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
    })
}

/// The older driver-specific dict (libvirt's keys) before 2.48.
fn driver_dict(d: &Diagnostics) -> Value {
    let mut o = Map::new();
    for cpu in 0..d.vcpus {
        o.insert(format!("cpu{cpu}_time"), json!(0));
    }
    o.insert("memory".into(), json!(d.ram * 1024));
    for dev in ["vda", "vdb", "vdc"]
        .iter()
        .take(usize::try_from(d.disks).unwrap_or(0))
    {
        for k in ["errors", "read", "read_req", "write", "write_req"] {
            o.insert(
                format!("{dev}_{k}"),
                json!(if k == "errors" { -1 } else { 0 }),
            );
        }
    }
    Value::Object(o)
}
