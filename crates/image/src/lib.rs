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
}

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
        let reset = db::images::reset_interrupted(&db.pool).await?;
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
        }))
    }
}
