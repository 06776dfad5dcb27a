//! The networking service (Neutron v2.0 API under `/networking`).
//!
//! Layout: `api/` (routes, wire bodies, Neutron's query language of filters, `fields`,
//! sorting and pagination, thin handlers: parse, authorize, call one `app/` function, render;
//! no database access), `app/` (the application layer: visibility, transactions, IP
//! allocation, quotas, default security groups), `db/` (SQL, one file per resource),
//! `ipam.rs` (pure address arithmetic), `model.rs` (domain types), `error.rs` (typed errors
//! and their one mapping to Neutron's error bodies).

pub mod api;
pub mod app;
pub mod db;
pub mod error;
pub mod ipam;
pub mod model;

use std::sync::Arc;

use ferrostack_policy::Enforcer;
use ferrostack_store::Db;

pub use error::NetworkError;

/// Settings of the networking service.
/// The least agent down time the networking service uses: two of the agents' 10 s reports.
pub const MIN_AGENT_DOWN_TIME: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub public_url: String,
    /// MTU of the hosts' physical networks; VXLAN networks get 50 bytes less (the overlay's
    /// header).
    pub physical_mtu: i64,
    /// VNIs handed to tenant networks, inclusive.
    pub vni_range: (i64, i64),
    /// Physical networks flat and VLAN networks may use (the all-in-one's `public`).
    pub physical_networks: Vec<String>,
    /// How long a host's agent may be silent before it is shown dead and its routers and
    /// DHCP servers move to a live host (Nova's `service_down_time`, Neutron's
    /// `agent_down_time`; agents report every 10 s).
    pub agent_down_time: std::time::Duration,
}

impl NetworkConfig {
    /// [`NetworkConfig::agent_down_time`] in microseconds, as heartbeats are kept.
    /// At least two heartbeats (20 s), so a host late by one is not taken for dead and its
    /// routers and DHCP servers do not flap between hosts (Neutron warns below that).
    pub fn agent_down_micros(&self) -> i64 {
        let down = self.agent_down_time.max(MIN_AGENT_DOWN_TIME);
        i64::try_from(down.as_micros()).unwrap_or(i64::MAX)
    }

    pub fn new(public_url: &str) -> Self {
        NetworkConfig {
            public_url: public_url.trim_end_matches('/').to_string(),
            physical_mtu: 1500,
            vni_range: (1, 65535),
            physical_networks: vec!["public".to_string()],
            agent_down_time: std::time::Duration::from_secs(60),
        }
    }
}

pub struct NetworkService {
    pub db: Db,
    pub config: NetworkConfig,
    pub policy: Arc<Enforcer>,
    /// Tells the agent of a host that its networking changed (set by the wiring: the
    /// compute service's wake-ups), so a rule reaches the host's ruleset at once.
    host_waker: std::sync::OnceLock<HostWaker>,
    /// Tells compute that a server's port was deleted through this API (Nova's
    /// `network-vif-deleted`), so the server lets go of its NIC.
    port_gone: std::sync::OnceLock<PortGone>,
}

/// Wakes the agent of the host named.
pub type HostWaker = Arc<dyn Fn(&str) + Send + Sync>;

/// Called with (device id, port id) once a compute-owned port is gone.
pub type PortGone = Arc<dyn Fn(&str, &str) + Send + Sync>;

impl NetworkService {
    pub fn new(db: Db, config: NetworkConfig, policy: Arc<Enforcer>) -> Arc<Self> {
        Arc::new(NetworkService {
            db,
            config,
            policy,
            host_waker: std::sync::OnceLock::new(),
            port_gone: std::sync::OnceLock::new(),
        })
    }

    /// Sets how hosts' agents are told of changes (once).
    pub fn set_host_waker(&self, waker: HostWaker) {
        let _ = self.host_waker.set(waker);
    }

    /// Sets who hears of servers' ports deleted through this API (once).
    pub fn set_port_gone(&self, hook: PortGone) {
        let _ = self.port_gone.set(hook);
    }
}
