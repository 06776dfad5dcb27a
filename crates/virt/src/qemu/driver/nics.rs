//! Hot-plugging NICs (Nova's interface attach and detach): the guest's NICs are made those
//! of its spec. A running (or paused) guest gets each new NIC as a tap backend plus a device
//! at the slot its position fixes, plugged into the host's network at once, and loses each
//! NIC whose port went (the device is released when the guest acknowledges the unplug; the
//! backend and its tap go now). The kept spec then names the new NICs, so the next start,
//! and a live migration's destination, build the same machine. Every step is idempotent: a
//! NIC already there (QEMU's duplicate id) or already gone counts as done, so a pass cut short
//! is simply done again.

use ferrostack_agent_api::GuestSpec;

use super::layout::{self, Kind};
use super::QemuDriver;
use crate::qemu::machine::NicIds;
use crate::qemu::QemuError;
use crate::{DriverError, Result};

/// QEMU's answer for an id that is already taken, or one that does not exist.
fn already(e: &QemuError, words: &[&str]) -> bool {
    let s = e.to_string();
    words.iter().any(|w| s.contains(w))
}

impl QemuDriver {
    pub(super) async fn set_guest_nics(&self, spec: &GuestSpec) -> Result<()> {
        let uuid = spec.uuid.as_str();
        let dir = self.dir_of(uuid);
        let mut kept = self.spec(uuid).await?;
        let (added, removed) = crate::vif::changed_vifs(&kept, spec);
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        if let Some(p) = self.process(uuid).await? {
            let qmp = p.qmp();
            for vif in &removed {
                let ids = NicIds::of(vif);
                match qmp.device_del(&ids.device).await {
                    Err(e) if !already(&e, &["not found"]) => return Err(e.into()),
                    _ => {}
                }
                match qmp.netdev_del(&ids.netdev).await {
                    Err(e) if !already(&e, &["not found"]) => return Err(e.into()),
                    _ => {}
                }
                if let Some(plugger) = &self.vifs {
                    plugger.unplug(vif).await?;
                }
            }
            let boot: Option<layout::Boot> =
                layout::read_json(&layout::boot_file(&dir, Kind::Own)).await?;
            let model = boot.map(|b| b.hardware.vif_model).unwrap_or_default();
            for vif in &added {
                let ids = NicIds::of(vif);
                match qmp.netdev_add_tap(&ids.netdev, &vif.tap).await {
                    Err(e) if !already(&e, &["Duplicate", "already"]) => return Err(e.into()),
                    _ => {}
                }
                let mut args = serde_json::Map::new();
                args.insert("netdev".into(), ids.netdev.clone().into());
                args.insert("mac".into(), vif.mac.clone().into());
                if let Some(addr) = &ids.addr {
                    args.insert("addr".into(), addr.clone().into());
                }
                match qmp.device_add(model.device(), &ids.device, args).await {
                    Err(e) if !already(&e, &["Duplicate", "already"]) => {
                        // No device to carry it: the backend (and its tap) goes too.
                        let _ = qmp.netdev_del(&ids.netdev).await;
                        return Err(DriverError::failed(format!(
                            "hot-plugging port {} into guest {uuid}: {e}",
                            vif.port.as_deref().unwrap_or("?")
                        )));
                    }
                    _ => {}
                }
                if let Some(plugger) = &self.vifs {
                    plugger.plug(vif).await?;
                }
            }
        }
        kept.nics = spec.nics.clone();
        layout::write_json(&layout::spec_file(&dir), &kept).await
    }
}
