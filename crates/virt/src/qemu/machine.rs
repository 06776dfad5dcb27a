//! The QEMU command line of one guest's machine (what [`super::QemuProcess::launch`] adds to
//! its own process options), and the image properties that shape it.

use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::probe::Accel;

/// The bus of the guest's disks (`hw_disk_bus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskBus {
    #[default]
    Virtio,
    Scsi,
    Ide,
    Sata,
}

/// The guest's graphics card (`hw_video_model`); `None` has no screen (and no VNC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Video {
    Virtio,
    #[default]
    Vga,
    Cirrus,
    None,
}

/// The model of the guest's NICs (`hw_vif_model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VifModel {
    #[default]
    Virtio,
    E1000,
    Rtl8139,
    Ne2kPci,
    Pcnet,
}

impl VifModel {
    /// QEMU's device.
    pub fn device(self) -> &'static str {
        match self {
            VifModel::Virtio => "virtio-net-pci",
            VifModel::E1000 => "e1000",
            VifModel::Rtl8139 => "rtl8139",
            VifModel::Ne2kPci => "ne2k_pci",
            VifModel::Pcnet => "pcnet",
        }
    }
}

/// The guest's virtual hardware from its image's `hw_*` properties, as Nova's libvirt driver
/// reads them; what is not set takes the defaults (virtio disks, a VGA card, `pc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {
    pub disk_bus: DiskBus,
    pub video: Video,
    /// QEMU's machine type (`pc`, `q35`, `pc-i440fx-7.2`, ...).
    pub machine_type: String,
    #[serde(default)]
    pub vif_model: VifModel,
}

impl Default for Hardware {
    fn default() -> Self {
        Hardware {
            disk_bus: DiskBus::Virtio,
            video: Video::Vga,
            machine_type: "pc".into(),
            vif_model: VifModel::Virtio,
        }
    }
}

impl Hardware {
    /// Reads `hw_disk_bus`, `hw_video_model` and `hw_machine_type`; a value this driver
    /// cannot give is an error naming it.
    pub fn from_properties(p: &Map<String, Value>) -> Result<Hardware, String> {
        let get = |k: &str| p.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let mut hw = Hardware::default();
        if let Some(bus) = get("hw_disk_bus") {
            hw.disk_bus = match bus {
                "virtio" => DiskBus::Virtio,
                "scsi" => DiskBus::Scsi,
                "ide" => DiskBus::Ide,
                "sata" => DiskBus::Sata,
                other => return Err(format!("hw_disk_bus {other:?} is not supported")),
            };
        }
        if let Some(video) = get("hw_video_model") {
            hw.video = match video {
                "virtio" => Video::Virtio,
                "vga" | "std" => Video::Vga,
                "cirrus" => Video::Cirrus,
                "none" => Video::None,
                other => return Err(format!("hw_video_model {other:?} is not supported")),
            };
        }
        if let Some(model) = get("hw_vif_model") {
            hw.vif_model = match model {
                "virtio" => VifModel::Virtio,
                "e1000" => VifModel::E1000,
                "rtl8139" => VifModel::Rtl8139,
                "ne2k_pci" => VifModel::Ne2kPci,
                "pcnet" => VifModel::Pcnet,
                other => return Err(format!("hw_vif_model {other:?} is not supported")),
            };
        }
        if let Some(m) = get("hw_machine_type") {
            let ok = m.len() <= 64
                && m.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !ok {
                return Err(format!("hw_machine_type {m:?} is not a machine type"));
            }
            hw.machine_type = m.to_string();
        }
        Ok(hw)
    }
}

/// The QEMU ids of a NIC's backend and device, and its PCI slot when its position fixes one:
/// the same at launch and when hot-plugged, so a NIC is found again by its tap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicIds {
    pub netdev: String,
    pub device: String,
    pub addr: Option<String>,
}

/// The first PCI slot of NICs with a position (slots 0x10-0x1f; disks, the RNG and the video
/// card take the low ones as QEMU hands them out).
const FIRST_NIC_SLOT: u32 = 0x10;
const NIC_SLOTS: u32 = 16;

impl NicIds {
    pub fn of(vif: &crate::vif::Vif) -> NicIds {
        NicIds {
            netdev: format!("net-{}", vif.tap),
            device: format!("nic-{}", vif.tap),
            addr: vif
                .position
                .filter(|p| *p < NIC_SLOTS)
                .map(|p| format!("0x{:x}", FIRST_NIC_SLOT + p)),
        }
    }
}

/// A guest's machine: sizes, disks, hardware, and a kernel to boot directly when the image
/// has one (`kernel_id`/`ramdisk_id`/`os_command_line`).
#[derive(Debug, Clone)]
pub struct Machine {
    pub accel: Accel,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub hardware: Hardware,
    /// qcow2 disks in boot order: the root disk first.
    pub disks: Vec<PathBuf>,
    /// A read-only CD-ROM (the config drive).
    pub cdrom: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// Where VNC listens (a unix socket), when the guest has a screen.
    pub vnc_socket: Option<PathBuf>,
    /// The guest's NICs: taps QEMU creates (plugged by the host once QEMU runs).
    pub nics: Vec<crate::vif::Vif>,
}

impl Machine {
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: String| a.push(OsString::from(s));
        push("-machine".into());
        push(format!(
            "{},accel={}",
            self.hardware.machine_type,
            self.accel.qemu_name()
        ));
        push("-smp".into());
        push(self.vcpus.max(1).to_string());
        push("-m".into());
        push(format!("{}M", self.memory_mb.max(16)));
        push("-no-user-config".into());
        match self.hardware.disk_bus {
            DiskBus::Scsi => {
                push("-device".into());
                push("virtio-scsi-pci,id=scsi0".into());
            }
            DiskBus::Sata => {
                push("-device".into());
                push("ahci,id=ahci0".into());
            }
            _ => {}
        }
        for (i, disk) in self.disks.iter().enumerate() {
            // Boot index 0 is the directly booted kernel's when there is one.
            let boot = i + 1;
            push("-drive".into());
            push(format!(
                "file={},format=qcow2,if=none,id=disk{i},cache=none,aio=threads",
                disk.display()
            ));
            push("-device".into());
            push(match self.hardware.disk_bus {
                DiskBus::Virtio => format!("virtio-blk-pci,drive=disk{i},bootindex={boot}"),
                DiskBus::Scsi => format!("scsi-hd,bus=scsi0.0,drive=disk{i},bootindex={boot}"),
                DiskBus::Ide => format!("ide-hd,bus=ide.{},drive=disk{i},bootindex={boot}", i / 2),
                DiskBus::Sata => format!("ide-hd,bus=ahci0.{i},drive=disk{i},bootindex={boot}"),
            });
        }
        if let Some(cd) = &self.cdrom {
            push("-drive".into());
            push(format!(
                "file={},format=raw,if=none,id=cd0,readonly=on,media=cdrom",
                cd.display()
            ));
            push("-device".into());
            push(match self.hardware.disk_bus {
                DiskBus::Sata => format!("ide-cd,bus=ahci0.{},drive=cd0", self.disks.len()),
                DiskBus::Scsi => "scsi-cd,bus=scsi0.0,drive=cd0".into(),
                // Virtio has no CD-ROM: the config drive goes on the IDE bus, as Nova does.
                _ => "ide-cd,bus=ide.1,drive=cd0".into(),
            });
        }
        for nic in &self.nics {
            let ids = NicIds::of(nic);
            push("-netdev".into());
            push(format!(
                "tap,id={},ifname={},script=no,downscript=no",
                ids.netdev, nic.tap
            ));
            push("-device".into());
            let mut dev = format!(
                "{},netdev={},mac={},id={}",
                self.hardware.vif_model.device(),
                ids.netdev,
                nic.mac,
                ids.device
            );
            if let Some(addr) = &ids.addr {
                dev.push_str(&format!(",addr={addr}"));
            }
            push(dev);
        }
        push("-device".into());
        push("virtio-rng-pci".into());
        match (self.hardware.video, &self.vnc_socket) {
            (Video::None, _) | (_, None) => {}
            (video, Some(sock)) => {
                push("-device".into());
                push(
                    match video {
                        Video::Virtio => "virtio-vga",
                        Video::Cirrus => "cirrus-vga",
                        _ => "VGA",
                    }
                    .into(),
                );
                push("-vnc".into());
                push(format!("unix:{}", sock.display()));
            }
        }
        if let Some(k) = &self.kernel {
            push("-kernel".into());
            push(k.display().to_string());
            if let Some(r) = &self.ramdisk {
                push("-initrd".into());
                push(r.display().to_string());
            }
            push("-append".into());
            push(
                self.cmdline
                    .clone()
                    .unwrap_or_else(|| "console=ttyS0".into()),
            );
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_properties_choose_the_hardware() {
        let p = json!({"hw_disk_bus": "scsi", "hw_video_model": "none", "hw_machine_type": "q35",
                       "hw_vif_model": "e1000"});
        let hw = Hardware::from_properties(p.as_object().unwrap()).unwrap();
        assert_eq!(hw.vif_model, VifModel::E1000);
        assert!(
            Hardware::from_properties(json!({"hw_vif_model": "x"}).as_object().unwrap()).is_err()
        );
        assert_eq!(hw.disk_bus, DiskBus::Scsi);
        assert_eq!(hw.video, Video::None);
        assert_eq!(hw.machine_type, "q35");
        assert_eq!(
            Hardware::from_properties(&Map::new()).unwrap(),
            Hardware::default()
        );
        let bad = json!({"hw_disk_bus": "floppy"});
        assert!(Hardware::from_properties(bad.as_object().unwrap())
            .unwrap_err()
            .contains("floppy"));
        let bad = json!({"hw_machine_type": "pc,accel=kvm"});
        assert!(Hardware::from_properties(bad.as_object().unwrap()).is_err());
    }
}
