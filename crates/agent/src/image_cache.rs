//! The host's image cache: each image a guest boots from is downloaded once from the image
//! service (through the controller), checked against the image's hash, and kept under
//! `<dir>/<image id>` for every guest of the host (their root disks are overlays on it, as
//! Nova's `_base` files). A download goes to a `.part` file renamed into place only once
//! checked, so a crash mid-download never leaves a file that looks cached.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrostack_agent_api::{Controller, ImageInfo};
use ferrostack_virt::qemu::driver::{BootImage, ImageSource};
use ferrostack_virt::DriverError;
use sha2::Digest;

pub struct ImageCache {
    dir: PathBuf,
    host: String,
    controller: Arc<dyn Controller>,
    /// One download of an image at a time; guests booting from it meanwhile wait for it.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

fn failed(what: impl Into<String>) -> impl FnOnce(ferrostack_agent_api::LinkError) -> DriverError {
    let what = what.into();
    move |e| DriverError::failed_with(format!("{what}: {e}"), e)
}

impl ImageCache {
    pub fn new(dir: impl Into<PathBuf>, host: &str, controller: Arc<dyn Controller>) -> Self {
        ImageCache {
            dir: dir.into(),
            host: host.to_string(),
            controller,
            locks: Default::default(),
        }
    }

    /// Where image `id` is kept once cached.
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(id.to_string()).or_default().clone()
    }

    async fn info(&self, id: &str) -> Result<ImageInfo, DriverError> {
        let info = self
            .controller
            .image(&self.host, id)
            .await
            .map_err(failed(format!("image {id}")))?;
        if info.status != "active" {
            return Err(DriverError::failed(format!(
                "image {id} is {}, not active",
                info.status
            )));
        }
        Ok(info)
    }

    /// The cached file of `info`, downloaded and checked first when missing.
    pub async fn ensure(&self, info: &ImageInfo) -> Result<PathBuf, DriverError> {
        // Image ids become file names: nothing but what a UUID is made of.
        if info.id.is_empty()
            || !info
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(DriverError::failed(format!("bad image id {:?}", info.id)));
        }
        let path = self.path_of(&info.id);
        if path.exists() {
            return Ok(path);
        }
        let lock = self.lock_of(&info.id);
        let _held = lock.lock().await;
        if path.exists() {
            return Ok(path);
        }
        let io = |what: String| move |e: std::io::Error| DriverError::failed_with(what, e);
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io(format!("creating {}", self.dir.display())))?;
        let part = self.dir.join(format!("{}.part", info.id));
        let result = async {
            self.controller
                .download_image(&self.host, &info.id, &part)
                .await
                .map_err(failed(format!("downloading image {}", info.id)))?;
            verify(&part, info).await?;
            tokio::fs::rename(&part, &path)
                .await
                .map_err(io(format!("keeping {}", path.display())))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        } else {
            tracing::info!(host = %self.host, image = %info.id, "image cached");
        }
        result.map(|()| path)
    }
}

#[async_trait::async_trait]
impl ImageSource for ImageCache {
    async fn boot_image(&self, image_ref: &str) -> ferrostack_virt::Result<BootImage> {
        let info = self.info(image_ref).await?;
        let disk = self.ensure(&info).await?;
        let mut kernel = None;
        let mut ramdisk = None;
        if let Some(k) = info.property("kernel_id") {
            kernel = Some(self.ensure(&self.info(k).await?).await?);
            if let Some(r) = info.property("ramdisk_id") {
                ramdisk = Some(self.ensure(&self.info(r).await?).await?);
            }
        }
        let format = match info.disk_format.as_deref() {
            // Amazon's kinds and ISOs are raw bytes to QEMU.
            None | Some("ami" | "ari" | "aki" | "iso") => "raw".to_string(),
            Some(f) => f.to_string(),
        };
        Ok(BootImage {
            disk,
            format,
            kernel,
            ramdisk,
            cmdline: info.property("os_command_line").map(str::to_string),
            properties: info.properties.clone(),
        })
    }
}

/// Checks the downloaded `file` against the image's size and hash (the multihash when this
/// host knows its algorithm, else the MD5 checksum).
async fn verify(file: &Path, info: &ImageInfo) -> Result<(), DriverError> {
    let len = tokio::fs::metadata(file)
        .await
        .map_err(|e| DriverError::failed_with(format!("reading {}", file.display()), e))?
        .len();
    if let Some(size) = info.size {
        if u64::try_from(size).ok() != Some(len) {
            return Err(DriverError::failed(format!(
                "image {}: downloaded {len} bytes, the image has {size}",
                info.id
            )));
        }
    }
    let (algo, want) = match (&info.os_hash_algo, &info.os_hash_value, &info.checksum) {
        (Some(a), Some(v), _) if hasher(a).is_some() => (a.clone(), v.clone()),
        (_, _, Some(md5)) => ("md5".to_string(), md5.clone()),
        _ => {
            tracing::warn!(image = %info.id, "image has no hash this host can check");
            return Ok(());
        }
    };
    let path = file.to_path_buf();
    let algo2 = algo.clone();
    let got = tokio::task::spawn_blocking(move || hash_file(&path, &algo2))
        .await
        .map_err(|e| DriverError::failed_with("hashing an image", e))?
        .map_err(|e| DriverError::failed_with(format!("reading {}", file.display()), e))?;
    if !got.eq_ignore_ascii_case(&want) {
        return Err(DriverError::failed(format!(
            "image {}: the downloaded data's {algo} is {got}, the image's is {want}",
            info.id
        )));
    }
    Ok(())
}

/// A hasher for one of Glance's multihash algorithms (hashlib names).
fn hasher(algo: &str) -> Option<Box<dyn sha2::digest::DynDigest>> {
    Some(match algo {
        "sha512" => Box::new(sha2::Sha512::new()),
        "sha384" => Box::new(sha2::Sha384::new()),
        "sha256" => Box::new(sha2::Sha256::new()),
        "sha224" => Box::new(sha2::Sha224::new()),
        "md5" => Box::new(md5::Md5::new()),
        _ => return None,
    })
}

fn hash_file(path: &Path, algo: &str) -> std::io::Result<String> {
    let mut h = hasher(algo).ok_or_else(|| std::io::Error::other("unknown hash algorithm"))?;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hex_of_the_named_algorithm() {
        let dir = std::env::temp_dir().join(format!("fs-hash-{}", std::process::id()));
        std::fs::write(&dir, b"abc").unwrap();
        assert_eq!(
            hash_file(&dir, "md5").unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert!(hash_file(&dir, "sha512")
            .unwrap()
            .starts_with("ddaf35a193617aba"));
        assert!(hash_file(&dir, "whirlpool").is_err());
        std::fs::remove_file(&dir).unwrap();
    }
}
