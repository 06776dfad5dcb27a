//! Everything a host should do, and everything it saw, one list per kind of desired state.

use serde::{Deserialize, Serialize};

use crate::guest::{DesiredGuest, GuestReport};
use crate::network::{HostNetworking, NetworkingReport};

/// What the controller wants of one host. Each kind of state the agent reconciles is one list;
/// a kind added later (networks, ports, routers, volume attachments) is one more field with
/// `#[serde(default)]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DesiredHost {
    /// Every guest the controller wants on the host, including ones to remove (`Absent`).
    #[serde(default)]
    pub guests: Vec<DesiredGuest>,
    /// The networks, ports and security groups the host's data plane should carry.
    #[serde(default, skip_serializing_if = "HostNetworking::is_empty")]
    pub networking: HostNetworking,
}

/// What the agent saw after converging, for the entries worth a report (changes, errors).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostReport {
    #[serde(default)]
    pub guests: Vec<GuestReport>,
    /// What the data plane wired, when it changed (None: nothing new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networking: Option<NetworkingReport>,
}

impl HostReport {
    pub fn is_empty(&self) -> bool {
        self.guests.is_empty() && self.networking.is_none()
    }
}
