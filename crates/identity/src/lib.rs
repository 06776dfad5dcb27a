//! The identity service (Keystone v3 API under `/identity`).
//!
//! Layout: `api/` holds wire types and thin handlers (one file per resource: parse, authorize,
//! call `app/`, render; no database access), `app/` the application layer (one file per
//! resource, plus authentication, tokens, effective roles and bootstrap: every transaction,
//! invariant and cache invalidation, committed through `Identity::commit_change`), `db/` the
//! SQL (one file per resource), `token/` the Fernet token format and key repository.

pub mod api;
pub mod app;
pub mod db;
pub mod error;
pub mod model;
pub mod token;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrostack_api::{ApiError, AuthContext, TokenValidator};
use ferrostack_policy::Enforcer;
use ferrostack_store::Db;

pub use error::IdentityError;

/// Settings of the identity service.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Base URL clients reach this cloud at, e.g. `http://127.0.0.1:5000` (no trailing slash).
    pub public_url: String,
    pub region: String,
    pub token_expiration: Duration,
    pub key_repository: PathBuf,
    pub max_active_keys: usize,
    /// Lock a user out after this many consecutive failed password authentications (0 = never).
    pub lockout_failure_attempts: u32,
    pub lockout_duration: Duration,
    /// The cloud's admin project: an `admin` role on it (or on the system) makes a cloud
    /// admin; on any other project only that project's admin.
    pub admin_project: AdminProject,
}

/// Keystone's `[resource] admin_project_domain_name` and `admin_project_name`. Project-scoped
/// tokens on this project carry `is_admin_project: true`, every other one `false`, which is
/// what the policies' `context_is_admin` tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminProject {
    pub domain_name: String,
    pub name: String,
}

impl Default for AdminProject {
    /// The project bootstrap creates.
    fn default() -> Self {
        AdminProject {
            domain_name: "Default".into(),
            name: "admin".into(),
        }
    }
}

impl IdentityConfig {
    /// The identity v3 root, e.g. `http://127.0.0.1:5000/identity/v3`.
    pub fn v3_url(&self) -> String {
        format!("{}/identity/v3", self.public_url)
    }
}

/// The identity service: shared by its handlers and by the token validator every service uses.
pub struct Identity {
    pub db: Db,
    pub config: IdentityConfig,
    pub policy: Arc<Enforcer>,
    pub tokens: token::TokenProvider,
    /// The rendered catalog and the generation it was rendered at.
    catalog_cache: parking_lot::RwLock<Option<(i64, Arc<serde_json::Value>)>>,
}

impl Identity {
    pub async fn new(
        db: Db,
        config: IdentityConfig,
        policy: Arc<Enforcer>,
    ) -> Result<Arc<Self>, IdentityError> {
        let repo = token::keys::KeyRepository::new(&config.key_repository, config.max_active_keys);
        let tokens = token::TokenProvider::new(repo, config.token_expiration)
            .map_err(|e| IdentityError::Internal(format!("fernet keys: {e}")))?;
        let me = Arc::new(Identity {
            db,
            config,
            policy,
            tokens,
            catalog_cache: Default::default(),
        });
        me.refresh().await?;
        Ok(me)
    }

    /// Picks up changes made by other controllers: the identity generation, new revocation
    /// events, rotated keys. Called at start and then periodically.
    pub async fn refresh(&self) -> Result<(), IdentityError> {
        let since = self.tokens.newest_event();
        let events = db::revocations::list_since(&self.db.pool, since).await?;
        self.tokens.add_events(events);
        let g = db::current_generation(&self.db.pool).await?;
        self.tokens.set_generation(g);
        Ok(())
    }

    /// Runs `refresh` every `every` and prunes old revocation events, until the process ends.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { break };
                if let Err(e) = me.refresh().await {
                    tracing::warn!(error = %e, "identity refresh failed");
                }
                n += 1;
                if n.is_multiple_of(60) {
                    if let Err(e) = me.tokens.reload_keys() {
                        tracing::warn!(error = %e, "reloading fernet keys failed");
                    }
                    let horizon = ferrostack_store::now_micros()
                        - i64::try_from(me.config.token_expiration.as_micros())
                            .unwrap_or(i64::MAX / 2)
                        - 60_000_000;
                    me.tokens.prune_events(horizon);
                    let _ = db::revocations::prune(&me.db.writer, horizon).await;
                }
            }
        });
    }
}

#[async_trait::async_trait]
impl TokenValidator for Identity {
    async fn validate(&self, token: &str) -> Result<Arc<AuthContext>, ApiError> {
        app::tokens::validate(self, token)
            .await
            .map_err(|e| match e {
                IdentityError::Db(_) | IdentityError::Internal(_) => ApiError::from(e),
                _ => ApiError::unauthorized("The request you have made requires authentication."),
            })
    }
}
