//! The scheduler: host states (placement capacity + service status + aggregates), a filter
//! pipeline that says why it removed each host, weighers, and the claim through placement.
//!
//! Filtering and weighing are pure functions over [`HostState`]s (unit-tested in
//! `filters.rs`/`weighers.rs`); the atomic part is the claim: placement checks capacity in the
//! same transaction that writes the allocation, so two concurrent boots never overcommit a
//! host — the loser gets a conflict and tries the next host.

pub mod filters;
pub mod weighers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrostack_placement::Allocation;

use crate::peers::Placement;

/// What the scheduler knows of one host.
#[derive(Debug, Clone)]
pub struct HostState {
    pub host: String,
    pub provider_uuid: String,
    pub hypervisor_type: String,
    pub enabled: bool,
    pub up: bool,
    /// Free capacity, after allocation ratios and reservations (capped at `max_unit`).
    pub free: Resources,
    /// Total usable capacity.
    pub capacity: Resources,
    pub availability_zone: String,
    /// Metadata of every aggregate the host is in (key -> values).
    pub aggregate_metadata: BTreeMap<String, Vec<String>>,
    /// Instances (uuids) on the host that are in server groups, for affinity.
    pub instances: HashSet<String>,
}

/// Amounts of the resource classes the scheduler places (a flavor asks for these three).
/// Fixed fields rather than a map keyed by class name: at 10,000 hosts the filters and
/// weighers read them for every host of every decision, and string-keyed lookups were most of
/// a decision's time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub vcpu: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

impl Resources {
    /// What an instance of `flavor` takes on its host: its vCPUs, its memory, and its root,
    /// ephemeral and swap disks in whole GiB.
    pub fn for_flavor(flavor: &crate::instance::FlavorSnapshot) -> Resources {
        Resources {
            vcpu: flavor.vcpus,
            memory_mb: flavor.ram,
            disk_gb: flavor.disk
                + flavor.ephemeral
                + i64::try_from(flavor.swap.max(0).unsigned_abs().div_ceil(1024))
                    .unwrap_or(i64::MAX),
        }
    }

    /// Placement's standard class names with their amounts (zero amounts left out).
    pub fn by_class(&self) -> BTreeMap<String, i64> {
        [
            ("VCPU", self.vcpu),
            ("MEMORY_MB", self.memory_mb),
            ("DISK_GB", self.disk_gb),
        ]
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(c, n)| (c.to_string(), n))
        .collect()
    }

    /// The amount of a placement class this struct holds (other classes: None).
    pub fn get_mut(&mut self, class: &str) -> Option<&mut i64> {
        match class {
            "VCPU" => Some(&mut self.vcpu),
            "MEMORY_MB" => Some(&mut self.memory_mb),
            "DISK_GB" => Some(&mut self.disk_gb),
            _ => None,
        }
    }

    /// Takes `other` away, field by field.
    pub fn subtract(&mut self, other: &Resources) {
        self.vcpu -= other.vcpu;
        self.memory_mb -= other.memory_mb;
        self.disk_gb -= other.disk_gb;
    }
}

/// A scheduling request for one instance.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub instance_uuid: String,
    pub project_id: String,
    pub user_id: String,
    pub resources: Resources,
    pub availability_zone: Option<String>,
    /// `zone:host` pinning by an admin.
    pub forced_host: Option<String>,
    pub flavor_extra_specs: BTreeMap<String, String>,
    pub image_properties: BTreeMap<String, String>,
    pub group: Option<GroupHint>,
    pub same_host: Vec<String>,
    pub different_host: Vec<String>,
    /// Hosts to avoid (a retry after a failed build, the source host of a migration).
    pub ignore_hosts: Vec<String>,
}

/// The server group an instance joins, with where its members run.
#[derive(Debug, Clone)]
pub struct GroupHint {
    pub id: String,
    pub policy: String,
    pub max_server_per_host: Option<i64>,
    /// Hosts of the group's other members, with how many members each runs.
    pub member_hosts: HashMap<String, i64>,
}

/// Why no host was found: per filter, how many hosts it removed and why.
#[derive(Debug, Clone, PartialEq)]
pub struct NoValidHost {
    pub considered: usize,
    pub removed: Vec<(String, usize, String)>,
}

impl std::fmt::Display for NoValidHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "No valid host was found. ")?;
        if self.considered == 0 {
            return write!(f, "There are no compute hosts (is any agent running?).");
        }
        write!(f, "{} hosts considered", self.considered)?;
        for (filter, n, why) in &self.removed {
            write!(f, "; {filter}: {n} hosts {why}")?;
        }
        write!(f, ".")
    }
}

/// Spread (default, like Nova's positive weight multipliers) or pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Spread,
    Pack,
}

/// Filters and weighs; returns hosts best first.
pub fn select<'a>(
    hosts: &'a [HostState],
    req: &Request,
    strategy: Strategy,
) -> Result<Vec<&'a HostState>, NoValidHost> {
    select_top(hosts, req, strategy, usize::MAX)
}

/// How many of the best hosts a decision tries to claim before giving up.
pub const CLAIM_CANDIDATES: usize = 10;

/// As [`select`], but only the best `k` hosts, best first: what a decision needs, without
/// sorting every host (at 10,000 hosts the full sort costs more than the filters).
pub fn select_top<'a>(
    hosts: &'a [HostState],
    req: &Request,
    strategy: Strategy,
    k: usize,
) -> Result<Vec<&'a HostState>, NoValidHost> {
    // Only the filters this request can trip: the others would pass every host.
    let active: Vec<&filters::Filter> = filters::PIPELINE
        .iter()
        .filter(|f| (f.applies)(req))
        .collect();
    // One pass over the hosts; a host is counted against the first filter that removes it,
    // as running the filters one after the other would count it.
    let mut removed_by = vec![0usize; active.len()];
    let mut why: Vec<Option<String>> = vec![None; active.len()];
    let mut remaining: Vec<&HostState> = Vec::with_capacity(hosts.len());
    'hosts: for h in hosts {
        for (i, filter) in active.iter().enumerate() {
            if let Err(reason) = (filter.check)(h, req) {
                removed_by[i] += 1;
                why[i].get_or_insert(reason);
                continue 'hosts;
            }
        }
        remaining.push(h);
    }
    if remaining.is_empty() {
        let removed = active
            .iter()
            .zip(removed_by)
            .zip(why)
            .filter(|((_, n), _)| *n > 0)
            .map(|((f, n), why)| (f.name.to_string(), n, why.unwrap_or_default()))
            .collect();
        return Err(NoValidHost {
            considered: hosts.len(),
            removed,
        });
    }
    Ok(weighers::rank_top(remaining, strategy, k))
}

/// Host states, cached briefly: at 10,000 hosts reading them costs more than a decision.
/// Every successful claim updates the cached free capacity at once, so back-to-back
/// decisions see each other; the placement claim stays the authority.
///
/// The states are kept for `ttl`, or for ten times what the last load took when that is
/// longer: at 10,000 hosts a load takes a few hundred ms, and reloading every `ttl` would
/// spend most of the scheduler's time loading.
pub struct HostCache {
    pub ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, Vec<HostState>)>>,
    last_load: std::sync::Mutex<Duration>,
}

impl HostCache {
    pub fn new(ttl: Duration) -> Self {
        HostCache {
            ttl,
            cached: tokio::sync::Mutex::new(None),
            last_load: std::sync::Mutex::new(Duration::ZERO),
        }
    }

    /// How long loaded host states stay fresh.
    pub fn lifetime(&self) -> Duration {
        let last = *self.last_load.lock().unwrap_or_else(|p| p.into_inner());
        self.ttl.max(last * 10)
    }

    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// Changes the cached host states in place, if any are cached (nothing to do otherwise:
    /// the next decision loads them fresh).
    pub async fn update(&self, f: impl FnOnce(&mut Vec<HostState>)) {
        if let Some((_, hosts)) = self.cached.lock().await.as_mut() {
            f(hosts);
        }
    }

    /// Runs `f` on fresh-enough host states (loading them with `load` when stale).
    pub async fn with_hosts<T, F, Fut, E>(
        &self,
        load: F,
        f: impl FnOnce(&mut Vec<HostState>) -> T,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<HostState>, E>>,
    {
        let mut guard = self.cached.lock().await;
        let lifetime = self.lifetime();
        match guard.as_mut() {
            Some((at, hosts)) if at.elapsed() <= lifetime => Ok(f(hosts)),
            _ => {
                let started = Instant::now();
                let hosts = load().await?;
                *self.last_load.lock().unwrap_or_else(|p| p.into_inner()) = started.elapsed();
                // Fresh from when the load finished (a long load must not leave them stale).
                let (_, hosts) = guard.insert((Instant::now(), hosts));
                Ok(f(hosts))
            }
        }
    }
}

/// Claims `req.resources` on the first host of `ranked` that placement accepts, inside the
/// caller's write transaction `tx` (the caller's writes commit with the claim); returns the
/// host. For a move, `holder` (the migration uuid) takes over the instance's current
/// allocations ([`Placement::claim_in`]).
pub async fn claim_first(
    placement: &Arc<dyn Placement>,
    tx: &mut crate::db::Conn,
    ranked: &[(String, String)],
    req: &Request,
    holder: Option<&str>,
) -> Result<Option<String>, ferrostack_placement::PlacementError> {
    let (consumer, project, user) = (&req.instance_uuid, &req.project_id, &req.user_id);
    let resources = req.resources.by_class();
    for (host, provider) in ranked.iter().take(CLAIM_CANDIDATES) {
        let alloc = [Allocation {
            provider_uuid: provider.clone(),
            resources: resources.clone(),
        }];
        match placement
            .claim_in(tx, consumer, holder, project, user, &alloc)
            .await
        {
            Ok(()) => return Ok(Some(host.clone())),
            Err(ferrostack_placement::PlacementError::Conflict(why)) => {
                tracing::debug!(host = %host, %why, "claim lost; trying the next host");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}
