//! The serial console's log: capped on disk (rotated like logrotate's copytruncate, one old
//! generation kept, as virtlogd keeps Nova's), and read back from its end.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::super::{io, GuestDir};
use crate::Result;

/// A console log larger than this is rotated (virtlogd's default max_size is 2 MiB).
pub const CONSOLE_LOG_MAX: u64 = 2 << 20;
/// At most this much of the log is returned (Nova's libvirt driver reads 100 KiB).
pub const CONSOLE_OUTPUT_MAX: u64 = 100 << 10;

fn rotated(dir: &GuestDir) -> PathBuf {
    dir.path.join("console.log.0")
}

/// Rotates the guest's console log once it passed [`CONSOLE_LOG_MAX`]: copied to
/// `console.log.0`, then truncated. QEMU appends (`O_APPEND`), so its next write lands at
/// the new end; what it writes between the copy and the truncation is lost.
pub(super) async fn rotate_if_large(dir: &GuestDir) -> Result<()> {
    let log = dir.console_log();
    let Ok(meta) = tokio::fs::metadata(&log).await else {
        return Ok(());
    };
    if meta.len() <= CONSOLE_LOG_MAX {
        return Ok(());
    }
    tokio::fs::copy(&log, rotated(dir))
        .await
        .map_err(io(format!("rotating {}", log.display())))?;
    let f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .await
        .map_err(io(format!("opening {}", log.display())))?;
    f.set_len(0)
        .await
        .map_err(io(format!("truncating {}", log.display())))?;
    Ok(())
}

/// The last `max` bytes of `path` (nothing when it does not exist).
async fn tail(path: &Path, max: u64) -> Result<Vec<u8>> {
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("opening {}", path.display()))(e).into()),
    };
    let len = f
        .metadata()
        .await
        .map_err(io(format!("reading {}", path.display())))?
        .len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))
        .await
        .map_err(io(format!("reading {}", path.display())))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .await
        .map_err(io(format!("reading {}", path.display())))?;
    Ok(out)
}

/// The end of the console output (the rotated generation first when the current log is
/// short), at most [`CONSOLE_OUTPUT_MAX`] bytes, carriage returns dropped.
pub(super) async fn output(dir: &GuestDir) -> Result<String> {
    let mut bytes = tail(&dir.console_log(), CONSOLE_OUTPUT_MAX).await?;
    // The log may grow between finding its end and reading it: keep the last part only.
    let max = usize::try_from(CONSOLE_OUTPUT_MAX).unwrap_or(usize::MAX);
    if bytes.len() > max {
        bytes.drain(..bytes.len() - max);
    }
    let missing = CONSOLE_OUTPUT_MAX.saturating_sub(bytes.len() as u64);
    if missing > 0 {
        let mut older = tail(&rotated(dir), missing).await?;
        older.append(&mut bytes);
        bytes = older;
    }
    Ok(String::from_utf8_lossy(&bytes).replace('\r', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_large_log_is_rotated_and_read_from_its_end() {
        let root = tempfile::tempdir().unwrap();
        let dir = GuestDir::new(root.path(), "g");
        std::fs::create_dir_all(&dir.path).unwrap();
        let line = "x".repeat(99) + "\n";
        std::fs::write(dir.console_log(), line.repeat(30_000)).unwrap(); // 3 MB
        rotate_if_large(&dir).await.unwrap();
        assert_eq!(std::fs::metadata(dir.console_log()).unwrap().len(), 0);
        assert_eq!(std::fs::metadata(rotated(&dir)).unwrap().len(), 3_000_000);
        std::fs::write(dir.console_log(), "new\r\n").unwrap();
        let out = output(&dir).await.unwrap();
        assert_eq!(out.len() as u64, CONSOLE_OUTPUT_MAX - 1);
        assert!(out.ends_with("xxx\nnew\n"), "{}", &out[out.len() - 20..]);
        rotate_if_large(&dir).await.unwrap(); // small: left alone
        assert_eq!(std::fs::read(dir.console_log()).unwrap(), b"new\r\n");
    }
}
