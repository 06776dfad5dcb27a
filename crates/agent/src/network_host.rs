//! The network data plane of the hosts a process runs: the cloud's prefix of host-level names,
//! where VXLAN tunnels end, and the outside world flat networks reach (in all-in-one, a
//! namespace of this machine). Each host gets a [`Dataplane`] from these settings.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ferrostack_agent_api::Vtep;
use ferrostack_netplane::{Dataplane, HostConfig, NetHost, Uplink};

/// The physical network the all-in-one's external network `public` is on.
pub const PUBLIC_PHYSNET: &str = "public";
/// The bridge of the outside namespace.
pub const OUTSIDE_BRIDGE: &str = "brext";

/// The gateway of the all-in-one's external network `public` (172.24.4.0/24, made at first
/// start by the networking service), held by the outside namespace.
pub fn public_gateway() -> ipnet::IpNet {
    ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
        std::net::Ipv4Addr::new(172, 24, 4, 1),
        24,
    ))
}

#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// Starts every host-level name (namespaces) of this cloud.
    pub prefix: String,
    /// The address hosts' VXLAN tunnels end at (loopback for hosts of one machine).
    pub tunnel_ip: IpAddr,
    /// The first host's VXLAN port; the next hosts of this process take the next ones.
    pub vxlan_port: u16,
    /// Where hosts' daemons keep their files (`<root>/<prefix>/<host>/`): a directory the
    /// user dnsmasq drops to can read.
    pub state_root: std::path::PathBuf,
}

/// The default root of hosts' daemon files.
pub const STATE_ROOT: &str = "/run/ferrostack/net";

impl NetworkSettings {
    /// Settings whose defaults come from the cloud's data directory, so two clouds on one
    /// machine differ: the prefix `fs` and 4 hex digits, a VXLAN port from 20000 on.
    pub fn for_data_dir(
        data_dir: &Path,
        prefix: Option<String>,
        tunnel_ip: Option<IpAddr>,
        vxlan_port: Option<u16>,
    ) -> NetworkSettings {
        use sha2::{Digest, Sha256};
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let h = Sha256::digest(dir.to_string_lossy().as_bytes());
        let n = u16::from_be_bytes([h[0], h[1]]);
        NetworkSettings {
            prefix: prefix.unwrap_or_else(|| format!("fs{:02x}{:02x}", h[0], h[1])),
            tunnel_ip: tunnel_ip.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            // Below the ephemeral range (32768 on), where a passing socket could hold it.
            vxlan_port: vxlan_port.unwrap_or(20000 + (n % 1500) * 8),
            state_root: std::path::PathBuf::from(STATE_ROOT),
        }
    }

    /// The namespace standing for the world outside (all-in-one).
    pub fn outside_netns(&self) -> String {
        format!("{}-ext", self.prefix)
    }

    /// The data plane settings of the `index`th host of this process.
    pub fn host_config(&self, host: &str, index: usize) -> HostConfig {
        let offset = u16::try_from(index).unwrap_or(u16::MAX);
        HostConfig {
            prefix: self.prefix.clone(),
            host: host.to_string(),
            vtep: Vtep {
                ip: self.tunnel_ip,
                port: self.vxlan_port.saturating_add(offset),
            },
            state_dir: self.state_root.join(&self.prefix).join(host),
            physnets: BTreeMap::from([(
                PUBLIC_PHYSNET.to_string(),
                Uplink::Bridge {
                    netns: self.outside_netns(),
                    bridge: OUTSIDE_BRIDGE.to_string(),
                },
            )]),
        }
    }

    /// Makes the outside namespace, with the external network's gateway address, and says
    /// its name in `<data_dir>/external-netns`.
    pub async fn ensure_outside(
        &self,
        host: &dyn NetHost,
        gateway: ipnet::IpNet,
        data_dir: &Path,
    ) -> Result<(), ferrostack_netplane::NetplaneError> {
        ferrostack_netplane::outside::ensure_outside(
            host,
            &self.outside_netns(),
            OUTSIDE_BRIDGE,
            gateway,
        )
        .await?;
        let file = data_dir.join("external-netns");
        // The data directory may not exist yet (an agent's first start): without the file,
        // nothing would know whose namespace this is and it would outlive the cloud.
        let written = std::fs::create_dir_all(data_dir)
            .and_then(|()| std::fs::write(&file, format!("{}\n", self.outside_netns())));
        if let Err(e) = written {
            tracing::warn!(file = %file.display(), error = %e, "writing the outside namespace's name failed");
        }
        Ok(())
    }

    /// A host's data plane on `host`'s kernel.
    pub fn dataplane(&self, kernel: Arc<dyn NetHost>, host: &str, index: usize) -> Arc<Dataplane> {
        Arc::new(Dataplane::new(kernel, self.host_config(host, index)))
    }
}
