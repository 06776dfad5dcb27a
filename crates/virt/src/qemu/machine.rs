//! The QEMU command line of one guest's machine (what [`super::QemuProcess::launch`] adds to
//! its own process options).

use std::ffi::OsString;
use std::path::PathBuf;

use super::probe::Accel;

/// A guest's machine: sizes, root disk, and a kernel to boot directly when the image has one
/// (`kernel_id`/`ramdisk_id`/`os_command_line`).
#[derive(Debug, Clone)]
pub struct Machine {
    pub accel: Accel,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_disk: PathBuf,
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: Option<String>,
}

impl Machine {
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: String| a.push(OsString::from(s));
        push("-machine".into());
        push(format!("pc,accel={}", self.accel.qemu_name()));
        push("-smp".into());
        push(self.vcpus.max(1).to_string());
        push("-m".into());
        push(format!("{}M", self.memory_mb.max(16)));
        push("-no-user-config".into());
        push("-drive".into());
        push(format!(
            "file={},format=qcow2,if=virtio,cache=none,aio=threads",
            self.root_disk.display()
        ));
        push("-device".into());
        push("virtio-rng-pci".into());
        if let Some(k) = &self.kernel {
            push("-kernel".into());
            push(k.display().to_string());
            if let Some(r) = &self.ramdisk {
                push("-initrd".into());
                push(r.display().to_string());
            }
            push("-append".into());
            push(
                self.cmdline
                    .clone()
                    .unwrap_or_else(|| "console=ttyS0".into()),
            );
        }
        a
    }
}
