//! Diagnostics of a running server (`/servers/{id}/diagnostics`): what its host measured
//! (asked through the agent protocol: vCPU times, memory, disk counters on QEMU hosts), on
//! top of what the controller knows (flavor, launch time), which stands alone when the host
//! cannot answer.

use crate::error::{ComputeError, Result};
use crate::instance::{self, Instance};
use crate::state::VmState;
use crate::ComputeService;
use ferrostack_agent_api::PowerState;

/// What the diagnostics show of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics {
    /// Nova's power state name (`running`, `shutdown`, ...).
    pub state: &'static str,
    /// Seconds since the guest was launched.
    pub uptime: i64,
    pub config_drive: bool,
    pub vcpus: i64,
    /// MiB.
    pub ram: i64,
    /// Root, plus ephemeral and swap when the flavor has them.
    pub disks: i64,
    /// The host's own measurements, in Nova's standard (2.48) format, when it answered.
    pub measured: Option<serde_json::Value>,
}

impl ComputeService {
    /// The diagnostics of `inst`: 409 unless it is on a host and ACTIVE.
    pub async fn diagnostics(&self, inst: &Instance) -> Result<Diagnostics> {
        let Some(host) = inst.host.as_deref() else {
            return Err(ComputeError::Conflict(format!(
                "Instance {} is not ready",
                inst.uuid
            )));
        };
        if inst.vm_state != VmState::Active {
            return Err(ComputeError::Conflict(instance::conflict_message(
                "get_diagnostics",
                "vm_state",
                inst.vm_state.as_str(),
                &inst.uuid,
            )));
        }
        let f = &inst.flavor;
        let uptime = inst
            .launched_at
            .map(|l| ((ferrostack_store::now_micros() - l) / 1_000_000).max(0))
            .unwrap_or(0);
        // Only a host that is up is asked (one that is down would only make the caller
        // wait for the question to time out).
        let up = {
            let mut conn = self.db.pool.acquire().await?;
            crate::db::hosts::services(&mut conn).await?
        }
        .iter()
        .any(|s| {
            s.binary == "nova-compute"
                && s.host == host
                && crate::model::service_is_up(
                    s.forced_down,
                    s.last_seen_up,
                    ferrostack_store::now_micros(),
                    self.config.service_down_time,
                )
        });
        let asked = if up {
            Some(
                self.ask_host(host, &inst.uuid, ferrostack_agent_api::Ask::Diagnostics)
                    .await,
            )
        } else {
            None
        };
        let measured = match asked {
            None => None,
            Some(Ok(Ok(text))) => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                // The fake driver measures nothing.
                .filter(|v| {
                    v["driver"] != "fake"
                        && v["cpu_details"].is_array()
                        && v["disk_details"].is_array()
                }),
            Some(Ok(Err(why))) => {
                tracing::info!(uuid = %inst.uuid, %host, %why, "no diagnostics from the host");
                None
            }
            Some(Err(e)) => {
                tracing::info!(uuid = %inst.uuid, %host, error = %e, "no diagnostics from the host");
                None
            }
        };
        Ok(Diagnostics {
            measured,
            state: power_state_name(inst.power_state),
            uptime,
            config_drive: !inst.config_drive.is_empty(),
            vcpus: f.vcpus,
            ram: f.ram,
            disks: 1 + i64::from(f.ephemeral > 0) + i64::from(f.swap > 0),
        })
    }
}

/// Nova's power state names (nova/compute/power_state.py).
pub fn power_state_name(state: PowerState) -> &'static str {
    match state {
        PowerState::Running => "running",
        PowerState::Paused => "paused",
        PowerState::Shutdown => "shutdown",
        PowerState::Crashed => "crashed",
        PowerState::Suspended => "suspended",
        PowerState::NoState => "pending",
    }
}
