//! The config drive: an ISO 9660 image labelled `config-2` with OpenStack's layout
//! (`openstack/<version>/meta_data.json`, `user_data`, `network_data.json`,
//! `vendor_data.json`), built with `genisoimage` as Nova does, for guests that cannot reach a
//! metadata service.

use std::path::Path;

use base64::Engine;
use ferrostack_agent_api::GuestSpec;

use super::super::{io, QemuError};
use crate::{DriverError, Result};

use ferrostack_agent_api::metadata::{
    content_path, meta_data, network_data, OPENSTACK_VERSIONS as VERSIONS,
};

/// Writes the config drive of `spec` to `iso`.
pub(super) async fn build(spec: &GuestSpec, iso: &Path) -> Result<()> {
    let user_data = match &spec.user_data {
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| DriverError::failed_with("user_data is not base64", e))?,
        ),
        None => None,
    };
    let staging = tempfile::Builder::new()
        .prefix("config-drive-")
        .tempdir_in(iso.parent().unwrap_or(Path::new("/tmp")))
        .map_err(io("creating the config drive's staging directory"))?;
    let md = serde_json::to_vec(&meta_data(spec))
        .map_err(|e| DriverError::failed_with("encoding meta_data.json", e))?;
    let network = serde_json::to_vec(&network_data(spec))
        .map_err(|e| DriverError::failed_with("encoding network_data.json", e))?;
    if let Some(injected) = &spec.injected {
        let content = staging.path().join("openstack").join("content");
        tokio::fs::create_dir_all(&content)
            .await
            .map_err(io(format!("creating {}", content.display())))?;
        for (i, f) in injected.files.iter().enumerate() {
            let data = base64::engine::general_purpose::STANDARD
                .decode(f.contents.trim())
                .map_err(|e| DriverError::failed_with("a personality file is not base64", e))?;
            let name = content_path(i);
            let to = staging
                .path()
                .join("openstack")
                .join(name.trim_start_matches('/'));
            tokio::fs::write(&to, data)
                .await
                .map_err(io(format!("writing {}", to.display())))?;
        }
    }
    for v in VERSIONS {
        let dir = staging.path().join("openstack").join(v);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io(format!("creating {}", dir.display())))?;
        let mut files: Vec<(&str, &[u8])> = vec![
            ("meta_data.json", &md),
            ("network_data.json", &network),
            ("vendor_data.json", b"{}"),
            ("vendor_data2.json", b"{}"),
        ];
        if let Some(u) = &user_data {
            files.push(("user_data", u));
        }
        for (name, data) in files {
            tokio::fs::write(dir.join(name), data)
                .await
                .map_err(io(format!("writing {name}")))?;
        }
    }
    // Nova's flags (nova/virt/configdrive.py).
    let out = tokio::process::Command::new("genisoimage")
        .arg("-o")
        .arg(iso)
        .args([
            "-ldots",
            "-allow-lowercase",
            "-allow-multidot",
            "-l",
            "-publisher",
            "ferrostack",
            "-quiet",
            "-J",
            "-r",
            "-V",
            "config-2",
        ])
        .arg(staging.path())
        .output()
        .await
        .map_err(io("running genisoimage (Debian package genisoimage)"))?;
    if !out.status.success() {
        return Err(QemuError::Launch {
            stderr: format!(
                "genisoimage: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_data_has_novas_keys() {
        let spec = GuestSpec {
            uuid: "u1".into(),
            name: "vm 1".into(),
            hostname: "vm-1".into(),
            vcpus: 1,
            memory_mb: 64,
            root_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
            image_ref: "i".into(),
            user_data: None,
            key_data: Some("ssh-ed25519 AAAA k".into()),
            metadata: json!({"a": "b"}),
            key_name: Some("mykey".into()),
            config_drive: true,
            project_id: "p1".into(),
            availability_zone: Some("nova".into()),
            injected: None,
            nics: Vec::new(),
        };
        let md = meta_data(&spec);
        assert_eq!(md["uuid"], "u1");
        assert_eq!(md["hostname"], "vm-1");
        assert_eq!(md["meta"]["a"], "b");
        assert_eq!(md["public_keys"]["mykey"], "ssh-ed25519 AAAA k");
        assert_eq!(md["keys"][0]["type"], "ssh");
        assert!(md.get("files").is_none() && md.get("admin_pass").is_none());

        let injected = GuestSpec {
            injected: Some(ferrostack_agent_api::Injected {
                files: (0..11)
                    .map(|i| ferrostack_agent_api::InjectedFile {
                        path: format!("/etc/f{i}"),
                        contents: "aGk=".into(),
                    })
                    .collect(),
                admin_pass: Some("s3cret".into()),
            }),
            ..spec
        };
        let md = meta_data(&injected);
        assert_eq!(md["admin_pass"], "s3cret");
        assert_eq!(
            md["files"][0],
            json!({"path": "/etc/f0", "content_path": "/content/0000"})
        );
        assert_eq!(md["files"][10]["content_path"], "/content/0010");
        // Never in a log line.
        let shown = format!("{:?}", injected.injected);
        assert!(
            !shown.contains("s3cret") && !shown.contains("aGk="),
            "{shown}"
        );
    }
}
