//! Disks on their way between hosts: the root disk a cold move's source hands over, kept by
//! the controller until the destination has built the guest from it. Controllers never
//! connect to agents, so the disk travels through the controller, in process or over the
//! agent protocol's HTTP (`api/agents.rs`). Files live in `ComputeConfig::transfer_dir`, one
//! per migration, and go once the move has arrived or was undone.

use std::path::PathBuf;

use ferrostack_image::store::ByteStream;
use futures::StreamExt;

use crate::db::migrations::{self, Migration};
use crate::error::{ComputeError, Result};
use crate::ComputeService;

impl ComputeService {
    fn migration_disk_path(&self, migration: &str) -> PathBuf {
        self.config.transfer_dir.join(format!("{migration}.disk"))
    }

    /// The migration `id`, when `host` is its `source` (or else its destination) and it
    /// still carries a disk: 404 otherwise, as an agent asking for another host's move must
    /// learn nothing.
    async fn migration_of(&self, id: &str, host: &str, source: bool) -> Result<Migration> {
        let mut conn = self.db.pool.acquire().await?;
        let m = migrations::by_uuid(&mut conn, id).await?;
        m.filter(|m| {
            let h = if source {
                &m.source_compute
            } else {
                &m.dest_compute
            };
            h == host && m.is_cold() && matches!(m.status.as_str(), "migrating" | "post-migrating")
        })
        .ok_or_else(|| ComputeError::NotFound(format!("No disk transfer {id} for host {host}.")))
    }

    /// Keeps the disk `host` (the source of cold move `id`) hands over: written to a part
    /// file, synced, then renamed, so the destination never reads half a disk.
    pub async fn store_migration_disk(&self, host: &str, id: &str, data: ByteStream) -> Result<()> {
        self.migration_of(id, host, true).await?;
        let dir = &self.config.transfer_dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(ComputeError::io(format!("creating {}", dir.display())))?;
        let path = self.migration_disk_path(id);
        let part = path.with_extension("part");
        let written = async {
            ferrostack_agent::transfer::write_stream_with(
                &part,
                data,
                |e| ComputeError::Io {
                    what: "receiving a handed-over disk".into(),
                    source: e,
                },
                |e| ComputeError::Io {
                    what: format!("writing {}", part.display()),
                    source: e,
                },
            )
            .await?;
            tokio::fs::rename(&part, &path)
                .await
                .map_err(ComputeError::io(format!("keeping {}", path.display())))
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        written
    }

    /// The disk handed over for cold move `id` to `host` (its destination); None when the
    /// source had none to give (the fake driver).
    pub async fn migration_disk(&self, host: &str, id: &str) -> Result<Option<ByteStream>> {
        self.migration_of(id, host, false).await?;
        match tokio::fs::File::open(self.migration_disk_path(id)).await {
            Ok(f) => Ok(Some(tokio_util::io::ReaderStream::new(f).boxed())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ComputeError::io(format!(
                "reading the disk of migration {id}"
            ))(e)),
        }
    }

    /// Drops the disk of migration `id`, if one was kept.
    pub async fn drop_migration_disk(&self, id: &str) {
        match tokio::fs::remove_file(self.migration_disk_path(id)).await {
            Ok(()) => tracing::debug!(migration = %id, "handed-over disk dropped"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(migration = %id, error = %e, "could not drop a handed-over disk")
            }
        }
    }
}
