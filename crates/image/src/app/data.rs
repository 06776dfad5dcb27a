//! Image data: the upload pipeline (stage → inspect → commit → active) shared by direct upload,
//! `glance-direct` import, snapshots and the built-in images; staged data waiting for an
//! import; the quota on stored bytes; and reading the data back. Every status change is a
//! compare-and-set (`db::images::transition`), so a concurrent delete or a second upload
//! cannot be overwritten; every path that may have changed an image marks the image list
//! stale ([`touch`](ImageService::touch)).

use ferrostack_api::AuthContext;

use crate::db;
use crate::error::{ImageError, Result};
use crate::format;
use crate::model::{Image, Status};
use crate::store::{ByteStream, Staged};
use crate::ImageService;

impl ImageService {
    /// Uploads `body` as the data of a queued image (`PUT /file`): the image must have its
    /// disk and container formats (400), goes `saving` while the data streams in and `active`
    /// once it is inspected and stored; back to `queued` when refused.
    pub async fn upload_data(&self, img: &Image, body: ByteStream) -> Result<()> {
        if img.disk_format.is_none() || img.container_format.is_none() {
            return Err(ImageError::BadRequest(
                "Properties disk_format and container_format must be set prior to uploading image data.".into(),
            ));
        }
        let staged = self.receive(img, Status::Saving, body).await?;
        self.finish_upload(img, staged, Status::Saving).await
    }

    /// Stages `body` for a later [`import_staged`](Self::import_staged) (`PUT /stage`): the
    /// image goes `uploading` and the data waits in the store's staging area.
    pub async fn stage_upload(&self, img: &Image, body: ByteStream) -> Result<()> {
        let staged = self.receive(img, Status::Uploading, body).await?;
        self.keep_staged(&img.id, staged).await;
        Ok(())
    }

    /// Imports the staged data of an `uploading` image (glance-direct): 409 without formats,
    /// in another status, or without staged data. The import finishes before this returns,
    /// so a client polling the image next sees its final status.
    pub async fn import_staged(&self, img: &Image) -> Result<()> {
        let id = &img.id;
        if img.disk_format.is_none() || img.container_format.is_none() {
            return Err(ImageError::Conflict(
                "The image needs disk_format and container_format before import.".into(),
            ));
        }
        if img.status != Status::Uploading {
            return Err(ImageError::Conflict(format!(
                "Image {id} is in status {}: stage its data before importing.",
                img.status.as_str()
            )));
        }
        let staged = self
            .take_staged(id)
            .await
            .ok_or_else(|| ImageError::Conflict(format!("Image {id} has no staged data.")))?;
        let moved =
            db::images::transition(&self.db.writer, id, &[Status::Uploading], Status::Importing)
                .await;
        self.touch();
        if !moved? {
            self.store.discard(staged).await;
            return Err(ImageError::Conflict(format!(
                "Image {id} changed while importing."
            )));
        }
        self.finish_upload(img, staged, Status::Importing).await
    }

    /// Whether the caller may download the data of `img` now: Ok(true) when there is data to
    /// send, Ok(false) when the image has none (yet), 403 when it is deactivated (admins
    /// still may).
    pub fn downloadable(img: &Image, auth: &AuthContext) -> Result<bool> {
        match img.status {
            Status::Active => Ok(true),
            Status::Deactivated if auth.is_admin => Ok(true),
            Status::Deactivated => Err(ImageError::Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
                    .into(),
            )),
            _ => Ok(false),
        }
    }

    /// The data of `img`, or the bytes `[start, end)` of it.
    pub async fn read_data(&self, img: &Image, range: Option<(u64, u64)>) -> Result<ByteStream> {
        Ok(self.store.read(&img.location, range).await?)
    }

    /// Moves a queued image to `to` (`saving` or `uploading`) and streams `body` into staging;
    /// when the data cannot be kept, the image goes back to `queued` so it can be sent again.
    pub async fn receive(&self, img: &Image, to: Status, body: ByteStream) -> Result<Staged> {
        let result = self.receive_inner(img, to, body).await;
        self.touch();
        result
    }

    async fn receive_inner(&self, img: &Image, to: Status, body: ByteStream) -> Result<Staged> {
        if !db::images::transition(&self.db.writer, &img.id, &[Status::Queued], to).await? {
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to {} is not allowed",
                img.status.as_str(),
                to.as_str()
            )));
        }
        match self.stage_data(img, body).await {
            Ok(staged) => Ok(staged),
            Err(e) => {
                db::images::transition(&self.db.writer, &img.id, &[to], Status::Queued).await?;
                Err(e)
            }
        }
    }

    /// Bytes `owner` may still upload under `image_size_total` (MiB), capped by the image size cap.
    pub async fn upload_allowance(&self, owner: &str) -> Result<u64> {
        let limit = self
            .identity
            .project_limit("image", "image_size_total", owner)
            .await
            .map_err(|e| ImageError::Api(e.into()))?;
        let cap = self.config.max_image_size;
        match limit.filter(|l| *l >= 0) {
            None => Ok(cap),
            Some(mib) => {
                let (_, used) = db::images::usage(&self.db.pool, owner).await?;
                let total = u64::try_from(mib).unwrap_or(0).saturating_mul(1024 * 1024);
                Ok(total
                    .saturating_sub(u64::try_from(used).unwrap_or(0))
                    .min(cap))
            }
        }
    }

    /// Streams an upload into the store's staging area.
    pub async fn stage_data(&self, image: &Image, body: ByteStream) -> Result<Staged> {
        let allowance = self.upload_allowance(&image.owner).await?;
        self.store.stage(&image.id, body, allowance).await.map_err(|e| match e {
            crate::store::StoreError::TooLarge { limit } => ImageError::TooLarge(format!(
                "Image exceeds the storage quota or the size limit: at most {limit} bytes may be uploaded."
            )),
            crate::store::StoreError::Interrupted(err) => ImageError::BadRequest(format!("The upload was interrupted: {err}.")),
            other => ImageError::Store(other),
        })
    }

    /// Inspects staged data against the image's declared format, then makes it the image's
    /// data (status `active`). A mismatch or an unsafe image is refused with the reason, its
    /// data removed, and the image goes back to `queued`.
    pub async fn finish_upload(&self, image: &Image, staged: Staged, from: Status) -> Result<()> {
        let result = self.finish_upload_inner(image, staged, from).await;
        self.touch();
        result
    }

    async fn finish_upload_inner(&self, image: &Image, staged: Staged, from: Status) -> Result<()> {
        let inspection = format::inspect(&staged.head, &staged.tail, staged.size);
        let declared = image.disk_format.clone().unwrap_or_default();
        let refusal = if let Some(reason) = &inspection.unsafe_reason {
            Some(format!("Image is unsafe: {reason}."))
        } else if !format::matches_declared(&declared, inspection.format) {
            Some(format!(
                "Image content does not match disk_format: declared {declared}, found {}.",
                inspection.format.name()
            ))
        } else {
            None
        };
        if let Some(msg) = refusal {
            self.store.discard(staged).await;
            db::images::transition(&self.db.writer, &image.id, &[from], Status::Queued).await?;
            tracing::info!(image = %image.id, reason = %msg, "upload refused");
            return Err(ImageError::BadRequest(msg));
        }
        let (size, md5, sha) = (staged.size, staged.md5.clone(), staged.sha512.clone());
        let location = match self.store.commit(&image.id, staged).await {
            Ok(l) => l,
            Err(e) => {
                db::images::transition(&self.db.writer, &image.id, &[from], Status::Queued).await?;
                return Err(e.into());
            }
        };
        let virtual_size = inspection.virtual_size.and_then(|v| i64::try_from(v).ok());
        let done = db::images::set_data(
            &self.db.writer,
            &image.id,
            &location,
            i64::try_from(size).unwrap_or(i64::MAX),
            virtual_size,
            &md5,
            &sha,
        )
        .await?;
        if !done {
            // Deleted (or reset) while uploading: the data belongs to nobody.
            self.store.delete(&location).await?;
            return Err(ImageError::Conflict(format!(
                "Image {} was deleted or changed during the upload.",
                image.id
            )));
        }
        Ok(())
    }

    /// Puts staged data aside for a later `import` call.
    pub async fn keep_staged(&self, image_id: &str, staged: Staged) {
        if let Some(old) = self
            .staged
            .lock()
            .await
            .insert(image_id.to_string(), staged)
        {
            self.store.discard(old).await;
        }
    }

    pub async fn take_staged(&self, image_id: &str) -> Option<Staged> {
        self.staged.lock().await.remove(image_id)
    }
}
