//! `ferrostack agent`: the agent of one compute host as its own process. It dials the
//! controller over HTTP (controllers never reach agents first), authenticates with Keystone
//! from the `OS_*` variables of an openrc, and converges the host's hypervisor driver to the
//! desired state the controller keeps.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferrostack_agent::http::{HttpController, PasswordAuth};
use ferrostack_agent::Agent;

use crate::config::Config;

#[derive(Debug, Clone, Args)]
pub struct AgentOpts {
    /// Base URL of the controller, or of the load balancer in front of the controllers (the
    /// cloud's public URL, e.g. http://ctl.example:5000).
    #[arg(long, env = "FERROSTACK_CONTROLLER")]
    pub controller: String,
    /// Name of this compute host (its service, hypervisor and resource provider name).
    /// Default: this machine's host name.
    #[arg(long = "host", env = "FERROSTACK_HOST")]
    pub host: Option<String>,
    /// vCPUs the simulated host offers (`--compute-driver fake`).
    #[arg(long, env = "FERROSTACK_FAKE_VCPUS", default_value_t = 32)]
    pub fake_vcpus: i64,
    /// Memory the simulated host offers, in MiB (`--compute-driver fake`).
    #[arg(long, env = "FERROSTACK_FAKE_MEMORY_MB", default_value_t = 64 * 1024)]
    pub fake_memory_mb: i64,
    /// Disk the simulated host offers, in GiB (`--compute-driver fake`).
    #[arg(long, env = "FERROSTACK_FAKE_DISK_GB", default_value_t = 1000)]
    pub fake_disk_gb: i64,
}

pub async fn run(cfg: &Config, opts: AgentOpts) -> anyhow::Result<()> {
    let host = opts.host.clone().unwrap_or_else(crate::server::hostname);
    let auth = PasswordAuth::from_env().context("agent credentials")?;
    // Like the openstack client: OS_CACERT adds a CA bundle to the system's trust store.
    let ca = match std::env::var_os("OS_CACERT").filter(|v| !v.is_empty()) {
        Some(p) => Some(std::fs::read(&p).with_context(|| format!("reading OS_CACERT {p:?}"))?),
        None => None,
    };
    let controller: Arc<dyn ferrostack_agent::protocol::Controller> = Arc::new(
        HttpController::with_ca(&opts.controller, auth, ca.as_deref()).context("controller")?,
    );
    let mut dataplane = None;
    let driver: Arc<dyn ferrostack_virt::Driver> = match cfg.compute_driver.as_str() {
        "fake" => Arc::new(ferrostack_virt::fake::FakeDriver::new(
            &host,
            opts.fake_vcpus,
            opts.fake_memory_mb,
            opts.fake_disk_gb,
            Duration::ZERO,
        )),
        "qemu" => {
            let settings = crate::server::qemu_settings(cfg);
            let platform = settings.probe().await?;
            let mut driver = settings.driver(&platform, &host, controller.clone());
            // This machine's data plane: its own namespace, VXLAN to the other hosts.
            if let Some(net) = crate::server::network_settings(cfg) {
                let kernel = Arc::new(ferrostack_netplane::linux::Linux);
                net.ensure_outside(
                    kernel.as_ref(),
                    ferrostack_agent::network_host::public_gateway(),
                    &cfg.data_dir,
                )
                .await
                .context("the outside namespace of the external network")?;
                let dp = net.dataplane(kernel, &host, 0);
                driver.vifs = Some(Arc::new(ferrostack_agent::vifs::DataplaneVifs {
                    dataplane: dp.clone(),
                    simulated: None,
                    bridge: settings
                        .guest_bridge
                        .clone()
                        .map(|bridge| ferrostack_virt::vif::LinuxBridge { bridge }),
                }));
                dataplane = Some(dp);
            }
            Arc::new(driver)
        }
        other => anyhow::bail!("unknown compute driver {other:?} for an agent (qemu or fake)"),
    };
    tracing::info!(host = %host, controller = %opts.controller, driver = %cfg.compute_driver, "ferrostack agent starting");
    let mut agent = Agent::new(&host, driver, controller);
    if let Some(dp) = dataplane {
        agent = agent.with_dataplane(dp).with_metadata_proxy();
    }
    let agent = Arc::new(agent);
    tokio::select! {
        _ = agent.run() => {}
        _ = crate::server::shutdown_signal() => {
            tracing::info!(host = %host, "agent stopping; guests keep running");
        }
    }
    Ok(())
}
