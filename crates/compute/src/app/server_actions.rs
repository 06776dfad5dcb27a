//! The server actions that are not moves or image work: power changes and crash dumps (the
//! host's agent carries them out), shelve offload and unshelve, lock and unlock, reset state,
//! the console log, the deferred-delete actions, and the records of a server's actions
//! (`os-instance-actions`).
//!
//! Each action checks the server's state first (409): the agent-carried ones through
//! [`ComputeService::request_change`], which checks Nova's table
//! ([`crate::instance::allowed_vm_states`]) before and again inside its write transaction;
//! the rules of their own (soft reboot, unshelve to a zone or host, console log) are the
//! `check_*` functions here.

use ferrostack_api::AuthContext;
use serde_json::json;

use crate::app::servers::{check_state, Change};
use crate::db::{actions, hosts, instances};
use crate::error::{ComputeError, Result};
use crate::instance::Instance;
use crate::state::{self, TaskState, VmState};
use crate::ComputeService;
use ferrostack_agent_api::{Desired, OneShot};

/// The record of one action on a server, and the events of one.
pub use crate::db::actions::{Action, Event};

/// A soft reboot asks the guest to restart; a hard one power-cycles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootKind {
    Soft,
    Hard,
}

/// The states `os-resetState` sets (Nova allows these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetState {
    Active,
    Error,
}

/// Where an unshelve may go: a new availability zone (2.77; `Some(None)` unpins, 2.91) and a
/// host (2.91, admins). Both only for a shelved-offloaded server.
#[derive(Debug, Default)]
pub struct UnshelveTo {
    pub availability_zone: Option<Option<String>>,
    pub host: Option<String>,
}

/// 409 unless a reboot of `kind` may start: a hard reboot from the states Nova's table allows
/// `reboot`, a soft one from ACTIVE only (with the table's message when it refuses too).
pub fn check_reboot(inst: &Instance, kind: RebootKind) -> Result<()> {
    if kind == RebootKind::Soft && inst.vm_state != VmState::Active {
        check_state(inst, state::Action::Reboot)?;
        return Err(ComputeError::Conflict(format!(
            "Cannot 'reboot' instance {} while it is in vm_state {}",
            inst.uuid, inst.vm_state
        )));
    }
    Ok(())
}

/// 409 unless the server is shelved (or shelved offloaded) with no task in progress.
pub fn check_unshelve(inst: &Instance) -> Result<()> {
    check_state(inst, state::Action::Unshelve)
}

/// Unlocking a server an admin locked needs the override rule, unless an admin unlocks it.
pub fn unlock_needs_override(inst: &Instance, auth: &AuthContext) -> bool {
    inst.locked_by.as_deref() == Some("admin") && !auth.is_admin
}

/// 409 unless the server's console log can be read: it must be on a host and built.
pub fn check_console_output(inst: &Instance) -> Result<&str> {
    match &inst.host {
        Some(h) if inst.vm_state != VmState::Building => Ok(h),
        _ => Err(ComputeError::Conflict(format!(
            "Cannot 'get_console_output' instance {} while it is in vm_state {}",
            inst.uuid, inst.vm_state
        ))),
    }
}

impl ComputeService {
    /// Reboots the guest (its agent does it); it ends ACTIVE.
    pub async fn reboot(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        kind: RebootKind,
    ) -> Result<()> {
        check_reboot(inst, kind)?;
        let (task, shot) = match kind {
            RebootKind::Hard => (TaskState::RebootingHard, OneShot::HardReboot),
            RebootKind::Soft => (TaskState::Rebooting, OneShot::SoftReboot),
        };
        let change = power(
            state::Action::Reboot,
            Desired::Running,
            VmState::Active,
            Some(task),
            Some(shot),
        );
        self.request_change(inst, auth, request_id, change).await
    }

    /// Powers the guest off; it ends STOPPED (SHUTOFF).
    pub async fn stop(&self, inst: &Instance, auth: &AuthContext, request_id: &str) -> Result<()> {
        let change = power(
            state::Action::Stop,
            Desired::Stopped,
            VmState::Stopped,
            Some(TaskState::PoweringOff),
            None,
        );
        self.request_change(inst, auth, request_id, change).await
    }

    /// Powers a stopped guest on; it ends ACTIVE.
    pub async fn start(&self, inst: &Instance, auth: &AuthContext, request_id: &str) -> Result<()> {
        let change = power(
            state::Action::Start,
            Desired::Running,
            VmState::Active,
            Some(TaskState::PoweringOn),
            None,
        );
        self.request_change(inst, auth, request_id, change).await
    }

    pub async fn pause(&self, inst: &Instance, auth: &AuthContext, request_id: &str) -> Result<()> {
        let change = power(
            state::Action::Pause,
            Desired::Paused,
            VmState::Paused,
            Some(TaskState::Pausing),
            None,
        );
        self.request_change(inst, auth, request_id, change).await
    }

    pub async fn unpause(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        let change = power(
            state::Action::Unpause,
            Desired::Running,
            VmState::Active,
            Some(TaskState::Unpausing),
            None,
        );
        self.request_change(inst, auth, request_id, change).await
    }

    pub async fn suspend(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        let change = power(
            state::Action::Suspend,
            Desired::Suspended,
            VmState::Suspended,
            Some(TaskState::Suspending),
            None,
        );
        self.request_change(inst, auth, request_id, change).await
    }

    pub async fn resume(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        let change = power(
            state::Action::Resume,
            Desired::Running,
            VmState::Active,
            Some(TaskState::Resuming),
            None,
        );
        self.request_change(inst, auth, request_id, change).await
    }

    /// Asks the guest's host for a crash dump of it (no task state shows meanwhile).
    pub async fn trigger_crash_dump(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        let change = power(
            state::Action::TriggerCrashDump,
            Desired::Running,
            VmState::Active,
            None,
            Some(OneShot::CrashDump),
        );
        self.request_change(inst, auth, request_id, change).await
    }

    /// Removes a shelved guest from its host; it ends SHELVED_OFFLOADED.
    pub async fn shelve_offload(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        let change = power(
            state::Action::ShelveOffload,
            Desired::Absent,
            VmState::ShelvedOffloaded,
            Some(TaskState::ShelvingOffloading),
            None,
        );
        self.request_change(inst, auth, request_id, change).await
    }

    /// Unshelve: the instance waits for the scheduler again, like a new build; in a new zone
    /// (kept for later scheduling, as Nova's request spec keeps it) and on a given host (this
    /// placement only) when asked.
    pub async fn unshelve(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        rid: &str,
        to: &UnshelveTo,
    ) -> Result<()> {
        check_unshelve(inst)?;
        let mut spec = inst.request_spec.clone();
        if to.availability_zone.is_some() || to.host.is_some() {
            self.check_unshelve_target(inst, to).await?;
            if let Some(zone) = &to.availability_zone {
                match zone {
                    Some(z) => spec["availability_zone"] = json!(z),
                    None => {
                        if let Some(o) = spec.as_object_mut() {
                            o.remove("availability_zone");
                        }
                    }
                }
            }
            if let Some(h) = &to.host {
                spec["requested_host"] = json!(h);
            }
        }
        let now = ferrostack_store::now_micros();
        let mut tx = self.db.begin_write().await?;
        if spec != inst.request_spec {
            instances::set_request_spec(&mut tx, &inst.uuid, &spec, now).await?;
        }
        if let Some(zone) = &to.availability_zone {
            instances::set_text(
                &mut tx,
                &inst.uuid,
                "availability_zone",
                zone.as_deref(),
                now,
            )
            .await?;
        }
        actions::start(
            &mut tx,
            &inst.uuid,
            rid,
            "unshelve",
            &inst.project_id,
            &auth.user_id,
            None,
            now,
        )
        .await?;
        instances::set_desire(
            &mut tx,
            &inst.uuid,
            Desired::Running,
            VmState::Active,
            Some(TaskState::Unshelving),
            None,
            now,
        )
        .await?;
        instances::set_vm_state(&mut tx, &inst.uuid, VmState::Building, now).await?;
        instances::set_host(&mut tx, &inst.uuid, None, None, now).await?;
        tx.commit().await?;
        self.schedule_now.notify_one();
        Ok(())
    }

    /// Nova's rules for an unshelve with a zone or a host: only when shelved offloaded (409),
    /// the host must exist (400), the zone must exist (400), and a host must be in the zone
    /// asked for (409).
    async fn check_unshelve_target(&self, inst: &Instance, to: &UnshelveTo) -> Result<()> {
        if inst.vm_state != VmState::ShelvedOffloaded {
            return Err(ComputeError::Conflict(format!(
                "The unshelve of instance {} with an availability zone or a host is only allowed \
                 when it is shelved offloaded; it is {}.",
                inst.uuid, inst.vm_state
            )));
        }
        let mut conn = self.db.pool.acquire().await?;
        if let Some(Some(zone)) = &to.availability_zone {
            if !self.zone_exists(&mut conn, zone).await? {
                return Err(ComputeError::BadRequest(
                    "The requested availability zone is not available".into(),
                ));
            }
        }
        if let Some(host) = &to.host {
            let known = hosts::service_by_host(&mut conn, host, "nova-compute")
                .await?
                .is_some();
            if !known {
                return Err(ComputeError::BadRequest(format!(
                    "Compute host {host} could not be found."
                )));
            }
            if let Some(Some(zone)) = &to.availability_zone {
                if &self.host_zone(&mut conn, host).await? != zone {
                    return Err(ComputeError::Conflict(format!(
                        "Host {host} is not in the availability zone {zone}."
                    )));
                }
            }
        }
        Ok(())
    }

    /// Locks a server: non-admins' actions on it are refused until it is unlocked. Recorded
    /// as locked by its owner, or by an admin when a cloud admin locks another project's
    /// server (whose lock then only admins, or the override rule, lift).
    pub async fn lock_server(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let by = if auth.is_admin && auth.project_id() != Some(inst.project_id.as_str()) {
            "admin"
        } else {
            "owner"
        };
        instances::set_lock(
            &mut tx,
            &inst.uuid,
            true,
            Some(by),
            reason,
            ferrostack_store::now_micros(),
        )
        .await?;
        actions::start(
            &mut tx,
            &inst.uuid,
            request_id,
            "lock",
            &inst.project_id,
            &auth.user_id,
            inst.host.as_deref(),
            ferrostack_store::now_micros(),
        )
        .await?;
        actions::finish_open(
            &mut tx,
            &inst.uuid,
            None,
            None,
            ferrostack_store::now_micros(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Unlocks a server (the caller passed the unlock rules: [`unlock_needs_override`]).
    pub async fn unlock_server(&self, inst: &Instance) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        instances::set_lock(
            &mut tx,
            &inst.uuid,
            false,
            None,
            None,
            ferrostack_store::now_micros(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the server's vm_state and clears its task (an admin's repair; the agent is not
    /// asked anything).
    pub async fn reset_state(&self, inst: &Instance, state: ResetState) -> Result<()> {
        let vm_state = match state {
            ResetState::Active => VmState::Active,
            ResetState::Error => VmState::Error,
        };
        let now = ferrostack_store::now_micros();
        let mut tx = self.db.begin_write().await?;
        instances::set_vm_state(&mut tx, &inst.uuid, vm_state, now).await?;
        instances::set_text(&mut tx, &inst.uuid, "task_state", None, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The console log, asked of the host's agent (in this process or its own); `lines`
    /// keeps its last lines only.
    pub async fn console_output(&self, inst: &Instance, lines: Option<usize>) -> Result<String> {
        let host = check_console_output(inst)?;
        let out = self
            .ask_host(host, &inst.uuid, ferrostack_agent_api::Ask::ConsoleOutput)
            .await?
            .map_err(|e| ComputeError::Conflict(format!("Guest console not available: {e}")))?;
        // Nova's tail: the last `length` pieces of the log split at '\n' (a final newline
        // counts as an empty last line).
        Ok(match lines {
            Some(n) => {
                let all: Vec<&str> = out.split('\n').collect();
                all[all.len().saturating_sub(n)..].join("\n")
            }
            None => out,
        })
    }

    /// forceDelete of a soft-deleted server. Soft delete is off (Nova's
    /// reclaim_instance_interval = 0): no server is ever SOFT_DELETED, so this only answers
    /// Nova's state check (409).
    pub fn force_delete(&self, inst: &Instance) -> Result<()> {
        check_state(inst, state::Action::ForceDelete)
    }

    /// restore of a soft-deleted server: as [`ComputeService::force_delete`], only the state
    /// check.
    pub fn restore(&self, inst: &Instance) -> Result<()> {
        check_state(inst, state::Action::Restore)
    }

    /// The actions recorded on a server, newest first.
    pub async fn instance_actions(&self, inst: &Instance) -> Result<Vec<Action>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(actions::list(&mut conn, &inst.uuid).await?)
    }

    /// One action of a server, by the request that started it, with its events.
    pub async fn instance_action(
        &self,
        inst: &Instance,
        request_id: &str,
    ) -> Result<(Action, Vec<Event>)> {
        let mut conn = self.db.pool.acquire().await?;
        actions::by_request(&mut conn, &inst.uuid, request_id)
            .await?
            .ok_or_else(|| ComputeError::NotFound(format!("Action {request_id} not found")))
    }
}

/// A change the host's agent carries out: the power it should have, the state the server
/// ends in, the task shown meanwhile and the one-shot operation.
fn power(
    action: state::Action,
    desired: Desired,
    target_vm_state: VmState,
    task_state: Option<TaskState>,
    one_shot: Option<OneShot>,
) -> Change {
    Change {
        action,
        desired: Some(desired),
        target_vm_state,
        task_state,
        one_shot,
    }
}
