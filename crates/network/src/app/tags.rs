//! Tags of any resource (`/v2.0/{collection}/{id}/tags`): at most 50 per resource, each at
//! most 255 characters, kept sorted.

use crate::db;
use crate::error::{NetworkError, Result};
use crate::NetworkService;

pub const MAX_TAGS: usize = 50;

fn check(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.chars().count() > 255 || tag.contains(',') || tag.contains('/') {
        return Err(NetworkError::invalid_attr(
            "tags",
            format!("'{tag}' is not a valid tag (1 to 255 characters, no ',' or '/')"),
        ));
    }
    Ok(())
}

impl NetworkService {
    pub async fn tags_of(&self, id: &str) -> Result<Vec<String>> {
        let mut conn = self.read().await?;
        Ok(db::tags::for_ids(&mut conn, &[id])
            .await?
            .remove(id)
            .unwrap_or_default())
    }

    pub async fn replace_tags(&self, id: &str, tags: &[String]) -> Result<Vec<String>> {
        for t in tags {
            check(t)?;
        }
        let mut tags = tags.to_vec();
        tags.sort();
        tags.dedup();
        if tags.len() > MAX_TAGS {
            return Err(NetworkError::invalid_attr(
                "tags",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        let mut tx = self.write().await?;
        db::tags::replace(&mut tx, id, &tags).await?;
        tx.commit().await?;
        Ok(tags)
    }

    pub async fn add_tag(&self, id: &str, tag: &str) -> Result<()> {
        check(tag)?;
        let mut tx = self.write().await?;
        let have = db::tags::for_ids(&mut tx, &[id])
            .await?
            .remove(id)
            .unwrap_or_default();
        if !have.iter().any(|t| t == tag) && have.len() >= MAX_TAGS {
            return Err(NetworkError::invalid_attr(
                "tags",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        db::tags::add(&mut tx, id, tag).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes one tag; 404 when the resource does not have it.
    pub async fn remove_tag(&self, id: &str, tag: &str) -> Result<()> {
        let mut tx = self.write().await?;
        if !db::tags::remove(&mut tx, id, tag).await? {
            return Err(NetworkError::not_found(
                "TagNotFound",
                format!("Tag {tag} could not be found for {id}."),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn clear_tags(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        db::tags::remove_all(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }
}
