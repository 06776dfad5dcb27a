//! Creating a guest (from its image, from a disk another host handed over, or to receive it
//! live) and moving it to another host.
//!
//! Cold moves carry the root disk's top layer (the qcow2 overlay, what the guest wrote): the
//! destination makes the same overlay on its own cached copy of the image and points the
//! received file at it. Live migration is libvirt's migration without shared storage: the
//! destination starts a paused QEMU that waits for the machine state and serves its fresh
//! overlay over NBD; the source mirrors its overlay there (`drive-mirror`, sync `top`), and
//! once the mirror is in step, migrates the machine state; when that completes the mirror is
//! ended (its last writes flushed) and the destination, told by the controller, stops serving
//! the disk and runs the guest.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use ferrostack_agent_api::GuestSpec;
use serde::{Deserialize, Serialize};

use super::super::disk::{grow, qemu_img, rebase_unsafe};
use super::super::{io, QemuProcess, RunState};
use super::layout::{self, Kind};
use super::lifecycle::{wait_for_migration, Start, POLL};
use super::{config_drive, QemuDriver};
use crate::{DriverError, Incoming, Result};

/// Where a guest's disk comes from when it is created on this host.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin<'a> {
    /// A new overlay on its image (spawn).
    Image,
    /// The overlay another host handed over (a cold move's destination).
    Disk(&'a Path),
    /// Received live: a new overlay that the source's mirror fills.
    Live,
}

/// The drive a migration copies: the guest's root disk (a rescued guest is not migrated).
const ROOT_DRIVE: &str = "disk0";
/// The source's mirror job of the root disk.
const MIRROR_JOB: &str = "migrate-disk0";
/// How long the source's disk copy may take to catch up before the migration is given up.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a destination waits for a guest: the NBD URI of its root disk and the migration URI
/// of its machine state. Kept in the guest's directory while it waits (`incoming.json`), and
/// given to the source through the controller as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Endpoint {
    disk: String,
    memory: String,
}

fn incoming_file(dir: &super::super::GuestDir) -> std::path::PathBuf {
    dir.path.join("incoming.json")
}

/// A TCP port free on `address` now (QEMU binds it a moment later; a clash fails the
/// migration cleanly and the next attempt picks again).
fn free_port(address: &str) -> Result<u16> {
    let l = TcpListener::bind((address, 0))
        .map_err(|e| DriverError::failed_with(format!("no free port on {address}"), e))?;
    Ok(l.local_addr()
        .map_err(|e| DriverError::failed_with("local address", e))?
        .port())
}

impl QemuDriver {
    /// Creates and starts the guest of `spec` from `origin`; on any failure nothing of it
    /// stays behind. Returns the endpoint of a guest waiting to be received live.
    pub(super) async fn create(
        &self,
        spec: &GuestSpec,
        origin: Origin<'_>,
    ) -> Result<Option<String>> {
        if self.exists(&spec.uuid) {
            return Ok(None);
        }
        let dir = self.dir_of(&spec.uuid);
        let result = async {
            let image = self.images.boot_image(&spec.image_ref).await?;
            let (base, base_format) = (image.disk.clone(), image.format.clone());
            self.prepare(&dir, Kind::Own, image, spec.root_gb).await?;
            let disk = layout::disk_file(&dir, Kind::Own);
            if let Origin::Disk(received) = origin {
                // What the guest wrote, on this host's copy of its image.
                tokio::fs::copy(received, &disk)
                    .await
                    .map_err(io("taking the handed-over disk"))?;
                rebase_unsafe(&qemu_img(), &disk, &base, &base_format).await?;
                grow(&qemu_img(), &disk, u64::try_from(spec.root_gb).unwrap_or(0)).await?;
            }
            if spec.config_drive {
                config_drive::build(spec, &layout::config_drive_file(&dir)).await?;
            }
            let endpoint = match origin {
                Origin::Live => {
                    let p = self.launch(spec, Start::Receive).await?;
                    let endpoint = self.listen(&p).await?;
                    layout::write_json(&incoming_file(&dir), &endpoint).await?;
                    Some(serde_json::to_string(&endpoint).unwrap_or_default())
                }
                _ => {
                    self.launch(spec, Start::Boot).await?;
                    None
                }
            };
            // Recorded last: a guest without spec.json is not one (a failed creation leaves
            // nothing that `list` would report).
            layout::write_json(&layout::spec_file(&dir), spec).await?;
            Ok::<_, DriverError>(endpoint)
        }
        .await;
        if result.is_err() {
            if let Ok(Some(p)) = QemuProcess::adopt(&dir).await {
                let _ = p.kill(Duration::from_secs(5)).await;
            }
            let _ = tokio::fs::remove_dir_all(&dir.path).await;
            let _ = tokio::fs::remove_dir_all(&dir.run).await;
        }
        result
    }

    /// Makes a QEMU started to receive a guest listen: its root disk served over NBD, the
    /// machine state awaited on another port, both on the migration address.
    async fn listen(&self, p: &QemuProcess) -> Result<Endpoint> {
        let host = self.migration_address.as_str();
        let (nbd_port, memory_port) = (free_port(host)?, free_port(host)?);
        let qmp = p.qmp();
        qmp.nbd_start(host, nbd_port).await?;
        qmp.nbd_export(ROOT_DRIVE).await?;
        let memory = format!("tcp:{host}:{memory_port}");
        qmp.migrate_incoming(&memory).await?;
        Ok(Endpoint {
            disk: format!("nbd:{host}:{nbd_port}:exportname={ROOT_DRIVE}"),
            memory,
        })
    }

    /// Live migration's destination: see [`crate::Driver::incoming`].
    pub(super) async fn receive_live(&self, spec: &GuestSpec, sent: bool) -> Result<Incoming> {
        let dir = self.dir_of(&spec.uuid);
        if !self.exists(&spec.uuid) {
            let endpoint = self.create(spec, Origin::Live).await?.unwrap_or_default();
            return Ok(Incoming::Waiting { endpoint });
        }
        let Some(endpoint) = layout::read_json::<Endpoint>(&incoming_file(&dir)).await? else {
            return Ok(Incoming::Arrived);
        };
        let p = self.process(&spec.uuid).await?.ok_or_else(|| {
            DriverError::failed(format!(
                "the QEMU that waited for guest {} ended: the migration failed",
                spec.uuid
            ))
        })?;
        let qmp = p.qmp();
        // `inmigrate` while the state comes in; paused (-S) once it is all here.
        if !sent || qmp.status().await? != RunState::Paused {
            return Ok(Incoming::Waiting {
                endpoint: serde_json::to_string(&endpoint).unwrap_or_default(),
            });
        }
        qmp.nbd_stop(ROOT_DRIVE).await?;
        layout::remove_file(&incoming_file(&dir)).await?;
        Ok(Incoming::Arrived)
    }

    /// Live migration's source: see [`crate::Driver::send`].
    pub(super) async fn send_live(&self, uuid: &str, endpoint: &str) -> Result<()> {
        let to: Endpoint = serde_json::from_str(endpoint).map_err(|e| {
            DriverError::failed_with(format!("not a migration endpoint: {endpoint}"), e)
        })?;
        let p = self.running(uuid).await?;
        let qmp = p.qmp();
        let what = format!("migrating guest {uuid}");
        // Sent already (an agent that restarted after the migration): only the mirror is
        // left to end. (The run state says it: `query-migrate` of a guest that came here by
        // migration reports that incoming one as completed.)
        if qmp.status().await? != RunState::Migrated {
            let sent = async {
                if qmp.block_job(MIRROR_JOB).await?.is_none() {
                    qmp.mirror(ROOT_DRIVE, &to.disk, MIRROR_JOB).await?;
                }
                let until = tokio::time::Instant::now() + MIRROR_TIMEOUT;
                loop {
                    match qmp.block_job(MIRROR_JOB).await? {
                        Some(j) if j.ready => break,
                        Some(_) if tokio::time::Instant::now() < until => {
                            tokio::time::sleep(POLL).await
                        }
                        Some(j) => {
                            return Err(DriverError::failed(format!(
                                "{what}: the disk copy did not catch up ({})",
                                j.status
                            )))
                        }
                        None => {
                            return Err(DriverError::failed(format!(
                                "{what}: the disk copy to {} ended early",
                                to.disk
                            )))
                        }
                    }
                }
                qmp.migrate_unthrottled().await?;
                qmp.migrate(&to.memory).await?;
                wait_for_migration(&qmp, &what, None).await?;
                // QEMU's own figures, for the operator (and `ferrostack bench qemu`).
                if let Ok(s) = qmp.migration_stats().await {
                    tracing::info!(
                        %uuid,
                        total_ms = s.total_ms,
                        downtime_ms = s.downtime_ms,
                        ram_bytes = s.ram_bytes,
                        "live migration sent"
                    );
                }
                Ok(())
            }
            .await;
            if let Err(e) = sent {
                // The guest runs on here as it was; the destination's copy is dropped.
                let _ = qmp.migrate_cancel().await;
                let _ = qmp.block_job_cancel(MIRROR_JOB, true).await;
                return Err(e);
            }
        }
        // The source's copy is removed after this: never unless QEMU says it was sent.
        let state = qmp.status().await?;
        if state != RunState::Migrated {
            return Err(DriverError::failed(format!(
                "{what}: the guest was not sent (its QEMU is {state:?})"
            )));
        }
        // The guest is stopped now: the mirror's last writes reach the destination as it
        // ends.
        if qmp.block_job(MIRROR_JOB).await?.is_some() {
            qmp.block_job_cancel(MIRROR_JOB, false).await?;
        }
        while qmp.block_job(MIRROR_JOB).await?.is_some() {
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Cold move's source: copies the powered-off guest's root disk (its overlay) to `dest`.
    pub(super) async fn hand_over_disk(&self, uuid: &str, dest: &Path) -> Result<()> {
        if !self.exists(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        if self.process(uuid).await?.is_some() {
            return Err(DriverError::failed(format!(
                "guest {uuid} must be powered off to hand its disk over"
            )));
        }
        let disk = layout::disk_file(&self.dir_of(uuid), Kind::Own);
        tokio::fs::copy(&disk, dest)
            .await
            .map_err(io(format!("copying {}", disk.display())))?;
        Ok(())
    }
}
