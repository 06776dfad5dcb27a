//! Running a cloud: the options turned into a `ferrostack_cloud::CloudConfig`, the first-start
//! bootstrap with its openrc file, and the listener (all-in-one or controller).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ferrostack_cloud::{Cloud, CloudConfig};
use ferrostack_compute::ComputeConfig;
use tower::Layer;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AllInOne,
    Controller,
}

/// The cloud's settings from the binary's options.
pub fn cloud_config(cfg: &Config) -> CloudConfig {
    let compute = ComputeConfig {
        service_down_time: cfg.service_down_time,
        allow_resize_to_same_host: cfg.allow_resize_to_same_host,
        cpu_allocation_ratio: cfg.cpu_allocation_ratio,
        ram_allocation_ratio: cfg.ram_allocation_ratio,
        disk_allocation_ratio: cfg.disk_allocation_ratio,
        reserved_host_memory_mb: cfg.reserved_host_memory_mb,
        force_config_drive: cfg.force_config_drive,
        novnc_dir: cfg.novnc_dir.clone(),
        ..ComputeConfig::new(&cfg.public_url)
    };
    cloud_config_with(cfg, compute)
}

/// As `cloud_config`, with the compute service's settings given (the benchmarks change some).
pub fn cloud_config_with(cfg: &Config, compute: ComputeConfig) -> CloudConfig {
    CloudConfig {
        data_dir: cfg.data_dir.clone(),
        public_url: cfg.public_url.clone(),
        region: cfg.region.clone(),
        token_expiration: cfg.token_expiration,
        max_active_keys: cfg.max_active_keys,
        lockout_failure_attempts: cfg.lockout_failure_attempts,
        lockout_duration: cfg.lockout_duration,
        admin_project: ferrostack_identity::AdminProject {
            domain_name: cfg.admin_project_domain_name.clone(),
            name: cfg.admin_project_name.clone(),
        },
        policy_file: cfg.policy_file.clone(),
        max_image_size: cfg.max_image_size,
        image_property_quota: cfg.image_property_quota,
        compute,
    }
}

/// Opens the cloud the options describe (applying migrations).
pub async fn open(cfg: &Config) -> anyhow::Result<Cloud> {
    Ok(Cloud::open(&cfg.db, &cloud_config(cfg)).await?)
}

/// Bootstraps (idempotent), registers the testvm images when asked, and writes
/// `<data-dir>/openrc` when a password is known.
pub async fn bootstrap(cloud: &Cloud, cfg: &Config) -> anyhow::Result<PathBuf> {
    let out = cloud.bootstrap(cfg.admin_password.clone()).await?;
    if let Some(dir) = &cfg.testvm_dir {
        let id = cloud.register_testvm(dir, &out.admin_project_id).await?;
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

/// The network data plane's settings of this process's hosts; None when it cannot run
/// (it needs root: namespaces, bridges, nftables), which is logged.
pub(crate) fn network_settings(
    cfg: &Config,
) -> Option<ferrostack_agent::network_host::NetworkSettings> {
    if !rustix::process::geteuid().is_root() {
        tracing::warn!(
            "the network data plane needs root: guests get no NICs on their networks' ports"
        );
        return None;
    }
    Some(
        ferrostack_agent::network_host::NetworkSettings::for_data_dir(
            &cfg.data_dir,
            cfg.net_prefix.clone(),
            cfg.tunnel_ip,
            cfg.vxlan_port,
        ),
    )
}

/// The QEMU hosts' settings from the options (all-in-one and `ferrostack agent`).
pub(crate) fn qemu_settings(cfg: &Config) -> ferrostack_agent::qemu_host::QemuSettings {
    ferrostack_agent::qemu_host::QemuSettings {
        data_dir: cfg.data_dir.clone(),
        run_dir: cfg.run_dir.clone(),
        binary: cfg.qemu_binary.clone(),
        virt_type: cfg.virt_type,
        probe_kernel: cfg
            .testvm_dir
            .as_ref()
            .map(|d| d.join("testvm-kernel"))
            .filter(|k| k.exists())
            .or_else(ferrostack_agent::qemu_host::host_kernel),
        shutdown_timeout: cfg.shutdown_timeout,
        migration_address: cfg.migration_address.clone(),
        migration_bandwidth: (cfg.live_migration_bandwidth > 0)
            .then(|| cfg.live_migration_bandwidth.saturating_mul(1024 * 1024)),
        guest_bridge: cfg.guest_bridge.clone(),
    }
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
    let cloud = open(&cfg).await?;
    let openrc = bootstrap(&cloud, &cfg).await?;
    // Allocations of deleted instances and finished moves go with them; the audit (every 10
    // minutes) is the safety net for anything an older version or a crash left behind.
    let _background = cloud.spawn_background(Duration::from_secs(600));
    if mode == Mode::AllInOne {
        match cfg.compute_driver.as_str() {
            "fake" | "none" if cfg.compute_hosts == 0 => {}
            "fake" => {
                cloud.spawn_fake_hosts(
                    &hostname(),
                    cfg.compute_hosts,
                    (32, 64 * 1024, 1000),
                    Duration::ZERO,
                );
                tracing::info!(
                    hosts = cfg.compute_hosts,
                    "simulated compute hosts (fake driver) started"
                );
            }
            "qemu" if cfg.compute_hosts == 0 => {}
            "qemu" => {
                cloud
                    .spawn_qemu_hosts(
                        &hostname(),
                        cfg.compute_hosts,
                        &qemu_settings(&cfg),
                        network_settings(&cfg).as_ref(),
                    )
                    .await?;
                tracing::info!(hosts = cfg.compute_hosts, "QEMU compute hosts started");
            }
            "none" => {}
            other => anyhow::bail!("unknown compute driver {other:?} (qemu, fake or none)"),
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
