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
//! the disk and runs the guest. The source goes one step per call of the agent, reporting
//! QEMU's figures between steps, so the controller can force the migration to complete
//! (pause the guest, lift the bandwidth cap) or call it off (cancel, run on here) at any
//! time.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use ferrostack_agent_api::GuestSpec;
use serde::{Deserialize, Serialize};

use super::super::disk::{check_received, grow, qemu_img, rebase_unsafe};
use super::super::{io, QemuProcess, Qmp, RunState};
use super::layout::{self, Kind};
use super::lifecycle::{Start, POLL};
use super::{config_drive, QemuDriver};
use crate::{DriverError, Incoming, MoveProgress, Outgoing, Result};

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

/// The source's mirror job of a drive.
fn mirror_job(drive: &str) -> String {
    format!("migrate-{drive}")
}

/// The drives a migration copies: every disk of the guest (root, ephemeral, swap; a rescued
/// guest is not migrated), as QEMU names them.
fn drives_of(spec: &GuestSpec) -> Vec<String> {
    let n = 1 + usize::from(spec.ephemeral_gb > 0) + usize::from(spec.swap_mb > 0);
    (0..n).map(|i| format!("disk{i}")).collect()
}
/// How long a live migration may take before its source gives it up (Nova's
/// `live_migration_completion_timeout`, whose default action is to abort, is 800 s).
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(800);

/// What a live migration's source has done so far (`outgoing.json` in the guest's directory
/// while it sends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sending {
    /// The guest ran when the migration began: it runs again if the migration is called off.
    resume: bool,
    /// When it began, in seconds since the epoch.
    started: u64,
    /// The machine state is on its way (after the disk caught up).
    memory: bool,
    /// Forced to complete: the guest was paused here, the bandwidth cap lifted.
    forced: bool,
    /// All was sent (QEMU's figures logged).
    #[serde(default)]
    sent: bool,
}

fn outgoing_file(dir: &super::super::GuestDir) -> std::path::PathBuf {
    dir.path.join("outgoing.json")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// QEMU's figures of the migration, logged once (for the operator and `ferrostack bench
/// qemu`), whichever step first sees it complete.
async fn log_sent(qmp: &Qmp, s: &mut Sending, what: &str) {
    if s.sent {
        return;
    }
    s.sent = true;
    if let Ok(st) = qmp.migration_stats().await {
        tracing::info!(
            guest = %what,
            total_ms = st.total_ms,
            downtime_ms = st.downtime_ms,
            ram_bytes = st.ram_bytes,
            "live migration sent"
        );
    }
}

/// Ends the mirror jobs of `drives` and waits until they are gone: of a guest that was sent
/// (it is stopped, so each mirror's last writes reach the destination as it ends), or
/// `abandon`ed when a migration is called off (nothing more is written there).
async fn end_mirrors(qmp: &Qmp, drives: &[String], abandon: bool) -> Result<()> {
    for drive in drives {
        let job = mirror_job(drive);
        if qmp.block_job(&job).await?.is_some() {
            qmp.block_job_cancel(&job, abandon).await?;
        }
        while qmp.block_job(&job).await?.is_some() {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// Stops whatever a live migration's source was sending and lets the guest run on as it did
/// before (QEMU resumes a guest whose migration completed: `cont` takes its disks back).
async fn call_off(qmp: &Qmp, s: &Sending, drives: &[String]) -> Result<()> {
    if qmp.migration_info().await?.is_active() {
        qmp.migrate_cancel().await?;
        let until = tokio::time::Instant::now() + CALL_OFF_TIMEOUT;
        while qmp.migration_info().await?.is_active() {
            if tokio::time::Instant::now() >= until {
                return Err(DriverError::failed(
                    "the migration did not stop when cancelled",
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
    end_mirrors(qmp, drives, true).await?;
    match qmp.status().await? {
        RunState::Migrated => {
            qmp.cont().await?;
            if !s.resume {
                qmp.stop().await?;
            }
        }
        RunState::Paused if s.resume => qmp.cont().await?,
        _ => {}
    }
    Ok(())
}

/// How long a cancelled migration may take to stop.
const CALL_OFF_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a destination waits for a guest: the NBD URI of its root disk and the migration URI
/// of its machine state. Kept in the guest's directory while it waits (`incoming.json`), and
/// given to the source through the controller as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Endpoint {
    /// Each drive of the guest and the NBD URI it is served at.
    disks: Vec<(String, String)>,
    memory: String,
}

impl Endpoint {
    fn drives(&self) -> Vec<String> {
        self.disks.iter().map(|(d, _)| d.clone()).collect()
    }
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
                // What the guest wrote, on this host's copy of its image; its ephemeral disk
                // as it was, grown to a resize's new size.
                let ephemeral = layout::ephemeral_file(&dir);
                let config = layout::config_drive_file(&dir);
                unpack_handed_over(received, &disk, &ephemeral, &config).await?;
                check_received(&qemu_img(), &disk, true).await?;
                rebase_unsafe(&qemu_img(), &disk, &base, &base_format).await?;
                grow(&qemu_img(), &disk, u64::try_from(spec.root_gb).unwrap_or(0)).await?;
                if ephemeral.exists() {
                    check_received(&qemu_img(), &ephemeral, false).await?;
                    if spec.ephemeral_gb > 0 {
                        grow(
                            &qemu_img(),
                            &ephemeral,
                            u64::try_from(spec.ephemeral_gb).unwrap_or(0),
                        )
                        .await?;
                    } else {
                        layout::remove_file(&ephemeral).await?;
                    }
                }
            }
            // Ephemeral and swap disks: new (a live migration's mirror then fills them), or
            // the ephemeral disk handed over with the root disk and a new swap disk.
            self.make_scratch_disks(&dir, spec, !matches!(origin, Origin::Live))
                .await?;
            // A config drive handed over is kept as it was made (with what was injected at
            // create, which the controller no longer has).
            let config = layout::config_drive_file(&dir);
            if spec.config_drive && !config.exists() {
                config_drive::build(spec, &config).await?;
            }
            let endpoint = match origin {
                Origin::Live => {
                    let p = self.launch(spec, Start::Receive).await?;
                    let endpoint = self.listen(&p, &drives_of(spec)).await?;
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
            layout::write_json(&layout::spec_file(&dir), &spec.without_injected()).await?;
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
    async fn listen(&self, p: &QemuProcess, drives: &[String]) -> Result<Endpoint> {
        let host = self.migration_address.as_str();
        let (nbd_port, memory_port) = (free_port(host)?, free_port(host)?);
        let qmp = p.qmp();
        qmp.nbd_start(host, nbd_port).await?;
        for drive in drives {
            qmp.nbd_export(drive).await?;
        }
        // In URIs an IPv6 address goes in brackets.
        let at = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let memory = format!("tcp:{at}:{memory_port}");
        qmp.migrate_incoming(&memory).await?;
        Ok(Endpoint {
            disks: drives
                .iter()
                .map(|d| (d.clone(), format!("nbd://{at}:{nbd_port}/{d}")))
                .collect(),
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
        qmp.nbd_stop(&endpoint.drives()).await?;
        layout::remove_file(&incoming_file(&dir)).await?;
        Ok(Incoming::Arrived)
    }

    /// Live migration's source, one step: see [`crate::Driver::send`]. What it has done so
    /// far is kept in the guest's directory (`outgoing.json`), so an agent that restarts
    /// mid-way carries on (or calls it off) where it was.
    pub(super) async fn send_live(
        &self,
        uuid: &str,
        endpoint: &str,
        force_complete: bool,
    ) -> Result<Outgoing> {
        let to: Endpoint = serde_json::from_str(endpoint).map_err(|e| {
            DriverError::failed_with(format!("not a migration endpoint: {endpoint}"), e)
        })?;
        let dir = self.dir_of(uuid);
        let file = outgoing_file(&dir);
        let p = self.running(uuid).await?;
        let qmp = p.qmp();
        let mut sending = match layout::read_json::<Sending>(&file).await? {
            Some(s) => s,
            None => {
                let s = Sending {
                    resume: qmp.status().await? == RunState::Running,
                    started: unix_now(),
                    memory: false,
                    forced: false,
                    sent: false,
                };
                layout::write_json(&file, &s).await?;
                s
            }
        };
        let before = sending.clone();
        let what = format!("migrating guest {uuid}");
        match self
            .send_step(&qmp, &to, &mut sending, force_complete, &what)
            .await
        {
            Ok(out) => {
                if sending != before {
                    layout::write_json(&file, &sending).await?;
                }
                Ok(out)
            }
            Err(e) => {
                // The guest runs on here as it was; the destination's copy is dropped.
                if let Err(undo) = call_off(&qmp, &sending, &to.drives()).await {
                    tracing::warn!(%uuid, error = %undo, "calling off a failed live migration");
                }
                let _ = layout::remove_file(&file).await;
                Err(e)
            }
        }
    }

    async fn send_step(
        &self,
        qmp: &Qmp,
        to: &Endpoint,
        s: &mut Sending,
        force: bool,
        what: &str,
    ) -> Result<Outgoing> {
        // Sent already (the state says it: `query-migrate` of a guest that itself came here
        // by migration reports that incoming one as completed).
        if qmp.status().await? == RunState::Migrated {
            log_sent(qmp, s, what).await;
            return end_mirrors(qmp, &to.drives(), false)
                .await
                .map(|()| Outgoing::Sent);
        }
        if unix_now().saturating_sub(s.started) > MIGRATION_TIMEOUT.as_secs() {
            return Err(DriverError::failed(format!(
                "{what}: not complete after {} s (abort it, or force it to complete)",
                MIGRATION_TIMEOUT.as_secs()
            )));
        }
        let cap = if force || s.forced {
            None
        } else {
            self.migration_bandwidth
        };
        // One mirror per disk; the operator's bandwidth cap is shared among them.
        let per_disk = cap.map(|c| c / u64::try_from(to.disks.len().max(1)).unwrap_or(1));
        let mut jobs = Vec::with_capacity(to.disks.len());
        for (drive, _) in &to.disks {
            jobs.push(qmp.block_job(&mirror_job(drive)).await?);
        }
        let (len, offset) = jobs
            .iter()
            .flatten()
            .fold((0, 0), |(l, o), j| (l + j.len, o + j.offset));
        let disk = MoveProgress {
            disk_total: Some(len),
            disk_processed: Some(offset),
            disk_remaining: Some(len - offset),
            ..Default::default()
        };
        let all_running = jobs.iter().all(Option::is_some);
        if !s.memory {
            if !all_running {
                // First the disks: each mirrored to the destination's NBD export of it.
                for ((drive, uri), job) in to.disks.iter().zip(&jobs) {
                    if job.is_none() {
                        qmp.mirror(drive, uri, &mirror_job(drive), per_disk).await?;
                    }
                }
                return Ok(Outgoing::Sending(MoveProgress::default()));
            }
            if jobs.iter().flatten().any(|j| !j.ready) {
                if force {
                    for (drive, _) in &to.disks {
                        qmp.set_block_job_speed(&mirror_job(drive), None).await?;
                    }
                }
                return Ok(Outgoing::Sending(disk));
            }
            // The disks are in step: the memory follows, the mirrors keep the disks in step
            // meanwhile.
            qmp.set_migration_bandwidth(cap).await?;
            qmp.migrate(&to.memory).await?;
            s.memory = true;
        }
        if force && !s.forced {
            // Nova's force-complete: a paused guest's memory stops changing, so the copy
            // converges; and nothing holds it back any more.
            if qmp.status().await? == RunState::Running {
                qmp.stop().await?;
            }
            qmp.set_migration_bandwidth(None).await?;
            for ((drive, _), job) in to.disks.iter().zip(&jobs) {
                if job.is_some() {
                    qmp.set_block_job_speed(&mirror_job(drive), None).await?;
                }
            }
            s.forced = true;
        }
        let info = qmp.migration_info().await?;
        match info.status.as_str() {
            "completed" => {
                log_sent(qmp, s, what).await;
                // The source's copy is removed after this: never unless QEMU says it was
                // sent.
                let state = qmp.status().await?;
                if state != RunState::Migrated {
                    return Err(DriverError::failed(format!(
                        "{what}: the guest was not sent (its QEMU is {state:?})"
                    )));
                }
                end_mirrors(qmp, &to.drives(), false)
                    .await
                    .map(|()| Outgoing::Sent)
            }
            "failed" | "cancelled" => Err(DriverError::failed(format!(
                "{what} failed: {}",
                info.error.unwrap_or(info.status)
            ))),
            _ if !all_running => Err(DriverError::failed(format!(
                "{what}: a disk copy to the destination ended early"
            ))),
            _ => Ok(Outgoing::Sending(MoveProgress {
                memory_total: info.ram_total,
                memory_processed: info.ram_transferred,
                memory_remaining: info.ram_remaining,
                ..disk
            })),
        }
    }

    /// Live migration called off: see [`crate::Driver::stay`].
    pub(super) async fn stay_here(&self, uuid: &str) -> Result<()> {
        let file = outgoing_file(&self.dir_of(uuid));
        // The usual case, on every pass: nothing is being sent.
        if !file.exists() {
            return Ok(());
        }
        if let (Some(s), Some(p)) = (
            layout::read_json::<Sending>(&file).await?,
            self.process(uuid).await?,
        ) {
            let drives = drives_of(&self.spec(uuid).await?);
            call_off(&p.qmp(), &s, &drives).await?;
            tracing::info!(%uuid, "live migration called off; the guest stays here");
        }
        layout::remove_file(&file).await
    }

    /// Cold move's source: packs the powered-off guest's disks into `dest` (a tar of the
    /// root disk's overlay, the ephemeral disk and the config drive, which may hold what was
    /// injected at create; the swap disk is scratch and made anew).
    pub(super) async fn hand_over_disk(&self, uuid: &str, dest: &Path) -> Result<()> {
        if !self.exists(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        if self.process(uuid).await?.is_some() {
            return Err(DriverError::failed(format!(
                "guest {uuid} must be powered off to hand its disk over"
            )));
        }
        let dir = self.dir_of(uuid);
        let files: Vec<(&'static str, std::path::PathBuf)> = [
            (HANDED_ROOT, layout::disk_file(&dir, Kind::Own)),
            (HANDED_EPHEMERAL, layout::ephemeral_file(&dir)),
            (HANDED_CONFIG_DRIVE, layout::config_drive_file(&dir)),
        ]
        .into_iter()
        .filter(|(name, f)| *name == HANDED_ROOT || f.exists())
        .collect();
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let out = std::fs::File::create(&dest)?;
            let mut tar = tar::Builder::new(std::io::BufWriter::new(out));
            for (name, file) in files {
                tar.append_path_with_name(&file, name)?;
            }
            tar.into_inner()?
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()
        })
        .await
        .map_err(|e| DriverError::failed_with("packing the disks to hand over", e))?
        .map_err(io("packing the disks to hand over"))?;
        Ok(())
    }
}

/// The names of the disks in a cold move's hand-over (see [`QemuDriver::hand_over_disk`]).
const HANDED_ROOT: &str = "disk.qcow2";
const HANDED_EPHEMERAL: &str = "disk.eph0.qcow2";
const HANDED_CONFIG_DRIVE: &str = "disk.config";

/// Unpacks a hand-over into `root`, `ephemeral` and `config_drive` (only those names are
/// taken: the file came over the network).
async fn unpack_handed_over(
    received: &Path,
    root: &Path,
    ephemeral: &Path,
    config_drive: &Path,
) -> Result<()> {
    let (received, root, ephemeral, config_drive) = (
        received.to_path_buf(),
        root.to_path_buf(),
        ephemeral.to_path_buf(),
        config_drive.to_path_buf(),
    );
    tokio::task::spawn_blocking(move || {
        let mut tar = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(&received)?));
        let mut got_root = false;
        for entry in tar.entries()? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            let to = match name.as_str() {
                HANDED_ROOT => {
                    got_root = true;
                    &root
                }
                HANDED_EPHEMERAL => &ephemeral,
                HANDED_CONFIG_DRIVE => &config_drive,
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("unexpected {other:?} among the handed-over disks"),
                    ))
                }
            };
            let mut out = std::fs::File::create(to)?;
            std::io::copy(&mut entry, &mut out)?;
        }
        if got_root {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no root disk among the handed-over disks",
            ))
        }
    })
    .await
    .map_err(|e| DriverError::failed_with("taking the handed-over disks", e))?
    .map_err(io("taking the handed-over disks"))?;
    Ok(())
}
