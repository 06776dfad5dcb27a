//! `/v2.0/agents`: what runs networking on each host, as Neutron lists its agents. Every
//! host whose agent registered a data plane (`network_hosts`) runs the four of them in one
//! process: the Linux bridge agent (its bridges, VXLAN and rules), the DHCP agent, the L3
//! agent (routers) and the metadata agent; each is alive while the host's agent reports.

use ferrostack_store::now_micros;
use sha2::{Digest, Sha256};

use crate::db;
use crate::error::Result;
use crate::NetworkService;

/// (agent_type, binary, topic, has an availability zone) of the agents each host runs.
pub const KINDS: [(&str, &str, &str, bool); 4] = [
    (
        "Linux bridge agent",
        "neutron-linuxbridge-agent",
        "N/A",
        false,
    ),
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent", true),
    ("L3 agent", "neutron-l3-agent", "l3_agent", true),
    ("Metadata agent", "neutron-metadata-agent", "N/A", false),
];

#[derive(Debug, Clone)]
pub struct NetAgent {
    pub id: String,
    pub agent_type: &'static str,
    pub binary: &'static str,
    pub topic: &'static str,
    pub host: String,
    pub alive: bool,
    pub availability_zone: Option<&'static str>,
    pub created_at: i64,
    pub heartbeat_at: i64,
}

/// A stable id for `binary` on `host`, shaped as a UUID.
fn agent_id(host: &str, binary: &str) -> String {
    let h = Sha256::digest(format!("{host}/{binary}"));
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl NetworkService {
    pub async fn list_agents(&self) -> Result<Vec<NetAgent>> {
        let mut conn = self.read().await?;
        let now = now_micros();
        let down = self.config.agent_down_micros();
        let mut out = Vec::new();
        for h in db::hosts::list(&mut conn).await? {
            for (agent_type, binary, topic, zoned) in KINDS {
                out.push(NetAgent {
                    id: agent_id(&h.host, binary),
                    agent_type,
                    binary,
                    topic,
                    host: h.host.clone(),
                    alive: now - h.heartbeat_at < down,
                    availability_zone: zoned.then_some("nova"),
                    created_at: h.created_at,
                    heartbeat_at: h.heartbeat_at,
                });
            }
        }
        Ok(out)
    }

    pub async fn find_agent(&self, id: &str) -> Result<Option<NetAgent>> {
        Ok(self.list_agents().await?.into_iter().find(|a| a.id == id))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_stable_and_uuid_shaped() {
        let a = super::agent_id("h1", "neutron-l3-agent");
        assert_eq!(a, super::agent_id("h1", "neutron-l3-agent"));
        assert_ne!(a, super::agent_id("h2", "neutron-l3-agent"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
