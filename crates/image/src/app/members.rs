//! Image members (`/v2/images/{id}/members`): sharing a `shared` image with other projects,
//! who accept or reject it. Only shared images have members; a member sees only its own
//! membership, the owner (and admins) all of them.

use ferrostack_api::AuthContext;

use crate::db;
use crate::error::{ImageError, Result};
use crate::model::{Image, Member, MemberStatus, Visibility};
use crate::ImageService;

fn not_a_member(id: &str, member_id: &str) -> ImageError {
    ImageError::NotFoundMsg(format!("{member_id} is not a member of image {id}"))
}

impl ImageService {
    /// 403 unless `img` is a shared image (the only kind with members).
    pub fn check_shared(img: &Image) -> Result<()> {
        if img.visibility != Visibility::Shared {
            return Err(ImageError::Forbidden(format!(
                "Only shared images have members. Image {} is {}.",
                img.id,
                img.visibility.as_str()
            )));
        }
        Ok(())
    }

    /// Adds project `member_id` as a pending member of the shared image `img`; 409 when it
    /// already is one.
    pub async fn add_member(&self, img: &Image, member_id: &str) -> Result<Member> {
        Self::check_shared(img)?;
        let id = &img.id;
        if db::members::get(&self.db.pool, id, member_id)
            .await?
            .is_some()
        {
            return Err(ImageError::Conflict(format!(
                "Member {member_id} already exists for image {id}."
            )));
        }
        let now = ferrostack_store::now_micros();
        let m = Member {
            image_id: id.clone(),
            member_id: member_id.to_string(),
            status: MemberStatus::Pending,
            created_at: now,
            updated_at: now,
        };
        db::members::insert(&self.db.writer, &m).await?;
        Ok(m)
    }

    /// The members of the shared image `img` that `auth` may see: all of them for the owner
    /// and admins, only its own membership for a member.
    pub async fn list_members(&self, img: &Image, auth: &AuthContext) -> Result<Vec<Member>> {
        Self::check_shared(img)?;
        let project = auth.project_id().unwrap_or_default();
        let owner_view = img.owner == project || auth.is_admin;
        Ok(db::members::list_for_image(&self.db.pool, &img.id)
            .await?
            .into_iter()
            .filter(|m| owner_view || m.member_id == project)
            .collect())
    }

    /// An image the caller can see and one of its members; 404 for either.
    pub async fn find_member(
        &self,
        id: &str,
        auth: &AuthContext,
        member_id: &str,
    ) -> Result<(Image, Member)> {
        let img = self.find(id, auth).await?;
        let m = db::members::get(&self.db.pool, id, member_id)
            .await?
            .ok_or_else(|| not_a_member(id, member_id))?;
        Ok((img, m))
    }

    /// 404 unless `auth` may see membership `m` of `img`: the owner, the member itself, or
    /// an admin.
    pub fn check_member_visible(img: &Image, m: &Member, auth: &AuthContext) -> Result<()> {
        let project = auth.project_id().unwrap_or_default();
        if img.owner != project && m.member_id != project && !auth.is_admin {
            return Err(not_a_member(&img.id, &m.member_id));
        }
        Ok(())
    }

    /// Sets the status of membership `m`; returns it as written.
    pub async fn set_member_status(&self, mut m: Member, status: MemberStatus) -> Result<Member> {
        db::members::set_status(&self.db.writer, &m.image_id, &m.member_id, status).await?;
        m.status = status;
        m.updated_at = ferrostack_store::now_micros();
        Ok(m)
    }

    /// Removes a membership (nothing when there is none).
    pub async fn remove_member(&self, image_id: &str, member_id: &str) -> Result<()> {
        db::members::delete(&self.db.writer, image_id, member_id).await?;
        Ok(())
    }

    /// The images `project` is a member of, with its membership status, for listings.
    pub async fn memberships_of(&self, project: &str) -> Result<Vec<(String, MemberStatus)>> {
        Ok(db::members::list_for_member(&self.db.pool, project)
            .await?
            .into_iter()
            .map(|m| (m.image_id, m.status))
            .collect())
    }
}
