//! What compute needs of the image service: images as the caller sees them (boot, rebuild,
//! rescue, the Nova image proxy), the snapshot images it makes for createImage, createBackup
//! and shelve, and Glance's API for the deprecated `/images` proxy.

use std::sync::Arc;

use async_trait::async_trait;
use ferrostack_api::AuthContext;
use ferrostack_image::app::snapshots::SnapshotRequest;
use ferrostack_image::model::Image;
use ferrostack_image::store::ByteStream;
use ferrostack_image::{ImageError, ImageService};

#[async_trait]
pub trait Images: Send + Sync {
    /// The image `id` if `auth` may see it.
    async fn find(&self, id: &str, auth: &AuthContext) -> Result<Image, ImageError>;
    /// The image `id` whoever may see it, for a host booting an instance from it.
    async fn get_any(&self, id: &str) -> Result<Image, ImageError>;
    /// The data of `image`.
    async fn data(&self, image: &Image) -> Result<ByteStream, ImageError>;
    /// Every live image, whoever owns it (createBackup's rotation picks its own).
    async fn all_images(&self) -> Result<Arc<Vec<Image>>, ImageError>;
    /// Creates the queued image a snapshot will fill.
    async fn create_snapshot_image(&self, req: SnapshotRequest<'_>) -> Result<Image, ImageError>;
    /// Fills a queued snapshot image with `data`, written by a driver in `disk_format`.
    async fn fill_snapshot(
        &self,
        image_id: &str,
        data: ByteStream,
        disk_format: &str,
    ) -> Result<(), ImageError>;
    /// Deletes an image compute made for itself; a missing one is fine.
    async fn delete_snapshot_image(&self, image_id: &str) -> Result<(), ImageError>;
    /// The image API (Glance v2, unprefixed), which the Nova image proxy calls in process as
    /// the caller so that Glance's own visibility rules and policies decide.
    fn router(&self) -> axum::Router;
}

/// On the `Arc`: the image list cache refreshes itself on a task that holds the service, and
/// the router owns it.
#[async_trait]
impl Images for Arc<ImageService> {
    async fn find(&self, id: &str, auth: &AuthContext) -> Result<Image, ImageError> {
        ImageService::find(self, id, auth).await
    }
    async fn get_any(&self, id: &str) -> Result<Image, ImageError> {
        ImageService::get_any(self, id).await
    }
    async fn data(&self, image: &Image) -> Result<ByteStream, ImageError> {
        ImageService::read_data(self, image, None).await
    }
    async fn all_images(&self) -> Result<Arc<Vec<Image>>, ImageError> {
        ImageService::all_images(self).await
    }
    async fn create_snapshot_image(&self, req: SnapshotRequest<'_>) -> Result<Image, ImageError> {
        ImageService::create_snapshot_image(self, req).await
    }
    async fn fill_snapshot(
        &self,
        image_id: &str,
        data: ByteStream,
        disk_format: &str,
    ) -> Result<(), ImageError> {
        ImageService::fill_snapshot(self, image_id, data, disk_format).await
    }
    async fn delete_snapshot_image(&self, image_id: &str) -> Result<(), ImageError> {
        ImageService::delete_snapshot_image(self, image_id).await
    }
    fn router(&self) -> axum::Router {
        ferrostack_image::api::router(self.clone())
    }
}
