//! Domain types of the compute service (what the database holds), separate from the wire.

// --- Flavors, key pairs, aggregates, server groups, quotas (compute resources) ---

/// A flavor. `id` is Nova's `flavorid` (a string: "1", "42" or a UUID).
#[derive(Debug, Clone, PartialEq)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: i64,
    /// MiB.
    pub ram: i64,
    /// Root disk, GiB.
    pub disk: i64,
    /// GiB.
    pub ephemeral: i64,
    /// MiB.
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    pub extra_specs: std::collections::BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

/// A key pair of a user. `id` is the integer Nova shows on `GET /os-keypairs/{name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Keypair {
    pub id: i64,
    pub user_id: String,
    pub name: String,
    /// `ssh` or `x509`.
    pub key_type: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: i64,
}

/// A host aggregate. Its availability zone is both a column and the `availability_zone`
/// metadata key, as Nova keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub availability_zone: Option<String>,
    pub hosts: Vec<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

/// A server group with its members (instance uuids, deleted instances included: callers
/// filter what they show).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    /// affinity, anti-affinity, soft-affinity or soft-anti-affinity.
    pub policy: String,
    /// Only anti-affinity groups have a rule: at most this many members per host.
    pub max_server_per_host: Option<i64>,
    pub members: Vec<String>,
    pub created_at: i64,
}

/// Filters of a flavor listing, as Nova's `FlavorList.get_all` takes them.
#[derive(Debug, Clone, Default)]
pub struct FlavorFilter {
    /// `Some(true)`: public flavors plus private ones `project_id` has access to;
    /// `Some(false)`: private flavors only; `None`: all.
    pub is_public: Option<bool>,
    pub project_id: Option<String>,
    /// Hide disabled flavors (non-admin callers).
    pub hide_disabled: bool,
    pub min_ram: Option<i64>,
    pub min_disk: Option<i64>,
}

/// Quota resources Nova knows, with its default limits (-1 = unlimited), in Nova's order.
/// The network ones are only shown before microversion 2.36 and cannot be used.
pub const QUOTA_DEFAULTS: [(&str, i64); 14] = [
    ("instances", 10),
    ("cores", 20),
    ("ram", 51200),
    ("floating_ips", 10),
    ("fixed_ips", -1),
    ("metadata_items", 128),
    ("injected_files", 5),
    ("injected_file_content_bytes", 10240),
    ("injected_file_path_bytes", 255),
    ("security_groups", 10),
    ("security_group_rules", 20),
    ("key_pairs", 100),
    ("server_groups", 10),
    ("server_group_members", 10),
];

/// The network resources Nova stopped showing at 2.36 (they belong to Neutron).
pub const QUOTA_NETWORK_RESOURCES: [&str; 4] = [
    "fixed_ips",
    "floating_ips",
    "security_group_rules",
    "security_groups",
];

/// The personality resources Nova stopped showing at 2.57.
pub const QUOTA_INJECTED_RESOURCES: [&str; 3] = [
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
];

/// Effective quota limits of a project (and user): per resource, the project's own limit or
/// else the default quota class, else Nova's default. -1 means unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaLimits {
    pub project: std::collections::BTreeMap<String, i64>,
    /// Limits set for the user within the project (`openstack quota set --user`), which Nova
    /// checks against the user's own usage in addition to the project limit.
    pub user: std::collections::BTreeMap<String, i64>,
}

impl QuotaLimits {
    /// The project limit of `resource` (-1 = unlimited).
    pub fn limit(&self, resource: &str) -> i64 {
        self.project.get(resource).copied().unwrap_or(-1)
    }

    /// Checks that `used + requested` stays within the project limit of `resource`; the
    /// error carries Nova's message ("Quota exceeded for cores: Requested 4, but already
    /// used 18 of 20 cores").
    pub fn check(
        &self,
        resource: &str,
        used: i64,
        requested: i64,
    ) -> Result<(), crate::ComputeError> {
        let allowed = self.limit(resource);
        if allowed >= 0 && used + requested > allowed {
            return Err(crate::ComputeError::QuotaExceeded(format!(
                "Quota exceeded for {resource}: Requested {requested}, but already used \
                 {used} of {allowed} {resource}"
            )));
        }
        Ok(())
    }
}

/// Resources used by the non-deleted instances of a project (or of one user in it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceUsage {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
}

/// Nova's `service_is_up`: not forced down and heard from within `down_time`
/// (`ComputeConfig::service_down_time`).
pub fn service_is_up(
    forced_down: bool,
    last_seen_up: Option<i64>,
    now_micros: i64,
    down_time: std::time::Duration,
) -> bool {
    let window = i64::try_from(down_time.as_micros()).unwrap_or(i64::MAX);
    !forced_down && last_seen_up.is_some_and(|t| now_micros - t <= window)
}

// --- Hosts: compute services, compute nodes, usage ---

/// A compute service (`os-services`): one per host and binary, written by the host's agent
/// when it registers and heartbeats.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: i64,
    pub uuid: String,
    pub host: String,
    pub binary: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub last_seen_up: Option<i64>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

/// A compute node (`os-hypervisors`): the resources an agent reported for its host.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: i64,
    pub uuid: String,
    pub host: String,
    pub hypervisor_hostname: String,
    pub hypervisor_type: String,
    pub hypervisor_version: i64,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub host_ip: String,
    pub cpu_info: String,
    pub uptime_seconds: i64,
    pub traits: Vec<String>,
}

/// What the instances placed on a host use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostUsage {
    pub instances: i64,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
}

/// One instance as the usage report (`os-simple-tenant-usage`) needs it.
#[derive(Debug, Clone)]
pub struct UsageInstance {
    pub uuid: String,
    pub name: String,
    pub project_id: String,
    /// The flavor name from the instance's flavor snapshot ("" when unknown).
    pub flavor_name: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub vm_state: String,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
}

/// One NIC of an instance: its port, and what the guest's host needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceNic {
    /// Its place among the server's NICs (kept while attached; see `GuestNic::position`).
    pub position: u32,
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    pub mtu: u32,
    /// The server's creator brought the port: it is kept (unbound) when the server goes.
    pub preserve: bool,
}
