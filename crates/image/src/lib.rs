//! The image service (Glance v2 API under `/image`).
//!
//! Layout: `api/` (routes, wire bodies, thin handlers: parse, authorize, call one `app/`
//! function, render; no database or store access), `app/` (the application layer: visibility
//! and policy targets, quotas, status transitions, the upload pipeline, snapshots, the image
//! list cache and its invalidation), `db/` (SQL), `store.rs` (image data stores), `format.rs`
//! (disk format inspection), `model.rs` (domain types), `error.rs` (typed errors and their
//! HTTP mapping).

pub mod api;
pub mod app;
pub mod db;
pub mod error;
pub mod format;
pub mod model;
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
    /// Bumped after every write (see `app::images`: `touch`).
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
}
