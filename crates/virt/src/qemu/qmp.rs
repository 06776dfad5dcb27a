//! QMP, QEMU's control protocol, over the guest's unix socket (through the `qapi` crate). A
//! connection is opened per operation: QEMU serves one QMP client at a time, and an agent that
//! restarts must find the socket free.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qapi::futures::QmpStreamTokio;
use qapi::qmp;

use super::{QemuError, Result};

/// QEMU's largest bandwidth cap, in bytes per second: no cap.
const UNLIMITED: u64 = 1 << 40;

/// How long one QMP operation may take (connect, negotiate, execute).
const QMP_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the QMP socket at `socket`, skipping anything before QEMU's greeting: QEMU keeps
/// what it could not write to a client that left (events of a migration or a block job that
/// came as it disconnected) and sends it to the next one first.
async fn open(
    socket: &Path,
) -> std::io::Result<
    qapi::futures::QmpStreamNegotiation<
        QmpStreamTokio<
            tokio::io::Chain<
                std::io::Cursor<Vec<u8>>,
                tokio::io::BufReader<tokio::io::ReadHalf<tokio::net::UnixStream>>,
            >,
        >,
        QmpStreamTokio<tokio::io::WriteHalf<tokio::net::UnixStream>>,
    >,
> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let (r, w) = tokio::io::split(tokio::net::UnixStream::connect(socket).await?);
    let mut r = tokio::io::BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "QMP greeting expected",
            ));
        }
        if line.starts_with(b"{\"QMP\"") {
            break;
        }
    }
    QmpStreamTokio::open_split(std::io::Cursor::new(line).chain(r), w).await
}

/// QEMU's run state (`query-status`), as the lifecycle needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// Stopped by `stop` (pause) or not started yet (`-S`).
    Paused,
    /// The guest powered itself off and QEMU waits (`-no-shutdown`).
    Shutdown,
    /// Suspended to RAM by the guest.
    Suspended,
    /// Waiting for a migration's machine state (`inmigrate`).
    Incoming,
    /// Sent to another QEMU by a migration that completed (`postmigrate`).
    Migrated,
    /// Anything else QEMU reports (`internal-error`, ...).
    Other,
}

impl RunState {
    fn from_qapi(name: &str) -> RunState {
        match name {
            "running" => RunState::Running,
            "paused" | "prelaunch" => RunState::Paused,
            "shutdown" => RunState::Shutdown,
            "suspended" => RunState::Suspended,
            "inmigrate" => RunState::Incoming,
            "postmigrate" => RunState::Migrated,
            _ => RunState::Other,
        }
    }
}

/// The QMP endpoint of one guest.
#[derive(Debug, Clone)]
pub struct Qmp {
    socket: PathBuf,
}

impl Qmp {
    pub fn new(socket: &Path) -> Qmp {
        Qmp {
            socket: socket.to_path_buf(),
        }
    }

    /// Runs `command` on a fresh, negotiated connection.
    async fn execute<C: qapi::qmp::QmpCommand>(
        &self,
        name: &'static str,
        command: C,
    ) -> Result<C::Ok> {
        let socket = self.socket.clone();
        let run = async move {
            let stream = open(&socket)
                .await
                .map_err(super::io(format!("connecting to {}", socket.display())))?;
            let stream = stream
                .negotiate()
                .await
                .map_err(super::io("QMP capabilities negotiation"))?;
            let (service, events) = stream.spawn_tokio();
            let result = service.execute(command).await;
            drop(service);
            events.abort();
            result.map_err(|e| QemuError::Qmp {
                command: name,
                message: e.to_string(),
            })
        };
        tokio::time::timeout(QMP_TIMEOUT, run)
            .await
            .map_err(|_| QemuError::Qmp {
                command: name,
                message: format!("no answer within {} s", QMP_TIMEOUT.as_secs()),
            })?
    }

    pub async fn status(&self) -> Result<RunState> {
        let info = self.execute("query-status", qmp::query_status {}).await?;
        let name = serde_json::to_value(info.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(RunState::from_qapi(&name))
    }

    /// Pauses the guest's vCPUs (Nova's pause).
    pub async fn stop(&self) -> Result<()> {
        self.execute("stop", qmp::stop {}).await.map(|_| ())
    }

    /// Resumes the guest's vCPUs (unpause; also starts a guest launched with `-S`).
    pub async fn cont(&self) -> Result<()> {
        self.execute("cont", qmp::cont {}).await.map(|_| ())
    }

    /// Presses the ACPI power button (a graceful stop, which the guest may ignore).
    pub async fn powerdown(&self) -> Result<()> {
        self.execute("system_powerdown", qmp::system_powerdown {})
            .await
            .map(|_| ())
    }

    /// Resets the machine (hard reboot without restarting QEMU).
    pub async fn reset(&self) -> Result<()> {
        self.execute("system_reset", qmp::system_reset {})
            .await
            .map(|_| ())
    }

    /// Injects an NMI (trigger crash dump).
    pub async fn inject_nmi(&self) -> Result<()> {
        self.execute("inject-nmi", qmp::inject_nmi {})
            .await
            .map(|_| ())
    }

    /// Adds a tap backend `id` on the host tap `ifname` (made by QEMU, no scripts).
    pub async fn netdev_add_tap(&self, id: &str, ifname: &str) -> Result<()> {
        let tap = qmp::NetdevTapOptions {
            ifname: Some(ifname.to_string()),
            script: Some("no".into()),
            downscript: Some("no".into()),
            ..Default::default()
        };
        self.execute(
            "netdev_add",
            qmp::netdev_add(qmp::Netdev::tap {
                id: id.to_string(),
                tap,
            }),
        )
        .await
        .map(|_| ())
    }

    pub async fn netdev_del(&self, id: &str) -> Result<()> {
        self.execute("netdev_del", qmp::netdev_del { id: id.to_string() })
            .await
            .map(|_| ())
    }

    /// Hot-plugs device `driver` named `id` with `arguments` (`netdev`, `mac`, `addr`, ...).
    pub async fn device_add(
        &self,
        driver: &str,
        id: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let arguments = arguments.into_iter().collect();
        self.execute(
            "device_add",
            qmp::device_add {
                bus: None,
                id: Some(id.to_string()),
                driver: driver.to_string(),
                arguments,
            },
        )
        .await
        .map(|_| ())
    }

    /// Asks the guest to release device `id` (done when the guest acknowledges the unplug).
    pub async fn device_del(&self, id: &str) -> Result<()> {
        self.execute("device_del", qmp::device_del { id: id.to_string() })
            .await
            .map(|_| ())
    }

    /// Ends QEMU at once.
    pub async fn quit(&self) -> Result<()> {
        self.execute("quit", qmp::quit {}).await.map(|_| ())
    }

    /// Starts a migration of the machine's state to `uri` (`exec:...`, `tcp:...`).
    pub async fn migrate(&self, uri: &str) -> Result<()> {
        self.execute(
            "migrate",
            qmp::migrate {
                uri: Some(uri.to_string()),
                channels: None,
                detach: None,
                resume: None,
            },
        )
        .await
        .map(|_| ())
    }

    /// Where the last migration is: `(status, error)`, the status as QEMU names it
    /// (`active`, `completed`, `failed`, ...; `none` when there was none).
    pub async fn migration(&self) -> Result<(String, Option<String>)> {
        let info = self.migration_info().await?;
        Ok((info.status, info.error))
    }

    /// The current (or last) migration with its memory figures.
    pub async fn migration_info(&self) -> Result<MigrationInfo> {
        let info = self.execute("query-migrate", qmp::query_migrate {}).await?;
        let status = info
            .status
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "none".into());
        Ok(MigrationInfo {
            status,
            error: info.error_desc,
            ram_total: info.ram.as_ref().map(|r| r.total),
            ram_transferred: info.ram.as_ref().map(|r| r.transferred),
            ram_remaining: info.ram.as_ref().map(|r| r.remaining),
        })
    }

    /// What the last (completed) migration took: total time and the guest's downtime in
    /// milliseconds, and the bytes of memory sent.
    pub async fn migration_stats(&self) -> Result<MigrationStats> {
        let info = self.execute("query-migrate", qmp::query_migrate {}).await?;
        Ok(MigrationStats {
            total_ms: info.total_time.unwrap_or(0),
            downtime_ms: info.downtime.unwrap_or(0),
            ram_bytes: info.ram.map_or(0, |r| r.transferred),
        })
    }

    /// Cancels a running migration.
    pub async fn migrate_cancel(&self) -> Result<()> {
        self.execute("migrate_cancel", qmp::migrate_cancel {})
            .await
            .map(|_| ())
    }

    /// Starts a full copy of drive `device` into a new qcow2 file `target` as job `job`
    /// (kept until dismissed, so its outcome can be read).
    // drive-backup is deprecated in newer QEMU for blockdev-backup, which needs the target
    // added as a node first; Debian 12's QEMU 7.2 has both, and this one call is simpler.
    #[allow(deprecated)]
    pub async fn backup(&self, device: &str, target: &Path, job: &str) -> Result<()> {
        let common = qmp::BackupCommon {
            auto_dismiss: Some(false),
            auto_finalize: None,
            bitmap: None,
            bitmap_mode: None,
            compress: None,
            discard_source: None,
            filter_node_name: None,
            job_id: Some(job.to_string()),
            on_source_error: None,
            on_target_error: None,
            speed: None,
            x_perf: None,
            device: device.to_string(),
            sync: qmp::MirrorSyncMode::full,
        };
        self.execute(
            "drive-backup",
            qmp::drive_backup(qmp::DriveBackup {
                base: common,
                format: Some("qcow2".into()),
                mode: Some(qmp::NewImageMode::absolute_paths),
                target: target.display().to_string(),
            }),
        )
        .await
        .map(|_| ())
    }

    /// The job `id`: None while it runs, `Some(Ok)` once it concluded well, `Some(Err)` with
    /// its error. A concluded job is dismissed.
    pub async fn job_outcome(&self, id: &str) -> Result<Option<std::result::Result<(), String>>> {
        let jobs = self.execute("query-jobs", qmp::query_jobs {}).await?;
        let Some(job) = jobs.into_iter().find(|j| j.id == id) else {
            return Ok(Some(Err(format!("job {id} is gone"))));
        };
        if job.status != qmp::JobStatus::concluded {
            return Ok(None);
        }
        self.execute("job-dismiss", qmp::job_dismiss { id: id.to_string() })
            .await?;
        Ok(Some(match job.error {
            Some(e) => Err(e),
            None => Ok(()),
        }))
    }
}

/// QMP commands given as JSON arguments: those of live migration, whose generated types follow
/// a newer QEMU schema than Debian 12's 7.2 and would be built field by field for a few keys.
macro_rules! json_command {
    ($ty:ident, $name:literal) => {
        #[derive(serde::Serialize)]
        #[serde(transparent)]
        struct $ty(serde_json::Value);
        impl qapi::Command for $ty {
            type Ok = serde_json::Value;
            const NAME: &'static str = $name;
            const ALLOW_OOB: bool = false;
        }
        impl qapi::qmp::QmpCommand for $ty {}
    };
}

json_command!(NbdServerStart, "nbd-server-start");
json_command!(NbdServerStop, "nbd-server-stop");
json_command!(BlockExportAdd, "block-export-add");
json_command!(BlockExportDel, "block-export-del");
json_command!(QueryBlock, "query-block");
json_command!(QueryBlockJobs, "query-block-jobs");
json_command!(DriveMirror, "drive-mirror");
json_command!(BlockJobCancel, "block-job-cancel");
json_command!(BlockJobSetSpeed, "block-job-set-speed");
json_command!(MigrateIncoming, "migrate-incoming");
json_command!(MigrateSetParameters, "migrate-set-parameters");
json_command!(QueryCpusFast, "query-cpus-fast");
json_command!(QueryBlockstats, "query-blockstats");

/// The I/O counters of one drive (`query-blockstats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStats {
    pub read_bytes: u64,
    pub read_requests: u64,
    pub write_bytes: u64,
    pub write_requests: u64,
    pub errors: u64,
}

/// What a completed migration took, as QEMU measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationStats {
    pub total_ms: i64,
    pub downtime_ms: i64,
    pub ram_bytes: i64,
}

/// A block job as the migration follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockJob {
    /// The mirror has copied everything and keeps the copy in step.
    pub ready: bool,
    pub status: String,
    /// Bytes done of `len` (which grows while the guest writes).
    pub offset: i64,
    pub len: i64,
}

/// Where the current (or last) migration is (`query-migrate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// As QEMU names it: `none`, `setup`, `active`, `completed`, `failed`, `cancelled`, ...
    pub status: String,
    pub error: Option<String>,
    /// The guest's memory: total, sent so far, still to send (dirty), in bytes.
    pub ram_total: Option<i64>,
    pub ram_transferred: Option<i64>,
    pub ram_remaining: Option<i64>,
}

impl MigrationInfo {
    /// Still going (QEMU's `migration_is_active` and the states before it).
    pub fn is_active(&self) -> bool {
        matches!(
            self.status.as_str(),
            "setup" | "active" | "pre-switchover" | "device" | "cancelling" | "wait-unplug"
        )
    }
}

impl Qmp {
    /// The guest's vCPUs: (index, host thread id).
    pub async fn vcpu_threads(&self) -> Result<Vec<(i64, i64)>> {
        let cpus = self
            .execute("query-cpus-fast", QueryCpusFast(serde_json::json!({})))
            .await?;
        Ok(cpus
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["cpu-index"].as_i64()?, c["thread-id"].as_i64()?)))
            .collect())
    }

    /// The I/O counters of each drive with a medium, in the machine's order.
    pub async fn block_stats(&self) -> Result<Vec<BlockStats>> {
        let all = self
            .execute("query-blockstats", QueryBlockstats(serde_json::json!({})))
            .await?;
        Ok(all
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["device"].as_str().is_some_and(|n| !n.is_empty()))
            .map(|d| {
                let n = |k: &str| d["stats"][k].as_u64().unwrap_or(0);
                BlockStats {
                    read_bytes: n("rd_bytes"),
                    read_requests: n("rd_operations"),
                    write_bytes: n("wr_bytes"),
                    write_requests: n("wr_operations"),
                    errors: n("failed_rd_operations") + n("failed_wr_operations"),
                }
            })
            .collect())
    }

    /// The node name of drive `device` (its top node), which block exports name.
    pub async fn node_of(&self, device: &str) -> Result<String> {
        let blocks = self
            .execute("query-block", QueryBlock(serde_json::json!({})))
            .await?;
        blocks
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["device"] == device)
            .and_then(|b| b["inserted"]["node-name"].as_str())
            .map(str::to_string)
            .ok_or_else(|| QemuError::Qmp {
                command: "query-block",
                message: format!("no drive {device}"),
            })
    }

    /// Serves the guest's disks over NBD at `host:port` (a live migration's destination).
    pub async fn nbd_start(&self, host: &str, port: u16) -> Result<()> {
        let addr = serde_json::json!({
            "addr": {"type": "inet", "data": {"host": host, "port": port.to_string()}}
        });
        self.execute("nbd-server-start", NbdServerStart(addr))
            .await
            .map(|_| ())
    }

    /// Exports drive `device` writable over the NBD server, named as the drive.
    pub async fn nbd_export(&self, device: &str) -> Result<()> {
        let node = self.node_of(device).await?;
        let args = serde_json::json!({
            "type": "nbd", "id": format!("export-{device}"), "node-name": node,
            "name": device, "writable": true,
        });
        self.execute("block-export-add", BlockExportAdd(args))
            .await
            .map(|_| ())
    }

    /// Stops serving drives `devices` and the NBD server (all may already be gone).
    pub async fn nbd_stop(&self, devices: &[String]) -> Result<()> {
        for device in devices {
            let del = serde_json::json!({"id": format!("export-{device}"), "mode": "hard"});
            let _ = self.execute("block-export-del", BlockExportDel(del)).await;
        }
        match self
            .execute("nbd-server-stop", NbdServerStop(serde_json::json!({})))
            .await
        {
            Ok(_) => Ok(()),
            Err(QemuError::Qmp { message, .. }) if message.contains("not running") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Starts copying the top layer of drive `device` into `target` (an NBD URI of the
    /// destination's disk, which has the same base image) as job `job`; writes of the
    /// guest are mirrored once the job is ready.
    pub async fn mirror(
        &self,
        device: &str,
        target: &str,
        job: &str,
        bytes_per_second: Option<u64>,
    ) -> Result<()> {
        let args = serde_json::json!({
            "device": device, "job-id": job, "target": target, "format": "raw",
            "mode": "existing", "sync": "top", "speed": bytes_per_second.unwrap_or(0),
        });
        self.execute("drive-mirror", DriveMirror(args))
            .await
            .map(|_| ())
    }

    /// The block job `job`, None when there is none.
    pub async fn block_job(&self, job: &str) -> Result<Option<BlockJob>> {
        let jobs = self
            .execute("query-block-jobs", QueryBlockJobs(serde_json::json!({})))
            .await?;
        Ok(jobs
            .as_array()
            .into_iter()
            .flatten()
            .find(|j| j["device"] == job)
            .map(|j| BlockJob {
                ready: j["ready"].as_bool().unwrap_or(false),
                status: j["status"].as_str().unwrap_or_default().to_string(),
                offset: j["offset"].as_i64().unwrap_or(0),
                len: j["len"].as_i64().unwrap_or(0),
            }))
    }

    /// Ends block job `job`. A ready mirror ends with its copy complete (no switch to it).
    pub async fn block_job_cancel(&self, job: &str, force: bool) -> Result<()> {
        let args = serde_json::json!({"device": job, "force": force});
        self.execute("block-job-cancel", BlockJobCancel(args))
            .await
            .map(|_| ())
    }

    /// Waits for the machine state at `uri` (a QEMU started with `-incoming defer`).
    pub async fn migrate_incoming(&self, uri: &str) -> Result<()> {
        let args = serde_json::json!({"uri": uri});
        self.execute("migrate-incoming", MigrateIncoming(args))
            .await
            .map(|_| ())
    }

    /// Caps the migration's bandwidth (None: the link's whole bandwidth; QEMU's default is
    /// 32 MiB/s, Nova's `live_migration_bandwidth` defaults to unlimited).
    pub async fn set_migration_bandwidth(&self, bytes_per_second: Option<u64>) -> Result<()> {
        let max = bytes_per_second.map_or(UNLIMITED, |b| b.min(UNLIMITED));
        let args = serde_json::json!({ "max-bandwidth": max });
        self.execute("migrate-set-parameters", MigrateSetParameters(args))
            .await
            .map(|_| ())
    }

    /// Sets block job `job`'s speed cap (None: none).
    pub async fn set_block_job_speed(
        &self,
        job: &str,
        bytes_per_second: Option<u64>,
    ) -> Result<()> {
        let speed = bytes_per_second.unwrap_or(0);
        let args = serde_json::json!({"device": job, "speed": speed});
        self.execute("block-job-set-speed", BlockJobSetSpeed(args))
            .await
            .map(|_| ())
    }
}
