//! Moving instances between hosts: resize (with confirm, revert and auto-confirm), cold
//! migration, live migration and evacuation.
//!
//! A move is scheduled and claimed while the API request waits (as Nova's API does for
//! resize and migrate, a move without a valid host answers 400 and changes nothing). Then one
//! transaction records the migration, points the instance at its new host (with the new
//! flavor for a resize) and bumps its generation. Everything after that is desired state:
//! - the destination's agent sees the instance as its own and builds it;
//! - the host it left sees it through the migration row ([`crate::agent_link::side_guest`]):
//!   it keeps a powered-off copy while a resize can be reverted, keeps it running while a live
//!   migration runs, and removes it once the move is over. Its "gone" report marks the
//!   migration's source as cleaned and gives back the resources the migration held in
//!   placement (Nova's migration-uuid allocation).
//!
//! Migration statuses follow Nova's: resize/migration `migrating` -> `finished` (the instance
//! shows VERIFY_RESIZE) -> `confirming` -> `confirmed`, or `reverting` -> `reverted`; live
//! migration `running` -> `completed`; evacuation `accepted` -> `done` -> `completed` (when
//! the failed host comes back and removes its copy).
//!
//! A resize may stay on the instance's host (`ComputeConfig::allow_resize_to_same_host`,
//! when the scheduler ranks that host best): then no second copy exists; the one guest is
//! powered off and takes the new sizes (the `resize` one-shot), and a revert does the same with
//! the old ones. The migration row (source = destination) and the migration uuid's placement
//! allocation (the old flavor, beside the new one on the same provider, as Nova's) work as for
//! any resize; confirming gives the held allocation back at once. Other moves always leave the
//! host: a guest is one object per host in every driver.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use crate::app::servers::check_state;
use crate::db::migrations::{self, Migration};
use crate::db::{actions, hosts, instances};
use crate::error::{ComputeError, Result};
use crate::instance::{FlavorSnapshot, Instance};
use crate::scheduler;
use crate::state::{Action, TaskState, VmState};
use crate::ComputeService;
use ferrostack_agent_api::{Desired, OneShot};

#[derive(Debug, Clone)]
pub enum MoveKind {
    Resize(FlavorSnapshot),
    Migrate,
    LiveMigrate,
    /// `stop`: the guest ends stopped whatever it was (from 2.95 on, as Nova); `injected`:
    /// the admin password the rebuilt guest gets (Nova passes it to the rebuild).
    Evacuate {
        stop: bool,
        injected: ferrostack_agent_api::Injected,
    },
}

impl MoveKind {
    /// The action: its row of the state table and its instance action record.
    pub fn action(&self) -> Action {
        match self {
            MoveKind::Resize(_) => Action::Resize,
            MoveKind::Migrate => Action::Migrate,
            MoveKind::LiveMigrate => Action::LiveMigration,
            MoveKind::Evacuate { .. } => Action::Evacuate,
        }
    }
    fn migration_type(&self) -> &'static str {
        match self {
            MoveKind::Resize(_) => "resize",
            MoveKind::Migrate => "migration",
            MoveKind::LiveMigrate => "live-migration",
            MoveKind::Evacuate { .. } => "evacuation",
        }
    }
    fn first_status(&self) -> &'static str {
        match self {
            MoveKind::Resize(_) | MoveKind::Migrate => "migrating",
            MoveKind::LiveMigrate => "running",
            MoveKind::Evacuate { .. } => "accepted",
        }
    }
    fn task_state(&self) -> TaskState {
        match self {
            MoveKind::Resize(_) | MoveKind::Migrate => TaskState::ResizeMigrating,
            MoveKind::LiveMigrate => TaskState::Migrating,
            MoveKind::Evacuate { .. } => TaskState::Rebuilding,
        }
    }
}

/// Where a move goes.
#[derive(Debug, Clone)]
pub struct MoveOutcome {
    pub dest: String,
    pub migration_uuid: String,
}

impl ComputeService {
    /// Resizes `inst` to the flavor `flavor_ref` (one the caller may see: any for a cloud
    /// admin, else public or shared with the server's project): 400 for an unknown or
    /// disabled flavor, the same flavor or a smaller disk; then as any move.
    pub async fn resize(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        flavor_ref: &str,
    ) -> Result<MoveOutcome> {
        let new = self.resize_flavor(inst, auth.is_admin, flavor_ref).await?;
        self.move_instance(inst, auth, request_id, MoveKind::Resize(new), None)
            .await
    }

    /// Cold-migrates `inst` to another host (`host`: an admin's choice).
    pub async fn migrate(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        host: Option<String>,
    ) -> Result<MoveOutcome> {
        self.move_instance(inst, auth, request_id, MoveKind::Migrate, host)
            .await
    }

    /// Live-migrates `inst` to another host (`host`: an admin's choice).
    pub async fn live_migrate(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        host: Option<String>,
    ) -> Result<MoveOutcome> {
        self.move_instance(inst, auth, request_id, MoveKind::LiveMigrate, host)
            .await
    }

    /// Rebuilds `inst` elsewhere, its host being down (`host`: an admin's choice); `stop`:
    /// it ends stopped whatever it was; `admin_pass` is the rebuilt guest's (through its
    /// config drive).
    pub async fn evacuate(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        host: Option<String>,
        stop: bool,
        admin_pass: String,
    ) -> Result<MoveOutcome> {
        let injected = ferrostack_agent_api::Injected {
            files: Vec::new(),
            admin_pass: Some(admin_pass),
        };
        self.move_instance(
            inst,
            auth,
            request_id,
            MoveKind::Evacuate { stop, injected },
            host,
        )
        .await
    }

    /// The flavor a resize goes to, with Nova's refusals (400).
    async fn resize_flavor(
        &self,
        inst: &Instance,
        admin: bool,
        flavor_ref: &str,
    ) -> Result<FlavorSnapshot> {
        let mut conn = self.db.pool.acquire().await?;
        let project = if admin {
            None
        } else {
            Some(inst.project_id.as_str())
        };
        let f = crate::db::flavors::get_visible(&mut conn, flavor_ref, project)
            .await?
            .filter(|f| !f.disabled)
            .ok_or_else(|| ComputeError::BadRequest("Unable to locate requested flavor.".into()))?;
        if f.id == inst.flavor.id {
            return Err(ComputeError::BadRequest(
                "When resizing, instances must change flavor!".into(),
            ));
        }
        if f.disk < inst.flavor.disk {
            return Err(ComputeError::BadRequest(
                "Resizing to a smaller disk flavor is not allowed.".into(),
            ));
        }
        // Nova's libvirt driver accepts this request and then fails the resize ("Unable to
        // resize disk down"): the ephemeral disk holds the guest's data. Said at once here.
        if f.ephemeral < inst.flavor.ephemeral {
            return Err(ComputeError::BadRequest(
                "Unable to resize disk down: the new flavor's ephemeral disk is smaller.".into(),
            ));
        }
        Ok(FlavorSnapshot {
            id: f.id,
            name: f.name,
            vcpus: f.vcpus,
            ram: f.ram,
            disk: f.disk,
            ephemeral: f.ephemeral,
            swap: f.swap,
            extra_specs: f.extra_specs,
        })
    }

    /// Schedules, claims and records a move of `inst`; `host` is an admin's choice of
    /// destination (still checked by the filters).
    pub async fn move_instance(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        kind: MoveKind,
        host: Option<String>,
    ) -> Result<MoveOutcome> {
        let action = kind.action();
        let source = inst.host.clone().ok_or_else(|| {
            ComputeError::Conflict(format!(
                "Cannot '{action}' instance {} while it is on no host",
                inst.uuid
            ))
        })?;
        // Nova checks the hosts (404/400) before the instance's state (409).
        self.check_move_hosts(inst, &kind, &source, host.as_deref())
            .await?;
        check_state(inst, action)?;
        let new_flavor = match &kind {
            MoveKind::Resize(f) => f.clone(),
            _ => inst.flavor.clone(),
        };
        if let MoveKind::Resize(f) = &kind {
            self.check_resize_quota(inst, f).await?;
        }

        // Schedule as for a new instance with the new flavor, away from the source unless a
        // resize may stay.
        let mut target = inst.clone();
        target.flavor = new_flavor.clone();
        let may_stay = matches!(kind, MoveKind::Resize(_)) && self.config.allow_resize_to_same_host;
        let avoid = if may_stay {
            Vec::new()
        } else {
            vec![source.clone()]
        };
        let mut req = self.request_for(&target, &avoid).await?;
        // Only the admin's choice forces a destination: a server created on `zone:host` may
        // move within its zone (Nova resets forced destinations for moves).
        req.forced_host = host.clone();
        let ranked = self
            .rank_hosts(&req)
            .await?
            .map_err(|why| ComputeError::BadRequest(why.to_string()))?;
        let migration_uuid = uuid::Uuid::new_v4().to_string();

        // Re-check, claim and record the move in one transaction: a move that loses a race
        // (or finds no host) writes nothing.
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        let fresh = instances::get(&mut tx, &inst.uuid, false).await?;
        match &fresh {
            None => Err(ComputeError::NotFound(format!(
                "Instance {} could not be found.",
                inst.uuid
            ))),
            Some(f) if f.host.as_deref() != Some(source.as_str()) => Err(ComputeError::Conflict(
                format!("Instance {} moved meanwhile", inst.uuid),
            )),
            Some(f) => check_state(f, action),
        }?;
        let dest = scheduler::claim_first(
            &self.placement,
            &mut tx,
            &ranked,
            &req,
            Some(&migration_uuid),
        )
        .await?;
        let Some(dest) = dest else {
            drop(tx);
            self.hosts.invalidate().await;
            return Err(ComputeError::BadRequest(
                "No valid host was found. Every candidate host was claimed by concurrent requests."
                    .into(),
            ));
        };
        migrations::insert(
            &mut tx,
            &Migration {
                id: 0,
                uuid: migration_uuid.clone(),
                instance_uuid: inst.uuid.clone(),
                source_compute: source.clone(),
                dest_compute: dest.clone(),
                migration_type: kind.migration_type().into(),
                status: kind.first_status().into(),
                old_flavor: Some(inst.flavor.clone()),
                new_flavor: Some(new_flavor.clone()),
                prior_vm_state: Some(inst.vm_state),
                prior_power: Some(inst.desired_power),
                source_cleaned: false,
                dest_endpoint: None,
                force_complete: false,
                project_id: inst.project_id.clone(),
                user_id: auth.user_id.clone(),
                created_at: now,
                updated_at: Some(now),
            },
        )
        .await?;
        instances::move_to(&mut tx, &inst.uuid, &dest, &new_flavor, now).await?;
        let stopped = inst.vm_state == VmState::Stopped;
        let (desired, target_vm) = match &kind {
            MoveKind::Resize(_) | MoveKind::Migrate => (inst.desired_power, VmState::Resized),
            MoveKind::LiveMigrate => (inst.desired_power, inst.vm_state),
            MoveKind::Evacuate { stop, .. } if *stop || stopped => {
                (Desired::Stopped, VmState::Stopped)
            }
            MoveKind::Evacuate { .. } => (Desired::Running, VmState::Active),
        };
        // Staying on its host, the guest itself takes the new sizes.
        let one_shot = (dest == source).then_some(OneShot::Resize);
        let generation = instances::set_desire(
            &mut tx,
            &inst.uuid,
            desired,
            target_vm,
            Some(kind.task_state()),
            one_shot.as_ref(),
            now,
        )
        .await?;
        if let MoveKind::Evacuate { injected, .. } = &kind {
            self.record_injection(&mut tx, inst, generation, injected, now)
                .await?;
        }
        actions::start(
            &mut tx,
            &inst.uuid,
            request_id,
            action.as_str(),
            &inst.project_id,
            &auth.user_id,
            Some(&dest),
            now,
        )
        .await?;
        tx.commit().await?;
        self.hosts.invalidate().await;
        self.wakeups.wake(&dest);
        self.wakeups.wake(&source);
        Ok(MoveOutcome {
            dest,
            migration_uuid,
        })
    }

    /// Nova's checks of the hosts of a move: an evacuation needs its source down, a chosen
    /// destination must be a compute host other than the source.
    async fn check_move_hosts(
        &self,
        inst: &Instance,
        kind: &MoveKind,
        source: &str,
        host: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.db.pool.acquire().await?;
        let services = hosts::services(&mut conn).await?;
        drop(conn);
        let compute = |h: &str| {
            services
                .iter()
                .find(|s| s.binary == "nova-compute" && s.host == h)
        };
        if let Some(h) = host {
            if compute(h).is_none() {
                // Nova's evacuate says 404, the migrations 400.
                return Err(match kind {
                    MoveKind::Evacuate { .. } => {
                        ComputeError::NotFound(format!("Compute host {h} not found."))
                    }
                    _ => ComputeError::BadRequest(format!("Compute host {h} could not be found.")),
                });
            }
            if h == source {
                return Err(ComputeError::BadRequest(match kind {
                    MoveKind::Evacuate { .. } => {
                        "The target host can't be the same one.".to_string()
                    }
                    _ => format!(
                        "Unable to migrate instance ({}) to current host ({source}).",
                        inst.uuid
                    ),
                }));
            }
        }
        let source_up = compute(source).is_some_and(|s| {
            crate::model::service_is_up(
                s.forced_down,
                s.last_seen_up,
                now_micros(),
                self.config.service_down_time,
            )
        });
        match kind {
            MoveKind::Evacuate { .. } if source_up => Err(ComputeError::BadRequest(format!(
                "Compute service of {source} is still in use."
            ))),
            // Nova's `check_instance_host(check_is_up=True)`: the source's agent must be there
            // to hand the guest over or send it (else the move would wait for it forever);
            // a host that is down is evacuated instead.
            MoveKind::Resize(_) | MoveKind::Migrate | MoveKind::LiveMigrate if !source_up => Err(
                ComputeError::Conflict("Service is unavailable at this time.".into()),
            ),
            _ => Ok(()),
        }
    }

    /// A resize to a bigger flavor needs the difference in cores and RAM within quota.
    async fn check_resize_quota(&self, inst: &Instance, new: &FlavorSnapshot) -> Result<()> {
        let dc = new.vcpus - inst.flavor.vcpus;
        let dr = new.ram - inst.flavor.ram;
        if dc <= 0 && dr <= 0 {
            return Ok(());
        }
        let mut conn = self.db.pool.acquire().await?;
        let (_, cores, ram) = instances::usage(&mut conn, &inst.project_id).await?;
        let limits = crate::db::quotas::limits_for(&mut conn, &inst.project_id, "").await?;
        for (res, used, delta) in [("cores", cores, dc), ("ram", ram, dr)] {
            let limit = limits.limit(res);
            if delta > 0 && limit >= 0 && used + delta > limit {
                return Err(ComputeError::QuotaExceeded(format!(
                    "Quota exceeded for {res}: Requested {delta}, but already used {used} of \
                     {limit} {res}"
                )));
            }
        }
        Ok(())
    }

    /// The resize (or cold migration) of `inst` waiting for confirmation, or 400 as Nova says.
    async fn awaiting_confirm(&self, inst: &Instance, action: Action) -> Result<Migration> {
        check_state(inst, action)?;
        let mut conn = self.db.pool.acquire().await?;
        migrations::latest_of(&mut conn, &inst.uuid, &["finished"])
            .await?
            .ok_or_else(|| ComputeError::BadRequest("Instance has not been resized.".into()))
    }

    /// Confirms a resize: the instance keeps its new host and flavor; the source removes its
    /// copy and gives back what the migration held.
    pub async fn confirm_resize(
        &self,
        inst: &Instance,
        user_id: &str,
        request_id: &str,
    ) -> Result<()> {
        let m = self.awaiting_confirm(inst, Action::ConfirmResize).await?;
        let now = now_micros();
        let in_place = m.in_place();
        let mut tx = self.db.begin_write().await?;
        if in_place {
            // No copy to remove: confirmed at once, and the old flavor's resources, held by the
            // migration, are free again (in the same transaction: nothing leaks on a crash).
            migrations::set_source_cleaned(&mut tx, m.id, "confirmed", now).await?;
            self.placement
                .remove_allocations_in(&mut tx, &m.uuid)
                .await?;
        } else {
            migrations::set_status(&mut tx, m.id, "confirming", now).await?;
        }
        let settled = if m.prior_vm_state == Some(VmState::Stopped) {
            VmState::Stopped
        } else {
            VmState::Active
        };
        instances::settle_vm_state(&mut tx, &inst.uuid, settled, now).await?;
        actions::start(
            &mut tx,
            &inst.uuid,
            request_id,
            "confirmResize",
            &inst.project_id,
            user_id,
            inst.host.as_deref(),
            now,
        )
        .await?;
        actions::finish_open(&mut tx, &inst.uuid, None, inst.host.as_deref(), now).await?;
        tx.commit().await?;
        if in_place {
            self.hosts.invalidate().await;
        }
        self.wakeups.wake(&m.source_compute);
        Ok(())
    }

    /// Reverts a resize: the instance goes back to its source host and old flavor (the copy
    /// kept there is started again) and the destination removes its copy.
    pub async fn revert_resize(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        let m = self.awaiting_confirm(inst, Action::RevertResize).await?;
        let old = m.old_flavor.clone().unwrap_or_else(|| inst.flavor.clone());
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        // The source's resources, held by the migration, become the instance's again, with the
        // revert itself or not at all.
        self.placement
            .move_allocations_in(
                &mut tx,
                &m.uuid,
                &inst.uuid,
                &inst.project_id,
                &inst.user_id,
            )
            .await?;
        migrations::set_status(&mut tx, m.id, "reverting", now).await?;
        instances::move_to(&mut tx, &inst.uuid, &m.source_compute, &old, now).await?;
        let (desired, target) = if m.prior_vm_state == Some(VmState::Stopped) {
            (Desired::Stopped, VmState::Stopped)
        } else {
            (Desired::Running, VmState::Active)
        };
        // On the same host, the guest itself takes the old sizes back.
        let one_shot = m.in_place().then_some(OneShot::Resize);
        instances::set_desire(
            &mut tx,
            &inst.uuid,
            desired,
            target,
            Some(TaskState::ResizeReverting),
            one_shot.as_ref(),
            now,
        )
        .await?;
        actions::start(
            &mut tx,
            &inst.uuid,
            request_id,
            "revertResize",
            &inst.project_id,
            &auth.user_id,
            Some(&m.source_compute),
            now,
        )
        .await?;
        tx.commit().await?;
        self.hosts.invalidate().await;
        self.wakeups.wake(&m.source_compute);
        self.wakeups.wake(&m.dest_compute);
        Ok(())
    }

    /// Confirms resizes left unconfirmed longer than the configured window (Nova's
    /// `resize_confirm_window`); called by the scheduling loop.
    pub async fn auto_confirm_resizes(&self) -> Result<usize> {
        let Some(window) = self.config.resize_confirm_window else {
            return Ok(0);
        };
        let cutoff =
            now_micros().saturating_sub(i64::try_from(window.as_micros()).unwrap_or(i64::MAX));
        let due = {
            let mut conn = self.db.pool.acquire().await?;
            migrations::finished_before(&mut conn, cutoff).await?
        };
        let mut n = 0;
        for m in due {
            let inst = {
                let mut conn = self.db.pool.acquire().await?;
                instances::get(&mut conn, &m.instance_uuid, false).await?
            };
            let Some(inst) = inst else { continue };
            let rid = format!("req-{}", uuid::Uuid::new_v4());
            match self.confirm_resize(&inst, &m.user_id, &rid).await {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(instance = %inst.uuid, error = %e, "auto-confirm failed"),
            }
        }
        Ok(n)
    }
}

/// Called when the instance's own host reported it converged: a move that brought it there
/// is done on the destination side. Returns the migration, whose handed-over disk (if any)
/// is not needed any more.
pub async fn arrived(
    tx: &mut crate::db::Conn,
    inst: &Instance,
    host: &str,
    now: i64,
) -> Result<Option<String>> {
    let Some(m) = migrations::latest_of(
        tx,
        &inst.uuid,
        &[
            "migrating",
            "post-migrating",
            "running",
            "accepted",
            "reverting",
        ],
    )
    .await?
    else {
        return Ok(None);
    };
    if m.dest_compute != host {
        return Ok(None);
    }
    let next = match m.status.as_str() {
        "migrating" => "finished",
        "post-migrating" if m.is_cold() => "finished",
        "running" | "post-migrating" => "completed",
        // A revert on the same host: the guest has its old sizes again. (Across hosts, the
        // instance is back on the source, and the destination's "gone" report ends it.)
        "reverting" if m.in_place() => "reverted",
        "reverting" => return Ok(None),
        _ => "done",
    };
    migrations::set_status(tx, m.id, next, now).await?;
    Ok(Some(m.uuid))
}

/// Called when a host the instance is not on reports its copy gone. Returns the migration
/// whose placement allocation (the source's resources) is to be given back.
pub async fn side_gone(
    tx: &mut crate::db::Conn,
    inst: &Instance,
    host: &str,
    now: i64,
) -> Result<Option<String>> {
    let Some(m) = migrations::side_of(tx, &inst.uuid, host).await? else {
        return Ok(None);
    };
    if m.dest_compute == host && m.source_compute != host {
        match m.status.as_str() {
            "reverting" => migrations::set_status(tx, m.id, "reverted", now).await?,
            "error" | "cancelled" => migrations::set_dest_cleaned(tx, m.id, now).await?,
            _ => {}
        }
        return Ok(None);
    }
    let done = match m.status.as_str() {
        "confirming" => "confirmed",
        "completed" | "accepted" | "done" => "completed",
        // The source of a live migration removed the copy it sent. The destination's report
        // completes the migration, before or after this, maybe in a transaction running
        // alongside: the status is left to it.
        "post-migrating" if m.is_live() => {
            migrations::set_source_cleaned_only(tx, m.id, now).await?;
            return Ok(Some(m.uuid));
        }
        // Still needed (a resize that can be reverted, a running live migration): the copy
        // vanished on its own; nothing to record.
        _ => return Ok(None),
    };
    migrations::set_source_cleaned(tx, m.id, done, now).await?;
    Ok(Some(m.uuid))
}

/// Undoes a move that failed (or, live, was aborted) before the instance could run on its
/// destination: the instance goes back to its source (whose guest is still there: kept
/// stopped by a cold move, running by a live migration) with its old flavor and its power as
/// before; the migration takes `status` (`error`, `cancelled`), and the destination removes
/// what it had started. The resources the migration held on the source become the
/// instance's again (as a revert does). Returns false when the move can no longer be undone
/// (its source has already let the guest go).
pub async fn roll_back(
    svc: &ComputeService,
    tx: &mut crate::db::Conn,
    inst: &Instance,
    m: &Migration,
    status: &str,
    now: i64,
) -> Result<bool> {
    let source_has_it = match m.status.as_str() {
        "migrating" | "running" => true,
        "post-migrating" => m.is_cold(),
        _ => false,
    };
    if !source_has_it
        || m.in_place()
        || !migrations::transition(tx, m.id, &m.status, status, now).await?
    {
        return Ok(false);
    }
    svc.placement
        .move_allocations_in(tx, &m.uuid, &inst.uuid, &inst.project_id, &inst.user_id)
        .await?;
    let old = m.old_flavor.clone().unwrap_or_else(|| inst.flavor.clone());
    instances::move_to(tx, &inst.uuid, &m.source_compute, &old, now).await?;
    let desired = m.prior_power.unwrap_or(inst.desired_power);
    let vm = m.prior_vm_state.unwrap_or(VmState::Active);
    instances::set_desire(tx, &inst.uuid, desired, vm, None, None, now).await?;
    Ok(true)
}
