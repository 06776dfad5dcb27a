//! Guest disks through `qemu-img`: a root disk is a qcow2 overlay on the cached image, grown to
//! the flavor's size, so guests share one copy of each image.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{io, QemuError, Result};

/// What `qemu-img info` says of a disk file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DiskInfo {
    pub format: String,
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    #[serde(rename = "backing-filename")]
    pub backing: Option<String>,
    /// qcow2's external data file, if its header names one.
    #[serde(rename = "format-specific", default)]
    pub format_specific: Option<serde_json::Value>,
}

impl DiskInfo {
    fn data_file(&self) -> Option<&str> {
        self.format_specific.as_ref()?["data"]["data-file"].as_str()
    }
}

/// Checks a qcow2 disk that came from another host before anything opens it for a guest: its
/// header must not make QEMU or qemu-img read any other file of this host (an external data
/// file; a backing file unless `backing_allowed`, for a root overlay that is rebased onto
/// this host's image next).
pub async fn check_received(qemu_img: &Path, disk: &Path, backing_allowed: bool) -> Result<()> {
    let i = info(qemu_img, disk).await?;
    let refuse = |why: String| {
        Err(QemuError::Launch {
            stderr: format!("the received disk {} {why}", disk.display()),
        })
    };
    if i.format != "qcow2" {
        return refuse(format!("is {}, not qcow2", i.format));
    }
    if let Some(f) = i.data_file() {
        return refuse(format!("names an external data file ({f})"));
    }
    if let (false, Some(b)) = (backing_allowed, &i.backing) {
        return refuse(format!("names a backing file ({b})"));
    }
    Ok(())
}

/// Debian's `qemu-img` (package `qemu-utils`, installed with QEMU by the README's commands).
pub fn qemu_img() -> PathBuf {
    PathBuf::from("/usr/bin/qemu-img")
}

async fn run(qemu_img: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>> {
    let out = tokio::process::Command::new(qemu_img)
        .args(args)
        .output()
        .await
        .map_err(io(format!("running {}", qemu_img.display())))?;
    if !out.status.success() {
        return Err(QemuError::Launch {
            stderr: format!("qemu-img: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(out.stdout)
}

pub async fn info(qemu_img: &Path, path: &Path) -> Result<DiskInfo> {
    let out = run(
        qemu_img,
        &[
            "info".as_ref(),
            "--output=json".as_ref(),
            "-U".as_ref(),
            path.as_os_str(),
        ],
    )
    .await?;
    serde_json::from_slice(&out).map_err(|e| QemuError::Launch {
        stderr: format!("qemu-img info {}: {e}", path.display()),
    })
}

/// Creates `overlay` on `base` (of `base_format`), `size_gb` large, or the base's own size
/// when that is larger (a disk never shrinks below its image) or `size_gb` is 0.
pub async fn create_overlay(
    qemu_img: &Path,
    base: &Path,
    base_format: &str,
    overlay: &Path,
    size_gb: u64,
) -> Result<()> {
    let base_size = info(qemu_img, base).await?.virtual_size;
    let size = (size_gb << 30).max(base_size);
    let size = size.to_string();
    run(
        qemu_img,
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-F".as_ref(),
            base_format.as_ref(),
            "-b".as_ref(),
            base.as_os_str(),
            overlay.as_os_str(),
            size.as_ref(),
        ],
    )
    .await
    .map(|_| ())
}

/// Grows `disk` (qcow2) to `size_gb` GiB; a disk already as large is left alone.
pub async fn grow(qemu_img: &Path, disk: &Path, size_gb: u64) -> Result<()> {
    let now = info(qemu_img, disk).await?.virtual_size;
    if size_gb << 30 <= now {
        return Ok(());
    }
    let size = (size_gb << 30).to_string();
    run(
        qemu_img,
        &[
            "resize".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            disk.as_os_str(),
            size.as_ref(),
        ],
    )
    .await
    .map(|_| ())
}

/// Writes `disk` and its backing chain into one standalone qcow2 file `dest` (a snapshot of
/// a guest that is not running).
pub async fn flatten(qemu_img: &Path, disk: &Path, dest: &Path) -> Result<()> {
    run(
        qemu_img,
        &[
            "convert".as_ref(),
            "-q".as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            disk.as_os_str(),
            dest.as_os_str(),
        ],
    )
    .await
    .map(|_| ())
}

/// Points overlay `disk` at `base` (of `base_format`) without touching its data: the same
/// image's copy on another host (a disk handed over by a cold move).
pub async fn rebase_unsafe(
    qemu_img: &Path,
    disk: &Path,
    base: &Path,
    base_format: &str,
) -> Result<()> {
    run(
        qemu_img,
        &[
            "rebase".as_ref(),
            "-q".as_ref(),
            "-u".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-F".as_ref(),
            base_format.as_ref(),
            "-b".as_ref(),
            base.as_os_str(),
            disk.as_os_str(),
        ],
    )
    .await
    .map(|_| ())
}

/// Creates `dest`, an empty qcow2 disk of `size_bytes` (a live migration's destination, which
/// the source's mirror fills).
pub async fn create_blank(qemu_img: &Path, dest: &Path, size_bytes: u64) -> Result<()> {
    let size = size_bytes.to_string();
    run(
        qemu_img,
        &[
            "create".as_ref(),
            "-q".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            dest.as_os_str(),
            size.as_ref(),
        ],
    )
    .await
    .map(|_| ())
}

/// What a flavor's extra disk holds when it is made: Nova's ephemeral disk (ext4, label
/// `ephemeral0`, as Nova's default for Linux guests) or its swap disk (label `swap0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scratch {
    Ephemeral,
    Swap,
}

impl Scratch {
    /// The formatter run on the raw file and its arguments (before the file's path).
    fn formatter(self) -> (&'static str, &'static [&'static str]) {
        match self {
            // No discard pass (the file is new and sparse); the inode tables are filled by the
            // guest's kernel as it uses them.
            Scratch::Ephemeral => (
                "/sbin/mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-L",
                    "ephemeral0",
                    "-E",
                    "nodiscard,lazy_itable_init=1",
                ],
            ),
            Scratch::Swap => ("/sbin/mkswap", &["-L", "swap0"]),
        }
    }
}

/// Makes `dest`, a standalone qcow2 disk of `size_bytes` formatted as `kind`: the formatter
/// runs on a sparse raw file beside it (a file system is made in a file as well as on a
/// device, without root's loop devices), which qemu-img then converts (only what the
/// formatter wrote takes room).
pub async fn create_scratch(
    qemu_img: &Path,
    dest: &Path,
    size_bytes: u64,
    kind: Scratch,
) -> Result<()> {
    let raw = dest.with_extension("raw.tmp");
    // Converted under a temporary name and renamed: a disk that exists is always whole (a
    // failure half-way never leaves a file the next attempt would take as made).
    let part = dest.with_extension("part.tmp");
    let made = async {
        let f = std::fs::File::create(&raw).map_err(io(format!("creating {}", raw.display())))?;
        f.set_len(size_bytes)
            .map_err(io(format!("sizing {}", raw.display())))?;
        drop(f);
        let (program, args) = kind.formatter();
        let out = tokio::process::Command::new(program)
            .args(args)
            .arg(&raw)
            .output()
            .await
            .map_err(io(format!("running {program}")))?;
        if !out.status.success() {
            return Err(QemuError::Launch {
                stderr: format!("{program}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        run(
            qemu_img,
            &[
                "convert".as_ref(),
                "-q".as_ref(),
                "-f".as_ref(),
                "raw".as_ref(),
                "-O".as_ref(),
                "qcow2".as_ref(),
                raw.as_os_str(),
                part.as_os_str(),
            ],
        )
        .await?;
        std::fs::rename(&part, dest).map_err(io(format!("renaming to {}", dest.display())))
    }
    .await;
    let _ = std::fs::remove_file(&raw);
    let _ = std::fs::remove_file(&part);
    made
}
