//! What changes a guest's disks: snapshots (createImage, shelve), resize on this host and its
//! revert, rescue and unrescue.

use std::path::Path;
use std::time::Duration;

use ferrostack_agent_api::GuestSpec;

use super::super::disk::{flatten, grow, qemu_img};
use super::super::io;
use super::layout::{self, Kind};
use super::lifecycle::Start;
use super::QemuDriver;
use crate::{DriverError, Result};

impl QemuDriver {
    /// Copies the guest's root disk into `dest` as one standalone qcow2 file. A running guest
    /// keeps running: QEMU copies the disk as it was when the copy started (a backup job),
    /// as Nova's live snapshots do; a guest that is not running is copied with qemu-img.
    pub(super) async fn snapshot_disk(&self, uuid: &str, dest: &Path) -> Result<()> {
        if !self.exists(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        let dir = self.dir_of(uuid);
        let _ = tokio::fs::remove_file(dest).await;
        let running = self.process(uuid).await?;
        let Some(p) = running else {
            return Ok(flatten(&qemu_img(), &layout::disk_file(&dir, Kind::Own), dest).await?);
        };
        // While rescued, the guest's own disk is the second one.
        let device = if layout::boot_file(&dir, Kind::Rescue).exists() {
            "disk1"
        } else {
            "disk0"
        };
        let job = format!("snapshot-{}", std::process::id());
        let qmp = p.qmp();
        qmp.backup(device, dest, &job).await?;
        loop {
            match qmp.job_outcome(&job).await? {
                None => tokio::time::sleep(Duration::from_millis(50)).await,
                Some(Ok(())) => return Ok(()),
                Some(Err(e)) => {
                    let _ = tokio::fs::remove_file(dest).await;
                    return Err(DriverError::failed(format!(
                        "copying the disk of {uuid} failed: {e}"
                    )));
                }
            }
        }
    }

    /// Gives a powered-off guest the sizes of `spec`. A resize keeps the disk as it was and
    /// the spec it had, then grows the disk; a later resize back to exactly that spec is a
    /// revert and restores the kept disk (the guest's data as it was before the resize, as
    /// Nova's revert does).
    pub(super) async fn resize_guest(&self, spec: &GuestSpec) -> Result<()> {
        let dir = self.dir_of(&spec.uuid);
        let current = layout::read_spec(&dir).await?;
        if self.process(&spec.uuid).await?.is_some() {
            return Err(DriverError::failed(format!(
                "guest {} must be powered off to be resized",
                spec.uuid
            )));
        }
        let disk = layout::disk_file(&dir, Kind::Own);
        let ephemeral = layout::ephemeral_file(&dir);
        let (kept_disk, kept_ephemeral) = (
            layout::pre_resize_disk(&dir),
            layout::pre_resize_ephemeral(&dir),
        );
        let kept: Option<GuestSpec> = layout::read_json(&layout::pre_resize_spec(&dir)).await?;
        let sizes = |s: &GuestSpec| (s.vcpus, s.memory_mb, s.root_gb, s.ephemeral_gb, s.swap_mb);
        if kept.as_ref().map(sizes) == Some(sizes(spec)) && kept_disk.exists() {
            tokio::fs::rename(&kept_disk, &disk)
                .await
                .map_err(io("restoring the disk from before the resize"))?;
            if kept_ephemeral.exists() {
                tokio::fs::rename(&kept_ephemeral, &ephemeral)
                    .await
                    .map_err(io("restoring the ephemeral disk from before the resize"))?;
            } else {
                layout::remove_file(&ephemeral).await?;
            }
            layout::remove_file(&layout::pre_resize_spec(&dir)).await?;
        } else if sizes(&current) != sizes(spec) {
            tokio::fs::copy(&disk, &kept_disk)
                .await
                .map_err(io("keeping the disk from before the resize"))?;
            layout::remove_file(&kept_ephemeral).await?;
            if ephemeral.exists() {
                tokio::fs::copy(&ephemeral, &kept_ephemeral)
                    .await
                    .map_err(io("keeping the ephemeral disk from before the resize"))?;
            }
            layout::write_json(&layout::pre_resize_spec(&dir), &current).await?;
            grow(&qemu_img(), &disk, u64::try_from(spec.root_gb).unwrap_or(0)).await?;
            if ephemeral.exists() {
                grow(
                    &qemu_img(),
                    &ephemeral,
                    u64::try_from(spec.ephemeral_gb).unwrap_or(0),
                )
                .await?;
            }
        }
        // Swap is scratch: made anew at its new size (or dropped), as any missing disk.
        if current.swap_mb != spec.swap_mb {
            layout::remove_file(&layout::swap_file(&dir)).await?;
        }
        self.make_scratch_disks(&dir, spec, true).await?;
        layout::write_json(&layout::spec_file(&dir), &spec.without_injected()).await
    }

    /// Nova's rescue: the guest restarts from a fresh disk of `image_ref` (with that image's
    /// kernel), its own disk attached as the second disk.
    pub(super) async fn rescue_guest(&self, uuid: &str, image_ref: &str) -> Result<()> {
        let dir = self.dir_of(uuid);
        let spec = layout::read_spec(&dir).await?;
        if layout::boot_file(&dir, Kind::Rescue).exists() {
            return Ok(());
        }
        let image = self.images.boot_image(image_ref).await?;
        if let Some(p) = self.process(uuid).await? {
            p.kill(Duration::from_secs(5)).await?;
        }
        layout::remove_file(&layout::suspend_file(&dir)).await?;
        let made = self.prepare(&dir, Kind::Rescue, image, 0).await;
        let started = match made {
            Ok(()) => self.launch(&spec, Start::Boot).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            // Not rescued after all: the guest comes back on its own disk.
            self.drop_rescue(&dir).await?;
            let _ = self.launch(&spec, Start::Boot).await;
            return Err(e);
        }
        Ok(())
    }

    /// Restarts a rescued guest from its own disk; the rescue disk is deleted.
    pub(super) async fn unrescue_guest(&self, uuid: &str) -> Result<()> {
        let dir = self.dir_of(uuid);
        let spec = layout::read_spec(&dir).await?;
        if !layout::boot_file(&dir, Kind::Rescue).exists() {
            return Ok(());
        }
        if let Some(p) = self.process(uuid).await? {
            p.kill(Duration::from_secs(5)).await?;
        }
        self.drop_rescue(&dir).await?;
        self.launch(&spec, Start::Boot).await.map(|_| ())
    }

    async fn drop_rescue(&self, dir: &super::super::GuestDir) -> Result<()> {
        // The boot record first: without it the guest is not rescued, whatever else remains.
        layout::remove_file(&layout::boot_file(dir, Kind::Rescue)).await?;
        for f in [
            layout::disk_file(dir, Kind::Rescue),
            layout::kernel_file(dir, Kind::Rescue),
            layout::ramdisk_file(dir, Kind::Rescue),
        ] {
            layout::remove_file(&f).await?;
        }
        Ok(())
    }
}
