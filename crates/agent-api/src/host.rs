//! What a host offers.

use serde::{Deserialize, Serialize};

/// What a host can offer, reported to the controller at registration (hypervisor record and
/// placement inventory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub cpu_info: serde_json::Value,
    /// Placement traits (COMPUTE_*, HW_CPU_*).
    pub traits: Vec<String>,
    pub uptime_seconds: i64,
    /// Where the host's VXLAN tunnels end, when it runs a network data plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtep: Option<crate::Vtep>,
}
