//! Image logic without HTTP: who may see an image, quotas, and the upload pipeline
//! (stage → inspect → commit → active), shared by direct upload and `glance-direct` import.

use ferrostack_api::AuthContext;
use serde_json::{json, Value};

use crate::db;
use crate::error::{ImageError, Result};
use crate::format;
use crate::model::{Image, MemberStatus, Status, Visibility};
use crate::store::{ByteStream, Staged};
use crate::ImageService;

impl ImageService {
    /// The caller's project when it is a member (of any status) of someone else's image.
    async fn caller_membership(&self, image: &Image, auth: &AuthContext) -> Result<Option<String>> {
        match auth.project_id() {
            Some(p) if p != image.owner => Ok(db::members::get(&self.db.pool, &image.id, p)
                .await?
                .map(|m| m.member_id)),
            _ => Ok(None),
        }
    }

    fn target_with(image: &Image, member: Option<String>) -> Value {
        json!({"project_id": image.owner, "member_id": member, "visibility": image.visibility.as_str()})
    }

    /// Whether `auth` may see `image`, given the caller's membership.
    fn visible_with(image: &Image, auth: &AuthContext, member: Option<&str>) -> bool {
        auth.is_admin
            || matches!(image.visibility, Visibility::Public | Visibility::Community)
            || auth.project_id() == Some(image.owner.as_str())
            || (image.visibility == Visibility::Shared && member.is_some())
    }

    /// The policy target of `image` for `auth`: owner, the caller's membership, visibility.
    pub async fn target(&self, image: &Image, auth: &AuthContext) -> Result<Value> {
        Ok(Self::target_with(
            image,
            self.caller_membership(image, auth).await?,
        ))
    }

    /// Loads an image and the caller's membership of it; 404 when the caller cannot see it.
    async fn find_with_membership(
        &self,
        id: &str,
        auth: &AuthContext,
    ) -> Result<(Image, Option<String>)> {
        let mut conn = self.db.pool.acquire().await?;
        let image = db::images::get(&mut conn, id)
            .await?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))?;
        drop(conn);
        let member = self.caller_membership(&image, auth).await?;
        if !Self::visible_with(&image, auth, member.as_deref()) {
            return Err(ImageError::NotFound(id.to_string()));
        }
        Ok((image, member))
    }

    /// Loads an image the caller can see; 404 otherwise.
    pub async fn find(&self, id: &str, auth: &AuthContext) -> Result<Image> {
        Ok(self.find_with_membership(id, auth).await?.0)
    }

    /// Loads an image the caller can see and checks `action` on it (404, then 403), reading
    /// the caller's membership once for both.
    pub async fn find_for(&self, id: &str, auth: &AuthContext, action: &str) -> Result<Image> {
        let (image, member) = self.find_with_membership(id, auth).await?;
        let target = Self::target_with(&image, member);
        if !self.policy.enforce(action, &target, &auth.credentials()) {
            return Err(ImageError::Forbidden(format!(
                "You are not authorized to perform the requested action: {action}."
            )));
        }
        Ok(image)
    }

    /// Moves a queued image to `to` (`saving` or `uploading`) and streams `body` into staging;
    /// when the data cannot be kept, the image goes back to `queued` so it can be sent again.
    pub async fn receive(&self, img: &Image, to: Status, body: ByteStream) -> Result<Staged> {
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

    /// The `image_count_total` limit of `owner` (None: unlimited).
    pub async fn count_limit(&self, owner: &str) -> Result<Option<i64>> {
        let limit = self
            .identity
            .project_limit("image", "image_count_total", owner)
            .await
            .map_err(|e| ImageError::Api(e.into()))?;
        Ok(limit.filter(|l| *l >= 0))
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

    /// Project ids that are accepted members of images, by image, for listing.
    pub async fn memberships_of(&self, project: &str) -> Result<Vec<(String, MemberStatus)>> {
        Ok(db::members::list_for_member(&self.db.pool, project)
            .await?
            .into_iter()
            .map(|m| (m.image_id, m.status))
            .collect())
    }
}
