//! Server operations without HTTP: create (validation, quota, records), scheduling of
//! instances waiting for a host, delete, and the state-changing actions. Each operation writes
//! the desired state and an action record in one transaction and wakes the host's agent.

use std::collections::{BTreeMap, HashMap, HashSet};

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use crate::db::{self, actions, hosts, instances};
use crate::error::{ComputeError, Result};
use crate::instance::{self, FlavorSnapshot, Instance};
use crate::scheduler::{self, GroupHint, HostState, Request, Resources};
use crate::state::{Action, TaskState, VmState};
use crate::ComputeService;
use ferrostack_agent_api::{Desired, OneShot, PowerState};

/// A validated create request (the API layer parsed the JSON).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub description: Option<String>,
    pub hostname: Option<String>,
    pub image_ref: String,
    pub flavor_ref: String,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub min_count: i64,
    pub max_count: i64,
    pub hints: serde_json::Map<String, serde_json::Value>,
    pub networks: RequestedNetworks,
    pub security_groups: Vec<String>,
    pub config_drive: bool,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    pub tags: Vec<String>,
    /// Personality files (before 2.57) and the admin password, given to the new guests.
    pub injected: ferrostack_agent_api::Injected,
}

/// The networks a new server asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RequestedNetworks {
    /// The caller's one available network, else none (no `networks` before 2.37).
    #[default]
    Available,
    /// As `Available`, but a project with no network gets one made (Nova's `auto`:
    /// get-me-a-network).
    Auto,
    /// No NIC at all.
    None,
    List(Vec<crate::peers::NicRequest>),
}

impl RequestedNetworks {
    /// As the request spec keeps it.
    fn to_json(&self) -> serde_json::Value {
        use crate::peers::NicRequest;
        match self {
            RequestedNetworks::Available => serde_json::Value::Null,
            RequestedNetworks::Auto => serde_json::json!("auto"),
            RequestedNetworks::None => serde_json::json!("none"),
            RequestedNetworks::List(l) => l
                .iter()
                .map(|r| match r {
                    NicRequest::Network { id, fixed_ip } => {
                        serde_json::json!({"uuid": id, "fixed_ip": fixed_ip.map(|i| i.to_string())})
                    }
                    NicRequest::Port(p) => serde_json::json!({"port": p}),
                })
                .collect(),
        }
    }
}

/// Ports made for servers of a create that no committed server took: given back when the
/// create ends, however it ends.
struct HeldNics {
    networking: std::sync::Arc<dyn crate::peers::Networking>,
    db: ferrostack_store::Db,
    nics: HashMap<String, Vec<crate::peers::ServerNic>>,
}

impl HeldNics {
    fn new(
        networking: std::sync::Arc<dyn crate::peers::Networking>,
        db: ferrostack_store::Db,
    ) -> Self {
        HeldNics {
            networking,
            db,
            nics: HashMap::new(),
        }
    }
}

impl Drop for HeldNics {
    fn drop(&mut self) {
        let left: Vec<(String, Vec<crate::model::InstanceNic>)> = self
            .nics
            .drain()
            .map(|(uuid, n)| (uuid, n.into_iter().map(|x| x.nic).collect()))
            .collect();
        if left.is_empty() {
            return;
        }
        let (networking, db) = (self.networking.clone(), self.db.clone());
        tokio::spawn(async move {
            for (uuid, nics) in left {
                // A commit that failed to answer (or a request dropped while committing) may
                // have made the instance after all: its ports are its own then.
                let exists = match db.pool.acquire().await {
                    Ok(mut conn) => {
                        !matches!(instances::get(&mut conn, &uuid, true).await, Ok(None))
                    }
                    Err(_) => true,
                };
                if !exists {
                    networking.release(&uuid, &nics).await;
                }
            }
        });
    }
}

/// Nova's `addresses` of a server from its NICs: by network name, each address with its
/// version, type and MAC.
pub fn addresses_of(nics: &[crate::peers::ServerNic]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for n in nics {
        let list = out
            .entry(n.network_name.clone())
            .or_insert_with(|| serde_json::json!([]));
        if let Some(a) = list.as_array_mut() {
            for ip in &n.ips {
                a.push(serde_json::json!({
                    "version": if ip.is_ipv4() { 4 } else { 6 },
                    "addr": ip.to_string(),
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": n.nic.mac,
                }));
            }
        }
    }
    serde_json::Value::Object(out)
}

/// A validated server update (`PUT /servers/{id}`); `None` fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct ServerUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub hostname: Option<String>,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
}

impl ComputeService {
    /// Creates `min_count..=max_count` instances (as many as quota allows, at least
    /// `min_count`), all in BUILD waiting for the scheduler. Nothing is written when any check
    /// fails.
    pub async fn create_servers(
        &self,
        auth: &AuthContext,
        req: CreateRequest,
        request_id: &str,
    ) -> Result<Vec<Instance>> {
        let project = auth
            .project_id()
            .ok_or_else(|| ComputeError::Forbidden("A project-scoped token is required.".into()))?
            .to_string();
        let admin = auth.is_admin;
        let mut conn = self.db.pool.acquire().await?;
        let flavor = db::flavors::get_visible(
            &mut conn,
            &req.flavor_ref,
            if admin { None } else { Some(project.as_str()) },
        )
        .await?
        .ok_or_else(|| {
            ComputeError::BadRequest(format!("Flavor {} could not be found.", req.flavor_ref))
        })?;
        if flavor.disabled {
            return Err(ComputeError::BadRequest(format!(
                "Flavor {} could not be found.",
                req.flavor_ref
            )));
        }
        // The image: visible to the caller, active, and fitting the flavor. The image service
        // takes its own connection from the same pool: holding ours meanwhile would let as
        // many concurrent creates as the pool has connections starve each other.
        drop(conn);
        let image = self.image.find(&req.image_ref, auth).await.map_err(|_| {
            ComputeError::BadRequest(format!("Image {} could not be found.", req.image_ref))
        })?;
        let mut conn = self.db.pool.acquire().await?;
        if image.status != ferrostack_image::model::Status::Active {
            return Err(ComputeError::BadRequest(format!(
                "Image {} is not active.",
                req.image_ref
            )));
        }
        check_image_fits(&image, flavor.ram, flavor.disk)?;
        let key = match &req.key_name {
            Some(k) => Some(
                db::keypairs::get(&mut conn, &auth.user_id, k)
                    .await?
                    .ok_or_else(|| {
                        ComputeError::BadRequest("Invalid key_name provided.".to_string())
                    })?,
            ),
            None => None,
        };
        if let Some(az) = &req.availability_zone {
            let (zone, host) = split_az(az);
            if !zone.is_empty() && !self.zone_exists(&mut conn, zone).await? {
                return Err(ComputeError::BadRequest(
                    "The requested availability zone is not available".to_string(),
                ));
            }
            if host.is_some() && !admin {
                return Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:servers:create:forced_host to be performed."
                        .into(),
                ));
            }
        }
        crate::app::injection::check_quota(&mut conn, &project, &req.injected.files).await?;
        // Nova's metadata_items quota (MetadataLimitExceeded, a 403).
        if !req.metadata.is_empty() {
            let allowed = db::quotas::limits_for(&mut conn, &project, "")
                .await?
                .limit("metadata_items");
            if allowed >= 0 && i64::try_from(req.metadata.len()).unwrap_or(i64::MAX) > allowed {
                return Err(ComputeError::QuotaExceeded(format!(
                    "Maximum number of metadata items exceeds {allowed}"
                )));
            }
        }
        // Every id a hint names must be the caller's to name: a group of another project
        // (which would take this server as a member) or another project's server (whose host
        // same_host/different_host would reveal) answers as one that does not exist. A cloud
        // admin may name any.
        let group = match req.hints.get("group").and_then(|v| v.as_str()) {
            Some(g) => {
                let found = db::server_groups::get(&mut conn, g)
                    .await?
                    .filter(|grp| admin || grp.project_id == project);
                Some(
                    found
                        .map(|g| (g.id, g.policy, g.max_server_per_host))
                        .ok_or_else(|| {
                            ComputeError::BadRequest(format!(
                                "Server group {g} could not be found."
                            ))
                        })?,
                )
            }
            None => None,
        };
        for hint in ["same_host", "different_host"] {
            for uuid in hint_uuids(&req.hints, hint) {
                let visible = instances::get(&mut conn, &uuid, false)
                    .await?
                    .is_some_and(|i| admin || i.project_id == project);
                if !visible {
                    return Err(ComputeError::BadRequest(format!(
                        "Instance {uuid} named in the {hint} scheduler hint could not be found."
                    )));
                }
            }
        }
        drop(conn);

        // The NICs, made before anything is written for every instance that may be created:
        // a network, address or port that cannot be had fails the create with nothing left.
        // The guard gives back whatever no committed instance took (surplus ones, and all of
        // them on any failure below).
        let requests = self.requested_nics(auth, &req).await?;
        let uuids: Vec<String> = (0..req.max_count)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        let mut held = HeldNics::new(self.networking.clone(), self.db.clone());
        if !requests.is_empty() {
            if req.max_count > 1
                && requests
                    .iter()
                    .any(|r| matches!(r, crate::peers::NicRequest::Port(_)))
            {
                return Err(ComputeError::BadRequest(
                    "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.".into(),
                ));
            }
            let zone = req
                .availability_zone
                .as_deref()
                .map(|a| split_az(a).0)
                .filter(|z| !z.is_empty())
                .unwrap_or(&self.config.default_availability_zone);
            let owner = format!("compute:{zone}");
            for u in &uuids {
                let nics = self
                    .networking
                    .allocate(auth, u, &owner, &requests, &req.security_groups)
                    .await?;
                held.nics.insert(u.clone(), nics);
            }
        }

        let snapshot = FlavorSnapshot {
            id: flavor.id.clone(),
            name: flavor.name.clone(),
            vcpus: flavor.vcpus,
            ram: flavor.ram,
            disk: flavor.disk,
            ephemeral: flavor.ephemeral,
            swap: flavor.swap,
            extra_specs: flavor.extra_specs.clone(),
        };
        let now = now_micros();
        let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let spec = serde_json::json!({
            "networks": req.networks.to_json(),
            "security_groups": req.security_groups,
            "scheduler_hints": req.hints,
            "availability_zone": req.availability_zone,
            "image_properties": image.properties,
        });
        let mut tx = self.db.begin_write().await?;
        // Quota: counted in the same transaction as the insert, with the project's lock row
        // taken first, so two creates at the limit cannot both pass. A project without limits
        // has nothing to race for: its creates need not wait for each other on the lock row
        // (on PostgreSQL they otherwise queue behind one another).
        let limits = self.instance_quota_limits(&mut tx, &project).await?;
        let limited = limits.0 >= 0 || limits.1 >= 0 || limits.2 >= 0;
        let (used_n, used_cores, used_ram) = if limited {
            instances::lock_project(&mut tx, &project).await?;
            instances::usage(&mut tx, &project).await?
        } else {
            (0, 0, 0)
        };
        let fits = |n: i64| {
            let over = |limit: i64, used: i64, per: i64| limit >= 0 && used + per * n > limit;
            if over(limits.0, used_n, 1) {
                Some(("instances", limits.0, used_n, 1))
            } else if over(limits.1, used_cores, flavor.vcpus) {
                Some(("cores", limits.1, used_cores, flavor.vcpus))
            } else if over(limits.2, used_ram, flavor.ram) {
                Some(("ram", limits.2, used_ram, flavor.ram))
            } else {
                None
            }
        };
        let mut count = req.max_count;
        while count > req.min_count && fits(count).is_some() {
            count -= 1;
        }
        if let Some((res, limit, used, per)) = fits(count) {
            drop(tx);
            return Err(ComputeError::QuotaExceeded(format!(
                "Quota exceeded for {res}: Requested {}, but already used {used} of {limit} {res}",
                per * count
            )));
        }
        let mut created = Vec::new();
        for index in 0..count {
            let uuid = uuids
                .get(usize::try_from(index).unwrap_or(usize::MAX))
                .cloned()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let nics = held.nics.get(&uuid).cloned().unwrap_or_default();
            let name = if count > 1 {
                format!("{}-{}", req.name, index + 1)
            } else {
                req.name.clone()
            };
            let inst = Instance {
                uuid: uuid.clone(),
                hostname: req
                    .hostname
                    .clone()
                    .unwrap_or_else(|| sanitize_hostname(&name)),
                display_name: name,
                display_description: req.description.clone(),
                project_id: project.clone(),
                user_id: auth.user_id.clone(),
                image_ref: image.id.clone(),
                flavor: snapshot.clone(),
                key_name: key.as_ref().map(|k| k.name.clone()),
                key_data: key.as_ref().map(|k| k.public_key.clone()),
                user_data: req.user_data.clone(),
                config_drive: if req.config_drive || self.config.force_config_drive {
                    "True".into()
                } else {
                    String::new()
                },
                availability_zone: req
                    .availability_zone
                    .as_deref()
                    .map(|a| split_az(a).0.to_string())
                    .filter(|a| !a.is_empty()),
                host: None,
                node: None,
                vm_state: VmState::Building,
                task_state: Some(TaskState::Scheduling),
                power_state: PowerState::NoState,
                desired_power: Desired::Running,
                target_vm_state: VmState::Active,
                one_shot: None,
                generation: 1,
                done_generation: 0,
                locked: false,
                locked_by: None,
                locked_reason: None,
                access_ip_v4: req.access_ip_v4.clone(),
                access_ip_v6: req.access_ip_v6.clone(),
                reservation_id: reservation_id.clone(),
                launch_index: index,
                progress: 0,
                request_spec: spec.clone(),
                addresses: addresses_of(&nics),
                launched_at: None,
                terminated_at: None,
                created_at: now,
                updated_at: Some(now),
                deleted: false,
                metadata: req.metadata.clone(),
                tags: req.tags.clone(),
            };
            instances::insert(&mut tx, &inst).await?;
            let rows: Vec<crate::model::InstanceNic> = nics.iter().map(|n| n.nic.clone()).collect();
            db::instance_nics::insert(&mut tx, &uuid, &rows).await?;
            self.record_injection(&mut tx, &inst, inst.generation, &req.injected, now)
                .await?;
            if let Some(g) = &group {
                db::server_groups::add_member(&mut tx, &g.0, &uuid).await?;
            }
            actions::start(
                &mut tx,
                &uuid,
                request_id,
                "create",
                &project,
                &auth.user_id,
                None,
                now,
            )
            .await?;
            created.push(inst);
        }
        tx.commit().await?;
        for i in &created {
            held.nics.remove(&i.uuid);
        }
        self.schedule_now.notify_one();
        Ok(created)
    }

    /// The NICs a create asks for: its list, or the project's one available network
    /// (several are ambiguous, as in Nova); with none, no NIC, or for `auto` the network
    /// get-me-a-network makes for the project.
    async fn requested_nics(
        &self,
        auth: &AuthContext,
        req: &CreateRequest,
    ) -> Result<Vec<crate::peers::NicRequest>> {
        match &req.networks {
            RequestedNetworks::None => Ok(Vec::new()),
            RequestedNetworks::List(l) => Ok(l.clone()),
            RequestedNetworks::Available | RequestedNetworks::Auto => {
                let id = match self.available_network(auth).await? {
                    Some(id) => id,
                    None if req.networks == RequestedNetworks::Auto => {
                        self.networking.auto_allocated_network(auth).await?
                    }
                    None => return Ok(Vec::new()),
                };
                Ok(vec![crate::peers::NicRequest::Network {
                    id,
                    fixed_ip: None,
                }])
            }
        }
    }

    /// The caller's one available network when it names none (for a create or an
    /// interface attach): None when it has none, Nova's 409 when several would do.
    pub(crate) async fn available_network(&self, auth: &AuthContext) -> Result<Option<String>> {
        let mut nets = self.networking.server_networks(auth).await?;
        match nets.len() {
            0 => Ok(None),
            1 => Ok(Some(nets.remove(0))),
            _ => Err(ComputeError::Conflict(
                "Multiple possible networks found, use a Network ID to be more specific.".into(),
            )),
        }
    }

    /// The availability zone of `host`: its aggregate's, else the default.
    pub(crate) async fn host_zone(&self, conn: &mut db::Conn, host: &str) -> Result<String> {
        Ok(self
            .host_zones(conn)
            .await?
            .remove(host)
            .unwrap_or_else(|| self.config.default_availability_zone.clone()))
    }

    /// The zone of every host in a zoned aggregate (others are in the default zone).
    pub(crate) async fn host_zones(
        &self,
        conn: &mut db::Conn,
    ) -> Result<std::collections::HashMap<String, String>> {
        let mut out = std::collections::HashMap::new();
        for a in db::aggregates::all(conn).await? {
            if let Some(z) = a.availability_zone {
                for h in a.hosts {
                    out.entry(h).or_insert_with(|| z.clone());
                }
            }
        }
        Ok(out)
    }

    pub(crate) async fn zone_exists(&self, conn: &mut db::Conn, zone: &str) -> Result<bool> {
        if zone == self.config.default_availability_zone {
            return Ok(true);
        }
        Ok(db::aggregates::all(conn)
            .await?
            .iter()
            .any(|a| a.availability_zone.as_deref() == Some(zone)))
    }

    /// (id, policy, max_server_per_host) of a server group.
    async fn group_of(
        &self,
        conn: &mut db::Conn,
        id: &str,
    ) -> Result<Option<(String, String, Option<i64>)>> {
        Ok(db::server_groups::get(conn, id)
            .await?
            .map(|g| (g.id.clone(), g.policy.clone(), g.max_server_per_host)))
    }

    /// (instances, cores, ram) limits of a project; -1 is unlimited.
    async fn instance_quota_limits(
        &self,
        conn: &mut db::Conn,
        project: &str,
    ) -> Result<(i64, i64, i64)> {
        let l = db::quotas::limits_for(conn, project, "").await?;
        Ok((l.limit("instances"), l.limit("cores"), l.limit("ram")))
    }

    /// Starts the scheduling loop: places every instance waiting for a host, when woken by a
    /// create and at least every 2 s (so instances left waiting by a crash are picked up).
    pub fn spawn_scheduler(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.schedule_pending().await {
                    tracing::warn!(error = %e, "scheduling pass failed");
                }
                if let Err(e) = me.auto_confirm_resizes().await {
                    tracing::warn!(error = %e, "auto-confirm pass failed");
                }
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    me.schedule_now.notified(),
                )
                .await;
            }
        })
    }

    /// Places every instance in BUILD without a host.
    pub async fn schedule_pending(&self) -> Result<()> {
        let waiting: Vec<Instance> = {
            let mut conn = self.db.pool.acquire().await?;
            instances::waiting_for_host(&mut conn).await?
        };
        for inst in waiting {
            if let Err(e) = self.schedule_one(&inst, &[]).await {
                tracing::warn!(instance = %inst.uuid, error = %e, "scheduling failed");
            }
        }
        Ok(())
    }

    /// Loads host states for the scheduler: placement capacity, service status, zones and
    /// aggregate metadata, and which hosts run which instances.
    pub async fn load_host_states(&self) -> Result<Vec<HostState>> {
        let providers = self.placement.provider_states().await?;
        let mut conn = self.db.pool.acquire().await?;
        let services = hosts::services(&mut conn).await?;
        let aggregates = db::aggregates::all(&mut conn).await?;
        let placed = instances::host_map(&mut conn).await?;
        drop(conn);
        let now = now_micros();
        let svc_by_host: HashMap<&str, &hosts::Service> = services
            .iter()
            .filter(|s| s.binary == "nova-compute")
            .map(|s| (s.host.as_str(), s))
            .collect();
        let mut zone_of: HashMap<&str, String> = HashMap::new();
        let mut meta_of: HashMap<&str, BTreeMap<String, Vec<String>>> = HashMap::new();
        for a in &aggregates {
            for h in &a.hosts {
                if let Some(z) = &a.availability_zone {
                    zone_of.insert(h.as_str(), z.clone());
                }
                let m = meta_of.entry(h.as_str()).or_default();
                for (k, v) in &a.metadata {
                    m.entry(k.clone()).or_default().push(v.clone());
                }
            }
        }
        let mut by_host: HashMap<&str, HashSet<String>> = HashMap::new();
        for (uuid, host) in &placed {
            by_host
                .entry(host.as_str())
                .or_default()
                .insert(uuid.clone());
        }
        let mut out = Vec::with_capacity(providers.len());
        for p in providers {
            let Some(s) = svc_by_host.get(p.name.as_str()) else {
                continue; // a provider that is not a compute host
            };
            let mut free = Resources::default();
            let mut capacity = Resources::default();
            for (class, inv) in &p.inventories {
                let (Some(f), Some(c)) = (free.get_mut(class), capacity.get_mut(class)) else {
                    continue; // a class no flavor asks for
                };
                let cap = inv.capacity();
                let used = p.used.get(class).copied().unwrap_or(0);
                *c = cap;
                *f = (cap - used).min(inv.max_unit);
            }
            out.push(HostState {
                host: p.name.clone(),
                provider_uuid: p.uuid.clone(),
                hypervisor_type: "fake".into(),
                enabled: !s.disabled,
                up: crate::model::service_is_up(
                    s.forced_down,
                    s.last_seen_up,
                    now,
                    self.config.service_down_time,
                ),
                free,
                capacity,
                availability_zone: zone_of
                    .get(p.name.as_str())
                    .cloned()
                    .unwrap_or_else(|| self.config.default_availability_zone.clone()),
                aggregate_metadata: meta_of.remove(p.name.as_str()).unwrap_or_default(),
                instances: by_host.remove(p.name.as_str()).unwrap_or_default(),
            });
        }
        // Sorted by name: ties in weighing go to the first name, and a claimed host is found
        // by binary search.
        out.sort_unstable_by(|a, b| a.host.cmp(&b.host));
        Ok(out)
    }

    /// Builds the scheduler request of an instance.
    pub(crate) async fn request_for(&self, inst: &Instance, ignore: &[String]) -> Result<Request> {
        let spec = &inst.request_spec;
        let hints = spec.get("scheduler_hints").cloned().unwrap_or_default();
        let hints = hints.as_object().cloned().unwrap_or_default();
        let list = |k: &str| hint_uuids(&hints, k);
        let (zone, forced_host) = match spec.get("availability_zone").and_then(|v| v.as_str()) {
            Some(az) => {
                let (z, h) = split_az(az);
                (
                    Some(z.to_string()).filter(|z| !z.is_empty()),
                    h.map(str::to_string),
                )
            }
            None => (None, None),
        };
        // A host asked for by an unshelve (2.91), for this placement only.
        let forced_host = spec
            .get("requested_host")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or(forced_host);
        let group = match hints.get("group").and_then(|v| v.as_str()) {
            Some(g) => {
                let mut conn = self.db.pool.acquire().await?;
                match self.group_of(&mut conn, g).await? {
                    Some((id, policy, max)) => {
                        let member_hosts =
                            instances::group_member_hosts(&mut conn, &id, &inst.uuid).await?;
                        Some(GroupHint {
                            id,
                            policy,
                            max_server_per_host: max,
                            member_hosts,
                        })
                    }
                    None => None,
                }
            }
            None => None,
        };
        let image_properties = spec
            .get("image_properties")
            .and_then(|v| v.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let resources = Resources::for_flavor(&inst.flavor);
        Ok(Request {
            instance_uuid: inst.uuid.clone(),
            project_id: inst.project_id.clone(),
            user_id: inst.user_id.clone(),
            resources,
            availability_zone: zone,
            forced_host,
            flavor_extra_specs: inst.flavor.extra_specs.clone(),
            image_properties,
            group,
            same_host: list("same_host"),
            different_host: list("different_host"),
            ignore_hosts: ignore.to_vec(),
        })
    }

    /// The best hosts for `req` from the cached host states, best first (at most
    /// [`scheduler::CLAIM_CANDIDATES`]), as (host, provider uuid); or why none fits.
    pub(crate) async fn rank_hosts(
        &self,
        req: &Request,
    ) -> Result<Result<Vec<(String, String)>, scheduler::NoValidHost>> {
        match self.rank_cached(req).await? {
            Ok(ranked) => Ok(Ok(ranked)),
            // The cached states may count a claim twice (a reload that already saw it, then
            // the claim's own update) or miss freed resources: "no valid host" must hold on
            // fresh states before a server fails for it.
            Err(_) => {
                self.hosts.invalidate().await;
                self.rank_cached(req).await
            }
        }
    }

    async fn rank_cached(
        &self,
        req: &Request,
    ) -> Result<Result<Vec<(String, String)>, scheduler::NoValidHost>> {
        let strategy = self.config.strategy;
        self.hosts
            .with_hosts(
                || self.load_host_states(),
                |hosts| {
                    scheduler::select_top(hosts, req, strategy, scheduler::CLAIM_CANDIDATES).map(
                        |r| {
                            r.iter()
                                .map(|h| (h.host.clone(), h.provider_uuid.clone()))
                                .collect()
                        },
                    )
                },
            )
            .await
    }

    /// Picks a host for `inst`, claims its resources, and hands it to that host's agent; on no
    /// valid host the instance goes to ERROR with a fault that says why.
    pub async fn schedule_one(&self, inst: &Instance, ignore: &[String]) -> Result<Option<String>> {
        let req = self.request_for(inst, ignore).await?;
        let ranked = match self.rank_hosts(&req).await? {
            Ok(ranked) => ranked,
            Err(why) => {
                self.fail_build(inst, &why.to_string()).await?;
                return Ok(None);
            }
        };
        // The claim and placing the instance commit together: no claim without its instance
        // (deleted meanwhile: nothing is written), no placed instance without its claim.
        let mut tx = self.db.begin_write().await?;
        let Some(host) =
            scheduler::claim_first(&self.placement, &mut tx, &ranked, &req, None).await?
        else {
            drop(tx);
            self.hosts.invalidate().await;
            self.fail_build(
                inst,
                "No valid host was found. Every candidate host was claimed by concurrent requests.",
            )
            .await?;
            return Ok(None);
        };
        let now = now_micros();
        // Like Nova, the instance takes its host's zone (the request spec keeps what was asked).
        // Read in the transaction: waiting for the host cache (which may reload everything)
        // would hold the writer meanwhile.
        let zone = Some(
            db::aggregates::zone_of_host(&mut tx, &host)
                .await?
                .unwrap_or_else(|| self.config.default_availability_zone.clone()),
        );
        if !instances::place(&mut tx, &inst.uuid, &host, zone.as_deref(), now).await? {
            // Deleted (or placed by someone else) meanwhile: the claim goes with the rollback.
            return Ok(None);
        }
        if let Some(o) = inst.request_spec.as_object() {
            if o.contains_key("requested_host") {
                let mut spec = o.clone();
                spec.remove("requested_host");
                instances::set_request_spec(
                    &mut tx,
                    &inst.uuid,
                    &serde_json::Value::Object(spec),
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
        // Reflect the claim in the cached host states so the next decision sees it.
        self.hosts
            .update(|hosts| {
                // Host states are sorted by name (see load_host_states).
                if let Ok(i) = hosts.binary_search_by(|h| h.host.as_str().cmp(&host)) {
                    hosts[i].free.subtract(&req.resources);
                    hosts[i].instances.insert(inst.uuid.clone());
                }
            })
            .await;
        self.wakeups.wake(&host);
        Ok(Some(host))
    }

    async fn fail_build(&self, inst: &Instance, message: &str) -> Result<()> {
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        instances::set_error(&mut tx, &inst.uuid, inst.generation, now).await?;
        db::instance_injections::drop_up_to(&mut tx, &inst.uuid, i64::MAX).await?;
        instances::add_fault(&mut tx, &inst.uuid, 500, message, "", None, now).await?;
        actions::finish_open(&mut tx, &inst.uuid, Some(message), None, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The server `id` as `auth` may see it: its own project's, or any for a cloud admin.
    /// Another project's server is NotFound, as one that does not exist (Nova does not
    /// reveal it).
    pub async fn find_server(&self, auth: &AuthContext, id: &str) -> Result<Instance> {
        let mut conn = self.db.pool.acquire().await?;
        instances::get(&mut conn, id, false)
            .await?
            .filter(|i| auth.is_admin || auth.project_id() == Some(i.project_id.as_str()))
            .ok_or_else(|| instance_not_found(id))
    }

    /// The latest fault recorded on a server (what its show answer has when it is in ERROR).
    pub async fn server_fault(&self, uuid: &str) -> Result<Option<instance::Fault>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(instances::latest_faults(&mut conn, &[uuid])
            .await?
            .remove(uuid))
    }

    /// The ids of the server groups `uuid` is a member of (none or one).
    pub async fn server_group_ids(&self, uuid: &str) -> Result<Vec<String>> {
        let mut conn = self.db.pool.acquire().await?;
        let group = db::server_groups::for_instance(&mut conn, uuid).await?;
        Ok(group.map(|g| vec![g.id]).unwrap_or_default())
    }

    /// Changes a server's names, description and access addresses (the fields `update`
    /// names; the others keep their value) in one transaction; returns the server as
    /// stored afterwards.
    pub async fn update_server(&self, inst: &Instance, update: ServerUpdate) -> Result<Instance> {
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        instances::update_fields(
            &mut tx,
            &inst.uuid,
            update.name.as_deref(),
            update.description.as_ref().map(|d| d.as_deref()),
            update.hostname.as_deref(),
            now,
        )
        .await?;
        for (col, val) in [
            ("access_ip_v4", &update.access_ip_v4),
            ("access_ip_v6", &update.access_ip_v6),
        ] {
            if let Some(val) = val {
                instances::set_text(&mut tx, &inst.uuid, col, Some(val), now).await?;
            }
        }
        tx.commit().await?;
        self.stored_instance(&inst.uuid).await
    }

    /// The instance as stored now (NotFound once deleted): what an answer after a change
    /// shows.
    pub(crate) async fn stored_instance(&self, uuid: &str) -> Result<Instance> {
        let mut conn = self.db.pool.acquire().await?;
        instances::get(&mut conn, uuid, false)
            .await?
            .ok_or_else(|| instance_not_found(uuid))
    }

    /// Deletes a server: its agent removes the guest, then the record is marked deleted and
    /// its resources given back. A server on no host is deleted at once. A locked server is
    /// deleted by admins only (409).
    pub async fn delete_server(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        check_lock(inst, auth)?;
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        actions::start(
            &mut tx,
            &inst.uuid,
            request_id,
            "delete",
            &inst.project_id,
            &auth.user_id,
            inst.host.as_deref(),
            now,
        )
        .await?;
        let on_host = inst.host.is_some();
        // Its ports go now: the host's data plane unplugs them as it removes the guest.
        let nics = db::instance_nics::of_instance(&mut tx, &inst.uuid).await?;
        db::instance_nics::delete_of(&mut tx, &inst.uuid).await?;
        // Hosts holding a copy from an unfinished move remove it too.
        db::migrations::abandon_for_delete(&mut tx, &inst.uuid, now).await?;
        if on_host {
            instances::set_desire(
                &mut tx,
                &inst.uuid,
                Desired::Absent,
                VmState::Deleted,
                Some(TaskState::Deleting),
                None,
                now,
            )
            .await?;
        } else {
            instances::mark_deleted(&mut tx, &inst.uuid, now).await?;
            db::instance_injections::drop_up_to(&mut tx, &inst.uuid, i64::MAX).await?;
            actions::finish_open(&mut tx, &inst.uuid, None, None, now).await?;
            self.placement
                .remove_allocations_in(&mut tx, &inst.uuid)
                .await?;
        }
        tx.commit().await?;
        self.networking.release(&inst.uuid, &nics).await;
        if let Some(h) = &inst.host {
            self.wakeups.wake(h);
        }
        // A shelved server's disk image goes with it.
        if let Some(image) = crate::app::lifecycle::shelved_image(inst) {
            if let Err(e) = self.image.delete_snapshot_image(image).await {
                tracing::warn!(%image, error = %e, "could not delete a shelve image");
            }
        }
        Ok(())
    }

    /// An action whose work the host's agent does (power changes and one-shots): checks
    /// Nova's state rules (409), then in one write transaction re-checks them, records the
    /// action and sets the desired state; then wakes the agent.
    pub async fn request_change(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        change: Change,
    ) -> Result<()> {
        let action = change.action;
        check_state(inst, action)?;
        let host = inst.host.clone().ok_or_else(|| {
            ComputeError::Conflict(format!(
                "Cannot '{action}' instance {} while it is on no host",
                inst.uuid
            ))
        })?;
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        // Re-read inside the write transaction: a concurrent action may have started.
        let fresh = instances::get(&mut tx, &inst.uuid, false)
            .await?
            .ok_or_else(|| {
                ComputeError::NotFound(format!("Instance {} could not be found.", inst.uuid))
            })?;
        check_state(&fresh, action)?;
        actions::start(
            &mut tx,
            &inst.uuid,
            request_id,
            action.as_str(),
            &inst.project_id,
            &auth.user_id,
            Some(&host),
            now,
        )
        .await?;
        let desired = change.desired.unwrap_or(fresh.desired_power);
        instances::set_desire(
            &mut tx,
            &inst.uuid,
            desired,
            change.target_vm_state,
            change.task_state,
            change.one_shot.as_ref(),
            now,
        )
        .await?;
        tx.commit().await?;
        self.wakeups.wake(&host);
        Ok(())
    }
}

/// What an API action asks of an instance's agent ([`ComputeService::request_change`]).
pub struct Change {
    /// The action (its name is the os-instance-actions one; its row of the state table
    /// decides whether the instance may take it).
    pub action: Action,
    /// The power the guest should have; None keeps what it should have now (a snapshot
    /// leaves it as it is).
    pub desired: Option<Desired>,
    pub target_vm_state: VmState,
    /// None for an action Nova shows no task for (a crash dump).
    pub task_state: Option<TaskState>,
    /// The operation the agent does once (`instances.one_shot`).
    pub one_shot: Option<OneShot>,
}

/// 400 unless a flavor of `ram` MiB and `disk` GiB (0: sized by the image) can boot `image`.
pub(crate) fn check_image_fits(
    image: &ferrostack_image::model::Image,
    ram: i64,
    disk: i64,
) -> Result<()> {
    if image.min_ram > ram {
        return Err(ComputeError::BadRequest(
            "Flavor's memory is too small for requested image.".into(),
        ));
    }
    let size_gb = i64::try_from(
        image
            .size
            .unwrap_or(0)
            .max(0)
            .unsigned_abs()
            .div_ceil(1 << 30),
    )
    .unwrap_or(i64::MAX);
    if disk > 0 && (image.min_disk > disk || size_gb > disk) {
        return Err(ComputeError::BadRequest(
            "Flavor's disk is too small for requested image.".into(),
        ));
    }
    Ok(())
}

/// Nova's InstanceNotFound (404), also for a server the caller may not see.
pub fn instance_not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Instance {id} could not be found."))
}

/// 409 for a locked server (unless admin), as Nova's `check_instance_lock`.
pub fn check_lock(inst: &Instance, auth: &AuthContext) -> Result<()> {
    if inst.locked && !auth.is_admin {
        return Err(ComputeError::Conflict(format!(
            "Instance {} is locked",
            inst.uuid
        )));
    }
    Ok(())
}

/// 409 unless the state table allows `action` in the instance's vm state and no task is in
/// progress (Nova's `check_instance_state`).
pub fn check_state(inst: &Instance, action: Action) -> Result<()> {
    action
        .check(inst.vm_state, inst.task_state)
        .map_err(|refusal| ComputeError::Conflict(refusal.message(action, &inst.uuid)))
}

/// The server uuids of a `same_host`/`different_host` hint (one string or a list).
pub fn hint_uuids(hints: &serde_json::Map<String, serde_json::Value>, key: &str) -> Vec<String> {
    match hints.get(key) {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// `zone:host` (or `zone:host:node`, or `:host`) into its parts.
pub fn split_az(az: &str) -> (&str, Option<&str>) {
    let mut it = az.splitn(3, ':');
    let zone = it.next().unwrap_or("");
    let host = it.next().filter(|h| !h.is_empty());
    (zone, host)
}

/// A hostname from a display name, as Nova does (letters, digits and hyphens, at most 63).
pub fn sanitize_hostname(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else if c == ' ' || c == '_' || c == '.' {
                '-'
            } else {
                '\0'
            }
        })
        .filter(|c| *c != '\0')
        .collect();
    s = s.trim_matches('-').chars().take(63).collect();
    if s.is_empty() {
        "server".into()
    } else {
        s
    }
}
