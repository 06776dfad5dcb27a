//! Configuration: built-in defaults, then a TOML file (`--config`), then `FERROSTACK_*`
//! environment variables and command-line flags (clap reads both; flags win).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

/// Options shared by the commands that run or manage a cloud. Every option can also be set in
/// the TOML file under the same name (with `_` instead of `-`).
#[derive(Debug, Clone, Args, Default)]
pub struct CommonOpts {
    /// TOML configuration file. Keys are the long option names with `_`, e.g. `listen = "0.0.0.0:5000"`.
    #[arg(long, env = "FERROSTACK_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, Fernet keys, openrc, images and disks.
    /// Default: /var/lib/ferrostack as root, ./data otherwise.
    #[arg(long, env = "FERROSTACK_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:///path/file.db (default: <data-dir>/ferrostack.db) or postgres://user:pw@host/db.
    #[arg(long, env = "FERROSTACK_DB", global = true)]
    pub db: Option<String>,
    /// Address the API listener binds, HOST:PORT.
    #[arg(long, env = "FERROSTACK_LISTEN", global = true)]
    pub listen: Option<String>,
    /// Base URL clients use to reach the APIs (written into the catalog and openrc).
    /// Default: http://<listen address>, with 127.0.0.1 for an unspecified host.
    #[arg(long, env = "FERROSTACK_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Region name of this cloud.
    #[arg(long, env = "FERROSTACK_REGION", global = true)]
    pub region: Option<String>,
    /// Token lifetime in seconds.
    #[arg(long, env = "FERROSTACK_TOKEN_EXPIRATION", global = true)]
    pub token_expiration: Option<u64>,
    /// Number of Fernet keys kept (staged + primary + secondaries), at least 3.
    #[arg(long, env = "FERROSTACK_MAX_ACTIVE_KEYS", global = true)]
    pub max_active_keys: Option<usize>,
    /// Lock a user out after this many consecutive failed logins (0 disables lockout).
    #[arg(long, env = "FERROSTACK_LOCKOUT_FAILURE_ATTEMPTS", global = true)]
    pub lockout_failure_attempts: Option<u32>,
    /// How long a lockout lasts, in seconds.
    #[arg(long, env = "FERROSTACK_LOCKOUT_DURATION", global = true)]
    pub lockout_duration: Option<u64>,
    /// A policy.yaml whose rules override the built-in defaults (oslo.policy syntax).
    #[arg(long, env = "FERROSTACK_POLICY_FILE", global = true)]
    pub policy_file: Option<PathBuf>,
    /// Admin password set at first bootstrap (default: a generated one, written to openrc).
    #[arg(
        long,
        env = "FERROSTACK_ADMIN_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub admin_password: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "FERROSTACK_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Largest image accepted by the image service, in bytes (default 1 TiB).
    #[arg(long, env = "FERROSTACK_MAX_IMAGE_SIZE", global = true)]
    pub max_image_size: Option<u64>,
    /// Directory with the built testvm image (testvm-kernel, testvm-ramdisk, testvm.qcow2) to
    /// register as public images at start when missing.
    #[arg(long, env = "FERROSTACK_TESTVM_DIR", global = true)]
    pub testvm_dir: Option<PathBuf>,
    /// Hypervisor driver of the local compute hosts (all-in-one) and of `ferrostack agent`:
    /// `qemu` (real guests, the default), `fake` (simulated, in memory) or, for all-in-one,
    /// `none` (no local host).
    #[arg(long, env = "FERROSTACK_COMPUTE_DRIVER", global = true)]
    pub compute_driver: Option<String>,
    /// Acceleration of the QEMU driver: `auto` (KVM only when a probe shows a guest kernel
    /// really runs under it, else TCG), `kvm` or `qemu` (TCG). Default auto.
    #[arg(long, env = "FERROSTACK_VIRT_TYPE", global = true)]
    pub virt_type: Option<String>,
    /// The QEMU binary. Default: qemu-system-x86_64 on the PATH.
    #[arg(long, env = "FERROSTACK_QEMU_BINARY", global = true)]
    pub qemu_binary: Option<PathBuf>,
    /// Seconds a guest has to power off after the ACPI power button before it is ended
    /// (Nova's shutdown_timeout). Default 60.
    #[arg(long, env = "FERROSTACK_SHUTDOWN_TIMEOUT", global = true)]
    pub shutdown_timeout: Option<u64>,
    /// Directory for the guests' sockets (QMP, serial, VNC), a short path. Default
    /// /run/ferrostack as root.
    #[arg(long, env = "FERROSTACK_RUN_DIR", global = true)]
    pub run_dir: Option<PathBuf>,
    /// The address other hosts reach this host's QEMU at to send it guests in live
    /// migrations (Nova's live_migration_inbound_addr). Default 127.0.0.1 (hosts on one
    /// machine); set it to this machine's address on the hosts' network for agents on
    /// several machines.
    #[arg(long, env = "FERROSTACK_MIGRATION_ADDRESS", global = true)]
    pub migration_address: Option<String>,
    /// The cap on a live migration's bandwidth in MiB/s, for its memory and its disk copy
    /// each (Nova's live_migration_bandwidth). Default 0: no cap. A force-complete lifts it.
    #[arg(long, env = "FERROSTACK_LIVE_MIGRATION_BANDWIDTH", global = true)]
    pub live_migration_bandwidth: Option<u64>,
    /// An existing Linux bridge on which every QEMU guest gets one NIC (a tap QEMU creates,
    /// plugged into it; no addresses, no filtering), until the networking service plugs
    /// guests' ports. Default: guests have no NIC.
    #[arg(long, env = "FERROSTACK_GUEST_BRIDGE", global = true)]
    pub guest_bridge: Option<String>,
    /// Starts the names of this cloud's network namespaces (`<prefix>-dp-<host>`,
    /// `<prefix>-ext`). Default: `fs` and 4 hex digits of the data directory's path.
    #[arg(long, env = "FERROSTACK_NET_PREFIX", global = true)]
    pub net_prefix: Option<String>,
    /// The address this machine's hosts end VXLAN tunnels at. Default 127.0.0.1 (all hosts
    /// on one machine).
    #[arg(long, env = "FERROSTACK_TUNNEL_IP", global = true)]
    pub tunnel_ip: Option<std::net::IpAddr>,
    /// The UDP port of the first local host's VXLAN tunnels (the next hosts take the next
    /// ones). Default: from 20000 on, picked from the data directory's path.
    #[arg(long, env = "FERROSTACK_VXLAN_PORT", global = true)]
    pub vxlan_port: Option<u16>,
    /// Placement allocation ratios of the local hosts (Nova's cpu/ram/disk_allocation_ratio).
    /// Defaults 4.0, 1.0, 1.0.
    #[arg(long, env = "FERROSTACK_CPU_ALLOCATION_RATIO", global = true)]
    pub cpu_allocation_ratio: Option<f64>,
    #[arg(long, env = "FERROSTACK_RAM_ALLOCATION_RATIO", global = true)]
    pub ram_allocation_ratio: Option<f64>,
    #[arg(long, env = "FERROSTACK_DISK_ALLOCATION_RATIO", global = true)]
    pub disk_allocation_ratio: Option<f64>,
    /// Memory in MiB kept for the host itself (Nova's reserved_host_memory_mb). Default 0
    /// with the fake driver, 512 with qemu.
    #[arg(long, env = "FERROSTACK_RESERVED_HOST_MEMORY_MB", global = true)]
    pub reserved_host_memory_mb: Option<i64>,
    /// noVNC's files, served by the console proxy. Default /usr/share/novnc (Debian's novnc).
    #[arg(long, env = "FERROSTACK_NOVNC_DIR", global = true)]
    pub novnc_dir: Option<PathBuf>,
    /// Give every server a config drive, asked for or not (Nova's force_config_drive).
    #[arg(long, env = "FERROSTACK_FORCE_CONFIG_DRIVE", global = true)]
    pub force_config_drive: Option<bool>,
    /// How many local compute hosts to run (simulated hosts with `fake`); 0 for none.
    #[arg(long, env = "FERROSTACK_COMPUTE_HOSTS", global = true)]
    pub compute_hosts: Option<usize>,
    /// Seconds after an agent's last heartbeat before its compute service counts as down
    /// (Nova's service_down_time; agents heartbeat every 10 s). Default 60.
    #[arg(long, env = "FERROSTACK_SERVICE_DOWN_TIME", global = true)]
    pub service_down_time: Option<u64>,
    /// Whether a resize may keep a server on its host (Nova's allow_resize_to_same_host).
    /// Default true, as DevStack: an all-in-one cloud has one host.
    #[arg(long, env = "FERROSTACK_ALLOW_RESIZE_TO_SAME_HOST", global = true)]
    pub allow_resize_to_same_host: Option<bool>,
    /// A group (name or id) that may read the data directory: its files are then 0640 and its
    /// directories 2750 in that group. Default: none (files 0600, directories 0700).
    #[arg(long, env = "FERROSTACK_DATA_GROUP", global = true)]
    pub data_group: Option<String>,
    /// The cloud's admin project (Keystone's `admin_project_name`): only an `admin` role on it,
    /// or a system-scoped one, makes a cloud admin. Default: admin (the bootstrap project).
    #[arg(long, env = "FERROSTACK_ADMIN_PROJECT_NAME", global = true)]
    pub admin_project_name: Option<String>,
    /// The domain of the admin project (Keystone's `admin_project_domain_name`). Default: Default.
    #[arg(long, env = "FERROSTACK_ADMIN_PROJECT_DOMAIN_NAME", global = true)]
    pub admin_project_domain_name: Option<String>,
    /// Most additional properties an image may have (Glance's image_property_quota); -1 for
    /// no limit. Default 128.
    #[arg(
        long,
        env = "FERROSTACK_IMAGE_PROPERTY_QUOTA",
        global = true,
        allow_hyphen_values = true
    )]
    pub image_property_quota: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    db: Option<String>,
    listen: Option<String>,
    public_url: Option<String>,
    region: Option<String>,
    token_expiration: Option<u64>,
    max_active_keys: Option<usize>,
    lockout_failure_attempts: Option<u32>,
    lockout_duration: Option<u64>,
    policy_file: Option<PathBuf>,
    admin_password: Option<String>,
    log_format: Option<String>,
    max_image_size: Option<u64>,
    testvm_dir: Option<PathBuf>,
    compute_driver: Option<String>,
    virt_type: Option<String>,
    qemu_binary: Option<PathBuf>,
    shutdown_timeout: Option<u64>,
    run_dir: Option<PathBuf>,
    migration_address: Option<String>,
    live_migration_bandwidth: Option<u64>,
    guest_bridge: Option<String>,
    net_prefix: Option<String>,
    tunnel_ip: Option<std::net::IpAddr>,
    vxlan_port: Option<u16>,
    cpu_allocation_ratio: Option<f64>,
    ram_allocation_ratio: Option<f64>,
    disk_allocation_ratio: Option<f64>,
    reserved_host_memory_mb: Option<i64>,
    force_config_drive: Option<bool>,
    novnc_dir: Option<PathBuf>,
    compute_hosts: Option<usize>,
    service_down_time: Option<u64>,
    allow_resize_to_same_host: Option<bool>,
    data_group: Option<String>,
    admin_project_name: Option<String>,
    admin_project_domain_name: Option<String>,
    image_property_quota: Option<i64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub db: String,
    pub listen: String,
    pub public_url: String,
    pub region: String,
    pub token_expiration: Duration,
    pub max_active_keys: usize,
    pub lockout_failure_attempts: u32,
    pub lockout_duration: Duration,
    pub policy_file: Option<PathBuf>,
    pub admin_password: Option<String>,
    pub log_format: String,
    pub max_image_size: u64,
    pub testvm_dir: Option<PathBuf>,
    pub compute_driver: String,
    pub virt_type: ferrostack_virt::qemu::VirtTypeSetting,
    pub qemu_binary: PathBuf,
    pub shutdown_timeout: Duration,
    pub run_dir: PathBuf,
    pub migration_address: String,
    /// MiB/s; 0: no cap.
    pub live_migration_bandwidth: u64,
    pub guest_bridge: Option<String>,
    pub net_prefix: Option<String>,
    pub tunnel_ip: Option<std::net::IpAddr>,
    pub vxlan_port: Option<u16>,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    pub reserved_host_memory_mb: i64,
    pub force_config_drive: bool,
    pub novnc_dir: PathBuf,
    pub compute_hosts: usize,
    pub service_down_time: Duration,
    pub allow_resize_to_same_host: bool,
    pub data_group: Option<String>,
    pub admin_project_name: String,
    pub admin_project_domain_name: String,
    pub image_property_quota: i64,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";

fn default_data_dir() -> PathBuf {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if is_root {
        PathBuf::from("/var/lib/ferrostack")
    } else {
        PathBuf::from("./data")
    }
}

fn public_url_for(listen: &str) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "80"));
    let host = match host {
        "0.0.0.0" | "" | "[::]" => "127.0.0.1",
        h => h,
    };
    format!("http://{host}:{port}")
}

impl Config {
    pub fn resolve(cli: &CommonOpts) -> anyhow::Result<Config> {
        let file: FileConfig = match &cli.config {
            Some(p) => toml::from_str(
                &std::fs::read_to_string(p)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?,
            )
            .map_err(|e| anyhow::anyhow!("parsing {}: {e}", p.display()))?,
            None => FileConfig::default(),
        };
        let data_dir = cli
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let data_dir = absolute(&data_dir)?;
        let listen = cli
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let public_url = cli
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| public_url_for(&listen))
            .trim_end_matches('/')
            .to_string();
        let db = cli
            .db
            .clone()
            .or(file.db)
            .unwrap_or_else(|| format!("sqlite://{}/ferrostack.db", data_dir.display()));
        Ok(Config {
            db,
            listen,
            public_url,
            region: cli
                .region
                .clone()
                .or(file.region)
                .unwrap_or_else(|| "RegionOne".into()),
            token_expiration: Duration::from_secs(
                cli.token_expiration
                    .or(file.token_expiration)
                    .unwrap_or(3600),
            ),
            max_active_keys: cli.max_active_keys.or(file.max_active_keys).unwrap_or(3),
            lockout_failure_attempts: cli
                .lockout_failure_attempts
                .or(file.lockout_failure_attempts)
                .unwrap_or(0),
            lockout_duration: Duration::from_secs(
                cli.lockout_duration
                    .or(file.lockout_duration)
                    .unwrap_or(1800),
            ),
            policy_file: cli.policy_file.clone().or(file.policy_file),
            admin_password: cli.admin_password.clone().or(file.admin_password),
            log_format: cli
                .log_format
                .clone()
                .or(file.log_format)
                .unwrap_or_else(|| "text".into()),
            max_image_size: cli
                .max_image_size
                .or(file.max_image_size)
                .unwrap_or(1 << 40),
            testvm_dir: cli.testvm_dir.clone().or(file.testvm_dir),
            virt_type: match cli
                .virt_type
                .clone()
                .or(file.virt_type)
                .as_deref()
                .unwrap_or("auto")
            {
                "auto" => ferrostack_virt::qemu::VirtTypeSetting::Auto,
                "kvm" => ferrostack_virt::qemu::VirtTypeSetting::Kvm,
                "qemu" => ferrostack_virt::qemu::VirtTypeSetting::Qemu,
                other => anyhow::bail!("--virt-type {other:?}: auto, kvm or qemu"),
            },
            qemu_binary: cli
                .qemu_binary
                .clone()
                .or(file.qemu_binary)
                .unwrap_or_else(ferrostack_agent::qemu_host::default_binary),
            shutdown_timeout: Duration::from_secs(
                cli.shutdown_timeout.or(file.shutdown_timeout).unwrap_or(60),
            ),
            run_dir: cli
                .run_dir
                .clone()
                .or(file.run_dir)
                .unwrap_or_else(ferrostack_agent::qemu_host::default_run_dir),
            migration_address: cli
                .migration_address
                .clone()
                .or(file.migration_address)
                .unwrap_or_else(|| "127.0.0.1".into()),
            live_migration_bandwidth: cli
                .live_migration_bandwidth
                .or(file.live_migration_bandwidth)
                .unwrap_or(0),
            guest_bridge: cli.guest_bridge.clone().or(file.guest_bridge),
            net_prefix: cli.net_prefix.clone().or(file.net_prefix),
            tunnel_ip: cli.tunnel_ip.or(file.tunnel_ip),
            vxlan_port: cli.vxlan_port.or(file.vxlan_port),
            cpu_allocation_ratio: ratio(
                "cpu",
                cli.cpu_allocation_ratio.or(file.cpu_allocation_ratio),
                4.0,
            )?,
            ram_allocation_ratio: ratio(
                "ram",
                cli.ram_allocation_ratio.or(file.ram_allocation_ratio),
                1.0,
            )?,
            disk_allocation_ratio: ratio(
                "disk",
                cli.disk_allocation_ratio.or(file.disk_allocation_ratio),
                1.0,
            )?,
            reserved_host_memory_mb: {
                let driver = cli
                    .compute_driver
                    .clone()
                    .or(file.compute_driver.clone())
                    .unwrap_or_else(|| "qemu".into());
                let r = cli
                    .reserved_host_memory_mb
                    .or(file.reserved_host_memory_mb)
                    .unwrap_or(if driver == "qemu" { 512 } else { 0 });
                anyhow::ensure!(r >= 0, "--reserved-host-memory-mb must not be negative");
                r
            },
            novnc_dir: cli
                .novnc_dir
                .clone()
                .or(file.novnc_dir)
                .unwrap_or_else(|| "/usr/share/novnc".into()),
            force_config_drive: cli
                .force_config_drive
                .or(file.force_config_drive)
                .unwrap_or(false),
            compute_driver: cli
                .compute_driver
                .clone()
                .or(file.compute_driver)
                .unwrap_or_else(|| "qemu".into()),
            compute_hosts: cli.compute_hosts.or(file.compute_hosts).unwrap_or(1),
            service_down_time: Duration::from_secs(
                cli.service_down_time
                    .or(file.service_down_time)
                    .unwrap_or(60),
            ),
            allow_resize_to_same_host: cli
                .allow_resize_to_same_host
                .or(file.allow_resize_to_same_host)
                .unwrap_or(true),
            data_group: cli.data_group.clone().or(file.data_group),
            admin_project_name: cli
                .admin_project_name
                .clone()
                .or(file.admin_project_name)
                .unwrap_or_else(|| "admin".into()),
            admin_project_domain_name: cli
                .admin_project_domain_name
                .clone()
                .or(file.admin_project_domain_name)
                .unwrap_or_else(|| "Default".into()),
            image_property_quota: cli
                .image_property_quota
                .or(file.image_property_quota)
                .unwrap_or(128),
            data_dir,
        })
    }

    pub fn key_repository(&self) -> PathBuf {
        self.data_dir.join("fernet-keys")
    }
}

/// An allocation ratio: positive and finite.
fn ratio(what: &str, v: Option<f64>, default: f64) -> anyhow::Result<f64> {
    let r = v.unwrap_or(default);
    anyhow::ensure!(
        r.is_finite() && r > 0.0,
        "--{what}-allocation-ratio must be a positive number"
    );
    Ok(r)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_cli() {
        let dir = std::env::temp_dir().join(format!("fs-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "listen = \"0.0.0.0:6000\"\nregion = \"R2\"\n").unwrap();
        let mut cli = CommonOpts {
            config: Some(f),
            data_dir: Some(dir.clone()),
            ..Default::default()
        };
        let c = Config::resolve(&cli).unwrap();
        assert_eq!(c.listen, "0.0.0.0:6000");
        assert_eq!(c.public_url, "http://127.0.0.1:6000");
        assert_eq!(c.region, "R2");
        cli.region = Some("R3".into());
        assert_eq!(Config::resolve(&cli).unwrap().region, "R3");
        std::fs::write(dir.join("bad.toml"), "nope = 1\n").unwrap();
        cli.config = Some(dir.join("bad.toml"));
        assert!(Config::resolve(&cli).is_err(), "unknown keys are refused");
    }
}
