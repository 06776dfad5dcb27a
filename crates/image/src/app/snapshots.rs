//! Images made by the compute service from a server's disk (Nova's `createImage` and shelve):
//! the image is created `queued` when the snapshot is asked for, and filled from the file the
//! host's driver sent once the agent has taken the snapshot.

use serde_json::{Map, Value};

use crate::db;
use crate::error::{ImageError, Result};
use crate::model::{Image, Status, Visibility};
use crate::store::ByteStream;
use crate::ImageService;

/// What a snapshot image is made of, besides its data.
pub struct SnapshotRequest<'a> {
    pub name: &'a str,
    pub owner: &'a str,
    /// The image the server was booted from, whose formats and properties the snapshot
    /// inherits as Nova's snapshots do.
    pub base: Option<&'a Image>,
    /// Properties set on top (instance_uuid, image_type, user metadata, ...).
    pub properties: Map<String, Value>,
    pub min_disk: i64,
    pub min_ram: i64,
}

impl ImageService {
    /// Creates the queued image a snapshot will fill.
    pub async fn create_snapshot_image(&self, req: SnapshotRequest<'_>) -> Result<Image> {
        let now = ferrostack_store::now_micros();
        let mut properties = Map::new();
        if let Some(base) = req.base {
            // Inherit what describes the guest (os_*, hw_*, kernel/ramdisk), not identity.
            for (k, v) in &base.properties {
                let inherited = k.starts_with("os_")
                    || k.starts_with("hw_")
                    || k == "kernel_id"
                    || k == "ramdisk_id";
                if inherited && k != "os_glance_importing_to_stores" {
                    properties.insert(k.clone(), v.clone());
                }
            }
        }
        properties.extend(req.properties);
        let img = Image {
            id: uuid::Uuid::new_v4().to_string(),
            name: Some(req.name.to_string()),
            status: Status::Queued,
            visibility: Visibility::Private,
            protected: false,
            os_hidden: false,
            disk_format: req.base.and_then(|b| b.disk_format.clone()),
            container_format: req
                .base
                .and_then(|b| b.container_format.clone())
                .or(Some("bare".into())),
            min_disk: req.min_disk,
            min_ram: req.min_ram,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            owner: req.owner.to_string(),
            properties,
            tags: vec![],
            location: String::new(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.db.begin_write().await?;
        db::images::insert(&mut tx, &img).await?;
        tx.commit().await?;
        self.touch();
        Ok(img)
    }

    /// Fills a queued snapshot image with `data`, written by a driver in `disk_format`; when
    /// the data cannot be kept, the image is queued again.
    pub async fn fill_snapshot(
        &self,
        image_id: &str,
        data: ByteStream,
        disk_format: &str,
    ) -> Result<()> {
        let mut conn = self.db.pool.acquire().await?;
        let mut img = db::images::get(&mut conn, image_id)
            .await?
            .ok_or_else(|| ImageError::NotFound(format!("No image found with ID {image_id}")))?;
        drop(conn);
        if img.disk_format.as_deref() != Some(disk_format) {
            img.disk_format = Some(disk_format.to_string());
            let mut w = self.db.writer.acquire().await?;
            db::images::update(&mut w, &img).await?;
        }
        if !db::images::transition(&self.db.writer, &img.id, &[Status::Queued], Status::Saving)
            .await?
        {
            return Err(ImageError::Conflict(format!(
                "Image {image_id} is not waiting for data (deleted meanwhile?)"
            )));
        }
        let result = async {
            let staged = self.stage_data(&img, data).await?;
            self.finish_upload(&img, staged, Status::Saving).await
        }
        .await;
        if result.is_err() {
            db::images::transition(&self.db.writer, &img.id, &[Status::Saving], Status::Queued)
                .await?;
        }
        self.touch();
        result
    }

    /// Deletes an image the compute service made for itself (the snapshot of a shelved
    /// server, once unshelved or deleted). Missing images are fine.
    pub async fn delete_snapshot_image(&self, image_id: &str) -> Result<()> {
        let mut conn = self.db.pool.acquire().await?;
        let img = db::images::get(&mut conn, image_id).await?;
        drop(conn);
        let Some(img) = img else { return Ok(()) };
        if db::images::mark_deleted(&self.db.writer, image_id).await? && !img.location.is_empty() {
            self.store.delete(&img.location).await?;
        }
        self.touch();
        Ok(())
    }
}
