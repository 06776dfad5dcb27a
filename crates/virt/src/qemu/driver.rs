//! `QemuDriver`: the [`Driver`] over the blocks of this module, one detached QEMU per guest
//! under `<root>/<uuid>/` (its spec, disk, pid file, QMP socket, console log). What the agent
//! asks is done idempotently; what runs is read back from the processes themselves, so a
//! restarted agent adopts the guests it finds. In progress (issue 14): images come from an
//! [`ImageSource`]; suspend, rescue, snapshot and resize are not done yet (`Unsupported`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrostack_agent_api::{GuestSpec, HostInfo, PowerState};
use serde::{Deserialize, Serialize};

use super::disk::{create_overlay, qemu_img};
use super::machine::{Hardware, Machine};
use super::probe::Accel;
use super::qmp::RunState;
use super::{io, GuestDir, QemuProcess};
use crate::{Driver, DriverError, Observed, Result};

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

/// How a guest boots, fixed at spawn and kept in its directory (`boot.json`), so a power on
/// needs neither the image service nor the image (which may be deleted meanwhile, as with
/// Nova): its kernel and ramdisk are copied beside its disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Boot {
    hardware: Hardware,
    kernel: bool,
    ramdisk: bool,
    cmdline: Option<String>,
}

/// Where the driver gets images from (the host's image cache, filled from the image service).
#[async_trait::async_trait]
pub trait ImageSource: Send + Sync {
    async fn boot_image(&self, image_ref: &str) -> Result<BootImage>;
}

/// How long a guest has to power itself off after the ACPI button before it is ended.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

pub struct QemuDriver {
    pub root: PathBuf,
    pub binary: PathBuf,
    pub accel: Accel,
    pub qemu_version: i64,
    pub images: Arc<dyn ImageSource>,
    pub shutdown_timeout: Duration,
}

fn dir_of(root: &Path, uuid: &str) -> GuestDir {
    GuestDir::new(root, uuid)
}

fn spec_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("spec.json")
}

fn disk_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("disk.qcow2")
}

fn boot_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("boot.json")
}

impl QemuDriver {
    async fn process(&self, uuid: &str) -> Result<Option<QemuProcess>> {
        Ok(QemuProcess::adopt(&dir_of(&self.root, uuid)).await?)
    }

    async fn running(&self, uuid: &str) -> Result<QemuProcess> {
        self.process(uuid)
            .await?
            .ok_or_else(|| DriverError::failed(format!("guest {uuid} is not running")))
    }

    fn exists(&self, uuid: &str) -> bool {
        spec_file(&dir_of(&self.root, uuid)).exists()
    }

    async fn spec(&self, uuid: &str) -> Result<GuestSpec> {
        let dir = dir_of(&self.root, uuid);
        let text = tokio::fs::read(spec_file(&dir))
            .await
            .map_err(|_| DriverError::NotFound(uuid.to_string()))?;
        serde_json::from_slice(&text)
            .map_err(|e| DriverError::failed_with(format!("guest {uuid}: bad spec.json"), e))
    }

    /// Starts the guest's QEMU from its stored spec, boot record and disk (power on, reboot,
    /// after a crash).
    async fn launch(&self, spec: &GuestSpec) -> Result<QemuProcess> {
        let dir = dir_of(&self.root, &spec.uuid);
        let text = tokio::fs::read(boot_file(&dir))
            .await
            .map_err(io("reading boot.json"))?;
        let boot: Boot = serde_json::from_slice(&text).map_err(|e| {
            DriverError::failed_with(format!("guest {}: bad boot.json", spec.uuid), e)
        })?;
        let machine = Machine {
            accel: self.accel,
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            hardware: boot.hardware,
            disks: vec![disk_file(&dir)],
            cdrom: None,
            kernel: boot.kernel.then(|| dir.path.join("kernel")),
            ramdisk: boot.ramdisk.then(|| dir.path.join("ramdisk")),
            cmdline: boot.cmdline,
            vnc_socket: Some(dir.vnc_socket()),
        };
        Ok(QemuProcess::launch(&self.binary, &dir, &machine.args()).await?)
    }

    /// Lays out a new guest's directory from `image`: its root disk (an overlay on the cached
    /// image grown to the flavor), a copy of the kernel and ramdisk, the boot record.
    async fn prepare(&self, spec: &GuestSpec, dir: &GuestDir, image: BootImage) -> Result<()> {
        let hardware = Hardware::from_properties(&image.properties).map_err(DriverError::failed)?;
        tokio::fs::create_dir_all(&dir.path)
            .await
            .map_err(io(format!("creating {}", dir.path.display())))?;
        let size = u64::try_from(spec.root_gb).unwrap_or(0);
        create_overlay(
            &qemu_img(),
            &image.disk,
            &image.format,
            &disk_file(dir),
            size,
        )
        .await?;
        for (file, name) in [(&image.kernel, "kernel"), (&image.ramdisk, "ramdisk")] {
            if let Some(f) = file {
                tokio::fs::copy(f, dir.path.join(name))
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
        let json = serde_json::to_vec(&boot)
            .map_err(|e| DriverError::failed_with("encoding boot.json", e))?;
        tokio::fs::write(boot_file(dir), json)
            .await
            .map_err(io("writing boot.json"))?;
        Ok(())
    }

    fn power_of(state: RunState) -> PowerState {
        match state {
            RunState::Running => PowerState::Running,
            RunState::Paused => PowerState::Paused,
            RunState::Suspended => PowerState::Suspended,
            RunState::Shutdown => PowerState::Shutdown,
            RunState::Other => PowerState::NoState,
        }
    }

    async fn observe(&self, uuid: &str) -> Result<PowerState> {
        match self.process(uuid).await? {
            None => Ok(PowerState::Shutdown),
            Some(p) => Ok(p
                .qmp()
                .status()
                .await
                .map_or(PowerState::NoState, Self::power_of)),
        }
    }
}

#[async_trait::async_trait]
impl Driver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    async fn host_info(&self) -> Result<HostInfo> {
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
            out.push(Observed { uuid, power });
        }
        Ok(out)
    }

    async fn spawn(&self, spec: &GuestSpec) -> Result<()> {
        if self.exists(&spec.uuid) {
            return Ok(());
        }
        let dir = dir_of(&self.root, &spec.uuid);
        let result = async {
            let image = self.images.boot_image(&spec.image_ref).await?;
            self.prepare(spec, &dir, image).await?;
            let p = self.launch(spec).await?;
            // Recorded last: a guest without spec.json is not one (a failed spawn leaves
            // nothing that `list` would report).
            let json = serde_json::to_vec(spec)
                .map_err(|e| DriverError::failed_with("encoding the guest spec", e))?;
            tokio::fs::write(spec_file(&dir), json)
                .await
                .map_err(io("writing spec.json"))?;
            Ok::<_, DriverError>(p)
        }
        .await;
        if let Err(e) = result {
            // Nothing of a failed spawn stays behind.
            if let Ok(Some(p)) = QemuProcess::adopt(&dir).await {
                let _ = p.kill(Duration::from_secs(5)).await;
            }
            let _ = tokio::fs::remove_dir_all(&dir.path).await;
            return Err(e);
        }
        Ok(())
    }

    async fn destroy(&self, uuid: &str) -> Result<()> {
        let dir = dir_of(&self.root, uuid);
        if let Some(p) = QemuProcess::adopt(&dir).await? {
            p.kill(Duration::from_secs(5)).await?;
        }
        match tokio::fs::remove_dir_all(&dir.path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("removing {}", dir.path.display()))(e).into()),
        }
    }

    async fn power_on(&self, uuid: &str) -> Result<()> {
        let spec = self.spec(uuid).await?;
        match self.process(uuid).await? {
            Some(p) => {
                // Paused or waiting: run.
                p.qmp().cont().await?;
            }
            None => {
                self.launch(&spec).await?;
            }
        }
        Ok(())
    }

    /// The ACPI power button, then the end of QEMU after the shutdown timeout.
    async fn power_off(&self, uuid: &str) -> Result<()> {
        if !self.exists(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        let Some(p) = self.process(uuid).await? else {
            return Ok(());
        };
        let _ = p.qmp().powerdown().await;
        p.kill(self.shutdown_timeout).await?;
        Ok(())
    }

    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()> {
        let spec = self.spec(uuid).await?;
        match self.process(uuid).await? {
            Some(p) if hard => {
                p.kill(Duration::from_secs(5)).await?;
                self.launch(&spec).await?;
            }
            Some(p) => p.qmp().reset().await?,
            None => {
                self.launch(&spec).await?;
            }
        }
        Ok(())
    }

    async fn pause(&self, uuid: &str) -> Result<()> {
        Ok(self.running(uuid).await?.qmp().stop().await?)
    }

    async fn unpause(&self, uuid: &str) -> Result<()> {
        Ok(self.running(uuid).await?.qmp().cont().await?)
    }

    async fn suspend(&self, _uuid: &str) -> Result<()> {
        Err(DriverError::Unsupported("suspend", "qemu"))
    }

    async fn resume(&self, _uuid: &str) -> Result<()> {
        Err(DriverError::Unsupported("resume", "qemu"))
    }

    async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String> {
        if !self.exists(uuid) {
            return Err(DriverError::NotFound(uuid.to_string()));
        }
        let bytes = tokio::fs::read(dir_of(&self.root, uuid).console_log())
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).replace('\r', "");
        Ok(match max_lines {
            Some(n) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(n)..].join("\n")
            }
            None => text,
        })
    }

    async fn diagnostics(&self, uuid: &str) -> Result<serde_json::Value> {
        let spec = self.spec(uuid).await?;
        let power = self.observe(uuid).await?;
        Ok(serde_json::json!({
            "state": format!("{power:?}").to_lowercase(),
            "driver": "qemu",
            "hypervisor": self.accel.hypervisor_type().to_lowercase(),
            "hypervisor_os": "linux",
            "num_cpus": spec.vcpus,
            "num_nics": 0,
            "num_disks": 1,
            "memory_details": {"maximum": spec.memory_mb, "used": 0},
            "cpu_details": [], "nic_details": [], "disk_details": [],
        }))
    }

    async fn inject_nmi(&self, uuid: &str) -> Result<()> {
        Ok(self.running(uuid).await?.qmp().inject_nmi().await?)
    }

    async fn rescue(&self, _uuid: &str, _rescue_image_ref: &str) -> Result<()> {
        Err(DriverError::Unsupported("rescue", "qemu"))
    }

    async fn unrescue(&self, _uuid: &str) -> Result<()> {
        Err(DriverError::Unsupported("unrescue", "qemu"))
    }

    async fn snapshot(&self, _uuid: &str, _dest: &Path) -> Result<String> {
        Err(DriverError::Unsupported("snapshot", "qemu"))
    }

    async fn resize(&self, _spec: &GuestSpec) -> Result<()> {
        Err(DriverError::Unsupported("resize", "qemu"))
    }
}
