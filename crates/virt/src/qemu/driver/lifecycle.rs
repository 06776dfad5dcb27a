//! Starting a guest's QEMU, reading its state, and the power operations that take more than
//! one QMP command: soft reboot, suspend to disk and resume.

use std::ffi::OsString;
use std::time::Duration;

use ferrostack_agent_api::{GuestSpec, PowerState};

use super::super::disk::{create_blank, create_overlay, create_scratch, qemu_img, Scratch};
use super::super::machine::{Hardware, Machine};
use super::super::qmp::RunState;
use super::super::{io, GuestDir, QemuProcess};
use super::layout::{self, Boot, Kind};
use super::{BootImage, QemuDriver};
use crate::{DriverError, Result};

/// How a guest's QEMU starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Start<'a> {
    /// Boots the machine.
    Boot,
    /// Restores the machine state saved in this file (resume from suspend).
    Restore(&'a std::path::Path),
    /// Waits for a live migration's machine state (given later by `migrate-incoming`).
    Receive,
}

/// How often a migration or block job is looked at while waiting for it.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// How often the ACPI power button is pressed while a guest is asked to power off.
const SHUTDOWN_RETRY: Duration = Duration::from_secs(5);

impl QemuDriver {
    /// Starts the guest's QEMU from its stored spec, boot record and disk (its rescue boot
    /// while it is rescued), as `start` says.
    pub(super) async fn launch(&self, spec: &GuestSpec, start: Start<'_>) -> Result<QemuProcess> {
        let dir = self.dir_of(&spec.uuid);
        let rescue: Option<Boot> =
            layout::read_json(&layout::boot_file(&dir, Kind::Rescue)).await?;
        let (kind, boot) = match rescue {
            Some(b) => (Kind::Rescue, b),
            None => (
                Kind::Own,
                layout::read_json(&layout::boot_file(&dir, Kind::Own))
                    .await?
                    .ok_or_else(|| {
                        DriverError::failed(format!("guest {} has no boot record", spec.uuid))
                    })?,
            ),
        };
        // A rescued guest boots the rescue disk with its own root disk second (Nova's rescue
        // without stable device rescue): its ephemeral and swap disks wait for unrescue.
        let disks = match kind {
            Kind::Own => layout::own_disks(&dir),
            Kind::Rescue => vec![
                layout::disk_file(&dir, Kind::Rescue),
                layout::disk_file(&dir, Kind::Own),
            ],
        };
        let machine = Machine {
            accel: self.accel,
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            hardware: boot.hardware,
            disks,
            cdrom: Some(layout::config_drive_file(&dir)).filter(|f| f.exists()),
            kernel: boot.kernel.then(|| layout::kernel_file(&dir, kind)),
            ramdisk: boot.ramdisk.then(|| layout::ramdisk_file(&dir, kind)),
            cmdline: boot.cmdline,
            vnc_socket: Some(dir.vnc_socket()),
            // The ports the spec names; else, with an operator's bridge, one NIC of its own.
            nics: match &self.vifs {
                Some(_) if !spec.nics.is_empty() => crate::vif::port_vifs(spec),
                Some(p) if p.nic_without_port() => {
                    crate::vif::guest_vifs(&self.root, &spec.uuid, 1)
                }
                _ => Vec::new(),
            },
        };
        let nics = machine.nics.clone();
        let mut args = machine.args();
        match start {
            Start::Boot => {}
            Start::Restore(state) => {
                args.push(OsString::from("-incoming"));
                args.push(OsString::from(format!(
                    "exec:cat {}",
                    layout::shell_word(state)
                )));
            }
            // Paused (-S) after the migration, until the source's disk copy has ended too.
            Start::Receive => {
                for a in ["-S", "-incoming", "defer"] {
                    args.push(OsString::from(a));
                }
            }
        }
        let p = QemuProcess::launch(&self.binary, &dir, &args).await?;
        if let Some(plugger) = &self.vifs {
            for nic in &nics {
                if let Err(e) = plugger.plug(nic).await {
                    // Its taps go with it.
                    let _ = p.kill(Duration::from_secs(5)).await;
                    return Err(e);
                }
            }
        }
        Ok(p)
    }

    /// Makes the disk and boot record of `kind` in the guest's directory from `image`: a
    /// qcow2 overlay on the cached image, `size_gb` large (never below the image), and
    /// copies of the image's kernel and ramdisk.
    pub(super) async fn prepare(
        &self,
        dir: &GuestDir,
        kind: Kind,
        image: BootImage,
        size_gb: i64,
    ) -> Result<()> {
        let hardware = Hardware::from_properties(&image.properties).map_err(DriverError::failed)?;
        tokio::fs::create_dir_all(&dir.path)
            .await
            .map_err(io(format!("creating {}", dir.path.display())))?;
        let size = u64::try_from(size_gb).unwrap_or(0);
        let disk = layout::disk_file(dir, kind);
        layout::remove_file(&disk).await?;
        create_overlay(&qemu_img(), &image.disk, &image.format, &disk, size).await?;
        for (file, to) in [
            (&image.kernel, layout::kernel_file(dir, kind)),
            (&image.ramdisk, layout::ramdisk_file(dir, kind)),
        ] {
            if let Some(f) = file {
                tokio::fs::copy(f, &to)
                    .await
                    .map_err(io(format!("copying {}", f.display())))?;
            }
        }
        let boot = Boot {
            hardware,
            kernel: image.kernel.is_some(),
            ramdisk: image.ramdisk.is_some(),
            cmdline: image.cmdline,
        };
        layout::write_json(&layout::boot_file(dir, kind), &boot).await
    }

    /// Makes the flavor's ephemeral and swap disks of `spec` that the guest lacks: new,
    /// formatted as Nova's libvirt driver makes them (ext4 `ephemeral0`, swap `swap0`), or
    /// blank when a live migration's mirror fills them (`formatted` false).
    pub(super) async fn make_scratch_disks(
        &self,
        dir: &GuestDir,
        spec: &GuestSpec,
        formatted: bool,
    ) -> Result<()> {
        let wanted = [
            (
                layout::ephemeral_file(dir),
                u64::try_from(spec.ephemeral_gb).unwrap_or(0) << 30,
                Scratch::Ephemeral,
            ),
            (
                layout::swap_file(dir),
                u64::try_from(spec.swap_mb).unwrap_or(0) << 20,
                Scratch::Swap,
            ),
        ];
        for (file, size, kind) in wanted {
            if size > 0 && !file.exists() {
                if formatted {
                    create_scratch(&qemu_img(), &file, size, kind).await?;
                } else {
                    create_blank(&qemu_img(), &file, size).await?;
                }
            }
        }
        Ok(())
    }

    fn power_of(state: RunState) -> PowerState {
        match state {
            RunState::Running => PowerState::Running,
            RunState::Paused => PowerState::Paused,
            RunState::Suspended => PowerState::Suspended,
            RunState::Shutdown => PowerState::Shutdown,
            RunState::Incoming | RunState::Migrated | RunState::Other => PowerState::NoState,
        }
    }

    /// The guest's power state: from its QEMU when one runs; without one, suspended when its
    /// machine state is saved, else shut down.
    pub(super) async fn observe(&self, uuid: &str) -> Result<PowerState> {
        let dir = self.dir_of(uuid);
        match self.process(uuid).await? {
            None if layout::suspend_file(&dir).exists() => Ok(PowerState::Suspended),
            None => Ok(PowerState::Shutdown),
            Some(p) => Ok(p
                .qmp()
                .status()
                .await
                .map_or(PowerState::NoState, Self::power_of)),
        }
    }

    /// Presses the ACPI power button and waits up to the shutdown timeout for the guest to
    /// power off; true when it did.
    /// The button is pressed again every [`SHUTDOWN_RETRY`], as Nova does: a guest still
    /// booting may not have listened to the first press.
    pub(super) async fn clean_shutdown(&self, p: &QemuProcess) -> bool {
        let start = tokio::time::Instant::now();
        let until = start + self.shutdown_timeout;
        let mut next_press = start;
        while p.is_alive() && tokio::time::Instant::now() < until {
            if tokio::time::Instant::now() >= next_press {
                if p.qmp().powerdown().await.is_err() {
                    break;
                }
                next_press += SHUTDOWN_RETRY;
            }
            tokio::time::sleep(POLL).await;
        }
        !p.is_alive()
    }

    /// Nova's soft reboot: the guest powers off through ACPI and is started again; a guest
    /// that does not power off within the shutdown timeout is rebooted hard.
    pub(super) async fn soft_reboot(&self, spec: &GuestSpec) -> Result<()> {
        if let Some(p) = self.process(&spec.uuid).await? {
            if !self.clean_shutdown(&p).await {
                tracing::info!(uuid = %spec.uuid, "guest ignored the ACPI power button; rebooting hard");
                p.kill(Duration::from_secs(5)).await?;
            }
        }
        self.fresh_start(spec).await
    }

    /// Starts the guest from its disk, dropping any saved machine state.
    pub(super) async fn fresh_start(&self, spec: &GuestSpec) -> Result<()> {
        layout::remove_file(&layout::suspend_file(&self.dir_of(&spec.uuid))).await?;
        self.launch(spec, Start::Boot).await.map(|_| ())
    }

    /// Suspend to disk (Nova's suspend, libvirt's managed save): the vCPUs stop, the machine
    /// state is written to the guest's directory, and QEMU ends, freeing the host's memory.
    pub(super) async fn suspend_to_disk(&self, uuid: &str) -> Result<()> {
        let dir = self.dir_of(uuid);
        let state = layout::suspend_file(&dir);
        let Some(p) = self.process(uuid).await? else {
            return if state.exists() {
                Ok(())
            } else {
                Err(DriverError::failed(format!("guest {uuid} is not running")))
            };
        };
        let part = dir.path.join("suspend.state.part");
        let qmp = p.qmp();
        qmp.stop().await?;
        let saved = async {
            qmp.migrate(&format!("exec:cat > {}", layout::shell_word(&part)))
                .await?;
            wait_for_migration(&qmp, &format!("saving the machine state of {uuid}"), None).await?;
            tokio::fs::rename(&part, &state)
                .await
                .map_err(io(format!("keeping {}", state.display())))?;
            Ok(())
        }
        .await;
        if let Err(e) = saved {
            // The guest runs on as it was.
            let _ = layout::remove_file(&part).await;
            let _ = qmp.cont().await;
            return Err(e);
        }
        p.kill(Duration::from_secs(5)).await?;
        Ok(())
    }

    /// Restores a guest suspended to disk; the saved state is removed once the guest runs
    /// again.
    pub(super) async fn resume_from_disk(&self, uuid: &str) -> Result<()> {
        let dir = self.dir_of(uuid);
        let state = layout::suspend_file(&dir);
        if let Some(p) = self.process(uuid).await? {
            // Already restored (or suspended to RAM by the guest): just run.
            p.qmp().cont().await?;
            return layout::remove_file(&state).await;
        }
        if !state.exists() {
            return Err(DriverError::failed(format!(
                "guest {uuid} is not suspended"
            )));
        }
        let spec = layout::read_spec(&dir).await?;
        let p = self.launch(&spec, Start::Restore(&state)).await?;
        let qmp = p.qmp();
        let until = tokio::time::Instant::now() + Duration::from_secs(120);
        let what = format!("restoring the machine state of {uuid}");
        if let Err(e) = wait_for_migration(&qmp, &what, Some(until)).await {
            let _ = p.kill(Duration::from_secs(5)).await;
            return Err(e);
        }
        // The vCPUs were stopped when the state was saved.
        qmp.cont().await?;
        layout::remove_file(&state).await
    }
}

/// Waits for the guest's migration (`what`, for the error) to complete: an error when it
/// failed, was cancelled, or is still going at `until`.
pub(super) async fn wait_for_migration(
    qmp: &super::super::Qmp,
    what: &str,
    until: Option<tokio::time::Instant>,
) -> Result<()> {
    loop {
        let (status, error) = qmp.migration().await?;
        match status.as_str() {
            "completed" => return Ok(()),
            "failed" | "cancelled" => {
                return Err(DriverError::failed(format!(
                    "{what} failed: {}",
                    error.unwrap_or(status)
                )))
            }
            _ if until.is_some_and(|u| tokio::time::Instant::now() >= u) => {
                return Err(DriverError::failed(format!("{what} did not finish")))
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
