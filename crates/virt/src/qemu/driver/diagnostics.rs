//! A guest's diagnostics as Nova's standard format (2.48) shows them, measured on the host:
//! the CPU time of each vCPU thread (`query-cpus-fast` names the threads, `/proc` counts
//! their time), the guest memory QEMU holds resident (`smaps`), the disks' I/O counters
//! (`query-blockstats`), and how long the QEMU has run.

use serde_json::{json, Value};

use super::super::process::{memory_use, QemuProcess};
use super::layout;
use super::QemuDriver;
use crate::Result;

/// Nanoseconds of CPU time (user and system) thread `tid` of process `pid` has used.
fn thread_cpu_ns(pid: i32, tid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    // Fields after the parenthesised name: state(3) ... utime(14) stime(15).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second();
    Some(ticks * (1_000_000_000 / per_second.max(1)))
}

/// Seconds process `pid` has run.
fn process_uptime(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // starttime is field 22: the 20th after the name.
    let start_ticks: u64 = rest.split(' ').nth(19)?.parse().ok()?;
    let boot: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "seconds since boot, non-negative and far below 2^64"
    )]
    let boot_s = boot as u64;
    Some(boot_s.saturating_sub(start_ticks / per_second))
}

impl QemuDriver {
    pub(super) async fn measure(&self, uuid: &str) -> Result<Value> {
        let spec = self.spec(uuid).await?;
        let power = self.observe(uuid).await?;
        let dir = self.dir_of(uuid);
        let running: Option<QemuProcess> = self.process(uuid).await?;
        let mut cpus = Vec::new();
        let mut disks = Vec::new();
        let (mut used_mib, mut uptime) = (0, 0);
        if let Some(p) = &running {
            let qmp = p.qmp();
            for (index, tid) in qmp.vcpu_threads().await? {
                cpus.push(json!({
                    "id": index,
                    "time": thread_cpu_ns(p.pid, tid).unwrap_or(0),
                    "utilisation": Value::Null,
                }));
            }
            for s in qmp.block_stats().await? {
                disks.push(json!({
                    "read_bytes": s.read_bytes, "read_requests": s.read_requests,
                    "write_bytes": s.write_bytes, "write_requests": s.write_requests,
                    "errors_count": s.errors,
                }));
            }
            used_mib = memory_use(p.pid, spec.memory_mb).map_or(0, |m| m.guest_kib / 1024);
            uptime = process_uptime(p.pid).unwrap_or(0);
        }
        Ok(json!({
            "state": format!("{power:?}").to_lowercase(),
            "driver": "libvirt",
            "hypervisor": self.accel.hypervisor_type().to_lowercase(),
            "hypervisor_os": "linux",
            "uptime": uptime,
            "config_drive": layout::config_drive_file(&dir).exists(),
            "num_cpus": spec.vcpus,
            "num_nics": 0,
            "num_disks": disks.len(),
            "memory_details": {"maximum": spec.memory_mb, "used": used_mib},
            "cpu_details": cpus,
            "disk_details": disks,
            "nic_details": [],
        }))
    }
}
