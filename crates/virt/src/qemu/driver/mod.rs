//! `QemuDriver`: the [`Driver`] over the blocks of this module, one detached QEMU per guest
//! under `<root>/<uuid>/` (its spec, boot record, disks, pid file, console log; its sockets
//! under `<run_root>/<uuid>/`). What the agent asks is done idempotently; what runs is read
//! back from the processes themselves, so a restarted agent adopts the guests it finds.

mod config_drive;
mod console;
mod diagnostics;
mod disks;
mod layout;
mod lifecycle;
mod migration;
mod nics;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrostack_agent_api::{GuestSpec, HostInfo};

use super::probe::Accel;
use super::{io, GuestDir, QemuProcess};
use crate::{Driver, DriverError, Incoming, Observed, Outgoing, Result};

/// An image as a host boots it: its disk file (cached on this host) and, for images booted
/// directly, the kernel, ramdisk and command line.
#[derive(Debug, Clone)]
pub struct BootImage {
    pub disk: PathBuf,
    pub format: String,
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// The image's properties (`hw_*` choose the guest's hardware).
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// Where the driver gets images from (the host's image cache, filled from the image service).
#[async_trait::async_trait]
pub trait ImageSource: Send + Sync {
    async fn boot_image(&self, image_ref: &str) -> Result<BootImage>;
}

/// How long a guest has to power itself off after the ACPI button before it is ended.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

pub struct QemuDriver {
    /// The guests' directories (disks, logs, spec).
    pub root: PathBuf,
    /// The guests' sockets, on a short path (see [`GuestDir`]).
    pub run_root: PathBuf,
    pub binary: PathBuf,
    pub accel: Accel,
    pub qemu_version: i64,
    pub images: Arc<dyn ImageSource>,
    pub shutdown_timeout: Duration,
    /// The address this host's guests are received at in a live migration (the NBD server of
    /// their disks, the migration stream), which other hosts must reach (Nova's
    /// `live_migration_inbound_addr`).
    pub migration_address: String,
    /// The cap on a live migration's bandwidth, memory and disk copy each, in bytes per
    /// second (Nova's `live_migration_bandwidth`); None: no cap.
    pub migration_bandwidth: Option<u64>,
    /// Plugs the guests' NICs into the host's network; None: guests have no NIC.
    pub vifs: Option<Arc<dyn crate::vif::VifPlugger>>,
}

impl QemuDriver {
    fn dir_of(&self, uuid: &str) -> GuestDir {
        GuestDir::with_run(&self.root, &self.run_root, uuid)
    }

    async fn process(&self, uuid: &str) -> Result<Option<QemuProcess>> {
        Ok(QemuProcess::adopt(&self.dir_of(uuid)).await?)
    }

    async fn running(&self, uuid: &str) -> Result<QemuProcess> {
        self.process(uuid)
            .await?
            .ok_or_else(|| DriverError::failed(format!("guest {uuid} is not running")))
    }

    fn exists(&self, uuid: &str) -> bool {
        layout::spec_file(&self.dir_of(uuid)).exists()
    }

    async fn spec(&self, uuid: &str) -> Result<GuestSpec> {
        layout::read_spec(&self.dir_of(uuid)).await
    }
}

#[async_trait::async_trait]
impl Driver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    async fn host_info(&self) -> Result<HostInfo> {
        // The disk offered is that of the file system the guests' directory is on.
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(io(format!("creating {}", self.root.display())))?;
        Ok(super::host::host_info(
            &self.root,
            self.accel,
            self.qemu_version,
        )?)
    }

    /// Every guest with a directory here; one without a QEMU is shut down (it was stopped, or
    /// its QEMU ended: the controller then sees SHUTOFF, as Nova's power-state sync).
    async fn list(&self) -> Result<Vec<Observed>> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(format!("listing {}", self.root.display()))(e).into()),
        };
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(|e| DriverError::from(io("listing guests")(e)))?
        {
            let uuid = e.file_name().to_string_lossy().to_string();
            if !self.exists(&uuid) {
                continue;
            }
            let power = self.observe(&uuid).await?;
            // Every pass of the agent lists its guests: the logs are kept in bounds here.
            console::rotate_if_large(&self.dir_of(&uuid)).await?;
            out.push(Observed { uuid, power });
        }
        Ok(out)
    }

    async fn spawn(&self, spec: &GuestSpec) -> Result<()> {
        self.create(spec, migration::Origin::Image)
            .await
            .map(|_| ())
    }

    async fn destroy(&self, uuid: &str) -> Result<()> {
        let dir = self.dir_of(uuid);
        if let Some(p) = QemuProcess::adopt(&dir).await? {
            p.kill(Duration::from_secs(5)).await?;
        }
        for d in [&dir.run, &dir.path] {
            match tokio::fs::remove_dir_all(d).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(format!("removing {}", d.display()))(e).into()),
            }
        }
        Ok(())
    }

    async fn power_on(&self, uuid: &str) -> Result<()> {
        let spec = self.spec(uuid).await?;
        match self.process(uuid).await? {
            // Paused or waiting: run.
            Some(p) => Ok(p.qmp().cont().await?),
            // A guest suspended to disk comes back as it was.
            None if layout::suspend_file(&self.dir_of(uuid)).exists() => {
                self.resume_from_disk(uuid).await
            }
            None => self.fresh_start(&spec).await,
        }
    }

    /// The ACPI power button, then the end of QEMU after the shutdown timeout.
    async fn power_off(&self, uuid: &str) -> Result<()> {
        if !self.exists(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        let Some(p) = self.process(uuid).await? else {
            // A suspended guest that is stopped loses its saved state, as a stopped guest
            // loses its memory.
            return layout::remove_file(&layout::suspend_file(&self.dir_of(uuid))).await;
        };
        if !self.clean_shutdown(&p).await {
            p.kill(Duration::from_secs(5)).await?;
        }
        Ok(())
    }

    /// Hard: QEMU is ended and started again (as libvirt destroys and recreates the
    /// domain); soft: through ACPI, see `soft_reboot`.
    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()> {
        let spec = self.spec(uuid).await?;
        if !hard {
            return self.soft_reboot(&spec).await;
        }
        if let Some(p) = self.process(uuid).await? {
            p.kill(Duration::from_secs(5)).await?;
        }
        self.fresh_start(&spec).await
    }

    async fn pause(&self, uuid: &str) -> Result<()> {
        Ok(self.running(uuid).await?.qmp().stop().await?)
    }

    async fn unpause(&self, uuid: &str) -> Result<()> {
        Ok(self.running(uuid).await?.qmp().cont().await?)
    }

    async fn suspend(&self, uuid: &str) -> Result<()> {
        self.suspend_to_disk(uuid).await
    }

    async fn resume(&self, uuid: &str) -> Result<()> {
        self.resume_from_disk(uuid).await
    }

    async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String> {
        if !self.exists(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        let text = console::output(&self.dir_of(uuid)).await?;
        Ok(match max_lines {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(n)..].join("\n")
            }
            None => text,
        })
    }

    /// Measured on the host: vCPU times, resident guest memory, disk counters, uptime.
    async fn diagnostics(&self, uuid: &str) -> Result<serde_json::Value> {
        self.measure(uuid).await
    }

    async fn inject_nmi(&self, uuid: &str) -> Result<()> {
        Ok(self.running(uuid).await?.qmp().inject_nmi().await?)
    }

    async fn rescue(&self, uuid: &str, rescue_image_ref: &str) -> Result<()> {
        self.rescue_guest(uuid, rescue_image_ref).await
    }

    async fn unrescue(&self, uuid: &str) -> Result<()> {
        self.unrescue_guest(uuid).await
    }

    async fn snapshot(&self, uuid: &str, dest: &Path) -> Result<String> {
        self.snapshot_disk(uuid, dest).await?;
        Ok("qcow2".into())
    }

    async fn resize(&self, spec: &GuestSpec) -> Result<()> {
        self.resize_guest(spec).await
    }

    async fn hand_over(&self, uuid: &str, dest: &Path) -> Result<bool> {
        self.hand_over_disk(uuid, dest).await.map(|()| true)
    }

    async fn receive(&self, spec: &GuestSpec, disk: Option<&Path>) -> Result<()> {
        let origin = match disk {
            Some(d) => migration::Origin::Disk(d),
            None => migration::Origin::Image,
        };
        self.create(spec, origin).await.map(|_| ())
    }

    async fn incoming(&self, spec: &GuestSpec, sent: bool) -> Result<Incoming> {
        self.receive_live(spec, sent).await
    }

    async fn send(&self, uuid: &str, endpoint: &str, force_complete: bool) -> Result<Outgoing> {
        self.send_live(uuid, endpoint, force_complete).await
    }

    async fn open_console(
        &self,
        uuid: &str,
        kind: crate::ConsoleKind,
    ) -> Result<Box<dyn crate::ConsoleIo>> {
        let dir = self.dir_of(uuid);
        let socket = match kind {
            crate::ConsoleKind::Vnc => dir.vnc_socket(),
            crate::ConsoleKind::Serial => dir.serial_socket(),
        };
        let s = tokio::net::UnixStream::connect(&socket)
            .await
            .map_err(|e| {
                DriverError::failed_with(format!("the console of guest {uuid} is not open"), e)
            })?;
        Ok(Box::new(s))
    }

    async fn stay(&self, uuid: &str) -> Result<()> {
        self.stay_here(uuid).await
    }

    async fn set_nics(&self, spec: &GuestSpec) -> Result<()> {
        self.set_guest_nics(spec).await
    }
}
