//! The compute service (Nova v2.1 API under `/compute`).
//!
//! Layout: `api/` (routes, wire bodies, thin handlers; one file per resource: a handler parses,
//! authorizes through the policy engine, calls one `app/` function and renders), `app/` (the
//! application layer, one file per resource: every transaction, invariant, quota count and
//! cache invalidation; what the agents' link, the dashboard and other services call), `db/`
//! (SQL, one file per resource; only `app/` and the agents' link call it), `model.rs` (domain
//! types), `scheduler/` (filters, weighers, claims), `agent_link.rs` (the controller side of
//! the agent protocol), `peers/` (the traits through which compute reaches the other services
//! — `Images`, `Placement`, `Projects` — and their adapters; nothing else names a service of
//! another crate).

pub mod agent_link;
pub mod api;
pub mod app;
pub mod audit;
pub mod db;
pub mod error;
pub mod instance;
pub mod model;
pub mod peers;
pub mod scheduler;
pub mod state;

use std::sync::Arc;

use ferrostack_policy::Enforcer;
use ferrostack_store::Db;

pub use error::ComputeError;
use peers::{Images, Placement, Projects};

/// Settings of the compute service.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    pub public_url: String,
    /// The availability zone of hosts in no aggregate with a zone (Nova's
    /// `default_availability_zone`).
    pub default_availability_zone: String,
    /// Spread (default) or pack instances over hosts.
    pub strategy: scheduler::Strategy,
    /// Placement allocation ratios reported for each host (Nova's initial_*_allocation_ratio).
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// Memory kept for the host itself (Nova's reserved_host_memory_mb).
    pub reserved_host_memory_mb: i64,
    /// A host whose agent has not heartbeaten for this long is `down`.
    pub service_down_time: std::time::Duration,
    /// Resizes not confirmed within this window are confirmed automatically (Nova's
    /// `resize_confirm_window`); None never confirms.
    pub resize_confirm_window: Option<std::time::Duration>,
    /// A resize may keep the instance on its host, when the scheduler ranks it best (Nova's
    /// `allow_resize_to_same_host`). On by default, as DevStack sets it: an all-in-one
    /// cloud has one host. Cold migrations always leave the host.
    pub allow_resize_to_same_host: bool,
    /// Every server gets a config drive, asked for or not (Nova's `force_config_drive`).
    pub force_config_drive: bool,
    /// noVNC's files, served by the console proxy (Debian's package `novnc`).
    pub novnc_dir: std::path::PathBuf,
    /// Where the disks handed from one host to another in cold moves wait for their
    /// destination (the cloud puts it in its data directory).
    pub transfer_dir: std::path::PathBuf,
    /// The Fernet key that seals personality files and admin passwords until the guest is
    /// built (the cloud keeps it in its data directory); None: a key of this process only.
    pub injection_key: Option<InjectionKey>,
}

/// A Fernet key that never shows in a log line (the configuration is `Debug`).
#[derive(Clone)]
pub struct InjectionKey(pub String);

impl std::fmt::Debug for InjectionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InjectionKey(<hidden>)")
    }
}

impl ComputeConfig {
    pub fn new(public_url: &str) -> Self {
        ComputeConfig {
            public_url: public_url.to_string(),
            default_availability_zone: "nova".into(),
            strategy: scheduler::Strategy::Spread,
            cpu_allocation_ratio: 4.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            reserved_host_memory_mb: 0,
            service_down_time: std::time::Duration::from_secs(60),
            resize_confirm_window: Some(std::time::Duration::from_secs(3600)),
            allow_resize_to_same_host: true,
            force_config_drive: false,
            novnc_dir: "/usr/share/novnc".into(),
            transfer_dir: std::env::temp_dir().join("ferrostack-transfers"),
            injection_key: None,
        }
    }
}

pub struct ComputeService {
    pub db: Db,
    pub config: ComputeConfig,
    pub policy: Arc<Enforcer>,
    /// The other services, through compute's own traits (`peers/`).
    pub image: Arc<dyn Images>,
    pub placement: Arc<dyn Placement>,
    pub projects: Arc<dyn Projects>,
    pub networking: Arc<dyn peers::Networking>,
    /// Wakes the agent of a host when its desired state changed (in-process agents).
    pub wakeups: agent_link::Wakeups,
    /// Wakes the scheduling loop when instances wait for a host.
    pub schedule_now: tokio::sync::Notify,
    pub hosts: scheduler::HostCache,
    /// How the guests' consoles of this process's hosts are opened (console proxy).
    pub consoles: peers::ConsoleHosts,
    /// Consoles of guests on remote hosts waiting for their agent to dial back.
    pub console_dials: peers::ConsoleDials,
    /// Seals what is injected into guests (`app/injection.rs`).
    pub(crate) sealer: app::injection::Sealer,
}

impl ComputeService {
    pub fn new(
        db: Db,
        config: ComputeConfig,
        policy: Arc<Enforcer>,
        image: Arc<dyn Images>,
        placement: Arc<dyn Placement>,
        projects: Arc<dyn Projects>,
        networking: Arc<dyn peers::Networking>,
    ) -> Arc<Self> {
        // The cloud checks its key file as it opens (`ferrostack_cloud`): a bad key here is
        // a caller's mistake, and only this process's injections would be affected.
        let sealer =
            app::injection::Sealer::new(config.injection_key.as_ref().map(|k| k.0.as_str()))
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "using a key of this process only for injections");
                    app::injection::Sealer::of_this_process()
                });
        Arc::new(ComputeService {
            sealer,
            db,
            config,
            policy,
            image,
            placement,
            projects,
            networking,
            wakeups: Default::default(),
            schedule_now: tokio::sync::Notify::new(),
            hosts: scheduler::HostCache::new(std::time::Duration::from_millis(500)),
            consoles: Default::default(),
            console_dials: Default::default(),
        })
    }
}
