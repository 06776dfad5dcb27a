//! Wiring: the store, the policy, every service's router behind the shared middleware, the
//! first-start bootstrap and the openrc file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use ferrostack_api::auth::{validate_token, AuthLayerState};
use ferrostack_api::request::request_context;
use ferrostack_compute::{ComputeConfig, ComputeService};
use ferrostack_identity::service::bootstrap::CatalogService;
use ferrostack_identity::{Identity, IdentityConfig};
use ferrostack_image::{ImageConfig, ImageService};
use ferrostack_placement::PlacementService;
use ferrostack_policy::Enforcer;
use ferrostack_store::Db;
use tower::Layer;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AllInOne,
    Controller,
}

/// The services of an opened cloud.
pub struct Cloud {
    pub identity: Arc<Identity>,
    pub image: Arc<ImageService>,
    pub placement: Arc<PlacementService>,
    pub compute: Arc<ComputeService>,
}

/// The services this binary serves, as the catalog lists them.
fn catalog_services() -> Vec<CatalogService> {
    [
        ("identity", "keystone", "/identity"),
        ("image", "glance", "/image"),
        ("compute", "nova", "/compute/v2.1"),
        ("placement", "placement", "/placement"),
    ]
    .into_iter()
    .map(|(t, n, p)| CatalogService {
        service_type: t.into(),
        name: n.into(),
        path: p.into(),
    })
    .collect()
}

impl Cloud {
    /// Connects to the store (applying migrations) and builds the services.
    pub async fn open(cfg: &Config) -> anyhow::Result<Cloud> {
        let compute = ComputeConfig {
            service_down_time: cfg.service_down_time,
            allow_resize_to_same_host: cfg.allow_resize_to_same_host,
            ..ComputeConfig::new(&cfg.public_url)
        };
        Self::open_with(cfg, compute).await
    }

    /// As `open`, with the compute service's settings given (the benchmarks change some).
    pub async fn open_with(cfg: &Config, compute_config: ComputeConfig) -> anyhow::Result<Cloud> {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
        let db = Db::connect(&cfg.db).await.context("opening the database")?;
        let mut enforcer = Enforcer::with_defaults();
        if let Some(p) = &cfg.policy_file {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            enforcer
                .load_overrides(&text)
                .with_context(|| format!("loading {}", p.display()))?;
        }
        let policy = Arc::new(enforcer);
        let identity = Identity::new(
            db,
            IdentityConfig {
                public_url: cfg.public_url.clone(),
                region: cfg.region.clone(),
                token_expiration: cfg.token_expiration,
                key_repository: cfg.key_repository(),
                max_active_keys: cfg.max_active_keys,
                lockout_failure_attempts: cfg.lockout_failure_attempts,
                lockout_duration: cfg.lockout_duration,
                admin_project: ferrostack_identity::AdminProject {
                    domain_name: cfg.admin_project_domain_name.clone(),
                    name: cfg.admin_project_name.clone(),
                },
            },
            policy.clone(),
        )
        .await?;
        let image = ImageService::new(
            identity.db.clone(),
            ImageConfig {
                public_url: cfg.public_url.clone(),
                store_dir: cfg.data_dir.join("images"),
                max_image_size: cfg.max_image_size,
                property_quota: cfg.image_property_quota,
            },
            policy.clone(),
            identity.clone(),
        )
        .await?;
        let placement = PlacementService::new(identity.db.clone(), policy.clone());
        let compute = ComputeService::new(
            identity.db.clone(),
            compute_config,
            policy,
            identity.clone(),
            image.clone(),
            placement.clone(),
        );
        Ok(Cloud {
            identity,
            image,
            placement,
            compute,
        })
    }

    /// Bootstraps (idempotent) and writes `<data-dir>/openrc` when a password is known.
    pub async fn bootstrap(&self, cfg: &Config) -> anyhow::Result<PathBuf> {
        let out = self
            .identity
            .bootstrap(cfg.admin_password.clone(), &catalog_services())
            .await?;
        self.identity
            .ensure_registered_limits("image", &ferrostack_image::DEFAULT_LIMITS)
            .await?;
        ferrostack_compute::db::flavors::ensure_default_flavors(&self.identity.db).await?;
        if let Some(dir) = &cfg.testvm_dir {
            let id = self
                .image
                .register_testvm(dir, &out.admin_project_id)
                .await
                .with_context(|| format!("registering the testvm image from {}", dir.display()))?;
            tracing::info!(image = %id, "testvm image registered");
        }
        let path = cfg.data_dir.join("openrc");
        if let Some(pw) = out.admin_password.or_else(|| cfg.admin_password.clone()) {
            write_openrc(&path, cfg, &pw)?;
        } else if !path.exists() {
            tracing::warn!(
                "the admin user exists but {} is missing; pass --admin-password to rewrite it",
                path.display()
            );
        } else {
            rewrite_auth_url(&path, cfg)?;
        }
        Ok(path)
    }

    /// Every API behind the shared middleware: request id and log line outermost, then token
    /// validation.
    pub fn router(&self) -> Router {
        let validator: Arc<dyn ferrostack_api::TokenValidator> = self.identity.clone();
        Router::new()
            .nest(
                "/identity",
                ferrostack_identity::api::router(self.identity.clone()),
            )
            .nest("/image", ferrostack_image::api::router(self.image.clone()))
            .nest(
                "/compute",
                ferrostack_compute::api::router(self.compute.clone()),
            )
            .merge(ferrostack_compute::api::root_router(self.compute.clone()))
            .nest(
                "/placement",
                ferrostack_placement::api::router(self.placement.clone()),
            )
            .layer(axum::middleware::from_fn_with_state(
                AuthLayerState { validator },
                validate_token,
            ))
            .layer(axum::middleware::from_fn(request_context))
    }
}

fn openrc_text(cfg: &Config, password: &str) -> String {
    format!(
        "# ferrostack admin credentials: source this file, then use the openstack client.\n\
         export OS_AUTH_URL={url}/identity\n\
         export OS_IDENTITY_API_VERSION=3\n\
         export OS_AUTH_TYPE=password\n\
         export OS_USERNAME=admin\n\
         export OS_PASSWORD='{password}'\n\
         export OS_PROJECT_NAME=admin\n\
         export OS_USER_DOMAIN_NAME=Default\n\
         export OS_PROJECT_DOMAIN_NAME=Default\n\
         export OS_REGION_NAME={region}\n\
         export OS_INTERFACE=public\n",
        url = cfg.public_url,
        region = cfg.region,
    )
}

fn write_openrc(path: &std::path::Path, cfg: &Config, password: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(openrc_text(cfg, password).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Keeps an existing openrc's password but points it at the current public URL.
fn rewrite_auth_url(path: &std::path::Path, cfg: &Config) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let pw = text
        .lines()
        .find_map(|l| l.strip_prefix("export OS_PASSWORD="))
        .map(|p| p.trim_matches('\'').to_string());
    if let Some(pw) = pw {
        let new = openrc_text(cfg, &pw);
        if new != text {
            write_openrc(path, cfg, &pw)?;
        }
    }
    Ok(())
}

/// `/identity/` → `/identity`, `/identity/v3/` → `/identity/v3` (at most two segments).
fn trim_root_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') && path.trim_matches('/').split('/').count() <= 2 {
        let trimmed = path.trim_end_matches('/').to_string();
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed,
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// This machine's host name (the name of the local compute host).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

pub async fn run(cfg: Config, mode: Mode) -> anyhow::Result<()> {
    let cloud = Cloud::open(&cfg).await?;
    let openrc = cloud.bootstrap(&cfg).await?;
    cloud.identity.spawn_refresher(Duration::from_secs(2));
    cloud.compute.spawn_scheduler();
    // Allocations of deleted instances and finished moves go with them; this is the safety
    // net for anything an older version or a crash of one left behind.
    cloud
        .compute
        .spawn_allocation_audit(Duration::from_secs(600));
    if mode == Mode::AllInOne {
        match cfg.compute_driver.as_str() {
            "fake" | "none" if cfg.compute_hosts == 0 => {}
            "fake" => {
                let host = hostname();
                ferrostack_compute::agent_link::spawn_fake_hosts(
                    &cloud.compute,
                    &host,
                    cfg.compute_hosts,
                    (32, 64 * 1024, 1000),
                    Duration::ZERO,
                );
                tracing::info!(
                    hosts = cfg.compute_hosts,
                    "simulated compute hosts (fake driver) started"
                );
            }
            "none" => {}
            other => anyhow::bail!("unknown compute driver {other:?} (fake or none)"),
        }
    }
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    tracing::info!(listen = %cfg.listen, public_url = %cfg.public_url, mode = ?mode, "ferrostack is serving");
    println!(
        "\nferrostack is up at {url}\n  log in:  source {rc}\n           openstack token issue\n  (admin credentials are in {rc}, mode 0600)\n",
        url = cfg.public_url,
        rc = openrc.display()
    );
    // A service root or version root may be asked for with a trailing slash (the version
    // documents' own self links end with one); resource paths keep theirs, so that
    // `/image/v2/images/` stays a 404 as in Glance.
    let app = tower::util::MapRequestLayer::new(trim_root_slash).layer(cloud.router());
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}
