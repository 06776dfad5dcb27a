//! The wiring of a whole ferrostack cloud: the store, the policy engine, every service, their
//! router behind the shared middleware, the background loops and simulated hosts.

mod consoles;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ferrostack_api::auth::{validate_token, AuthLayerState};
use ferrostack_api::request::request_context;
use ferrostack_compute::{ComputeConfig, ComputeService};
use ferrostack_identity::app::bootstrap::{BootstrapOutcome, CatalogService};
use ferrostack_identity::{AdminProject, Identity, IdentityConfig, IdentityError};
use ferrostack_image::{ImageConfig, ImageError, ImageService};
use ferrostack_network::{NetworkConfig, NetworkError, NetworkService};
use ferrostack_placement::PlacementService;
use ferrostack_policy::{Enforcer, PolicyError};
use ferrostack_store::{Db, StoreError};

/// Why a cloud could not be opened or bootstrapped.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("creating the data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the database")]
    Store(#[from] StoreError),
    #[error("the injection key {path}")]
    InjectionKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the policy file {path}")]
    PolicyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("loading the policy file {path}")]
    Policy {
        path: PathBuf,
        #[source]
        source: PolicyError,
    },
    #[error("the built-in policy defaults do not load")]
    PolicyDefaults(#[source] PolicyError),
    #[error("identity service")]
    Identity(#[from] IdentityError),
    #[error("image service")]
    Image(#[from] ImageError),
    #[error("network service")]
    Network(#[from] NetworkError),
    #[error("creating the default flavors")]
    Flavors(#[source] ferrostack_store::sqlx::Error),
    #[error("QEMU hosts")]
    QemuHost(#[from] ferrostack_agent::qemu_host::QemuHostError),
    #[error("making the outside namespace of the external network (root is needed)")]
    Outside(#[source] ferrostack_netplane::NetplaneError),
    #[error("registering the testvm image from {dir}")]
    Testvm {
        dir: PathBuf,
        #[source]
        source: ImageError,
    },
}

/// Everything a cloud is opened with (the binary fills it from its options; the test kit and
/// the benchmarks from their own defaults).
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Fernet keys, image data and (by default) the SQLite database live here.
    pub data_dir: PathBuf,
    /// Base URL clients reach the APIs at (catalog, links, openrc).
    pub public_url: String,
    pub region: String,
    pub token_expiration: Duration,
    pub max_active_keys: usize,
    pub lockout_failure_attempts: u32,
    pub lockout_duration: Duration,
    pub admin_project: AdminProject,
    /// An oslo.policy file whose rules override the defaults.
    pub policy_file: Option<PathBuf>,
    pub max_image_size: u64,
    pub image_property_quota: i64,
    pub compute: ComputeConfig,
}

impl CloudConfig {
    /// The defaults of `ferrostack all-in-one`, for a cloud at `public_url` with its data in
    /// `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>, public_url: &str) -> CloudConfig {
        CloudConfig {
            data_dir: data_dir.into(),
            public_url: public_url.trim_end_matches('/').to_string(),
            region: "RegionOne".into(),
            token_expiration: Duration::from_secs(3600),
            max_active_keys: 3,
            lockout_failure_attempts: 0,
            lockout_duration: Duration::from_secs(1800),
            admin_project: AdminProject::default(),
            policy_file: None,
            max_image_size: 1 << 40,
            image_property_quota: 128,
            compute: ComputeConfig::new(public_url.trim_end_matches('/')),
        }
    }

    /// The Fernet key repository.
    pub fn key_repository(&self) -> PathBuf {
        self.data_dir.join("fernet-keys")
    }
}

/// The services this cloud serves, as its catalog lists them.
pub fn catalog_services() -> Vec<CatalogService> {
    [
        ("identity", "keystone", "/identity"),
        ("image", "glance", "/image"),
        ("compute", "nova", "/compute/v2.1"),
        ("placement", "placement", "/placement"),
        ("network", "neutron", "/networking"),
    ]
    .into_iter()
    .map(|(t, n, p)| CatalogService {
        service_type: t.into(),
        name: n.into(),
        path: p.into(),
    })
    .collect()
}

/// The services of an opened cloud.
pub struct Cloud {
    pub db: Db,
    pub policy: Arc<Enforcer>,
    pub identity: Arc<Identity>,
    pub image: Arc<ImageService>,
    pub placement: Arc<PlacementService>,
    pub compute: Arc<ComputeService>,
    pub network: Arc<NetworkService>,
}

impl Cloud {
    /// Connects to the store at `db_url` (applying migrations) and builds the services.
    pub async fn open(db_url: &str, cfg: &CloudConfig) -> Result<Cloud, CloudError> {
        create_dir(&cfg.data_dir)?;
        let db = Db::connect(db_url).await?;
        Self::open_on(db, cfg).await
    }

    /// Builds the services on a store already opened (and migrated).
    pub async fn open_on(db: Db, cfg: &CloudConfig) -> Result<Cloud, CloudError> {
        create_dir(&cfg.data_dir)?;
        let mut enforcer = Enforcer::try_with_defaults().map_err(CloudError::PolicyDefaults)?;
        if let Some(path) = &cfg.policy_file {
            let text = std::fs::read_to_string(path).map_err(|source| CloudError::PolicyFile {
                path: path.clone(),
                source,
            })?;
            enforcer
                .load_overrides(&text)
                .map_err(|source| CloudError::Policy {
                    path: path.clone(),
                    source,
                })?;
        }
        let policy = Arc::new(enforcer);
        let identity = Identity::new(
            db.clone(),
            IdentityConfig {
                public_url: cfg.public_url.clone(),
                region: cfg.region.clone(),
                token_expiration: cfg.token_expiration,
                key_repository: cfg.key_repository(),
                max_active_keys: cfg.max_active_keys,
                lockout_failure_attempts: cfg.lockout_failure_attempts,
                lockout_duration: cfg.lockout_duration,
                admin_project: cfg.admin_project.clone(),
            },
            policy.clone(),
        )
        .await?;
        let image = ImageService::new(
            db.clone(),
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
        let placement = PlacementService::new(db.clone(), policy.clone());
        let network = NetworkService::new(
            db.clone(),
            NetworkConfig {
                agent_down_time: cfg.compute.service_down_time,
                ..NetworkConfig::new(&cfg.public_url)
            },
            policy.clone(),
        );
        // Disks handed between hosts wait beside the cloud's other data.
        let compute_cfg = ferrostack_compute::ComputeConfig {
            transfer_dir: cfg.data_dir.join("transfers"),
            injection_key: Some(ferrostack_compute::InjectionKey(injection_key(
                &cfg.data_dir.join("injection.key"),
            )?)),
            ..cfg.compute.clone()
        };
        let compute = ComputeService::new(
            db.clone(),
            compute_cfg,
            policy.clone(),
            Arc::new(image.clone()),
            placement.clone(),
            identity.clone(),
            network.clone(),
        );
        // A change of networking wakes the agents of the hosts it touches.
        let wakeups = compute.clone();
        network.set_host_waker(Arc::new(move |host: &str| wakeups.wakeups.wake(host)));
        // A server's port deleted through the networking API: the server lets go of it.
        let vifs = compute.clone();
        network.set_port_gone(Arc::new(move |server: &str, port: &str| {
            let (c, server, port) = (vifs.clone(), server.to_string(), port.to_string());
            tokio::spawn(async move {
                if let Err(e) = c.port_deleted(&server, &port).await {
                    tracing::warn!(server = %server, port = %port, error = %e, "removing a deleted port's NIC");
                }
            });
        }));
        Ok(Cloud {
            db,
            policy,
            identity,
            image,
            placement,
            compute,
            network,
        })
    }

    /// The first-start objects (idempotent): region, default domain, admin project and user,
    /// roles, the catalog of `catalog_services()`, the image service's registered limits, the
    /// external network `public` and the default subnet pool (when the catalog has the
    /// network service) and
    /// the default flavors. With `admin_password`, a new admin user gets it (else a generated
    /// one, returned in the outcome).
    pub async fn bootstrap(
        &self,
        admin_password: Option<String>,
    ) -> Result<BootstrapOutcome, CloudError> {
        self.bootstrap_with(admin_password, &catalog_services())
            .await
    }

    /// As [`Cloud::bootstrap`], with the catalog's services given (tests of one service
    /// register fewer).
    pub async fn bootstrap_with(
        &self,
        admin_password: Option<String>,
        services: &[CatalogService],
    ) -> Result<BootstrapOutcome, CloudError> {
        let out = self.identity.bootstrap(admin_password, services).await?;
        self.identity
            .ensure_registered_limits("image", &ferrostack_image::DEFAULT_LIMITS)
            .await?;
        ferrostack_compute::db::flavors::ensure_default_flavors(&self.db)
            .await
            .map_err(CloudError::Flavors)?;
        if services.iter().any(|s| s.service_type == "network") {
            self.network
                .ensure_public_network(&out.admin_project_id)
                .await?;
            self.network
                .ensure_default_subnetpool(&out.admin_project_id)
                .await?;
        }
        Ok(out)
    }

    /// Registers the testvm images from `dir` (owned by `owner`, public) when missing;
    /// returns the id of `testvm`.
    pub async fn register_testvm(
        &self,
        dir: &std::path::Path,
        owner: &str,
    ) -> Result<String, CloudError> {
        self.image
            .register_testvm(dir, owner)
            .await
            .map_err(|source| CloudError::Testvm {
                dir: dir.to_path_buf(),
                source,
            })
    }

    /// Every API behind the shared middleware: request id, log line and the handler's own
    /// task outermost, then token validation.
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
            .nest(
                "/networking",
                ferrostack_network::api::router(self.network.clone()),
            )
            .merge(ferrostack_network::api::root_router(self.network.clone()))
            .layer(axum::middleware::from_fn_with_state(
                AuthLayerState { validator },
                validate_token,
            ))
            .layer(axum::middleware::from_fn(request_context))
    }

    /// The loops every controller runs: the token-cache refresher (every 2 s), the scheduler,
    /// and the allocation audit (at start, then every `audit_every`). The handles stop them
    /// when aborted.
    pub fn spawn_background(&self, audit_every: Duration) -> Vec<tokio::task::JoinHandle<()>> {
        self.identity.spawn_refresher(Duration::from_secs(2));
        vec![
            self.compute.spawn_scheduler(),
            self.compute.spawn_allocation_audit(audit_every),
        ]
    }

    /// `n` simulated compute hosts (`prefix`, or `prefix-1..n` when more than one), each a
    /// `fake` driver of `capacity` (vCPUs, MiB, GB) that takes `delay` per operation, with an
    /// in-process agent.
    pub fn spawn_fake_hosts(
        &self,
        prefix: &str,
        n: usize,
        capacity: (i64, i64, i64),
        delay: Duration,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        // Each simulated host has a simulated kernel too: its data plane wires its guests'
        // ports (in memory), so their servers go ACTIVE as on a real host.
        let net = ferrostack_agent::network_host::NetworkSettings {
            prefix: "sim".into(),
            tunnel_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            vxlan_port: 10000,
            // Simulated: files stay in the simulated kernel's memory.
            state_root: std::path::PathBuf::from("/simulated"),
        };
        local_host_names(prefix, n)
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let kernel = Arc::new(ferrostack_netplane::fake::FakeHost::default());
                let dataplane = net.dataplane(kernel.clone(), &name, i);
                let vifs = ferrostack_agent::vifs::DataplaneVifs {
                    dataplane: dataplane.clone(),
                    simulated: Some(kernel.clone()),
                    bridge: None,
                };
                let driver = Arc::new(
                    ferrostack_virt::fake::FakeDriver::new(
                        &name, capacity.0, capacity.1, capacity.2, delay,
                    )
                    .with_vifs(Arc::new(vifs)),
                );
                let outside = net.clone();
                let controller = ferrostack_compute::agent_link::local_controller(&self.compute);
                tokio::spawn(async move {
                    // The simulated outside world of the flat network `public`.
                    if let Err(e) = ferrostack_netplane::outside::ensure_outside(
                        kernel.as_ref(),
                        &outside.outside_netns(),
                        ferrostack_agent::network_host::OUTSIDE_BRIDGE,
                        ferrostack_agent::network_host::public_gateway(),
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "simulated outside network");
                    }
                    let agent = ferrostack_agent::Agent::new(&name, driver, controller)
                        .with_dataplane(dataplane);
                    Arc::new(agent).run().await
                })
            })
            .collect()
    }

    /// `n` compute hosts on this machine's QEMU (`prefix`, or `prefix-1..n`), each with its
    /// own directories under `settings.data_dir` and an in-process agent. QEMU is probed once
    /// (version, KVM or TCG) for all of them.
    ///
    /// With `network`, each host runs its network data plane on this machine's kernel
    /// (namespaces, bridges, VXLAN, nftables: root is needed), and the outside world of the
    /// external network is a namespace made here; without it, guests get NICs only on the
    /// operator's `guest_bridge`.
    pub async fn spawn_qemu_hosts(
        &self,
        prefix: &str,
        n: usize,
        settings: &ferrostack_agent::qemu_host::QemuSettings,
        network: Option<&ferrostack_agent::network_host::NetworkSettings>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, CloudError> {
        let platform = settings.probe().await?;
        let kernel: Arc<dyn ferrostack_netplane::NetHost> =
            Arc::new(ferrostack_netplane::linux::Linux);
        if let Some(net) = network {
            net.ensure_outside(
                kernel.as_ref(),
                ferrostack_agent::network_host::public_gateway(),
                &settings.data_dir,
            )
            .await
            .map_err(CloudError::Outside)?;
            tracing::info!(netns = %net.outside_netns(), "the external network's outside world");
        }
        Ok(local_host_names(prefix, n)
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let controller = ferrostack_compute::agent_link::local_controller(&self.compute);
                let mut driver = settings.driver(&platform, &name, controller.clone());
                let dataplane = network.map(|net| net.dataplane(kernel.clone(), &name, i));
                if let Some(dp) = &dataplane {
                    driver.vifs = Some(Arc::new(ferrostack_agent::vifs::DataplaneVifs {
                        dataplane: dp.clone(),
                        simulated: None,
                        bridge: settings
                            .guest_bridge
                            .clone()
                            .map(|bridge| ferrostack_virt::vif::LinuxBridge { bridge }),
                    }));
                }
                let consoles = Arc::new(consoles::QemuConsoles {
                    run_root: settings.host_run_dir(&name),
                });
                self.compute.consoles.register(&name, consoles);
                let mut agent = ferrostack_agent::Agent::new(&name, Arc::new(driver), controller);
                if let Some(dp) = dataplane {
                    agent = agent.with_dataplane(dp).with_metadata_proxy();
                }
                tokio::spawn(Arc::new(agent).run())
            })
            .collect())
    }
}

/// The names the local hosts get: `prefix` alone, or `prefix-1..n`.
pub fn local_host_names(prefix: &str, n: usize) -> Vec<String> {
    if n == 1 {
        vec![prefix.to_string()]
    } else {
        (1..=n).map(|i| format!("{prefix}-{i}")).collect()
    }
}

fn create_dir(path: &std::path::Path) -> Result<(), CloudError> {
    std::fs::create_dir_all(path).map_err(|source| CloudError::DataDir {
        path: path.to_path_buf(),
        source,
    })
}

/// The key that seals personality files and admin passwords until their guest is built:
/// read from `path`, or made there on the first start (readable by its owner only). Every
/// controller of a cloud needs the same file.
fn injection_key(path: &std::path::Path) -> Result<String, CloudError> {
    let err = |source| CloudError::InjectionKey {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(k) if fernet::Fernet::new(k.trim()).is_some() => return Ok(k.trim().to_string()),
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a Fernet key",
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = fernet::Fernet::generate_key();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(key.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(key)
}
