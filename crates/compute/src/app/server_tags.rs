//! A server's tags (`/servers/{id}/tags`, 2.26+): changes with Nova's state rules and limits.
//! The tags themselves are read with the server.

use crate::app::server_metadata::check_meta_state;
use crate::db::{instances, server_extras as db};
use crate::error::{ComputeError, Result};
use crate::instance::Instance;
use crate::ComputeService;

/// Nova's per-server tag limit (objects.instance.MAX_TAG_COUNT).
pub const MAX_TAGS: usize = 50;
/// Nova's tag length limit (objects.tag.MAX_TAG_LENGTH).
pub const MAX_TAG_LENGTH: usize = 60;

/// Why a string is no tag: a tag is 1-60 characters without ',' and '/'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagProblem {
    TooShort,
    TooLong,
    BadCharacter,
}

impl TagProblem {
    /// The JSON-schema wording that follows the value in Nova's messages.
    pub fn message(self) -> &'static str {
        match self {
            TagProblem::TooShort => "is too short",
            TagProblem::TooLong => "is too long",
            TagProblem::BadCharacter => "does not match '^[^,/]*$'",
        }
    }
}

/// What is wrong with `tag` as a tag, if anything.
pub fn tag_problem(tag: &str) -> Option<TagProblem> {
    let n = tag.chars().count();
    if n < 1 {
        Some(TagProblem::TooShort)
    } else if n > MAX_TAG_LENGTH {
        Some(TagProblem::TooLong)
    } else if tag.contains([',', '/']) {
        Some(TagProblem::BadCharacter)
    } else {
        None
    }
}

impl ComputeService {
    /// Adds one tag: Ok(true) when added, Ok(false) when the server already had it. 409 in a
    /// state tags do not change in, 400 for an invalid tag or one over the limit.
    pub async fn add_server_tag(&self, inst: &Instance, tag: &str) -> Result<bool> {
        check_meta_state(inst, "update tag", false)?;
        if let Some(p) = tag_problem(tag) {
            return Err(ComputeError::BadRequest(format!(
                "Tag '{tag}' is invalid. It must be a non empty string without characters '/' \
                 and ','. Validation error message: '{tag}' {}",
                p.message()
            )));
        }
        if inst.tags.iter().any(|t| t == tag) {
            return Ok(false);
        }
        if inst.tags.len() >= MAX_TAGS {
            return Err(ComputeError::BadRequest(format!(
                "The number of tags exceeded the per-server limit {MAX_TAGS}"
            )));
        }
        let mut tx = self.db.begin_write().await?;
        let added = db::add_tag(&mut tx, &inst.uuid, tag).await?;
        tx.commit().await?;
        Ok(added)
    }

    /// Replaces the server's tags with `tags` (valid and at most [`MAX_TAGS`]: the caller
    /// checked the body); returns the tags as stored afterwards.
    pub async fn replace_server_tags(
        &self,
        inst: &Instance,
        tags: &[String],
    ) -> Result<Vec<String>> {
        check_meta_state(inst, "update tags", false)?;
        let mut tx = self.db.begin_write().await?;
        instances::replace_tags(&mut tx, &inst.uuid, tags).await?;
        tx.commit().await?;
        let mut conn = self.db.pool.acquire().await?;
        Ok(instances::get(&mut conn, &inst.uuid, false)
            .await?
            .map(|i| i.tags)
            .unwrap_or_default())
    }

    /// Removes one tag (404 when the server has no such tag).
    pub async fn delete_server_tag(&self, inst: &Instance, tag: &str) -> Result<()> {
        check_meta_state(inst, "delete tag", false)?;
        let mut tx = self.db.begin_write().await?;
        let removed = db::delete_tag(&mut tx, &inst.uuid, tag).await?;
        tx.commit().await?;
        if !removed {
            return Err(ComputeError::NotFound(format!(
                "Instance {} has no tag '{tag}'",
                inst.uuid
            )));
        }
        Ok(())
    }

    /// Removes every tag of the server.
    pub async fn delete_server_tags(&self, inst: &Instance) -> Result<()> {
        check_meta_state(inst, "delete tags", false)?;
        let mut tx = self.db.begin_write().await?;
        instances::replace_tags(&mut tx, &inst.uuid, &[]).await?;
        tx.commit().await?;
        Ok(())
    }
}
