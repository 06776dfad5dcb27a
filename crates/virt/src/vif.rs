//! Guests' network interfaces on their host. A guest's NIC is a tap device that its QEMU
//! creates as it starts and that goes when QEMU ends (so no tap is ever left behind, whatever
//! failed); plugging connects that tap to the host's data plane. The networking data plane
//! implements [`VifPlugger`] (a bridge per network, anti-spoofing rules per port). Until it
//! exists, a host either gives its guests no NIC, or one NIC each on a plain Linux bridge the
//! operator made ([`LinuxBridge`], `--guest-bridge`).

use crate::{DriverError, Result};

/// One NIC of a guest as its host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vif {
    /// The tap device QEMU creates for it (at most 15 bytes).
    pub tap: String,
    /// The guest's MAC address (`fa:16:3e:..`, as Nova's ports).
    pub mac: String,
    /// The networking port it is; None: a NIC of the guest's own (an operator's bridge).
    pub port: Option<String>,
    /// Its place among the guest's NICs (`GuestNic::position`), which fixes its device
    /// address; None: wherever the hypervisor puts it.
    pub position: Option<u32>,
}

/// Connects a guest's tap, just created by its QEMU, to the host's network.
#[async_trait::async_trait]
pub trait VifPlugger: Send + Sync {
    async fn plug(&self, vif: &Vif) -> Result<()>;
    /// The guest's tap went (its QEMU ended); what the host made for it may go too. Real taps
    /// vanish with their QEMU, so there is nothing to do by default.
    async fn unplug(&self, _vif: &Vif) -> Result<()> {
        Ok(())
    }
    /// Whether a guest without ports gets a NIC anyway (a plain bridge's one NIC per guest).
    fn nic_without_port(&self) -> bool {
        false
    }
}

/// The NICs of a guest whose spec names its ports: one tap per port, named after it, with
/// the port's MAC.
pub fn port_vifs(spec: &crate::GuestSpec) -> Vec<Vif> {
    spec.nics
        .iter()
        .map(|n| Vif {
            tap: ferrostack_agent_api::tap_name(&n.port_id),
            mac: n.mac.clone(),
            port: Some(n.port_id.clone()),
            position: n.position,
        })
        .collect()
}

/// The NICs `after` has that `before` lacks, and those it no longer has (by port).
pub fn changed_vifs(before: &crate::GuestSpec, after: &crate::GuestSpec) -> (Vec<Vif>, Vec<Vif>) {
    let (old, new) = (port_vifs(before), port_vifs(after));
    let added = new.iter().filter(|v| !old.contains(v)).cloned().collect();
    let removed = old.iter().filter(|v| !new.contains(v)).cloned().collect();
    (added, removed)
}

/// Every tap on one existing Linux bridge (no addresses, no filtering: a plain L2 segment).
#[derive(Debug, Clone)]
pub struct LinuxBridge {
    pub bridge: String,
}

#[async_trait::async_trait]
impl VifPlugger for LinuxBridge {
    fn nic_without_port(&self) -> bool {
        true
    }
    async fn plug(&self, vif: &Vif) -> Result<()> {
        let out = tokio::process::Command::new("ip")
            .args(["link", "set", "dev", &vif.tap, "master", &self.bridge, "up"])
            .output()
            .await
            .map_err(|e| DriverError::failed_with("running ip (Debian package iproute2)", e))?;
        if !out.status.success() {
            return Err(DriverError::failed(format!(
                "plugging {} into bridge {}: {}",
                vif.tap,
                self.bridge,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// The NICs of guest `uuid` on the host whose guests live under `host_root`: their taps are
/// named after both (two hosts of one machine hold the same guest during a live migration),
/// their MACs after the guest only (a guest keeps its MAC wherever it runs).
pub fn guest_vifs(host_root: &std::path::Path, uuid: &str, count: usize) -> Vec<Vif> {
    use sha2::{Digest, Sha256};
    let place = Sha256::digest(format!("{}/{uuid}", host_root.display()));
    (0..count)
        .map(|i| {
            let m = Sha256::digest(format!("{uuid}/{i}"));
            Vif {
                tap: format!(
                    "tap{:02x}{:02x}{:02x}{:02x}{:02x}{i:x}",
                    place[0], place[1], place[2], place[3], place[4]
                ),
                mac: format!("fa:16:3e:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2]),
                port: None,
                position: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_differ_per_host_and_macs_follow_the_guest() {
        let a = guest_vifs(std::path::Path::new("/d/hosts/a/instances"), "u1", 2);
        let b = guest_vifs(std::path::Path::new("/d/hosts/b/instances"), "u1", 1);
        assert!(a
            .iter()
            .all(|v| v.tap.len() <= 15 && v.tap.starts_with("tap")));
        assert_ne!(a[0].tap, a[1].tap);
        assert_ne!(a[0].tap, b[0].tap);
        assert_eq!(a[0].mac, b[0].mac);
        assert_ne!(a[0].mac, a[1].mac);
        assert!(a[0].mac.starts_with("fa:16:3e:") && a[0].mac.len() == 17);
    }
}
