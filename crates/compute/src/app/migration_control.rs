//! An admin's hand on a live migration under way: force it to complete (2.22) or abort it
//! (2.24). Both only change what the controller wants; the source's agent does it on its next
//! pass (pauses the guest and lifts the bandwidth cap; or cancels the copy and runs the guest
//! on), and the destination's agent removes what it had prepared.

use ferrostack_api::AuthContext;
use ferrostack_store::now_micros;

use crate::app::servers::check_lock;
use crate::db::migrations::{self, Migration};
use crate::db::{actions, instances};
use crate::error::{ComputeError, Result};
use crate::instance::{conflict_message, Instance};
use crate::state::{TaskState, VmState};
use crate::ComputeService;

/// What an admin does to a live migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    ForceComplete,
    /// `queued`: also a migration not running yet (2.65).
    Abort {
        queued: bool,
    },
}

impl Control {
    /// As Nova names it in its messages (`InvalidMigrationState`, conflicts).
    fn method(self) -> &'static str {
        match self {
            Control::ForceComplete => "force complete",
            Control::Abort { .. } => "abort live migration",
        }
    }

    /// As Nova's API handler names it in its conflict messages.
    fn conflict_name(self) -> &'static str {
        match self {
            Control::ForceComplete => "force_complete",
            Control::Abort { .. } => "abort live migration",
        }
    }

    /// The instance action recorded (Nova's instance_actions).
    fn action(self) -> &'static str {
        match self {
            Control::ForceComplete => "live_migration_force_complete",
            Control::Abort { .. } => "live_migration_cancel",
        }
    }

    /// The migration statuses it may act in.
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Control::ForceComplete | Control::Abort { queued: false } => &["running"],
            Control::Abort { queued: true } => &["running", "queued", "preparing"],
        }
    }
}

impl ComputeService {
    /// Forces live migration `id` of `inst` to complete, or aborts it. Errors as Nova's:
    /// 409 when the server is locked or not migrating (force-complete also needs it ACTIVE),
    /// a migration that is not this server's is 400 for force-complete and 404 for abort,
    /// one in another state 400.
    pub async fn control_live_migration(
        &self,
        inst: &Instance,
        id: &str,
        control: Control,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        check_lock(inst, auth)?;
        let conflict_name = control.conflict_name();
        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        let fresh = instances::get(&mut tx, &inst.uuid, false)
            .await?
            .ok_or_else(|| crate::app::servers::instance_not_found(&inst.uuid))?;
        if control == Control::ForceComplete && fresh.vm_state != VmState::Active {
            return Err(ComputeError::Conflict(conflict_message(
                conflict_name,
                "vm_state",
                fresh.vm_state.as_str(),
                &fresh.uuid,
            )));
        }
        if fresh.task_state != Some(TaskState::Migrating) {
            return Err(ComputeError::Conflict(conflict_message(
                conflict_name,
                "task_state",
                fresh.task_state.map_or("None", TaskState::as_str),
                &fresh.uuid,
            )));
        }
        let not_found = || {
            let msg = format!("Migration {id} not found for instance {}", fresh.uuid);
            match control {
                Control::ForceComplete => ComputeError::BadRequest(msg),
                Control::Abort { .. } => ComputeError::NotFound(msg),
            }
        };
        let num = id.parse::<i64>().map_err(|_| not_found())?;
        let m = migrations::of_instance(&mut tx, &fresh.uuid, num)
            .await?
            .ok_or_else(not_found)?;
        if !m.is_live() || !control.allowed().contains(&m.status.as_str()) {
            return Err(invalid_state(id, &m.status, &fresh.uuid, control));
        }
        actions::start(
            &mut tx,
            &fresh.uuid,
            request_id,
            control.action(),
            &fresh.project_id,
            &auth.user_id,
            Some(&m.source_compute),
            now,
        )
        .await?;
        match control {
            Control::ForceComplete => {
                // Finished with the migration itself.
                migrations::set_force_complete(&mut tx, m.id, now).await?;
            }
            Control::Abort { .. } => self.abort(&mut tx, &fresh, &m, now).await?,
        }
        tx.commit().await?;
        self.wakeups.wake(&m.source_compute);
        self.wakeups.wake(&m.dest_compute);
        if matches!(control, Control::Abort { .. }) {
            self.hosts.invalidate().await;
        }
        Ok(())
    }

    /// The instance goes back to its source, which runs its guest on; the destination
    /// removes what it prepared. Final once committed: a source that sent everything
    /// meanwhile keeps its guest (it is only removed once the controller recorded it sent).
    async fn abort(
        &self,
        tx: &mut crate::db::Conn,
        inst: &Instance,
        m: &Migration,
        now: i64,
    ) -> Result<()> {
        if !crate::app::moves::roll_back(self, tx, inst, m, "cancelled", now).await? {
            return Err(invalid_state(
                &m.id.to_string(),
                &m.status,
                &inst.uuid,
                Control::Abort { queued: true },
            ));
        }
        tracing::info!(uuid = %inst.uuid, migration = %m.uuid, "live migration aborted");
        actions::finish_open(tx, &inst.uuid, None, Some(&m.source_compute), now).await?;
        Ok(())
    }
}

/// Nova's `InvalidMigrationState` (400) for migration `id` (as the caller wrote it).
fn invalid_state(id: &str, status: &str, instance: &str, control: Control) -> ComputeError {
    ComputeError::BadRequest(format!(
        "Migration {id} state of instance {instance} is {status}. Cannot {} while the \
         migration is in this state.",
        control.method()
    ))
}
