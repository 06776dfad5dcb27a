//! The Fernet key repository, laid out as Keystone's `fernet_keys` directory: files named by
//! integers; `0` is the staged key, the highest number is the primary key (encrypts), the rest
//! are secondary keys (still decrypt). Rotation promotes the staged key to primary, writes a
//! new staged key and drops the oldest secondaries beyond `max_active_keys`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fernet::Fernet;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key repository {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} does not hold a valid Fernet key")]
    BadKey { path: PathBuf },
    #[error("key repository {path} has no keys")]
    Empty { path: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Keys loaded from the repository: `primary` first, then the others (newest first).
pub struct KeySet {
    pub keys: Vec<Fernet>,
}

/// A key repository directory.
pub struct KeyRepository {
    dir: PathBuf,
    max_active_keys: usize,
}

impl KeyRepository {
    pub fn new(dir: impl Into<PathBuf>, max_active_keys: usize) -> Self {
        KeyRepository {
            dir: dir.into(),
            max_active_keys: max_active_keys.max(3),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the repository with a staged and a primary key when it has no keys yet
    /// (what `keystone-manage fernet_setup` does). Existing keys are never touched.
    pub fn setup(&self) -> Result<(), KeyError> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(io(&self.dir))?;
        if self.indexes()?.is_empty() {
            self.write_key(0)?;
            self.rotate()?;
        }
        Ok(())
    }

    /// Rotates keys; returns the index of the new primary key.
    pub fn rotate(&self) -> Result<u64, KeyError> {
        let mut idx = self.indexes()?;
        if !idx.contains(&0) {
            self.write_key(0)?;
            idx.push(0);
        }
        let next = idx.iter().copied().max().unwrap_or(0) + 1;
        // The staged key becomes the primary: rename keeps it atomic.
        let staged = self.dir.join("0");
        let primary = self.dir.join(next.to_string());
        fs::rename(&staged, &primary).map_err(io(&staged))?;
        self.write_key(0)?;
        // Keep the staged key, the primary and the newest secondaries.
        let mut idx = self.indexes()?;
        idx.sort_unstable();
        let removable: Vec<u64> = idx.iter().copied().filter(|i| *i != 0).collect();
        let keep = self.max_active_keys.saturating_sub(1);
        if removable.len() > keep {
            for i in &removable[..removable.len() - keep] {
                let p = self.dir.join(i.to_string());
                fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        Ok(next)
    }

    /// Loads the keys, primary first.
    pub fn load(&self) -> Result<KeySet, KeyError> {
        let mut idx = self.indexes()?;
        if idx.is_empty() {
            return Err(KeyError::Empty {
                path: self.dir.clone(),
            });
        }
        // Highest index = primary; the staged key (0) goes last.
        idx.sort_unstable_by(|a, b| match (*a == 0, *b == 0) {
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => b.cmp(a),
        });
        let mut keys = Vec::with_capacity(idx.len());
        for i in idx {
            let p = self.dir.join(i.to_string());
            let text = fs::read_to_string(&p).map_err(io(&p))?;
            let key =
                Fernet::new(text.trim()).ok_or_else(|| KeyError::BadKey { path: p.clone() })?;
            keys.push(key);
        }
        Ok(KeySet { keys })
    }

    fn indexes(&self) -> Result<Vec<u64>, KeyError> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(io(&self.dir))?;
            if let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok())
            {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Writes a new random key as file `index`, mode 0600, through a temporary file.
    fn write_key(&self, index: u64) -> Result<(), KeyError> {
        let tmp = self.dir.join(format!(".tmp-{index}"));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(Fernet::generate_key().as_bytes())
            .map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        let dst = self.dir.join(index.to_string());
        fs::rename(&tmp, &dst).map_err(io(&dst))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_and_rotate_like_keystone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path().join("keys"), 3);
        repo.setup().unwrap();
        let mut idx = repo.indexes().unwrap();
        idx.sort();
        assert_eq!(idx, vec![0, 1]);
        let old = repo.load().unwrap();
        let token = old.keys[0].encrypt(b"hello");
        assert_eq!(repo.rotate().unwrap(), 2);
        assert_eq!(repo.rotate().unwrap(), 3);
        let mut idx = repo.indexes().unwrap();
        idx.sort();
        assert_eq!(
            idx,
            vec![0, 2, 3],
            "oldest secondary dropped at max_active_keys=3"
        );
        // A token made with key 1 no longer decrypts; one made with key 2 (now secondary) does.
        let now = repo.load().unwrap();
        assert!(now.keys.iter().all(|k| k.decrypt(&token).is_err()));
        // setup() keeps existing keys.
        repo.setup().unwrap();
        assert_eq!(repo.indexes().unwrap().len(), 3);
    }
}
