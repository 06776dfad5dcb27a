//! Who may see an image, and the policy target of an image for a caller (owner, the caller's
//! membership, visibility): every image read of the API, the compute service and the
//! dashboard goes through [`find`](ImageService::find) or
//! [`find_for`](ImageService::find_for), so an image the caller may not see is a 404 whatever
//! the route.

use ferrostack_api::AuthContext;
use serde_json::{json, Value};

use crate::db;
use crate::error::{ImageError, Result};
use crate::model::{Image, Visibility};
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

    /// Loads an image whatever its visibility, for the cloud's own services acting for an
    /// instance that may use it (a compute host booting it); 404 when there is none.
    pub async fn get_any(&self, id: &str) -> Result<Image> {
        let mut conn = self.db.pool.acquire().await?;
        db::images::get(&mut conn, id)
            .await?
            .ok_or_else(|| ImageError::NotFound(id.to_string()))
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
}
