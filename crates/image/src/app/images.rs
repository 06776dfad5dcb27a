//! Images (`/v2/images`): create under the project's image count quota, list with Glance's
//! visibility rules, filters, sorting and pagination (over a cached list of all live images),
//! JSON-patch updates under the property quota, delete, tags, deactivate/reactivate. Every
//! write marks the cached list stale ([`touch`](ImageService::touch)).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrostack_api::AuthContext;
use serde_json::Value;

use crate::db;
use crate::error::{ImageError, Result};
use crate::model::{Image, MemberStatus, Status, Visibility};
use crate::{ImageService, ListCache, LIST_CACHE_TTL};

/// Most tags an image may have (Glance's `image_tag_quota`).
const MAX_TAGS: usize = 128;

/// The additional properties Glance's `image_property_quota` counts (not its own `os_glance`
/// ones).
pub fn counted_properties(img: &Image) -> usize {
    img.properties
        .keys()
        .filter(|k| !k.starts_with("os_glance"))
        .count()
}

/// A comparison of a time filter (`gt:2016-01-01T00:00:00Z`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Cmp {
    /// Whether `a` compares to `b` so.
    pub fn holds(self, a: i64, b: i64) -> bool {
        match self {
            Cmp::Gt => a > b,
            Cmp::Gte => a >= b,
            Cmp::Lt => a < b,
            Cmp::Lte => a <= b,
            Cmp::Neq => a != b,
            Cmp::Eq => a == b,
        }
    }
}

/// What an image listing asks for; the caller (the API) has validated every value.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    /// `None`: the default view; `Some("all")`, or a visibility name.
    pub visibility: Option<String>,
    /// Membership status of shared images to show (`accepted` when not given; or `pending`,
    /// `rejected`, `all`).
    pub member_status: Option<String>,
    /// `None` hides hidden images.
    pub os_hidden: Option<bool>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub owner: Option<String>,
    pub protected: Option<bool>,
    pub container_format: Option<String>,
    pub disk_format: Option<String>,
    /// Every one of these tags.
    pub tags: Vec<String>,
    pub size_min: Option<i64>,
    pub size_max: Option<i64>,
    pub created_at: Option<(Cmp, i64)>,
    pub updated_at: Option<(Cmp, i64)>,
    pub ids: Option<Vec<String>>,
    /// Free-form properties that must have these (string) values.
    pub properties: Vec<(String, String)>,
    /// Sort keys, most significant first, with `true` for descending. Ties end on
    /// `created_at` then `id`, both descending.
    pub sorts: Vec<(String, bool)>,
    /// The id of the last image of the previous page.
    pub marker: Option<String>,
    pub limit: usize,
}

/// One page of a listing and the marker of the next one when there is more.
#[derive(Debug, Clone)]
pub struct ImagePage {
    pub images: Vec<Image>,
    pub next: Option<String>,
}

/// One sort key of an image, comparable without allocation.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey<'a> {
    Int(i64),
    Str(&'a str),
}

fn sort_value<'a>(i: &'a Image, key: &str) -> SortKey<'a> {
    match key {
        "name" => SortKey::Str(i.name.as_deref().unwrap_or("")),
        "status" => SortKey::Str(i.status.as_str()),
        "visibility" => SortKey::Str(i.visibility.as_str()),
        "size" => SortKey::Int(i.size.unwrap_or(-1)),
        "min_disk" => SortKey::Int(i.min_disk),
        "min_ram" => SortKey::Int(i.min_ram),
        "disk_format" => SortKey::Str(i.disk_format.as_deref().unwrap_or("")),
        "container_format" => SortKey::Str(i.container_format.as_deref().unwrap_or("")),
        "owner" => SortKey::Str(&i.owner),
        "id" => SortKey::Str(&i.id),
        "updated_at" => SortKey::Int(i.updated_at),
        _ => SortKey::Int(i.created_at),
    }
}

impl ImageQuery {
    /// Whether the listing shows `i` to a caller of `project` (`admin`: a cloud admin) whose
    /// memberships are `memberships`.
    fn shows(
        &self,
        i: &Image,
        project: &str,
        admin: bool,
        memberships: &HashMap<String, MemberStatus>,
    ) -> bool {
        let own = i.owner == project;
        let member = memberships.get(&i.id);
        let member_status = self.member_status.as_deref().unwrap_or("accepted");
        let shared_ok = |want: &str| member.is_some_and(|m| want == "all" || m.as_str() == want);
        let visible = match self.visibility.as_deref() {
            None => {
                admin
                    || own
                    || i.visibility == Visibility::Public
                    || (i.visibility == Visibility::Shared && shared_ok(member_status))
            }
            Some("all") => {
                admin
                    || own
                    || matches!(i.visibility, Visibility::Public | Visibility::Community)
                    || (i.visibility == Visibility::Shared && shared_ok(member_status))
            }
            Some("shared") => {
                i.visibility == Visibility::Shared
                    && (shared_ok(member_status) || own || (admin && self.member_status.is_none()))
            }
            Some("private") => i.visibility == Visibility::Private && (own || admin),
            Some(v) => i.visibility.as_str() == v,
        };
        visible
            && self.os_hidden.map_or(!i.os_hidden, |h| i.os_hidden == h)
            && self
                .name
                .as_ref()
                .is_none_or(|n| i.name.as_deref() == Some(n.as_str()))
            && self.status.as_ref().is_none_or(|s| i.status.as_str() == s)
            && self.owner.as_ref().is_none_or(|o| &i.owner == o)
            && self.protected.is_none_or(|p| p == i.protected)
            && self
                .container_format
                .as_ref()
                .is_none_or(|f| i.container_format.as_deref() == Some(f.as_str()))
            && self
                .disk_format
                .as_ref()
                .is_none_or(|f| i.disk_format.as_deref() == Some(f.as_str()))
            && self.tags.iter().all(|t| i.tags.contains(t))
            && self.size_min.is_none_or(|m| i.size.is_some_and(|s| s >= m))
            && self.size_max.is_none_or(|m| i.size.is_some_and(|s| s <= m))
            && self
                .created_at
                .is_none_or(|(op, t)| op.holds(i.created_at, t))
            && self
                .updated_at
                .is_none_or(|(op, t)| op.holds(i.updated_at, t))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&i.id))
            && self
                .properties
                .iter()
                .all(|(k, v)| i.properties.get(k).and_then(Value::as_str) == Some(v.as_str()))
    }
}

impl ImageService {
    /// 413 when `img` has more counted properties than `image_property_quota` allows and
    /// more than `before` (what it had before the change: as Glance, only a change that adds
    /// properties is held to the quota).
    pub fn check_property_quota(&self, img: &Image, before: usize) -> Result<()> {
        let n = counted_properties(img);
        let max = self.config.property_quota;
        if max >= 0 && n > before && i64::try_from(n).unwrap_or(i64::MAX) > max {
            return Err(ImageError::TooLarge(format!(
                "The limit has been exceeded on the number of allowed image properties. \
                 Attempted: {n}, Maximum: {max}"
            )));
        }
        Ok(())
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

    /// Stores a new image (the caller built and authorized it): 409 when its id exists, 413
    /// when its owner is at its `image_count_total` limit. The count and the insert happen in
    /// one write transaction, so two concurrent creates at the limit cannot both succeed.
    pub async fn create_image(&self, img: &Image) -> Result<()> {
        let id = &img.id;
        // The limit is read before the write transaction (which must not wait for a second
        // connection).
        let limit = self.count_limit(&img.owner).await?;
        let mut tx = self.db.begin_write().await?;
        if db::images::get(&mut tx, id).await?.is_some() {
            return Err(ImageError::Conflict(format!(
                "Image with identifier {id} already exists!"
            )));
        }
        if let Some(limit) = limit {
            let (count, _) = db::images::usage(&mut *tx, &img.owner).await?;
            if count >= limit {
                return Err(ImageError::TooLarge(format!(
                    "Attempted: 1, Maximum: {limit}: image_count_total exceeded for project {}.",
                    img.owner
                )));
            }
        }
        db::images::insert(&mut tx, img).await.map_err(|e| {
            if ferrostack_store::is_unique_violation(&e) {
                ImageError::Conflict(format!("Image with identifier {id} already exists!"))
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        self.touch();
        Ok(())
    }

    /// Writes the changed attributes of `img` (the caller applied and authorized the
    /// change) and returns the image as stored.
    pub async fn update_image(&self, img: &Image) -> Result<Image> {
        let mut tx = self.db.begin_write().await?;
        db::images::update(&mut tx, img).await?;
        tx.commit().await?;
        self.touch();
        let mut conn = self.db.pool.acquire().await?;
        db::images::get(&mut conn, &img.id)
            .await?
            .ok_or_else(|| ImageError::NotFound(img.id.clone()))
    }

    /// Deletes `img` with its stored and staged data; 403 when it is protected, 404 when it
    /// was deleted meanwhile.
    pub async fn delete_image(&self, img: &Image) -> Result<()> {
        let id = &img.id;
        if img.protected {
            return Err(ImageError::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        let deleted = db::images::mark_deleted(&self.db.writer, id).await?;
        self.touch();
        if !deleted {
            return Err(ImageError::NotFound(id.clone()));
        }
        if !img.location.is_empty() {
            self.store.delete(&img.location).await?;
        }
        if let Some(staged) = self.take_staged(id).await {
            self.store.discard(staged).await;
        }
        Ok(())
    }

    /// Adds `tag` (already validated) to `img` unless it has it; 413 past the tag quota.
    pub async fn add_tag(&self, img: &Image, tag: &str) -> Result<()> {
        if img.tags.iter().any(|t| t == tag) {
            return Ok(());
        }
        if img.tags.len() >= MAX_TAGS {
            return Err(ImageError::TooLarge(format!(
                "Maximum number of tags exceeded ({MAX_TAGS})."
            )));
        }
        let mut tags = img.tags.clone();
        tags.push(tag.to_string());
        self.set_tags(&img.id, &tags).await
    }

    /// Removes `tag` from `img`; 404 when it does not have it.
    pub async fn remove_tag(&self, img: &Image, tag: &str) -> Result<()> {
        if !img.tags.iter().any(|t| t == tag) {
            return Err(ImageError::NotFoundMsg(format!(
                "Tag {tag} not found on image {}.",
                img.id
            )));
        }
        let tags: Vec<String> = img.tags.iter().filter(|t| *t != tag).cloned().collect();
        self.set_tags(&img.id, &tags).await
    }

    async fn set_tags(&self, id: &str, tags: &[String]) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        db::images::set_tags(&mut tx, id, tags).await?;
        tx.commit().await?;
        self.touch();
        Ok(())
    }

    /// Deactivates (`active = false`: `active` → `deactivated`) or reactivates an image;
    /// repeating either is a no-op, other statuses are a 403.
    pub async fn set_active(&self, img: &Image, active: bool) -> Result<()> {
        let (action, from, to) = if active {
            ("reactivate", Status::Deactivated, Status::Active)
        } else {
            ("deactivate", Status::Active, Status::Deactivated)
        };
        if img.status == to {
            return Ok(());
        }
        if img.status != from {
            return Err(ImageError::Forbidden(format!(
                "Not allowed to {action} image in status '{}'",
                img.status.as_str()
            )));
        }
        db::images::transition(&self.db.writer, &img.id, &[from], to).await?;
        self.touch();
        Ok(())
    }

    /// One page of the images `auth` may see that match `q`, sorted as asked; 400 when the
    /// marker is not among them.
    pub async fn list_images(
        self: &Arc<Self>,
        auth: &AuthContext,
        q: &ImageQuery,
    ) -> Result<ImagePage> {
        let project = auth.project_id().unwrap_or_default();
        let memberships: HashMap<String, MemberStatus> =
            self.memberships_of(project).await?.into_iter().collect();
        let all = self.all_images().await?;
        let mut out: Vec<&Image> = all
            .iter()
            .filter(|i| q.shows(i, project, auth.is_admin, &memberships))
            .collect();
        out.sort_by(|a, b| {
            for (k, desc) in &q.sorts {
                let o = sort_value(a, k).cmp(&sort_value(b, k));
                let o = if *desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        let (page, next) =
            ferrostack_api::pagination::page(out, q.marker.as_deref(), q.limit, |i| i.id.as_str())
                .map_err(|_| {
                    ImageError::BadRequest(format!(
                        "marker {} not found",
                        q.marker.as_deref().unwrap_or_default()
                    ))
                })?;
        Ok(ImagePage {
            images: page.into_iter().cloned().collect(),
            next,
        })
    }

    /// Marks the image list as changed.
    pub fn touch(&self) {
        self.list_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// All live images (newest first), from the cache when it is still good. After a local
    /// write the list is reloaded at once; when it is merely older than the TTL, the old list
    /// is served while one background task reloads it.
    pub async fn all_images(self: &Arc<Self>) -> Result<Arc<Vec<Image>>> {
        let generation = self.list_generation.load(Ordering::Acquire);
        if let Ok(guard) = self.list_cache.lock() {
            if let Some(c) = guard.as_ref() {
                if c.generation == generation {
                    if c.at.elapsed() >= LIST_CACHE_TTL
                        && !self.list_refreshing.swap(true, Ordering::AcqRel)
                    {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.reload_list(generation).await {
                                tracing::warn!(error = %e, "image list refresh failed");
                            }
                            me.list_refreshing.store(false, Ordering::Release);
                        });
                    }
                    return Ok(c.images.clone());
                }
            }
        }
        self.reload_list(generation).await
    }

    async fn reload_list(&self, generation: u64) -> Result<Arc<Vec<Image>>> {
        let mut conn = self.db.pool.acquire().await?;
        let images = Arc::new(db::images::list(&mut conn).await?);
        if let Ok(mut guard) = self.list_cache.lock() {
            *guard = Some(ListCache {
                generation,
                at: std::time::Instant::now(),
                images: images.clone(),
            });
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons() {
        assert!(Cmp::Gt.holds(2, 1) && !Cmp::Gt.holds(1, 1));
        assert!(Cmp::Gte.holds(1, 1) && Cmp::Lte.holds(1, 1));
        assert!(Cmp::Neq.holds(1, 2) && Cmp::Eq.holds(2, 2));
        assert!(Cmp::Lt.holds(1, 2));
    }
}
