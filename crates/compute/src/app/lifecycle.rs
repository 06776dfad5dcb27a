//! Actions that change what a server runs without moving it: rebuild (a new root disk from
//! an image), rescue/unrescue and createImage (a snapshot into the image service). Like the
//! power actions they write desired state plus a one-shot the host's agent performs once.

use std::collections::BTreeMap;

use ferrostack_api::AuthContext;
use ferrostack_image::app::snapshots::SnapshotRequest;
use ferrostack_store::now_micros;
use serde_json::{Map, Value};

use crate::app::servers::{check_state, Change};
use crate::db::{self, actions, instances};
use crate::error::{ComputeError, Result};
use crate::instance::Instance;
use crate::state::{Action, TaskState, VmState};
use crate::ComputeService;
use ferrostack_agent_api::{Desired, OneShot};

/// A validated rebuild request; `None` fields keep the server's current value.
#[derive(Debug, Clone, Default)]
pub struct RebuildRequest {
    pub image_ref: String,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub access_ip_v4: Option<Option<String>>,
    pub access_ip_v6: Option<Option<String>>,
    /// `Some(None)` removes the key pair (2.54).
    pub key_name: Option<Option<String>>,
    /// `Some(None)` removes the user data (2.57).
    pub user_data: Option<Option<String>>,
    pub hostname: Option<String>,
    /// Personality files (before 2.57) and the admin password, given to the rebuilt guest.
    pub injected: ferrostack_agent_api::Injected,
}

impl ComputeService {
    /// Rebuild: the guest is recreated from `image_ref` on the same host; a stopped server
    /// stays stopped, an errored one comes back active (as Nova does). Returns the server as
    /// stored once the rebuild is recorded.
    pub async fn rebuild(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        req: RebuildRequest,
    ) -> Result<Instance> {
        check_state(inst, Action::Rebuild)?;
        let host = inst.host.clone().ok_or_else(|| {
            ComputeError::Conflict(format!(
                "Cannot 'rebuild' instance {} while it is on no host",
                inst.uuid
            ))
        })?;
        let image = self
            .image
            .find(&req.image_ref, auth)
            .await
            .map_err(|_| ComputeError::BadRequest("Cannot find requested image".into()))?;
        if image.status != ferrostack_image::model::Status::Active {
            return Err(ComputeError::BadRequest(format!(
                "Image {} is not active.",
                image.id
            )));
        }
        crate::app::servers::check_image_fits(&image, inst.flavor.ram, inst.flavor.disk)?;
        let mut conn = self.db.pool.acquire().await?;
        let key = match &req.key_name {
            Some(Some(k)) => Some(Some(
                db::keypairs::get(&mut conn, &inst.user_id, k)
                    .await?
                    .ok_or_else(|| ComputeError::BadRequest("Invalid key_name provided.".into()))?,
            )),
            Some(None) => Some(None),
            None => None,
        };
        crate::app::injection::check_quota(&mut conn, &inst.project_id, &req.injected.files)
            .await?;
        if let Some(m) = &req.metadata {
            let limits = db::quotas::limits_for(&mut conn, &inst.project_id, "").await?;
            let limit = limits.limit("metadata_items");
            if limit >= 0 && i64::try_from(m.len()).unwrap_or(i64::MAX) > limit {
                return Err(ComputeError::QuotaExceeded(
                    "Quota exceeded for metadata_items: Requested more than allowed".into(),
                ));
            }
        }
        drop(conn);

        let now = now_micros();
        let mut tx = self.db.begin_write().await?;
        let fresh = instances::get(&mut tx, &inst.uuid, false)
            .await?
            .ok_or_else(|| {
                ComputeError::NotFound(format!("Instance {} could not be found.", inst.uuid))
            })?;
        check_state(&fresh, Action::Rebuild)?;
        instances::set_image(&mut tx, &inst.uuid, &image.id, now).await?;
        if let Some(n) = &req.name {
            instances::set_text(&mut tx, &inst.uuid, "display_name", Some(n), now).await?;
        }
        if let Some(d) = &req.description {
            instances::set_text(
                &mut tx,
                &inst.uuid,
                "display_description",
                d.as_deref(),
                now,
            )
            .await?;
        }
        if let Some(h) = &req.hostname {
            instances::set_text(&mut tx, &inst.uuid, "hostname", Some(h), now).await?;
        }
        if let Some(a) = &req.access_ip_v4 {
            instances::set_text(&mut tx, &inst.uuid, "access_ip_v4", a.as_deref(), now).await?;
        }
        if let Some(a) = &req.access_ip_v6 {
            instances::set_text(&mut tx, &inst.uuid, "access_ip_v6", a.as_deref(), now).await?;
        }
        if let Some(k) = &key {
            let (name, data) = match k {
                Some(k) => (Some(k.name.as_str()), Some(k.public_key.as_str())),
                None => (None, None),
            };
            instances::set_text(&mut tx, &inst.uuid, "key_name", name, now).await?;
            instances::set_text(&mut tx, &inst.uuid, "key_data", data, now).await?;
        }
        if let Some(u) = &req.user_data {
            instances::set_text(&mut tx, &inst.uuid, "user_data", u.as_deref(), now).await?;
        }
        if let Some(m) = &req.metadata {
            instances::replace_metadata(&mut tx, &inst.uuid, m).await?;
        }
        let (desired, target) = if fresh.vm_state == VmState::Stopped {
            (Desired::Stopped, VmState::Stopped)
        } else {
            (Desired::Running, VmState::Active)
        };
        let generation = instances::set_desire(
            &mut tx,
            &inst.uuid,
            desired,
            target,
            Some(TaskState::Rebuilding),
            Some(&OneShot::Recreate),
            now,
        )
        .await?;
        self.record_injection(&mut tx, &fresh, generation, &req.injected, now)
            .await?;
        actions::start(
            &mut tx,
            &inst.uuid,
            request_id,
            "rebuild",
            &inst.project_id,
            &auth.user_id,
            Some(&host),
            now,
        )
        .await?;
        tx.commit().await?;
        self.wakeups.wake(&host);
        self.stored_instance(&inst.uuid).await
    }

    /// Rescue: the guest boots a rescue image (the given one, else its own image) with its
    /// disk attached; unrescue boots its own disk again.
    pub async fn rescue(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        rescue_image: Option<&str>,
    ) -> Result<()> {
        check_state(inst, Action::Rescue)?;
        let image = match rescue_image {
            Some(id) => {
                let img = self.image.find(id, auth).await.map_err(|_| {
                    ComputeError::BadRequest(format!("Image {id} could not be found."))
                })?;
                if img.status != ferrostack_image::model::Status::Active {
                    return Err(ComputeError::BadRequest(format!(
                        "Image {id} is not active."
                    )));
                }
                img.id
            }
            None => inst.image_ref.clone(),
        };
        self.request_change(
            inst,
            auth,
            request_id,
            Change {
                action: Action::Rescue,
                desired: Some(Desired::Running),
                target_vm_state: VmState::Rescued,
                task_state: Some(TaskState::Rescuing),
                one_shot: Some(OneShot::Rescue { image: Some(image) }),
            },
        )
        .await
    }

    pub async fn unrescue(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        self.request_change(
            inst,
            auth,
            request_id,
            Change {
                action: Action::Unrescue,
                desired: Some(Desired::Running),
                target_vm_state: VmState::Active,
                task_state: Some(TaskState::Unrescuing),
                one_shot: Some(OneShot::Unrescue),
            },
        )
        .await
    }

    /// createImage: creates the queued image now (its id is the answer) and asks the host's
    /// agent to fill it from the guest's disk. The guest keeps its power state.
    pub async fn create_image(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        name: &str,
        metadata: Map<String, Value>,
    ) -> Result<String> {
        check_state(inst, Action::CreateImage)?;
        let base = self.image.find(&inst.image_ref, auth).await.ok();
        let mut props = metadata;
        let mut put = |k: &str, v: &str| {
            props.insert(k.to_string(), Value::String(v.to_string()));
        };
        put("instance_uuid", &inst.uuid);
        put("base_image_ref", &inst.image_ref);
        put("user_id", &auth.user_id);
        put("image_location", "snapshot");
        // createBackup says "backup".
        props
            .entry("image_type")
            .or_insert_with(|| Value::String("snapshot".into()));
        let image = self
            .image
            .create_snapshot_image(SnapshotRequest {
                name,
                owner: &inst.project_id,
                base: base.as_ref(),
                properties: props,
                min_disk: inst
                    .flavor
                    .disk
                    .max(base.as_ref().map_or(0, |b| b.min_disk)),
                min_ram: base.as_ref().map_or(0, |b| b.min_ram),
            })
            .await
            .map_err(|e| ComputeError::BadRequest(e.to_string()))?;
        self.request_change(
            inst,
            auth,
            request_id,
            Change {
                action: Action::CreateImage,
                desired: None,
                target_vm_state: inst.vm_state,
                task_state: Some(TaskState::ImageSnapshot),
                one_shot: Some(OneShot::Snapshot {
                    image: image.id.clone(),
                }),
            },
        )
        .await?;
        Ok(image.id)
    }

    /// Shelve: the disk is kept as an image (`<name>-shelved`), then the guest leaves its
    /// host and gives back its resources (shelve and offload at once, as with Nova's
    /// `shelved_offload_time = 0`). Unshelve boots from that image on any host and deletes it.
    pub async fn shelve(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
    ) -> Result<()> {
        check_state(inst, Action::Shelve)?;
        let base = self.image.find(&inst.image_ref, auth).await.ok();
        let mut props = Map::new();
        for (k, v) in [
            ("instance_uuid", inst.uuid.as_str()),
            ("image_type", "snapshot"),
            ("base_image_ref", inst.image_ref.as_str()),
        ] {
            props.insert(k.into(), Value::String(v.into()));
        }
        let image = self
            .image
            .create_snapshot_image(SnapshotRequest {
                name: &format!("{}-shelved", inst.display_name),
                owner: &inst.project_id,
                base: base.as_ref(),
                properties: props,
                min_disk: inst.flavor.disk,
                min_ram: base.as_ref().map_or(0, |b| b.min_ram),
            })
            .await
            .map_err(|e| ComputeError::BadRequest(e.to_string()))?;
        let mut spec = inst.request_spec.clone();
        if let Some(o) = spec.as_object_mut() {
            o.insert("shelved_image".into(), Value::String(image.id.clone()));
        }
        {
            let mut tx = self.db.begin_write().await?;
            instances::set_request_spec(&mut tx, &inst.uuid, &spec, now_micros()).await?;
            tx.commit().await?;
        }
        let shot = OneShot::Snapshot {
            image: image.id.clone(),
        };
        let r = self
            .request_change(
                inst,
                auth,
                request_id,
                Change {
                    action: Action::Shelve,
                    desired: Some(Desired::Absent),
                    target_vm_state: VmState::ShelvedOffloaded,
                    task_state: Some(TaskState::Shelving),
                    one_shot: Some(shot),
                },
            )
            .await;
        if r.is_err() {
            let _ = self.image.delete_snapshot_image(&image.id).await;
        }
        r
    }

    /// createBackup: a snapshot tagged as a `backup_type` backup of this server; once taken,
    /// only the newest `rotation` backups of that type are kept (Nova's rotation).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_backup(
        &self,
        inst: &Instance,
        auth: &AuthContext,
        request_id: &str,
        name: &str,
        backup_type: &str,
        rotation: i64,
        mut metadata: Map<String, Value>,
    ) -> Result<String> {
        metadata.insert("image_type".into(), Value::String("backup".into()));
        metadata.insert("backup_type".into(), Value::String(backup_type.into()));
        let id = self
            .create_image(inst, auth, request_id, name, metadata)
            .await?;
        self.rotate_backups(inst, backup_type, rotation, &id)
            .await?;
        Ok(id)
    }

    /// Deletes the oldest backups of `inst` of `backup_type` beyond `rotation` (the new one,
    /// `keep`, counts and is never deleted).
    async fn rotate_backups(
        &self,
        inst: &Instance,
        backup_type: &str,
        rotation: i64,
        keep: &str,
    ) -> Result<()> {
        let all = self
            .image
            .all_images()
            .await
            .map_err(|e| ComputeError::BadRequest(e.to_string()))?;
        let prop = |i: &ferrostack_image::model::Image, k: &str| {
            i.properties
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let mut backups: Vec<_> = all
            .iter()
            .filter(|i| {
                i.id != keep
                    && prop(i, "instance_uuid").as_deref() == Some(inst.uuid.as_str())
                    && prop(i, "image_type").as_deref() == Some("backup")
                    && prop(i, "backup_type").as_deref() == Some(backup_type)
            })
            .collect();
        backups.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        let others = usize::try_from(rotation.max(1) - 1).unwrap_or(0);
        for old in backups.iter().skip(others) {
            if let Err(e) = self.image.delete_snapshot_image(&old.id).await {
                tracing::warn!(image = %old.id, error = %e, "could not rotate out a backup");
            }
        }
        Ok(())
    }
}

/// The image a shelved instance boots from when unshelved.
pub fn shelved_image(inst: &Instance) -> Option<&str> {
    inst.request_spec
        .get("shelved_image")
        .and_then(|v| v.as_str())
}

/// Called when the instance's own host reported it converged: an unshelved instance no
/// longer needs its shelve image. Returns the image to delete once the transaction commits.
pub async fn after_converged(
    tx: &mut crate::db::Conn,
    inst: &Instance,
    now: i64,
) -> Result<Option<String>> {
    let Some(image) = shelved_image(inst) else {
        return Ok(None);
    };
    if inst.target_vm_state == VmState::ShelvedOffloaded {
        return Ok(None);
    }
    let image = image.to_string();
    let mut spec = inst.request_spec.clone();
    if let Some(o) = spec.as_object_mut() {
        o.remove("shelved_image");
    }
    instances::set_request_spec(tx, &inst.uuid, &spec, now).await?;
    Ok(Some(image))
}
