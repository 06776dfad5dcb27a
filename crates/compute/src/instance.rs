//! Instances: the domain type and Nova's state rules (which vm_state/task_state an action
//! needs, what it sets, and the `status` the API shows for a pair of them).

use serde::{Deserialize, Serialize};

/// The flavor an instance was built with, kept with the instance (JSON column `flavor`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlavorSnapshot {
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    pub ram: i64,
    pub disk: i64,
    #[serde(default)]
    pub ephemeral: i64,
    #[serde(default)]
    pub swap: i64,
    #[serde(default)]
    pub extra_specs: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub uuid: String,
    pub display_name: String,
    pub display_description: Option<String>,
    pub hostname: String,
    pub project_id: String,
    pub user_id: String,
    pub image_ref: String,
    pub flavor: FlavorSnapshot,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    pub user_data: Option<String>,
    pub config_drive: String,
    pub availability_zone: Option<String>,
    pub host: Option<String>,
    pub node: Option<String>,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub desired_power: String,
    pub target_vm_state: String,
    pub one_shot: Option<String>,
    pub generation: i64,
    pub done_generation: i64,
    pub locked: bool,
    pub locked_by: Option<String>,
    pub locked_reason: Option<String>,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    pub reservation_id: String,
    pub launch_index: i64,
    pub progress: i64,
    pub request_spec: serde_json::Value,
    pub addresses: serde_json::Value,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    pub deleted: bool,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub tags: Vec<String>,
}

/// A fault recorded on an instance (shown when its status is ERROR).
#[derive(Debug, Clone)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub details: String,
    pub created_at: i64,
}

pub mod vm {
    pub const BUILDING: &str = "building";
    pub const ACTIVE: &str = "active";
    pub const STOPPED: &str = "stopped";
    pub const PAUSED: &str = "paused";
    pub const SUSPENDED: &str = "suspended";
    pub const SHELVED: &str = "shelved";
    pub const SHELVED_OFFLOADED: &str = "shelved_offloaded";
    pub const RESCUED: &str = "rescued";
    pub const RESIZED: &str = "resized";
    pub const ERROR: &str = "error";
    pub const DELETED: &str = "deleted";
    pub const SOFT_DELETED: &str = "soft-delete";
}

/// The API `status` for a vm_state/task_state pair (nova/api/openstack/common.py).
pub fn status(vm_state: &str, task_state: Option<&str>) -> &'static str {
    let t = task_state.unwrap_or("");
    match vm_state {
        vm::BUILDING => "BUILD",
        vm::ACTIVE => match t {
            "rebooting" | "reboot_pending" | "reboot_started" => "REBOOT",
            "rebooting_hard" | "reboot_pending_hard" | "reboot_started_hard" => "HARD_REBOOT",
            "rebuilding" | "rebuild_block_device_mapping" | "rebuild_spawning" => "REBUILD",
            "migrating" => "MIGRATING",
            "resize_prep" | "resize_migrating" | "resize_migrated" | "resize_finish" => "RESIZE",
            "updating_password" => "PASSWORD",
            _ => "ACTIVE",
        },
        vm::STOPPED => match t {
            "resize_prep" | "resize_migrating" | "resize_migrated" | "resize_finish" => "RESIZE",
            "rebuilding" | "rebuild_block_device_mapping" | "rebuild_spawning" => "REBUILD",
            _ => "SHUTOFF",
        },
        vm::PAUSED => "PAUSED",
        vm::SUSPENDED => "SUSPENDED",
        vm::SHELVED => "SHELVED",
        vm::SHELVED_OFFLOADED => "SHELVED_OFFLOADED",
        vm::RESCUED => "RESCUE",
        vm::RESIZED => match t {
            "resize_reverting" => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        vm::ERROR => match t {
            "rebuilding" | "rebuild_block_device_mapping" | "rebuild_spawning" => "REBUILD",
            _ => "ERROR",
        },
        vm::DELETED => "DELETED",
        vm::SOFT_DELETED => "SOFT_DELETED",
        _ => "UNKNOWN",
    }
}

/// Nova's name for the lowest-level state string of an action's conflict message.
pub fn conflict_message(action: &str, attr: &str, state: &str, uuid: &str) -> String {
    format!("Cannot '{action}' instance {uuid} while it is in {attr} {state}")
}

/// The vm_states an action is allowed from (`check_instance_state` in nova/compute/api.py);
/// every action also requires task_state None unless listed in `task_ok`.
pub fn allowed_vm_states(action: &str) -> &'static [&'static str] {
    use vm::*;
    match action {
        "reboot" => &[ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR],
        "stop" => &[ACTIVE, RESCUED, ERROR],
        "start" => &[STOPPED],
        "pause" => &[ACTIVE],
        "unpause" => &[PAUSED],
        "suspend" => &[ACTIVE],
        "resume" => &[SUSPENDED],
        "shelve" => &[ACTIVE, STOPPED, PAUSED, SUSPENDED],
        "shelveOffload" => &[SHELVED],
        "unshelve" => &[SHELVED, SHELVED_OFFLOADED],
        "rebuild" => &[ACTIVE, STOPPED, ERROR],
        "rescue" => &[ACTIVE, STOPPED, ERROR],
        "unrescue" => &[RESCUED],
        "trigger_crash_dump" => &[ACTIVE, PAUSED, RESCUED, RESIZED, ERROR],
        "createImage" | "createBackup" => &[ACTIVE, STOPPED, PAUSED, SUSPENDED],
        "resize" | "migrate" => &[ACTIVE, STOPPED],
        "live-migration" => &[ACTIVE, PAUSED],
        "evacuate" => &[ACTIVE, STOPPED, ERROR],
        "confirmResize" | "revertResize" => &[RESIZED],
        "forceDelete" | "restore" => &[SOFT_DELETED],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping_follows_nova() {
        assert_eq!(status(vm::BUILDING, Some("spawning")), "BUILD");
        assert_eq!(status(vm::ACTIVE, None), "ACTIVE");
        assert_eq!(status(vm::ACTIVE, Some("rebooting_hard")), "HARD_REBOOT");
        assert_eq!(status(vm::STOPPED, None), "SHUTOFF");
        assert_eq!(status(vm::RESIZED, None), "VERIFY_RESIZE");
        assert_eq!(status(vm::ERROR, None), "ERROR");
        assert_eq!(status(vm::ACTIVE, Some("powering-off")), "ACTIVE");
    }

    #[test]
    fn actions_need_states() {
        assert!(allowed_vm_states("start").contains(&vm::STOPPED));
        assert!(!allowed_vm_states("pause").contains(&vm::STOPPED));
        assert!(allowed_vm_states("unshelve").contains(&vm::SHELVED_OFFLOADED));
    }
}
