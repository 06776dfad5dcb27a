//! A compute host on QEMU: the settings every QEMU host of a process shares, what is probed
//! once (QEMU's version, KVM or TCG), and the driver of one host with its image cache. Used
//! by all-in-one for its local hosts and by `ferrostack agent --compute-driver qemu`, with the
//! same layout on disk: `<data dir>/hosts/<host>/instances/<uuid>/` for guests and
//! `<data dir>/hosts/<host>/images/` for the image cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrostack_agent_api::Controller;
use ferrostack_virt::qemu::driver::QemuDriver;
use ferrostack_virt::qemu::host::qemu_version;
use ferrostack_virt::qemu::probe::choose;
use ferrostack_virt::qemu::{Choice, VirtTypeSetting};

use crate::image_cache::ImageCache;

/// How long the KVM probe waits for a guest kernel to finish.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct QemuSettings {
    /// Hosts keep their guests and image caches under `<data_dir>/hosts/<host>/`.
    pub data_dir: PathBuf,
    /// Guests' sockets go under `<run_dir>/<host>/<uuid>/` (a short path: see `GuestDir`).
    pub run_dir: PathBuf,
    pub binary: PathBuf,
    pub virt_type: VirtTypeSetting,
    /// A kernel for the KVM probe (`auto`): it must run to its end (panic and power off)
    /// under KVM within [`PROBE_TIMEOUT`] for KVM to be used.
    pub probe_kernel: Option<PathBuf>,
    /// How long a guest has to power off after the ACPI button (Nova's shutdown_timeout).
    pub shutdown_timeout: Duration,
    /// The address other hosts reach this one at to send it guests in live migrations
    /// (Nova's `live_migration_inbound_addr`); loopback for hosts on one machine.
    pub migration_address: String,
    /// The cap on a live migration's bandwidth in bytes per second (Nova's
    /// `live_migration_bandwidth`); None: no cap.
    pub migration_bandwidth: Option<u64>,
    /// An existing Linux bridge every guest gets one NIC on (until the networking data
    /// plane plugs guests' ports); None: guests have no NIC.
    pub guest_bridge: Option<String>,
}

/// What was found out once for all QEMU hosts of this process.
#[derive(Debug, Clone)]
pub struct QemuPlatform {
    pub choice: Choice,
    pub version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum QemuHostError {
    #[error("{binary} cannot be run (install Debian's qemu-system-x86): {source}")]
    Binary {
        binary: PathBuf,
        #[source]
        source: ferrostack_virt::qemu::QemuError,
    },
}

/// The default directory for guests' sockets: `/run/ferrostack` as root, else under the
/// temporary directory.
pub fn default_run_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        PathBuf::from("/run/ferrostack")
    } else {
        std::env::temp_dir().join(format!(
            "ferrostack-run-{}",
            rustix::process::geteuid().as_raw()
        ))
    }
}

/// The newest `/boot/vmlinuz-*` of this machine, a kernel for the KVM probe when no other is
/// given.
pub fn host_kernel() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

impl QemuSettings {
    /// Probes QEMU's version and chooses KVM or TCG (logged with the reason).
    pub async fn probe(&self) -> Result<QemuPlatform, QemuHostError> {
        let version = qemu_version(&self.binary)
            .await
            .map_err(|source| QemuHostError::Binary {
                binary: self.binary.clone(),
                source,
            })?;
        let choice = choose(
            &self.binary,
            self.virt_type,
            self.probe_kernel.as_deref(),
            PROBE_TIMEOUT,
        )
        .await;
        tracing::info!(
            accel = choice.accel.qemu_name(),
            hypervisor_type = choice.accel.hypervisor_type(),
            reason = %choice.reason,
            "QEMU acceleration chosen"
        );
        Ok(QemuPlatform { choice, version })
    }

    /// Where host `host` keeps its files.
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.data_dir.join("hosts").join(host)
    }

    /// Where host `host`'s guests have their sockets: one directory per host, since two hosts
    /// of one machine hold the same guest during a live migration.
    pub fn host_run_dir(&self, host: &str) -> PathBuf {
        self.run_dir.join(run_name(host))
    }

    /// The driver of host `host`, its image cache filled through `controller`.
    pub fn driver(
        &self,
        platform: &QemuPlatform,
        host: &str,
        controller: Arc<dyn Controller>,
    ) -> QemuDriver {
        let dir = self.host_dir(host);
        QemuDriver {
            root: dir.join("instances"),
            run_root: self.host_run_dir(host),
            binary: self.binary.clone(),
            accel: platform.choice.accel,
            qemu_version: platform.version,
            images: Arc::new(ImageCache::new(dir.join("images"), host, controller)),
            shutdown_timeout: self.shutdown_timeout,
            migration_address: self.migration_address.clone(),
            migration_bandwidth: self.migration_bandwidth,
            vifs: self.guest_bridge.as_ref().map(|b| {
                Arc::new(ferrostack_virt::vif::LinuxBridge { bridge: b.clone() })
                    as Arc<dyn ferrostack_virt::vif::VifPlugger>
            }),
        }
    }
}

/// A host's directory name under the run directory: its name, cut short (socket paths must
/// stay within 107 bytes) with a hash of the whole name to keep cut names apart.
fn run_name(host: &str) -> String {
    if host.len() <= 24 {
        return host.to_string();
    }
    let hash = host.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let cut: String = host.chars().take(15).collect();
    format!("{cut}-{:08x}", hash & 0xffff_ffff)
}

/// `qemu-system-x86_64` on the `PATH`, else Debian's path.
pub fn default_binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("qemu-system-x86_64"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| Path::new("/usr/bin/qemu-system-x86_64").to_path_buf())
}
