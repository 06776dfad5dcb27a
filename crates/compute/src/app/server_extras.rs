//! Server sub-resources: metadata and tag changes (with Nova's lock, state and quota rules),
//! the server password, remote console tokens and diagnostics.

use std::collections::BTreeMap;

use ferrostack_api::AuthContext;
use serde_json::{json, Value};
use sha2::Digest;

use crate::db::{instances, quotas, server_extras as db};
use crate::error::{ComputeError, Result};
use crate::instance::{self, vm, Instance};
use crate::ComputeService;

/// Nova's per-server tag limit (objects.instance.MAX_TAG_COUNT).
pub const MAX_TAGS: usize = 50;
/// Nova's tag length limit (objects.tag.MAX_TAG_LENGTH).
pub const MAX_TAG_LENGTH: usize = 60;
/// How long a console URL stays valid (Nova's [consoleauth] token_ttl).
pub const CONSOLE_TOKEN_TTL_SECS: i64 = 600;
/// The system metadata key of the password os-server-password shows.
pub const PASSWORD_KEY: &str = "password";

/// The vm_states in which Nova changes metadata and tags.
const META_STATES: [&str; 4] = [vm::ACTIVE, vm::PAUSED, vm::SUSPENDED, vm::STOPPED];

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

/// 409 unless the server is in a state metadata may change in (and, when `task_free`, has no
/// task in progress); `action` names the operation in the message.
pub fn check_meta_state(inst: &Instance, action: &str, task_free: bool) -> Result<()> {
    if !META_STATES.contains(&inst.vm_state.as_str()) {
        return Err(ComputeError::Conflict(instance::conflict_message(
            action,
            "vm_state",
            &inst.vm_state,
            &inst.uuid,
        )));
    }
    if let (true, Some(t)) = (task_free, &inst.task_state) {
        return Err(ComputeError::Conflict(instance::conflict_message(
            action,
            "task_state",
            t,
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

    /// The password os-server-password shows ("" when none).
    pub async fn server_password(&self, inst: &Instance) -> Result<String> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::system_metadata(&mut conn, &inst.uuid, PASSWORD_KEY)
            .await?
            .unwrap_or_default())
    }

    /// Sets (the metadata service's POST) or clears (`None`) the server password.
    pub async fn set_server_password(&self, inst: &Instance, password: Option<&str>) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        db::set_system_metadata(&mut tx, &inst.uuid, PASSWORD_KEY, password).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A console URL for `console_type` of a running server: a random token, stored hashed
    /// with an expiry, on the console page this service serves (the fake driver has no real
    /// console; a driver with one replaces host/port and the page).
    pub async fn console_url(&self, inst: &Instance, console_type: &str) -> Result<String> {
        check_console_state(inst)?;
        let token = uuid::Uuid::new_v4().to_string();
        let now = ferrostack_store::now_micros();
        let base = format!("{}/compute/console/", self.config.public_url);
        let auth = db::ConsoleAuth {
            instance_uuid: inst.uuid.clone(),
            console_type: console_type.to_string(),
            host: inst.host.clone().unwrap_or_default(),
            // The fake driver's guests listen nowhere; Nova's fake driver reports this port.
            port: FAKE_CONSOLE_PORT,
            internal_access_path: None,
            access_url_base: base.clone(),
            expires: now + CONSOLE_TOKEN_TTL_SECS * 1_000_000,
        };
        let mut tx = self.db.begin_write().await?;
        db::insert_console_auth(&mut tx, &token_hash(&token), &auth, now).await?;
        tx.commit().await?;
        Ok(format!("{base}?token={token}"))
    }

    /// The unexpired authorization of a console token.
    pub async fn console_auth(&self, token: &str) -> Result<Option<db::ConsoleAuth>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::console_auth(
            &mut conn,
            &token_hash(token),
            ferrostack_store::now_micros(),
        )
        .await?)
    }

    /// Diagnostics of a running server from what the controller knows (flavor, launch time):
    /// the 2.48+ standardized body, or the older driver-specific dict.
    pub fn diagnostics(&self, inst: &Instance, standardized: bool) -> Result<Value> {
        if inst.host.is_none() {
            return Err(ComputeError::Conflict(format!(
                "Instance {} is not ready",
                inst.uuid
            )));
        }
        if inst.vm_state != vm::ACTIVE {
            return Err(ComputeError::Conflict(instance::conflict_message(
                "get_diagnostics",
                "vm_state",
                &inst.vm_state,
                &inst.uuid,
            )));
        }
        let f = &inst.flavor;
        let uptime = inst
            .launched_at
            .map(|l| ((ferrostack_store::now_micros() - l) / 1_000_000).max(0))
            .unwrap_or(0);
        let disks = 1 + i64::from(f.ephemeral > 0) + i64::from(f.swap > 0);
        if !standardized {
            let mut d = serde_json::Map::new();
            for cpu in 0..f.vcpus {
                d.insert(format!("cpu{cpu}_time"), json!(0));
            }
            d.insert("memory".into(), json!(f.ram * 1024));
            for dev in ["vda", "vdb", "vdc"]
                .iter()
                .take(usize::try_from(disks).unwrap_or(0))
            {
                for k in ["errors", "read", "read_req", "write", "write_req"] {
                    d.insert(
                        format!("{dev}_{k}"),
                        json!(if k == "errors" { -1 } else { 0 }),
                    );
                }
            }
            return Ok(Value::Object(d));
        }
        Ok(json!({
            "state": power_state_name(inst.power_state),
            // Tempest's schema accepts only Nova's driver names; the fake driver stands in for
            // the libvirt/QEMU kind of host (as Nova's own fake driver reports).
            "driver": "libvirt",
            "hypervisor": "fake",
            "hypervisor_os": "linux",
            "uptime": uptime,
            "config_drive": !inst.config_drive.is_empty(),
            "num_cpus": f.vcpus,
            "num_nics": 0,
            "num_disks": disks,
            "memory_details": {"maximum": f.ram, "used": 0},
            "cpu_details": (0..f.vcpus)
                .map(|i| json!({"id": i, "time": 0, "utilisation": 0}))
                .collect::<Vec<_>>(),
            "disk_details": (0..disks)
                .map(|_| json!({"read_bytes": 0, "read_requests": 0, "write_bytes": 0,
                                "write_requests": 0, "errors_count": 0}))
                .collect::<Vec<_>>(),
            "nic_details": [],
        }))
    }
}

/// Consoles need a running guest: 409 otherwise (Nova: InstanceNotReady without a host, and
/// its reject_instance_state for deleting/migrating tasks).
pub fn check_console_state(inst: &Instance) -> Result<()> {
    if inst.host.is_none() || inst.vm_state != vm::ACTIVE {
        return Err(ComputeError::Conflict(format!(
            "Instance {} is not ready",
            inst.uuid
        )));
    }
    if let Some(t) = inst
        .task_state
        .as_deref()
        .filter(|t| matches!(*t, "deleting" | "migrating"))
    {
        return Err(ComputeError::Conflict(instance::conflict_message(
            "get_console",
            "task_state",
            t,
            &inst.uuid,
        )));
    }
    Ok(())
}

const FAKE_CONSOLE_PORT: i64 = 6969;

/// Tokens are kept only as their SHA-256 (hex), like Nova's console_auth_tokens.
pub fn token_hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Nova's power state names (nova/compute/power_state.py).
pub fn power_state_name(state: i64) -> &'static str {
    match state {
        1 => "running",
        3 => "paused",
        4 => "shutdown",
        6 => "crashed",
        7 => "suspended",
        _ => "pending",
    }
}

/// The server's addresses by network label, each `{"version": 4|6, "addr": "..."}` (what
/// `/servers/{id}/ips` shows). The one source of a server's addresses: there is no network
/// service yet, so this is what the `addresses` column holds (`{}`); the network side fills it.
pub fn instance_addresses(inst: &Instance) -> BTreeMap<String, Vec<Value>> {
    let Some(nets) = inst.addresses.as_object() else {
        return BTreeMap::new();
    };
    nets.iter()
        .map(|(label, ips)| {
            let list = ips
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|ip| json!({"version": ip["version"], "addr": ip["addr"]}))
                        .collect()
                })
                .unwrap_or_default();
            (label.clone(), list)
        })
        .collect()
}
