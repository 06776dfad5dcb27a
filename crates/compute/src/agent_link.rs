//! The controller side of the agent protocol over the database: what each host should run,
//! what its agent reported, heartbeats and host registration (service, hypervisor record,
//! placement provider), the questions waiting for each host. In all-in-one the agents call it
//! in process; `ferrostack agent` reaches the same functions over HTTP (`api/agents.rs`).
//! Either way a question to a host takes one path: stored, the host's agent woken, answered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferrostack_agent_api::{
    Answer, Arrival, Ask, Controller, Departure, Desired, DesiredGuest, DesiredHost, GuestNic,
    GuestSpec, HostInfo, HostReport, ImageInfo, LinkError, OneShot, Outgoing, PowerState, Query,
};
use ferrostack_placement::{ComputeProvider, Inventory};
use ferrostack_store::now_micros;

use crate::db::{actions, agent_queries, hosts, instance_nics, instances, migrations};
use crate::error::ComputeError;
use crate::instance::Instance;
use crate::state::VmState;
use crate::ComputeService;

/// One `Notify` per host, created on first use.
#[derive(Default)]
pub struct Wakeups(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Notify>>>);

impl Wakeups {
    pub fn of(&self, host: &str) -> Arc<tokio::sync::Notify> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(host.to_string()).or_default().clone()
    }
    /// Tells the agent of `host` to converge now.
    pub fn wake(&self, host: &str) {
        self.of(host).notify_one();
    }
}

/// How long a building server waits for its ports to be wired before it goes ACTIVE
/// anyway (Nova's `vif_plugging_timeout`, 300 s).
pub const VIF_PLUG_TIMEOUT_MICROS: i64 = 300_000_000;

fn err(what: &'static str) -> impl Fn(ComputeError) -> LinkError {
    move |e| LinkError::controller(what, e)
}

/// The guest an instance should be, as the agent sees it.
pub fn desired_guest(i: &Instance) -> DesiredGuest {
    DesiredGuest {
        spec: GuestSpec {
            uuid: i.uuid.clone(),
            name: i.display_name.clone(),
            hostname: i.hostname.clone(),
            vcpus: i.flavor.vcpus,
            memory_mb: i.flavor.ram,
            root_gb: i.flavor.disk,
            ephemeral_gb: i.flavor.ephemeral,
            swap_mb: i.flavor.swap,
            // An unshelved instance boots from its shelve snapshot.
            image_ref: crate::app::lifecycle::shelved_image(i)
                .unwrap_or(&i.image_ref)
                .to_string(),
            user_data: i.user_data.clone(),
            key_data: i.key_data.clone(),
            metadata: serde_json::to_value(&i.metadata).unwrap_or_default(),
            key_name: i.key_name.clone(),
            config_drive: !i.config_drive.is_empty(),
            project_id: i.project_id.clone(),
            availability_zone: i.availability_zone.clone(),
            injected: None,
            nics: Vec::new(),
        },
        desired: i.desired_power,
        one_shot: i.one_shot.clone(),
        generation: i.generation,
        settled: i.done_generation == i.generation,
        known_power: i.power_state,
        arrival: None,
        departure: None,
    }
}

/// A guest's NIC as its host makes it, from the port the instance has.
pub(crate) fn guest_nic(n: crate::model::InstanceNic) -> GuestNic {
    GuestNic {
        port_id: n.port_id,
        mac: n.mac,
        mtu: n.mtu,
        position: Some(n.position),
    }
}

/// How a guest moving to its destination comes there, or None when the destination must wait
/// (a cold move's source has not handed the disk over yet) and not see it at all.
fn arrival(m: &migrations::Migration) -> Option<Option<Arrival>> {
    let migration = m.uuid.clone();
    match (m.is_live(), m.status.as_str()) {
        (false, "migrating") => None,
        (false, _) => Some(Some(Arrival::Disk { migration })),
        (true, status) => Some(Some(Arrival::Live {
            migration,
            sent: status == "post-migrating",
        })),
    }
}

/// Whether a failure of the instance's current operation leaves its guest as it was (a
/// snapshot for createImage or createBackup, a crash dump), and then the images to delete:
/// the snapshot that was never filled. Any other failure puts the instance in ERROR. A
/// shelve's snapshot is not one of these: the instance was already on its way off the host.
fn failure_keeps_guest(i: &Instance) -> Option<Vec<String>> {
    if i.desired_power == Desired::Absent {
        return None;
    }
    match i.one_shot.as_ref()? {
        OneShot::CrashDump => Some(Vec::new()),
        OneShot::Snapshot { image } => Some(vec![image.clone()]),
        _ => None,
    }
}

/// What a host that an instance left (or a reverted resize's destination) must do with its
/// copy: keep it stopped while a resize can still be reverted, keep it as it is while a live
/// migration runs, remove it once the move is over.
pub fn side_guest(i: &Instance, m: &migrations::Migration, host: &str) -> Option<DesiredGuest> {
    let mut g = desired_guest(i);
    g.one_shot = None;
    let as_source = m.source_compute == host;
    let migration = m.uuid.clone();
    let keep = match (as_source, m.status.as_str()) {
        // A cold move's source powers its guest off, hands its disk over, and keeps it
        // until confirm.
        (true, "migrating") if m.is_cold() => {
            g.departure = Some(Departure::HandOver { migration });
            Some(Desired::Stopped)
        }
        (true, "migrating" | "post-migrating" | "finished") if !m.is_live() => {
            Some(Desired::Stopped)
        }
        // The source of a live migration runs the guest until it has sent it to the
        // destination, once that waits for it.
        (true, "running") => {
            if let Some(endpoint) = m.dest_endpoint.clone() {
                g.departure = Some(Departure::Live {
                    migration,
                    endpoint,
                    force_complete: m.force_complete,
                });
            }
            Some(g.desired)
        }
        // Live: sent; the others: over.
        (true, "post-migrating" | "confirming" | "completed" | "accepted" | "done") => None,
        // A reverted resize's destination, a failed or aborted move's destination.
        (false, "reverting" | "error" | "cancelled") => None,
        _ => return None,
    };
    if let (true, Some(f)) = (as_source, &m.old_flavor) {
        g.spec.vcpus = f.vcpus;
        g.spec.memory_mb = f.ram;
        g.spec.root_gb = f.disk;
        g.spec.ephemeral_gb = f.ephemeral;
        g.spec.swap_mb = f.swap;
    }
    match keep {
        Some(d) => {
            g.desired = d;
            // Nothing to report unless the guest drifts, or once it has done its part of a
            // move.
            g.settled = g.departure.is_none();
            g.known_power = if d == Desired::Stopped {
                PowerState::Shutdown
            } else {
                g.known_power
            };
        }
        None => {
            g.desired = Desired::Absent;
            g.settled = false;
        }
    }
    Some(g)
}

/// The removal of a copy that move `m` left on `host` while instance `i` is placed on that
/// host again (moved back before the copy was gone): that copy goes first, and the instance's
/// own guest is built once it is gone, never taking the stale copy for the arriving guest.
/// None when `m` leaves nothing there to remove (a resize on the instance's own host keeps
/// its one guest).
fn stale_copy(i: &Instance, m: &migrations::Migration, host: &str) -> Option<DesiredGuest> {
    if m.in_place() {
        return None;
    }
    side_guest(i, m, host).filter(|g| g.desired == Desired::Absent)
}

/// The controller as the in-process agents see it.
pub struct LocalController(pub Arc<ComputeService>);

/// How long an API request waits for an agent in its own process to answer a question.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(10);

impl ComputeService {
    /// Asks `host` what only it knows (a guest's console log, its diagnostics): Ok(Err(why))
    /// when the host answered that it cannot tell. Every host is asked the same way, whether
    /// its agent runs in this process or on another machine: the question is stored in
    /// `agent_queries`, the agent is woken (or sees it at its next resync when it polls
    /// another controller) and answers; this waits for the answer at most [`ASK_TIMEOUT`]
    /// (then 409).
    pub async fn ask_host(
        &self,
        host: &str,
        uuid: &str,
        ask: Ask,
    ) -> crate::error::Result<Result<String, String>> {
        let id = uuid::Uuid::new_v4().to_string();
        self.post_question(&id, host, uuid, ask).await?;
        let until = tokio::time::Instant::now() + ASK_TIMEOUT;
        let answer = loop {
            let got = {
                let mut conn = self.db.pool.acquire().await?;
                agent_queries::answer_of(&mut conn, &id).await?
            };
            if got.is_some() || tokio::time::Instant::now() >= until {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.drop_question(&id).await?;
        answer.ok_or_else(|| {
            ComputeError::Conflict(format!("The compute host {host} did not answer in time."))
        })
    }

    /// Stores question `id`, `ask` about guest `uuid`, for `host` and wakes its agent (the
    /// answer is read with `agent_queries::answer_of`).
    pub(crate) async fn post_question(
        &self,
        id: &str,
        host: &str,
        uuid: &str,
        ask: Ask,
    ) -> crate::error::Result<()> {
        let mut tx = self.db.begin_write().await?;
        agent_queries::insert(&mut tx, id, host, ask.as_str(), uuid, now_micros()).await?;
        tx.commit().await?;
        self.wakeups.wake(host);
        Ok(())
    }

    /// Removes question `id` once its asker is done with it, and any a crashed asker left
    /// behind.
    pub(crate) async fn drop_question(&self, id: &str) -> crate::error::Result<()> {
        let mut tx = self.db.begin_write().await?;
        agent_queries::remove(&mut tx, id, now_micros() - 60_000_000).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The questions waiting for `host`'s agent.
    pub async fn queries_for(&self, host: &str) -> crate::error::Result<Vec<Query>> {
        let mut conn = self.db.pool.acquire().await?;
        let open = agent_queries::open_for(&mut conn, host).await?;
        Ok(open
            .into_iter()
            .filter_map(|(id, uuid, kind)| {
                let ask = Ask::parse(&kind)?;
                Some(Query { id, uuid, ask })
            })
            .collect())
    }

    /// Records `host`'s answer to question `id`; false when nobody waits for it any more.
    pub async fn answer_query(
        &self,
        host: &str,
        id: &str,
        answer: &Answer,
    ) -> crate::error::Result<bool> {
        let mut tx = self.db.begin_write().await?;
        let open = agent_queries::answer(
            &mut tx,
            id,
            host,
            answer.result.as_deref(),
            answer.error.as_deref(),
        )
        .await?;
        tx.commit().await?;
        Ok(open)
    }

    /// Registers a host: its nova-compute service, its hypervisor record and its placement
    /// provider with VCPU/MEMORY_MB/DISK_GB inventory.
    pub async fn register_host(&self, host: &str, info: &HostInfo) -> crate::error::Result<()> {
        let now = now_micros();
        let node_uuid = {
            let mut tx = self.db.begin_write().await?;
            hosts::ensure_service(&mut tx, host, "nova-compute", now).await?;
            let uuid = hosts::upsert_node(&mut tx, host, info, now).await?;
            tx.commit().await?;
            uuid
        };
        let c = &self.config;
        let inv = |total: i64, reserved: i64, ratio: f64| Inventory {
            total,
            reserved,
            min_unit: 1,
            max_unit: total.max(1),
            step_size: 1,
            allocation_ratio: ratio,
        };
        let provider = ComputeProvider {
            uuid: node_uuid,
            name: host.to_string(),
            inventories: BTreeMap::from([
                (
                    "VCPU".to_string(),
                    inv(info.vcpus, 0, c.cpu_allocation_ratio),
                ),
                (
                    "MEMORY_MB".to_string(),
                    inv(
                        info.memory_mb,
                        c.reserved_host_memory_mb.min(info.memory_mb - 1).max(0),
                        c.ram_allocation_ratio,
                    ),
                ),
                (
                    "DISK_GB".to_string(),
                    inv(info.local_gb, 0, c.disk_allocation_ratio),
                ),
            ]),
            traits: info.traits.clone(),
        };
        self.placement.sync_compute_provider(&provider).await?;
        if let Some(vtep) = info.vtep {
            self.networking.register_host(host, vtep).await?;
        }
        Ok(())
    }

    /// Applies one agent report batch in one write transaction: the resources a deleted,
    /// offloaded or moved-away guest gave back leave placement in the same transaction that
    /// records it, so a crash can never keep them allocated.
    pub async fn apply_reports(&self, host: &str, report: HostReport) -> crate::error::Result<()> {
        if let Some(n) = &report.networking {
            self.networking.apply_host_report(host, n).await?;
        }
        let now = now_micros();
        let mut release = Vec::new();
        let mut drop_images: Vec<String> = Vec::new();
        let mut wake: Vec<String> = Vec::new();
        let mut moved_on: Vec<String> = Vec::new();
        let mut tx = self.db.begin_write().await?;
        for r in report.guests {
            // Deleted ones too: a host may still have to report removing a moved copy.
            let Some(inst) = instances::get(&mut tx, &r.uuid, true).await? else {
                continue;
            };
            if inst.host.as_deref() != Some(host) {
                // A host the instance left (or a reverted resize's destination, or a failed
                // move's).
                let departing = migrations::side_of(&mut tx, &inst.uuid, host)
                    .await?
                    .filter(|m| {
                        m.source_compute == host
                            && r.generation == inst.generation
                            && matches!(m.status.as_str(), "migrating" | "running")
                    });
                if let (Some(m), Some(e)) = (&departing, &r.error) {
                    // The source could not hand the guest over or send it (or lost it): the
                    // instance stays there.
                    if crate::app::moves::roll_back(self, &mut tx, &inst, m, "error", now).await? {
                        self.record_failed_move(&mut tx, &inst, e, host, now)
                            .await?;
                        wake.push(m.dest_compute.clone());
                        wake.push(host.to_string());
                        moved_on.push(m.uuid.clone());
                    }
                    continue;
                }
                if r.gone {
                    release.extend(crate::app::moves::side_gone(&mut tx, &inst, host, now).await?);
                    wake.extend(inst.host.clone());
                    continue;
                }
                let Some(m) = departing else {
                    continue;
                };
                if m.is_cold() && r.power == PowerState::Shutdown {
                    // The disk is handed over: the destination may build the guest.
                    migrations::set_status(&mut tx, m.id, "post-migrating", now).await?;
                    wake.push(m.dest_compute.clone());
                } else if let Some(Outgoing::Sending(p)) = &r.outgoing {
                    migrations::set_progress(&mut tx, m.id, p, now).await?;
                } else if r.outgoing == Some(Outgoing::Sent)
                    // Unless aborted in the same moment (the source then runs on).
                    && migrations::transition(&mut tx, m.id, "running", "post-migrating", now)
                        .await?
                {
                    // All sent: the destination may run the guest, the source removes its
                    // stopped copy.
                    wake.push(m.dest_compute.clone());
                    wake.push(host.to_string());
                }
                continue;
            }
            // A guest being built is ACTIVE only once its ports are wired on this host (Nova's
            // network-vif-plugged, here a reported fact that cannot be lost): until then its
            // report waits, and the agent reports again.
            if inst.vm_state == VmState::Building && r.error.is_none() && !r.gone {
                let ports: Vec<String> = instance_nics::of_instance(&mut tx, &inst.uuid)
                    .await?
                    .into_iter()
                    .map(|n| n.port_id)
                    .collect();
                // As Nova's vif_plugging_timeout (not fatal): a port never wired does not
                // keep its server building forever.
                let waited = now - inst.created_at > VIF_PLUG_TIMEOUT_MICROS;
                if !ports.is_empty()
                    && !waited
                    && !self.networking.ports_active(&ports, host).await?
                {
                    continue;
                }
            }
            // While a copy an earlier move left here is removed before the instance's own
            // guest is built here (`stale_copy`), the reports are about that copy: its end
            // completes the earlier move; its failure fails the move under way.
            if migrations::side_of(&mut tx, &inst.uuid, host)
                .await?
                .is_some_and(|m| stale_copy(&inst, &m, host).is_some())
            {
                if r.gone {
                    release.extend(crate::app::moves::side_gone(&mut tx, &inst, host, now).await?);
                    wake.push(host.to_string());
                    continue;
                }
                if r.error.is_none() {
                    continue;
                }
            }
            if inst.deleted {
                continue;
            }
            if let Some(endpoint) = &r.incoming {
                // A live migration's destination waits for the guest: tell the source where.
                let m = migrations::latest_of(&mut tx, &inst.uuid, &["running"]).await?;
                if let Some(m) = m.filter(|m| m.dest_compute == host) {
                    if m.dest_endpoint.as_deref() != Some(endpoint.as_str()) {
                        migrations::set_dest_endpoint(&mut tx, m.id, endpoint, now).await?;
                        wake.push(m.source_compute.clone());
                    }
                }
                continue;
            }
            let current =
                r.generation == inst.generation && inst.done_generation != inst.generation;
            if current {
                // The operation is over (built, failed or removed): what it injected is not
                // kept.
                crate::db::instance_injections::drop_up_to(&mut tx, &inst.uuid, inst.generation)
                    .await?;
            }
            if let Some(e) = &r.error {
                let moving = migrations::latest_of(
                    &mut tx,
                    &inst.uuid,
                    &["migrating", "post-migrating", "running"],
                )
                .await?
                .filter(|m| m.dest_compute == host);
                if let Some(m) = moving.filter(|_| current) {
                    // The destination could not build or receive the guest: it goes back to
                    // its source, which still has it.
                    if crate::app::moves::roll_back(self, &mut tx, &inst, &m, "error", now).await? {
                        self.record_failed_move(&mut tx, &inst, e, host, now)
                            .await?;
                        wake.push(m.source_compute.clone());
                        wake.push(host.to_string());
                        moved_on.push(m.uuid.clone());
                        continue;
                    }
                }
                if current {
                    match failure_keeps_guest(&inst) {
                        // The guest is as it was: back to its state (with the fault), as Nova
                        // reverts only the task state of a failed snapshot.
                        Some(unfilled) => {
                            instances::set_converged(
                                &mut tx,
                                &inst.uuid,
                                inst.generation,
                                r.power,
                                inst.target_vm_state,
                                now,
                            )
                            .await?;
                            drop_images.extend(unfilled);
                        }
                        None => {
                            instances::set_error(&mut tx, &inst.uuid, inst.generation, now).await?;
                            instances::set_power_state(&mut tx, &inst.uuid, r.power).await?;
                        }
                    }
                    instances::add_fault(&mut tx, &inst.uuid, 500, e, "", Some(host), now).await?;
                    actions::finish_open(&mut tx, &inst.uuid, Some(e), Some(host), now).await?;
                }
                continue;
            }
            if r.gone && inst.desired_power == Desired::Absent {
                if !current {
                    continue;
                }
                if inst.target_vm_state == VmState::Deleted {
                    instances::mark_deleted(&mut tx, &inst.uuid, now).await?;
                } else {
                    // Offloaded (shelve): off every host, resources given back.
                    instances::set_host(&mut tx, &inst.uuid, None, None, now).await?;
                    instances::set_converged(
                        &mut tx,
                        &inst.uuid,
                        inst.generation,
                        PowerState::NoState,
                        inst.target_vm_state,
                        now,
                    )
                    .await?;
                }
                actions::finish_open(&mut tx, &inst.uuid, None, Some(host), now).await?;
                release.push(inst.uuid.clone());
                // The one guest of this host is gone: so is any copy a move kept here (a
                // deleted server still in a resize on its own host).
                release.extend(crate::app::moves::side_gone(&mut tx, &inst, host, now).await?);
                continue;
            }
            if current && !r.gone {
                instances::set_converged(
                    &mut tx,
                    &inst.uuid,
                    inst.generation,
                    r.power,
                    inst.target_vm_state,
                    now,
                )
                .await?;
                moved_on.extend(crate::app::moves::arrived(&mut tx, &inst, host, now).await?);
                drop_images
                    .extend(crate::app::lifecycle::after_converged(&mut tx, &inst, now).await?);
                actions::finish_open(&mut tx, &inst.uuid, None, Some(host), now).await?;
            } else if r.power == PowerState::Shutdown
                && !r.gone
                && instances::stopped_on_its_own(&mut tx, &inst.uuid, inst.generation, now).await?
            {
                tracing::info!(uuid = %inst.uuid, %host, "the guest powered off on its own: server stopped (power state sync)");
            } else {
                instances::set_power_state(&mut tx, &inst.uuid, r.power).await?;
            }
        }
        for uuid in &release {
            self.placement.remove_allocations_in(&mut tx, uuid).await?;
        }
        tx.commit().await?;
        for h in &wake {
            self.wakeups.wake(h);
        }
        for m in &moved_on {
            self.drop_migration_disk(m).await;
        }
        for image in &drop_images {
            if let Err(e) = self.image.delete_snapshot_image(image).await {
                tracing::warn!(%image, error = %e, "could not delete an image the compute service made");
            }
        }
        if release.is_empty() {
            return Ok(());
        }
        // Released resources: the scheduler's cached free capacity is now too low.
        self.hosts.invalidate().await;
        Ok(())
    }

    /// A move that failed and was undone: the instance's fault and its action's error.
    async fn record_failed_move(
        &self,
        tx: &mut crate::db::Conn,
        inst: &Instance,
        error: &str,
        host: &str,
        now: i64,
    ) -> crate::error::Result<()> {
        tracing::warn!(uuid = %inst.uuid, %host, %error, "a move failed; the instance stays on its source");
        instances::add_fault(tx, &inst.uuid, 500, error, "", Some(host), now).await?;
        actions::finish_open(tx, &inst.uuid, Some(error), Some(host), now).await?;
        Ok(())
    }

    pub async fn desired_for(&self, host: &str) -> crate::error::Result<DesiredHost> {
        let mut conn = self.db.pool.acquire().await?;
        let list = instances::on_host(&mut conn, host).await?;
        let arriving: HashMap<String, migrations::Migration> =
            migrations::arriving(&mut conn, host)
                .await?
                .into_iter()
                .map(|m| (m.instance_uuid.clone(), m))
                .collect();
        let mut injections = self.injections_on(&mut conn, host).await?;
        let mut out: Vec<DesiredGuest> = Vec::with_capacity(list.len());
        for i in &list {
            let mut g = desired_guest(i);
            // What the create or rebuild under way injects (not an earlier one's).
            if let Some((generation, injected)) = injections.remove(&i.uuid) {
                if generation == i.generation {
                    g.spec.injected = Some(injected);
                }
            }
            if let Some(m) = arriving.get(&i.uuid) {
                match arrival(m) {
                    Some(a) => g.arrival = a,
                    None => continue,
                }
            }
            out.push(g);
        }
        for m in migrations::side_work(&mut conn, host).await? {
            let Some(i) = instances::get(&mut conn, &m.instance_uuid, true).await? else {
                continue;
            };
            match out.iter().position(|g| g.spec.uuid == m.instance_uuid) {
                None => out.extend(side_guest(&i, &m, host)),
                // The instance is placed here again: a copy the move left here goes first.
                // Otherwise (a resize on its own host) its own entry decides.
                Some(at) => {
                    if let Some(removal) = stale_copy(&i, &m, host) {
                        out[at] = removal;
                    }
                }
            }
        }
        // The guests' NICs: ports of the instances placed here are bound here (`own`), those
        // of guests a move brings or takes carried meanwhile (`moving`).
        let present: Vec<&str> = out
            .iter()
            .filter(|g| g.desired != Desired::Absent)
            .map(|g| g.spec.uuid.as_str())
            .collect();
        let mut nics = instance_nics::of_instances(&mut conn, &present).await?;
        drop(conn);
        let placed: HashSet<&str> = list
            .iter()
            .filter(|i| i.host.as_deref() == Some(host))
            .map(|i| i.uuid.as_str())
            .collect();
        let (mut own, mut moving) = (Vec::new(), Vec::new());
        for g in out.iter_mut().filter(|g| g.desired != Desired::Absent) {
            let Some(list) = nics.remove(&g.spec.uuid) else {
                continue;
            };
            let ports = list.iter().map(|n| n.port_id.clone());
            if placed.contains(g.spec.uuid.as_str()) {
                own.extend(ports);
            } else {
                moving.extend(ports);
            }
            g.spec.nics = list.into_iter().map(guest_nic).collect();
        }
        let networking = self.networking.host_networking(host, &own, &moving).await?;
        Ok(DesiredHost {
            guests: out,
            networking,
        })
    }

    pub async fn heartbeat(&self, host: &str) -> crate::error::Result<()> {
        let mut conn = self.db.writer.acquire().await?;
        hosts::heartbeat(&mut conn, host, now_micros()).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Controller for LocalController {
    async fn register(&self, host: &str, info: &HostInfo) -> Result<(), LinkError> {
        self.0
            .register_host(host, info)
            .await
            .map_err(err("registering the host"))
    }
    async fn desired(&self, host: &str) -> Result<DesiredHost, LinkError> {
        self.0
            .desired_for(host)
            .await
            .map_err(err("reading the desired state"))
    }
    async fn report(&self, host: &str, report: HostReport) -> Result<(), LinkError> {
        self.0
            .apply_reports(host, report)
            .await
            .map_err(err("applying a report"))
    }
    async fn heartbeat(&self, host: &str) -> Result<(), LinkError> {
        self.0
            .heartbeat(host)
            .await
            .map_err(err("recording a heartbeat"))
    }
    async fn queries(&self, host: &str) -> Result<Vec<Query>, LinkError> {
        self.0
            .queries_for(host)
            .await
            .map_err(err("reading the questions"))
    }
    /// An answer nobody waits for any more (the asker gave up) is dropped, as over HTTP.
    async fn answer(&self, host: &str, query_id: &str, answer: &Answer) -> Result<(), LinkError> {
        self.0
            .answer_query(host, query_id, answer)
            .await
            .map(|_| ())
            .map_err(err("recording an answer"))
    }
    async fn wait_for_change(&self, host: &str, timeout: Duration) {
        let n = self.0.wakeups.of(host);
        let _ = tokio::time::timeout(timeout, n.notified()).await;
    }
    async fn upload_snapshot(
        &self,
        _host: &str,
        image_id: &str,
        path: &std::path::Path,
        disk_format: &str,
    ) -> Result<(), LinkError> {
        use futures::StreamExt;
        let file = ferrostack_agent::transfer::open(path).await?;
        let data = tokio_util::io::ReaderStream::new(file).boxed();
        self.0
            .store_snapshot_from_host(image_id, data, disk_format)
            .await
            .map_err(err("storing a snapshot"))
    }
    async fn upload_migration_disk(
        &self,
        host: &str,
        migration: &str,
        path: &std::path::Path,
    ) -> Result<(), LinkError> {
        use futures::StreamExt;
        let file = ferrostack_agent::transfer::open(path).await?;
        let data = tokio_util::io::ReaderStream::new(file).boxed();
        self.0
            .store_migration_disk(host, migration, data)
            .await
            .map_err(err("keeping a handed-over disk"))
    }
    async fn download_migration_disk(
        &self,
        host: &str,
        migration: &str,
        dest: &std::path::Path,
    ) -> Result<bool, LinkError> {
        let data = self
            .0
            .migration_disk(host, migration)
            .await
            .map_err(err("reading a handed-over disk"))?;
        let Some(data) = data else {
            return Ok(false);
        };
        ferrostack_agent::transfer::write_stream(dest, data, |e| {
            LinkError::controller("reading a handed-over disk", e)
        })
        .await?;
        Ok(true)
    }
    /// In process, the two ends of the connection are a pipe.
    async fn dial_console(
        &self,
        host: &str,
        query_id: &str,
    ) -> Result<Box<dyn ferrostack_agent_api::ConsoleIo>, LinkError> {
        let (ours, theirs) = tokio::io::duplex(64 << 10);
        if !self.0.console_dialed(host, query_id, Box::new(theirs)) {
            return Err(LinkError::controller(
                "carrying a console",
                ComputeError::NotFound(format!("No console waits for question {query_id}.")),
            ));
        }
        Ok(Box::new(ours))
    }

    async fn metadata(
        &self,
        _host: &str,
        network_id: &str,
        address: std::net::IpAddr,
    ) -> Result<Option<GuestSpec>, LinkError> {
        self.0
            .metadata_guest(network_id, address)
            .await
            .map_err(err("finding the guest of a metadata request"))
    }

    async fn image(&self, _host: &str, image_id: &str) -> Result<ImageInfo, LinkError> {
        self.0
            .image_for_host(image_id)
            .await
            .map_err(err("reading an image"))
    }
    async fn download_image(
        &self,
        _host: &str,
        image_id: &str,
        dest: &std::path::Path,
    ) -> Result<(), LinkError> {
        let data = self
            .0
            .image_data_for_host(image_id)
            .await
            .map_err(err("reading image data"))?;
        ferrostack_agent::transfer::write_stream(dest, data, |e| {
            LinkError::controller("reading image data", e)
        })
        .await
    }
}

/// Starts one in-process agent for `host` over `driver` (any driver, e.g. a fake one that a
/// test restarts). Aborting the returned task stops the agent as a crash would: whatever the
/// driver was doing is dropped, and a new agent for the same host converges again.
pub fn spawn_agent(
    svc: &Arc<ComputeService>,
    host: &str,
    driver: Arc<dyn ferrostack_virt::Driver>,
) -> tokio::task::JoinHandle<()> {
    spawn_agent_with(local_controller(svc), host, driver)
}

/// The compute service as the controller of an agent in this process.
pub fn local_controller(svc: &Arc<ComputeService>) -> Arc<dyn Controller> {
    Arc::new(LocalController(svc.clone()))
}

/// Starts one agent for `host` over `driver` with `controller` (which the driver may share,
/// e.g. for its image cache).
pub fn spawn_agent_with(
    controller: Arc<dyn Controller>,
    host: &str,
    driver: Arc<dyn ferrostack_virt::Driver>,
) -> tokio::task::JoinHandle<()> {
    let agent = Arc::new(ferrostack_agent::Agent::new(host, driver, controller));
    tokio::spawn(agent.run())
}
