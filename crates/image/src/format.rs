//! Disk image format inspection: what the uploaded bytes really are, their virtual size, and
//! whether they are safe to hand to QEMU. Works on the head (first 64 KiB) and the tail (last
//! 512 bytes) of the data, which the upload path keeps while streaming.
//!
//! Unsafe means: a qcow2 with a backing file or an external data file, or a vmdk whose
//! descriptor is not a single self-contained sparse extent (it could point QEMU at any file on
//! the host).

/// How much of the start of an image the inspector needs.
pub const HEAD_LEN: usize = 64 * 1024;
/// How much of the end (a fixed VHD keeps its footer there).
pub const TAIL_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    Qcow2,
    Vmdk,
    Vhd,
    Vhdx,
    Vdi,
    Iso,
    Raw,
}

impl Detected {
    pub fn name(self) -> &'static str {
        match self {
            Detected::Qcow2 => "qcow2",
            Detected::Vmdk => "vmdk",
            Detected::Vhd => "vhd",
            Detected::Vhdx => "vhdx",
            Detected::Vdi => "vdi",
            Detected::Iso => "iso",
            Detected::Raw => "raw",
        }
    }
}

/// What the inspector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub format: Detected,
    pub virtual_size: Option<u64>,
    /// Why the image is unsafe, if it is.
    pub unsafe_reason: Option<String>,
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}
fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_be_bytes(a)
    })
}
fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Inspects an image of `size` bytes from its `head` and `tail`.
pub fn inspect(head: &[u8], tail: &[u8], size: u64) -> Inspection {
    if head.starts_with(b"QFI\xfb") {
        return inspect_qcow2(head);
    }
    if head.starts_with(b"KDMV") {
        return inspect_vmdk_sparse(head);
    }
    if head.starts_with(b"# Disk DescriptorFile") {
        return Inspection {
            format: Detected::Vmdk,
            virtual_size: None,
            unsafe_reason: Some(
                "a vmdk descriptor file refers to other files; upload a monolithic sparse vmdk"
                    .into(),
            ),
        };
    }
    if head.starts_with(b"vhdxfile") {
        return Inspection {
            format: Detected::Vhdx,
            virtual_size: None,
            unsafe_reason: None,
        };
    }
    if head.starts_with(b"conectix") || tail.starts_with(b"conectix") {
        let footer = if tail.starts_with(b"conectix") {
            tail
        } else {
            head
        };
        return Inspection {
            format: Detected::Vhd,
            virtual_size: be_u64(footer, 48),
            unsafe_reason: None,
        };
    }
    if head.get(0x40..0x44) == Some(&[0x7f, 0x10, 0xda, 0xbe]) {
        return Inspection {
            format: Detected::Vdi,
            virtual_size: le_u64(head, 0x170),
            unsafe_reason: None,
        };
    }
    for off in [0x8001usize, 0x8801, 0x9001] {
        if head.get(off..off + 5) == Some(b"CD001") {
            return Inspection {
                format: Detected::Iso,
                virtual_size: Some(size),
                unsafe_reason: None,
            };
        }
    }
    Inspection {
        format: Detected::Raw,
        virtual_size: Some(size),
        unsafe_reason: None,
    }
}

fn inspect_qcow2(h: &[u8]) -> Inspection {
    let version = be_u32(h, 4).unwrap_or(0);
    let backing = be_u64(h, 8).unwrap_or(0);
    let virtual_size = be_u64(h, 24);
    let mut reason = None;
    if !(version == 2 || version == 3) {
        reason = Some(format!("unsupported qcow2 version {version}"));
    } else if backing != 0 {
        reason = Some("qcow2 images with a backing file are not allowed".into());
    } else if version == 3 {
        let incompatible = be_u64(h, 72).unwrap_or(0);
        // Bit 2: the guest data lives in an external data file.
        if incompatible & (1 << 2) != 0 {
            reason = Some("qcow2 images with an external data file are not allowed".into());
        }
    }
    Inspection {
        format: Detected::Qcow2,
        virtual_size,
        unsafe_reason: reason,
    }
}

fn inspect_vmdk_sparse(h: &[u8]) -> Inspection {
    // Capacity in sectors at 12, embedded descriptor offset/size (sectors) at 28/36.
    let capacity = le_u64(h, 12).map(|s| s.saturating_mul(512));
    let sectors = |off| usize::try_from(le_u64(h, off).unwrap_or(0)).unwrap_or(usize::MAX);
    let desc_off = sectors(28).saturating_mul(512);
    let desc_len = sectors(36).saturating_mul(512);
    let desc = h
        .get(desc_off..(desc_off + desc_len).min(h.len()))
        .unwrap_or(&[]);
    let text = String::from_utf8_lossy(desc);
    let create_type = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("createType="))
        .map(|v| v.trim().trim_matches('"').to_string());
    let extents = text
        .lines()
        .filter(|l| l.starts_with("RW ") || l.starts_with("RDONLY ") || l.starts_with("NOACCESS "))
        .count();
    let reason = match create_type.as_deref() {
        Some("monolithicSparse") | Some("streamOptimized") if extents <= 1 => None,
        Some(t) => Some(format!("vmdk createType {t} is not allowed (only single-extent monolithicSparse or streamOptimized)")),
        None => Some("the vmdk has no readable descriptor".into()),
    };
    Inspection {
        format: Detected::Vmdk,
        virtual_size: capacity,
        unsafe_reason: reason,
    }
}

/// Whether content detected as `found` may be stored under the declared `disk_format`.
pub fn matches_declared(declared: &str, found: Detected) -> bool {
    match declared {
        // Raw-like formats: anything that is not a structured disk format (an ISO is raw sectors).
        "raw" | "ami" | "aki" | "ari" => matches!(found, Detected::Raw | Detected::Iso),
        "iso" => found == Detected::Iso,
        other => other == found.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qcow2(version: u32, backing: u64, incompatible: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&version.to_be_bytes());
        h[8..16].copy_from_slice(&backing.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        h[72..80].copy_from_slice(&incompatible.to_be_bytes());
        h
    }

    #[test]
    fn qcow2_safe_and_unsafe() {
        let i = inspect(&qcow2(3, 0, 0), &[], 512);
        assert_eq!(i.format, Detected::Qcow2);
        assert_eq!(i.virtual_size, Some(1 << 30));
        assert!(i.unsafe_reason.is_none());
        assert!(inspect(&qcow2(3, 0x200, 0), &[], 512)
            .unsafe_reason
            .unwrap()
            .contains("backing file"));
        assert!(inspect(&qcow2(3, 0, 4), &[], 512)
            .unsafe_reason
            .unwrap()
            .contains("data file"));
        assert!(
            inspect(&qcow2(2, 0, 4), &[], 512).unsafe_reason.is_none(),
            "v2 has no feature bits"
        );
    }

    #[test]
    fn iso_vhd_raw() {
        let mut iso = vec![0u8; 0x9000];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(inspect(&iso, &[], 0x9000).format, Detected::Iso);
        let mut footer = vec![0u8; 512];
        footer[..8].copy_from_slice(b"conectix");
        footer[48..56].copy_from_slice(&4096u64.to_be_bytes());
        let i = inspect(&[0u8; 1024], &footer, 5000);
        assert_eq!((i.format, i.virtual_size), (Detected::Vhd, Some(4096)));
        assert_eq!(inspect(b"hello world", b"", 11).format, Detected::Raw);
    }

    #[test]
    fn vmdk_descriptor_checks() {
        let mut h = vec![0u8; 4096];
        h[..4].copy_from_slice(b"KDMV");
        h[12..20].copy_from_slice(&2048u64.to_le_bytes());
        h[28..36].copy_from_slice(&1u64.to_le_bytes());
        h[36..44].copy_from_slice(&2u64.to_le_bytes());
        let desc =
            b"# Disk DescriptorFile\ncreateType=\"monolithicSparse\"\nRW 2048 SPARSE \"x.vmdk\"\n";
        h[512..512 + desc.len()].copy_from_slice(desc);
        let i = inspect(&h, &[], 4096);
        assert_eq!(i.format, Detected::Vmdk);
        assert_eq!(i.virtual_size, Some(2048 * 512));
        assert!(i.unsafe_reason.is_none());
        let bad = b"# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n";
        h[512..512 + bad.len()].copy_from_slice(bad);
        assert!(inspect(&h, &[], 4096).unsafe_reason.is_some());
        assert!(inspect(b"# Disk DescriptorFile\n", &[], 30)
            .unsafe_reason
            .is_some());
    }

    #[test]
    fn declared_formats() {
        assert!(matches_declared("qcow2", Detected::Qcow2));
        assert!(!matches_declared("qcow2", Detected::Raw));
        assert!(
            !matches_declared("raw", Detected::Qcow2),
            "a qcow2 must not hide as raw"
        );
        assert!(matches_declared("raw", Detected::Iso));
        assert!(matches_declared("aki", Detected::Raw));
        assert!(!matches_declared("iso", Detected::Raw));
    }
}
