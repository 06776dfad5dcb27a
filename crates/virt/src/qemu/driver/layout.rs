//! The files of one guest in its directory, and the records kept there.

use std::path::{Path, PathBuf};

use ferrostack_agent_api::GuestSpec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::machine::Hardware;
use super::super::{io, GuestDir};
use crate::{DriverError, Result};

/// How a guest boots, fixed when its disk is made and kept in its directory, so a power on
/// needs neither the image service nor the image (which may be deleted meanwhile, as with
/// Nova): the kernel and ramdisk are copied beside the disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Boot {
    pub hardware: Hardware,
    pub kernel: bool,
    pub ramdisk: bool,
    pub cmdline: Option<String>,
}

/// Which of a guest's boots: its own, or the rescue image it is rescued with (whose files
/// carry a `rescue-` prefix and which boots with the guest's own disk as its second disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Own,
    Rescue,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Own => "",
            Kind::Rescue => "rescue-",
        }
    }
}

pub(super) fn spec_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("spec.json")
}

pub(super) fn disk_file(dir: &GuestDir, kind: Kind) -> PathBuf {
    dir.path.join(format!("{}disk.qcow2", kind.prefix()))
}

pub(super) fn boot_file(dir: &GuestDir, kind: Kind) -> PathBuf {
    dir.path.join(format!("{}boot.json", kind.prefix()))
}

pub(super) fn kernel_file(dir: &GuestDir, kind: Kind) -> PathBuf {
    dir.path.join(format!("{}kernel", kind.prefix()))
}

pub(super) fn ramdisk_file(dir: &GuestDir, kind: Kind) -> PathBuf {
    dir.path.join(format!("{}ramdisk", kind.prefix()))
}

/// The flavor's ephemeral disk (the guest's second disk), when it has one.
pub(super) fn ephemeral_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("disk.eph0.qcow2")
}

/// The flavor's swap disk (after the ephemeral one), when it has one.
pub(super) fn swap_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("disk.swap.qcow2")
}

/// The guest's own disks in the order it sees them (root, ephemeral, swap): those it has.
pub(super) fn own_disks(dir: &GuestDir) -> Vec<PathBuf> {
    let mut disks = vec![disk_file(dir, Kind::Own)];
    disks.extend(
        [ephemeral_file(dir), swap_file(dir)]
            .into_iter()
            .filter(|f| f.exists()),
    );
    disks
}

/// The config drive (ISO 9660, `config-2`), when the guest has one.
pub(super) fn config_drive_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("disk.config")
}

/// The machine state of a suspended guest (its QEMU has ended).
pub(super) fn suspend_file(dir: &GuestDir) -> PathBuf {
    dir.path.join("suspend.state")
}

/// The root disk as it was before a resize on this host, and the spec it had, kept until the
/// next resize so that a revert restores it.
pub(super) fn pre_resize_disk(dir: &GuestDir) -> PathBuf {
    dir.path.join("pre-resize-disk.qcow2")
}

pub(super) fn pre_resize_ephemeral(dir: &GuestDir) -> PathBuf {
    dir.path.join("pre-resize-eph0.qcow2")
}

pub(super) fn pre_resize_spec(dir: &GuestDir) -> PathBuf {
    dir.path.join("pre-resize-spec.json")
}

pub(super) async fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| DriverError::failed_with(format!("{}: bad record", path.display()), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e).into()),
    }
}

/// Writes `value` to `path` through a temporary file, so a crash never leaves half a record.
pub(super) async fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec(value)
        .map_err(|e| DriverError::failed_with(format!("encoding {}", path.display()), e))?;
    let tmp = path.with_extension("json.tmp");
    tokio::fs::write(&tmp, json)
        .await
        .map_err(io(format!("writing {}", tmp.display())))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io(format!("writing {}", path.display())))?;
    Ok(())
}

pub(super) async fn remove_file(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(format!("removing {}", path.display()))(e).into()),
    }
}

pub(super) async fn read_spec(dir: &GuestDir) -> Result<GuestSpec> {
    read_json(&spec_file(dir))
        .await?
        .ok_or_else(|| DriverError::NotFound(dir.uuid.clone()))
}

/// A path as one word of a `/bin/sh` command line (QEMU's `exec:` migration URIs).
pub(super) fn shell_word(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(shell_word(Path::new("/a b/c")), "'/a b/c'");
        assert_eq!(shell_word(Path::new("/it's")), r"'/it'\''s'");
    }
}
