//! Guests' NICs plugged into the host's network data plane: the hypervisor driver calls this
//! as soon as a guest's taps exist (QEMU made them), and the data plane moves each into its
//! namespace, onto its port's bridge, already filtered by the ruleset of the last pass. A
//! NIC that is no port (a guest without ports on a host with an operator's bridge) goes onto
//! that bridge.

use std::sync::Arc;

use ferrostack_netplane::fake::FakeHost;
use ferrostack_netplane::Dataplane;
use ferrostack_virt::vif::{LinuxBridge, Vif, VifPlugger};
use ferrostack_virt::DriverError;

pub struct DataplaneVifs {
    pub dataplane: Arc<Dataplane>,
    /// A simulated host's kernel: the fake driver's guests have no QEMU to make taps, so the
    /// taps are made (and removed) here, where a QEMU would have.
    pub simulated: Option<Arc<FakeHost>>,
    /// The operator's bridge for guests without ports (`--guest-bridge`).
    pub bridge: Option<LinuxBridge>,
}

#[async_trait::async_trait]
impl VifPlugger for DataplaneVifs {
    async fn plug(&self, vif: &Vif) -> Result<(), DriverError> {
        if vif.port.is_none() {
            return match &self.bridge {
                Some(b) => b.plug(vif).await,
                None => Err(DriverError::failed(format!(
                    "{} is no port and the host has no guest bridge",
                    vif.tap
                ))),
            };
        }
        if let Some(host) = &self.simulated {
            host.add_tap(&vif.tap);
        }
        self.dataplane
            .plug(&vif.tap)
            .await
            .map_err(|e| DriverError::failed_with(format!("plugging {}", vif.tap), e))
    }

    async fn unplug(&self, vif: &Vif) -> Result<(), DriverError> {
        if let Some(host) = &self.simulated {
            host.remove_tap(&vif.tap);
        }
        Ok(())
    }

    fn nic_without_port(&self) -> bool {
        self.bridge.is_some()
    }
}
