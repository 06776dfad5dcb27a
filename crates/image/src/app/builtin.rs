//! Registers the project's test guest image (`images/testvm`) at first start: public images
//! `testvm-kernel` (aki), `testvm-ramdisk` (ari) and `testvm` (qcow2 booting with them).

use std::path::Path;

use futures::StreamExt;
use serde_json::{Map, Value};

use crate::db;
use crate::error::{ImageError, Result};
use crate::model::{Image, Status, Visibility};
use crate::ImageService;

impl ImageService {
    async fn builtin(
        &self,
        owner: &str,
        name: &str,
        file: &Path,
        disk: &str,
        container: &str,
        props: Map<String, Value>,
    ) -> Result<String> {
        let mut conn = self.db.pool.acquire().await?;
        let existing = db::images::list(&mut conn).await?.into_iter().find(|i| {
            // A deactivated image is still registered (registering again would duplicate it).
            i.name.as_deref() == Some(name)
                && i.owner == owner
                && matches!(i.status, Status::Active | Status::Deactivated)
        });
        drop(conn);
        if let Some(i) = existing {
            return Ok(i.id);
        }
        let now = ferrostack_store::now_micros();
        let img = Image {
            id: uuid::Uuid::new_v4().to_string(),
            name: Some(name.to_string()),
            status: Status::Saving,
            visibility: Visibility::Public,
            protected: false,
            os_hidden: false,
            disk_format: Some(disk.into()),
            container_format: Some(container.into()),
            min_disk: 0,
            min_ram: 0,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            owner: owner.to_string(),
            properties: props,
            tags: vec![],
            location: String::new(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.db.begin_write().await?;
        db::images::insert(&mut tx, &img).await?;
        tx.commit().await?;
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| ImageError::BadRequest(format!("{}: {e}", file.display())))?;
        let stream = tokio_util::io::ReaderStream::new(f).boxed();
        let staged = self
            .store
            .stage(&img.id, stream, self.config.max_image_size)
            .await?;
        self.finish_upload(&img, staged, Status::Saving).await?;
        Ok(img.id)
    }

    /// Registers testvm from `dir` (holding testvm-kernel, testvm-ramdisk, testvm.qcow2) when
    /// it is not registered yet. Returns the id of the `testvm` image.
    pub async fn register_testvm(&self, dir: &Path, owner: &str) -> Result<String> {
        let kernel = self
            .builtin(
                owner,
                "testvm-kernel",
                &dir.join("testvm-kernel"),
                "aki",
                "aki",
                Map::new(),
            )
            .await?;
        let ramdisk = self
            .builtin(
                owner,
                "testvm-ramdisk",
                &dir.join("testvm-ramdisk"),
                "ari",
                "ari",
                Map::new(),
            )
            .await?;
        let mut props = Map::new();
        props.insert("kernel_id".into(), Value::String(kernel));
        props.insert("ramdisk_id".into(), Value::String(ramdisk));
        props.insert("os_distro".into(), Value::String("testvm".into()));
        self.builtin(
            owner,
            "testvm",
            &dir.join("testvm.qcow2"),
            "qcow2",
            "bare",
            props,
        )
        .await
    }
}
