//! A server's user metadata (`/servers/{id}/metadata`): changes with Nova's lock, state and
//! `metadata_items` quota rules. The metadata itself is read with the server.

use std::collections::BTreeMap;

use ferrostack_api::AuthContext;

use crate::app::servers::check_lock;
use crate::db::{instances, quotas, server_extras as db};
use crate::error::{ComputeError, Result};
use crate::instance::{self, Instance};
use crate::state::VmState;
use crate::ComputeService;

/// The vm_states in which Nova changes metadata and tags.
const META_STATES: [VmState; 4] = [
    VmState::Active,
    VmState::Paused,
    VmState::Suspended,
    VmState::Stopped,
];

/// 409 unless the server is in a state metadata (and tags) may change in (and, when
/// `task_free`, has no task in progress); `action` names the operation in the message.
pub fn check_meta_state(inst: &Instance, action: &str, task_free: bool) -> Result<()> {
    if !META_STATES.contains(&inst.vm_state) {
        return Err(ComputeError::Conflict(instance::conflict_message(
            action,
            "vm_state",
            inst.vm_state.as_str(),
            &inst.uuid,
        )));
    }
    if let (true, Some(t)) = (task_free, &inst.task_state) {
        return Err(ComputeError::Conflict(instance::conflict_message(
            action,
            "task_state",
            t.as_str(),
            &inst.uuid,
        )));
    }
    Ok(())
}

impl ComputeService {
    /// Merges `items` into the server's metadata (or replaces it all when `replace`), within
    /// the `metadata_items` quota; returns the resulting metadata.
    pub async fn update_metadata(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        items: BTreeMap<String, String>,
        replace: bool,
        action: &str,
    ) -> Result<BTreeMap<String, String>> {
        check_lock(inst, auth)?;
        check_meta_state(inst, action, true)?;
        let mut tx = self.db.begin_write().await?;
        // Read the current metadata inside the write transaction so concurrent updates
        // cannot both pass the quota check.
        let current = instances::get(&mut tx, &inst.uuid, false)
            .await?
            .ok_or_else(|| {
                ComputeError::NotFound(format!("Instance {} could not be found.", inst.uuid))
            })?;
        let mut result = if replace {
            BTreeMap::new()
        } else {
            current.metadata.clone()
        };
        result.extend(items.clone());
        let limits = quotas::limits_for(&mut tx, &inst.project_id, &inst.user_id).await?;
        let allowed = limits
            .user
            .get("metadata_items")
            .copied()
            .unwrap_or_else(|| limits.limit("metadata_items"));
        if allowed >= 0 && i64::try_from(result.len()).unwrap_or(i64::MAX) > allowed {
            return Err(ComputeError::QuotaExceeded(format!(
                "Maximum number of metadata items exceeds {allowed}"
            )));
        }
        if replace {
            instances::replace_metadata(&mut tx, &inst.uuid, &result).await?;
        } else {
            db::upsert_metadata(&mut tx, &inst.uuid, &items).await?;
        }
        // Nova's instance.save() bumps updated_at (servers' changes-since sees the change).
        db::touch(&mut tx, &inst.uuid, ferrostack_store::now_micros()).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Deletes one metadata item (404 when the server has no such key).
    pub async fn delete_metadata_item(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        key: &str,
    ) -> Result<()> {
        if !inst.metadata.contains_key(key) {
            return Err(ComputeError::NotFound("Metadata item was not found".into()));
        }
        check_lock(inst, auth)?;
        check_meta_state(inst, "delete metadata", true)?;
        let mut tx = self.db.begin_write().await?;
        if !db::delete_metadata(&mut tx, &inst.uuid, key).await? {
            return Err(ComputeError::NotFound("Metadata item was not found".into()));
        }
        db::touch(&mut tx, &inst.uuid, ferrostack_store::now_micros()).await?;
        tx.commit().await?;
        Ok(())
    }
}
