//! Images for hosts: what a host's agent needs to fetch, check and boot the images of its
//! instances, and the snapshots it hands back. The agent protocol serves these in process and
//! over HTTP (`api/agents.rs`).

use ferrostack_agent_api::ImageInfo;
use ferrostack_image::model::Status;
use ferrostack_image::store::ByteStream;
use ferrostack_image::ImageError;

use crate::error::{ComputeError, Result};
use crate::ComputeService;

fn image_error(id: &str) -> impl Fn(ImageError) -> ComputeError + '_ {
    move |e| match e {
        ImageError::NotFound(_) => {
            ComputeError::NotFound(format!("Image {id} could not be found."))
        }
        other => ComputeError::Conflict(format!("Image {id}: {other}")),
    }
}

impl ComputeService {
    /// What a host needs to know of image `id` to boot it.
    pub async fn image_for_host(&self, id: &str) -> Result<ImageInfo> {
        let img = self.image.get_any(id).await.map_err(image_error(id))?;
        Ok(ImageInfo {
            id: img.id,
            status: img.status.as_str().to_string(),
            disk_format: img.disk_format,
            size: img.size,
            os_hash_algo: img.os_hash_algo,
            os_hash_value: img.os_hash_value,
            checksum: img.checksum,
            properties: img.properties,
        })
    }

    /// The data of image `id`, which must be active.
    pub async fn image_data_for_host(&self, id: &str) -> Result<ByteStream> {
        let img = self.image.get_any(id).await.map_err(image_error(id))?;
        if img.status != Status::Active {
            return Err(ComputeError::Conflict(format!(
                "Image {id} is {} and has no data to boot from.",
                img.status.as_str()
            )));
        }
        self.image.data(&img).await.map_err(image_error(id))
    }

    /// Fills the snapshot image `id` (queued, made by createImage, createBackup or shelve)
    /// with `data`, which a host wrote in `disk_format`.
    pub async fn store_snapshot_from_host(
        &self,
        id: &str,
        data: ByteStream,
        disk_format: &str,
    ) -> Result<()> {
        if !matches!(disk_format, "raw" | "qcow2") {
            return Err(ComputeError::BadRequest(format!(
                "A host's snapshot is raw or qcow2, not {disk_format:?}."
            )));
        }
        self.image
            .fill_snapshot(id, data, disk_format)
            .await
            .map_err(image_error(id))
    }
}
