//! Choosing KVM or TCG. `/dev/kvm` opening is not enough: on hosts that are themselves virtual
//! machines it may open while a guest kernel hangs under it. So `auto` boots a kernel under
//! KVM (no disk, no init: it panics at once and, with `panic=-1` and `-no-reboot`, QEMU exits)
//! and takes KVM only when that ends within the timeout; otherwise TCG, with the reason.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// What the operator asked for (`--virt-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtTypeSetting {
    Auto,
    Kvm,
    Qemu,
}

/// What guests run with: hardware virtualization or QEMU's own translator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// QEMU's `-accel` name.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
    /// `hypervisor_type` as Nova's libvirt driver shows it.
    pub fn hypervisor_type(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "QEMU",
        }
    }
}

/// The choice and why (logged, and kept for `os-hypervisors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub accel: Accel,
    pub reason: String,
}

/// How a probe boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOutcome {
    /// The kernel ran to its end and QEMU exited.
    Finished,
    /// Still running at the timeout (killed).
    Hung,
    /// QEMU refused to start (its words).
    Refused(String),
}

/// Boots `kernel` under `accel` with no disk and waits at most `timeout` for QEMU to exit.
pub async fn probe_boot(
    binary: &Path,
    kernel: &Path,
    accel: Accel,
    timeout: Duration,
) -> std::io::Result<BootOutcome> {
    let args: Vec<OsString> = [
        "-accel",
        accel.qemu_name(),
        "-machine",
        "pc",
        "-m",
        "128",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "null",
        "-append",
        "console=ttyS0 panic=-1 quiet",
        "-kernel",
    ]
    .into_iter()
    .map(OsString::from)
    .chain(std::iter::once(kernel.as_os_str().to_os_string()))
    .collect();
    let mut child = tokio::process::Command::new(binary)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status?;
            let mut text = String::new();
            if let Some(mut e) = stderr {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut text).await;
            }
            if status.success() {
                Ok(BootOutcome::Finished)
            } else {
                Ok(BootOutcome::Refused(text.trim().to_string()))
            }
        }
        Err(_) => {
            let _ = child.kill().await;
            Ok(BootOutcome::Hung)
        }
    }
}

/// Decides KVM or TCG for `setting`; `auto` probes with `kernel` (TCG when there is none).
pub async fn choose(
    binary: &Path,
    setting: VirtTypeSetting,
    kernel: Option<&Path>,
    timeout: Duration,
) -> Choice {
    let tcg = |reason: String| Choice {
        accel: Accel::Tcg,
        reason,
    };
    match setting {
        VirtTypeSetting::Qemu => return tcg("--virt-type qemu".into()),
        VirtTypeSetting::Kvm => {
            return Choice {
                accel: Accel::Kvm,
                reason: "--virt-type kvm".into(),
            }
        }
        VirtTypeSetting::Auto => {}
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return tcg(format!("/dev/kvm cannot be opened: {e}"));
    }
    let Some(kernel) = kernel else {
        return tcg("no kernel to probe KVM with".into());
    };
    match probe_boot(binary, kernel, Accel::Kvm, timeout).await {
        Ok(BootOutcome::Finished) => Choice {
            accel: Accel::Kvm,
            reason: format!(
                "a guest kernel ran to its end under KVM within {} s",
                timeout.as_secs()
            ),
        },
        Ok(BootOutcome::Hung) => tcg(format!(
            "/dev/kvm opens but a guest kernel did not finish under KVM within {} s",
            timeout.as_secs()
        )),
        Ok(BootOutcome::Refused(why)) => tcg(format!("QEMU refused KVM: {why}")),
        Err(e) => tcg(format!("the KVM probe could not run QEMU: {e}")),
    }
}
