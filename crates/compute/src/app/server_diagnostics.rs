//! Diagnostics of a running server (`/servers/{id}/diagnostics`), from what the controller
//! knows (flavor, launch time).

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
}

impl ComputeService {
    /// The diagnostics of `inst`: 409 unless it is on a host and ACTIVE.
    pub fn diagnostics(&self, inst: &Instance) -> Result<Diagnostics> {
        if inst.host.is_none() {
            return Err(ComputeError::Conflict(format!(
                "Instance {} is not ready",
                inst.uuid
            )));
        }
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
        Ok(Diagnostics {
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
