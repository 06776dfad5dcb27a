//! The image service (Glance v2 API under `/image`).
//!
//! Layout: `api/` (routes, wire bodies, thin handlers), `service.rs` (visibility, quotas, the
//! upload pipeline), `db/` (SQL), `store.rs` (image data stores), `format.rs` (disk format
//! inspection).

pub mod api;
mod builtin;
pub mod db;
pub mod error;
pub mod format;
pub mod model;
pub mod service;
pub mod snapshots;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ferrostack_identity::Identity;
use ferrostack_policy::Enforcer;
use ferrostack_store::Db;

pub use error::ImageError;

/// Settings of the image service.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub public_url: String,
    /// Where the `file` store keeps image data.
    pub store_dir: PathBuf,
    /// Largest image accepted, in bytes (Glance's `image_size_cap`).
    pub max_image_size: u64,
    /// Most additional properties an image may have (Glance's `image_property_quota`,
    /// default 128; negative: no limit). Properties under `os_glance` do not count.
    pub property_quota: i64,
}

/// Default per-project limits registered in the identity service (`/v3/registered_limits`).
pub const DEFAULT_LIMITS: [(&str, i64, &str); 4] = [
    ("image_count_total", 1000, "Images a project may have"),
    (
        "image_size_total",
        1_048_576,
        "Total size of a project's images, in MiB",
    ),
    (
        "image_stage_total",
        1_048_576,
        "Total size of a project's staged image data, in MiB",
    ),
    (
        "image_count_uploading",
        100,
        "Images a project may upload at the same time",
    ),
];

pub struct ImageService {
    pub db: Db,
    pub config: ImageConfig,
    pub policy: Arc<Enforcer>,
    pub identity: Arc<Identity>,
    pub store: Arc<dyn store::ImageStore>,
    /// Data staged with `PUT /v2/images/{id}/stage`, waiting for `import`.
    staged: tokio::sync::Mutex<HashMap<String, store::Staged>>,
    /// Bumped after every write request (see `api::invalidate_on_write`).
    list_generation: std::sync::atomic::AtomicU64,
    /// All live images, for listing: reused while no write happened here and for at most
    /// `LIST_CACHE_TTL` (writes on other controllers show up within that time).
    list_cache: std::sync::Mutex<Option<ListCache>>,
    list_refreshing: std::sync::atomic::AtomicBool,
}

struct ListCache {
    generation: u64,
    at: std::time::Instant,
    images: Arc<Vec<model::Image>>,
}

const LIST_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl ImageService {
    pub async fn new(
        db: Db,
        config: ImageConfig,
        policy: Arc<Enforcer>,
        identity: Arc<Identity>,
    ) -> Result<Arc<Self>, ImageError> {
        let store: Arc<dyn store::ImageStore> = Arc::new(store::FileStore::new(&config.store_dir)?);
        // A crash mid-upload leaves staging files and images in saving/importing/uploading: clean
        // both (staged data does not survive a restart).
        store.clean_staging().await?;
        let reset = db::images::reset_interrupted(&db.writer).await?;
        if reset > 0 {
            tracing::warn!(
                images = reset,
                "interrupted uploads found at start: images are queued again"
            );
        }
        Ok(Arc::new(ImageService {
            db,
            config,
            policy,
            identity,
            store,
            staged: Default::default(),
            list_generation: Default::default(),
            list_cache: Default::default(),
            list_refreshing: Default::default(),
        }))
    }

    /// Marks the image list as changed.
    pub fn touch(&self) {
        self.list_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// All live images (newest first), from the cache when it is still good. After a local
    /// write the list is reloaded at once; when it is merely older than the TTL, the old list
    /// is served while one background task reloads it.
    pub async fn all_images(self: &Arc<Self>) -> Result<Arc<Vec<model::Image>>, ImageError> {
        let generation = self
            .list_generation
            .load(std::sync::atomic::Ordering::Acquire);
        if let Ok(guard) = self.list_cache.lock() {
            if let Some(c) = guard.as_ref() {
                if c.generation == generation {
                    if c.at.elapsed() >= LIST_CACHE_TTL
                        && !self
                            .list_refreshing
                            .swap(true, std::sync::atomic::Ordering::AcqRel)
                    {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.reload_list(generation).await {
                                tracing::warn!(error = %e, "image list refresh failed");
                            }
                            me.list_refreshing
                                .store(false, std::sync::atomic::Ordering::Release);
                        });
                    }
                    return Ok(c.images.clone());
                }
            }
        }
        self.reload_list(generation).await
    }

    async fn reload_list(&self, generation: u64) -> Result<Arc<Vec<model::Image>>, ImageError> {
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
