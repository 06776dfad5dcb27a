//! Instances: the domain type. Its states are typed (`crate::state`, and the agent protocol's
//! `Desired`, `OneShot` and `PowerState`); which action is allowed in which state is
//! `state::Action::allowed_from`.

use ferrostack_agent_api::{Desired, OneShot, PowerState};
use serde::{Deserialize, Serialize};

use crate::state::{TaskState, VmState};

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
    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    /// The power state the agent last observed.
    pub power_state: PowerState,
    /// The power the guest should have.
    pub desired_power: Desired,
    /// The vm state the instance takes once the agent reports the current generation done.
    pub target_vm_state: VmState,
    /// The operation the agent does once for the current generation.
    pub one_shot: Option<OneShot>,
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

/// Nova's conflict message for an attribute in a state that forbids an action, for the checks
/// outside the transition table (metadata, consoles, diagnostics).
pub fn conflict_message(action: &str, attr: &str, state: &str, uuid: &str) -> String {
    format!("Cannot '{action}' instance {uuid} while it is in {attr} {state}")
}
