//! File modes of the data directory: the database (password hashes, application credential
//! secrets), the Fernet keys, openrc and the image store (private image data) are readable by
//! the cloud's own user only, whatever the umask the process was started with.
//!
//! The process umask is set to 077 before anything is written, so every file the cloud
//! creates is 0600 and every directory 0700 (SQLite gives its `-wal` and `-shm` files the
//! database file's mode). With a group named (`--data-group`), the umask is 027 and the data
//! directory is setgid and owned by that group, so new files are 0640 and new directories
//! 2750 in that group: an operator's tooling (backups, monitoring) reads them, nobody else.
//! At each start the modes of what is already there are brought in line, and the change is
//! logged. The Fernet key repository stays the cloud user's alone (0700, keys 0600) even with
//! a group, as Keystone keeps its keys.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// How the data directory is shared: with nobody, or with one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    /// The group that may read, if any.
    pub gid: Option<u32>,
}

impl Modes {
    pub fn file(self) -> u32 {
        if self.gid.is_some() {
            0o640
        } else {
            0o600
        }
    }

    pub fn dir(self) -> u32 {
        if self.gid.is_some() {
            0o2750
        } else {
            0o700
        }
    }

    fn umask(self) -> u32 {
        if self.gid.is_some() {
            0o027
        } else {
            0o077
        }
    }
}

/// The modes for `group` (a group name or a numeric id), looked up in /etc/group.
pub fn modes_for(group: Option<&str>) -> anyhow::Result<Modes> {
    let Some(group) = group else {
        return Ok(Modes { gid: None });
    };
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(Modes { gid: Some(gid) });
    }
    let text = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
    let gid = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(':');
            let name = parts.next()?;
            let gid = parts.nth(1)?.parse::<u32>().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .with_context(|| format!("no group named {group:?} (--data-group)"))?;
    Ok(Modes { gid: Some(gid) })
}

/// Sets the process umask for `modes`. Call it before any file is created.
pub fn set_umask(modes: Modes) {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(modes.umask()));
}

/// Creates `dir` when missing and brings the modes (and, with a group, the group) of it and
/// everything under it in line with `modes`. Returns how many paths were changed. Symbolic
/// links are left alone (their modes mean nothing) and not followed.
pub fn secure(dir: &Path, modes: Modes) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut changed = 0;
    fix(dir, modes, &mut changed)?;
    Ok(changed)
}

/// Brings one file (a database kept outside the data directory) in line with `modes`; true
/// when it had to change.
pub fn secure_file(path: &Path, modes: Modes) -> anyhow::Result<bool> {
    let mut changed = 0;
    fix(path, modes, &mut changed)?;
    Ok(changed > 0)
}

/// Directories whose contents no group may read, whatever `--data-group` says.
const PRIVATE_DIRS: &[&str] = &["fernet-keys"];

fn fix(path: &Path, mut modes: Modes, changed: &mut usize) -> anyhow::Result<()> {
    if path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| PRIVATE_DIRS.contains(&n))
    {
        modes.gid = None;
    }
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("reading the mode of {}", path.display()))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Ok(());
    }
    if let Some(gid) = modes.gid {
        if meta.gid() != gid {
            std::os::unix::fs::lchown(path, None, Some(gid))
                .with_context(|| format!("giving {} to group {gid}", path.display()))?;
            *changed += 1;
        }
    }
    let want = if kind.is_dir() {
        modes.dir()
    } else {
        modes.file()
    };
    // Only take permissions away: an owner's execute bit on a file stays.
    let have = meta.permissions().mode() & 0o7777;
    let keep_exec = if kind.is_dir() { 0 } else { have & 0o100 };
    let new = want | keep_exec;
    if have != new {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        *changed += 1;
    }
    if kind.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))?
        {
            fix(&entry?.path(), modes, changed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn existing_tree_is_closed_to_others() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("data");
        std::fs::create_dir_all(dir.join("images/images")).unwrap();
        std::fs::write(dir.join("ferrostack.db"), b"x").unwrap();
        std::fs::write(dir.join("images/images/abc"), b"y").unwrap();
        for p in ["", "images", "images/images"] {
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for p in ["ferrostack.db", "images/images/abc"] {
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let modes = Modes { gid: None };
        assert_eq!(secure(&dir, modes).unwrap(), 5);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("images/images")), 0o700);
        assert_eq!(mode(&dir.join("ferrostack.db")), 0o600);
        assert_eq!(mode(&dir.join("images/images/abc")), 0o600);
        assert_eq!(
            mode(Path::new("/etc/passwd")),
            0o644,
            "links are not followed"
        );
        assert_eq!(
            secure(&dir, modes).unwrap(),
            0,
            "a second pass changes nothing"
        );
    }

    #[test]
    fn a_group_reads() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("data");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
        std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::create_dir_all(dir.join("fernet-keys")).unwrap();
        std::fs::write(dir.join("fernet-keys/0"), b"k").unwrap();
        let gid = std::fs::metadata(&dir).unwrap().gid();
        let modes = Modes { gid: Some(gid) };
        secure(&dir, modes).unwrap();
        assert_eq!(mode(&dir), 0o2750);
        assert_eq!(mode(&dir.join("f")), 0o640);
        assert_eq!(mode(&dir.join("fernet-keys")), 0o700, "keys stay private");
        assert_eq!(mode(&dir.join("fernet-keys/0")), 0o600);
        assert_eq!(secure(&dir, modes).unwrap(), 0);
    }

    #[test]
    fn groups_by_name_and_number() {
        assert_eq!(modes_for(None).unwrap(), Modes { gid: None });
        assert_eq!(modes_for(Some("0")).unwrap().gid, Some(0));
        assert_eq!(modes_for(Some("root")).unwrap().gid, Some(0));
        assert!(modes_for(Some("no-such-group-here")).is_err());
    }
}
