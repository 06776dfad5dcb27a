//! What this host really offers, for placement and `os-hypervisors`: its CPUs (with their
//! model and the CPU flags placement knows as traits), memory, the disk under the instances
//! directory, the QEMU version and the accelerator chosen.

use std::path::Path;

use ferrostack_agent_api::HostInfo;

use super::probe::Accel;
use super::{io, Result};

/// Placement's CPU traits for the `/proc/cpuinfo` flags that have one.
const CPU_TRAITS: &[(&str, &str)] = &[
    ("sse2", "HW_CPU_X86_SSE2"),
    ("sse4_1", "HW_CPU_X86_SSE41"),
    ("sse4_2", "HW_CPU_X86_SSE42"),
    ("ssse3", "HW_CPU_X86_SSSE3"),
    ("avx", "HW_CPU_X86_AVX"),
    ("avx2", "HW_CPU_X86_AVX2"),
    ("aes", "HW_CPU_X86_AESNI"),
    ("vmx", "HW_CPU_X86_VMX"),
    ("svm", "HW_CPU_X86_SVM"),
];

/// The facts of this host; `instances_dir` is where guest disks go (its filesystem's size is
/// the disk offered), `qemu_version` QEMU's as `major * 1_000_000 + minor * 1_000 + micro`
/// (Nova's encoding).
pub fn host_info(instances_dir: &Path, accel: Accel, qemu_version: i64) -> Result<HostInfo> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").map_err(io("reading /proc/cpuinfo"))?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").map_err(io("reading /proc/meminfo"))?;
    let uptime = std::fs::read_to_string("/proc/uptime").map_err(io("reading /proc/uptime"))?;
    let vcpus = i64::try_from(
        cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count()
            .max(1),
    )
    .unwrap_or(1);
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let flags: Vec<String> = field("flags")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mem_kib: i64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fs = rustix::fs::statvfs(instances_dir)
        .map_err(|e| io(format!("statvfs {}", instances_dir.display()))(e.into()))?;
    let disk_bytes = u128::from(fs.f_blocks) * u128::from(fs.f_frsize);
    let local_gb = i64::try_from(disk_bytes >> 30).unwrap_or(i64::MAX);
    let uptime_seconds = uptime
        .split_whitespace()
        .next()
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut traits: Vec<String> = CPU_TRAITS
        .iter()
        .filter(|(flag, _)| flags.iter().any(|f| f == flag))
        .map(|(_, t)| (*t).to_string())
        .collect();
    traits.push("COMPUTE_NET_ATTACH_INTERFACE".into());
    Ok(HostInfo {
        // The agent adds its data plane's endpoint.
        vtep: None,
        hypervisor_type: accel.hypervisor_type().into(),
        hypervisor_version: qemu_version,
        vcpus,
        memory_mb: mem_kib / 1024,
        local_gb,
        cpu_info: serde_json::json!({
            "arch": std::env::consts::ARCH,
            "model": field("model name"),
            "vendor": field("vendor_id"),
            "topology": {"sockets": 1, "cores": vcpus, "threads": 1},
            "features": flags,
        }),
        traits,
        uptime_seconds,
    })
}

/// QEMU's version from `qemu-system-x86_64 --version` ("QEMU emulator version 7.2.22 ..."),
/// Nova-encoded.
pub async fn qemu_version(binary: &Path) -> Result<i64> {
    let out = tokio::process::Command::new(binary)
        .arg("--version")
        .output()
        .await
        .map_err(io(format!("running {} --version", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(parse_version(&text))
}

fn parse_version(text: &str) -> i64 {
    let v = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or("");
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<i64>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    a * 1_000_000 + b * 1_000 + c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_encoded_as_novas() {
        assert_eq!(
            parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"),
            7_002_022
        );
        assert_eq!(parse_version("QEMU emulator version 8.1.0\n"), 8_001_000);
        assert_eq!(parse_version("garbage"), 0);
    }

    #[test]
    fn this_host_reports_what_proc_says() {
        let dir = std::env::temp_dir();
        let info = host_info(&dir, Accel::Tcg, 7_002_000).unwrap();
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert!(info.vcpus >= i64::try_from(cpus).unwrap());
        assert!(info.memory_mb > 0);
        assert!(info.local_gb > 0);
        assert_eq!(info.hypervisor_type, "QEMU");
        assert!(info.traits.iter().any(|t| t == "HW_CPU_X86_SSE2"));
    }
}
