//! Guests: what the controller wants each to be, and what the agent saw.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Nova's power states (nova/compute/power_state.py), as shown in `OS-EXT-STS:power_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(i64)]
pub enum PowerState {
    NoState = 0,
    Running = 1,
    Paused = 3,
    Shutdown = 4,
    Crashed = 6,
    Suspended = 7,
}

impl PowerState {
    pub fn code(self) -> i64 {
        self as i64
    }
    pub fn from_code(c: i64) -> PowerState {
        match c {
            1 => PowerState::Running,
            3 => PowerState::Paused,
            4 => PowerState::Shutdown,
            6 => PowerState::Crashed,
            7 => PowerState::Suspended,
            _ => PowerState::NoState,
        }
    }
}

/// Everything a driver needs to create a guest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestSpec {
    pub uuid: String,
    pub name: String,
    pub hostname: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    /// The flavor's ephemeral disk, a second disk formatted ext4 (label `ephemeral0`); 0:
    /// none.
    #[serde(default)]
    pub ephemeral_gb: i64,
    /// The flavor's swap disk, in MiB, formatted as swap (label `swap0`); 0: none.
    #[serde(default)]
    pub swap_mb: i64,
    pub image_ref: String,
    /// Base64, as the API took it.
    pub user_data: Option<String>,
    pub key_data: Option<String>,
    /// The metadata the guest sees (`meta` in meta_data.json).
    pub metadata: serde_json::Value,
    /// The key pair's name (`public_keys` in meta_data.json).
    #[serde(default)]
    pub key_name: Option<String>,
    /// Whether the guest gets a config drive (asked for, or forced by the cloud).
    #[serde(default)]
    pub config_drive: bool,
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// What the guest is given once, as it is built (personality files, the admin
    /// password): only while the operation that asked for it (create, rebuild) is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<Injected>,
    /// The guest's NICs, one per port, in order.
    #[serde(default)]
    pub nics: Vec<GuestNic>,
}

/// One NIC of a guest: the port it is, its MAC, and its network's MTU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNic {
    pub port_id: String,
    pub mac: String,
    pub mtu: u32,
    /// Its place among the server's NICs, kept while it is attached (a NIC attached later
    /// takes the lowest free one): the hypervisor puts it at the same device address on
    /// every start and on a live migration's destination, whatever was hot-plugged before.
    /// None: in the order of the list (a spec from before NICs were hot-plugged).
    #[serde(default)]
    pub position: Option<u32>,
}

impl GuestSpec {
    /// The spec without what was injected, as a host keeps it (the admin password and the
    /// personality files reach the guest through its config drive only).
    pub fn without_injected(&self) -> GuestSpec {
        GuestSpec {
            injected: None,
            ..self.clone()
        }
    }
}

/// Nova's personality files and admin password, written into the guest's config drive
/// (`openstack/content/NNNN` with `files` and `admin_pass` in `meta_data.json`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injected {
    #[serde(default)]
    pub files: Vec<InjectedFile>,
    #[serde(default)]
    pub admin_pass: Option<String>,
}

/// Never shows the password or the files' contents (a spec may be logged).
impl fmt::Debug for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injected")
            .field(
                "files",
                &self.files.iter().map(|x| &x.path).collect::<Vec<_>>(),
            )
            .field("admin_pass", &self.admin_pass.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// One personality file: where the guest puts it, and its contents in base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedFile {
    pub path: String,
    pub contents: String,
}

/// The power state the controller wants a guest in; `Absent` means: not on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Running,
    Stopped,
    Paused,
    Suspended,
    Absent,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
            Desired::Paused => "paused",
            Desired::Suspended => "suspended",
            Desired::Absent => "absent",
        }
    }

    pub fn parse(s: &str) -> Option<Desired> {
        Some(match s {
            "running" => Desired::Running,
            "stopped" => Desired::Stopped,
            "paused" => Desired::Paused,
            "suspended" => Desired::Suspended,
            "absent" => Desired::Absent,
            _ => return None,
        })
    }

    /// The power state a guest in this desired state shows.
    pub fn power(self) -> PowerState {
        match self {
            Desired::Running => PowerState::Running,
            Desired::Stopped => PowerState::Shutdown,
            Desired::Paused => PowerState::Paused,
            Desired::Suspended => PowerState::Suspended,
            Desired::Absent => PowerState::NoState,
        }
    }
}

/// A one-shot operation on top of the desired power state, done once per generation, with
/// its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneShot {
    SoftReboot,
    HardReboot,
    /// Destroy and spawn again (rebuild, evacuate to this host).
    Recreate,
    CrashDump,
    /// Boot `image` (the guest's own image when None) with the guest's disk attached.
    Rescue {
        image: Option<String>,
    },
    Unrescue,
    /// Copy the root disk into the (already created, empty) image `image`: createImage,
    /// createBackup, shelve.
    Snapshot {
        image: String,
    },
    /// Power off and take the spec's sizes (a resize to, or its revert on, the same host).
    Resize,
}

impl OneShot {
    /// The operation's name (`soft_reboot`, `rescue`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            OneShot::SoftReboot => "soft_reboot",
            OneShot::HardReboot => "hard_reboot",
            OneShot::Recreate => "recreate",
            OneShot::CrashDump => "crash_dump",
            OneShot::Rescue { .. } => "rescue",
            OneShot::Unrescue => "unrescue",
            OneShot::Snapshot { .. } => "snapshot",
            OneShot::Resize => "resize",
        }
    }

    /// The image a snapshot fills.
    pub fn snapshot_image(&self) -> Option<&str> {
        match self {
            OneShot::Snapshot { image } => Some(image),
            _ => None,
        }
    }
}

/// The compact text form kept in the database: the name, and the argument after a colon for
/// the operations that have one (`rescue:<image>`, `snapshot:<image>`).
impl fmt::Display for OneShot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OneShot::Rescue { image: Some(i) } | OneShot::Snapshot { image: i } => {
                write!(f, "{}:{i}", self.name())
            }
            _ => f.write_str(self.name()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("not a one-shot operation: {0:?}")]
pub struct UnknownOneShot(pub String);

impl FromStr for OneShot {
    type Err = UnknownOneShot;
    fn from_str(s: &str) -> Result<OneShot, UnknownOneShot> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a.to_string())),
            None => (s, None),
        };
        Ok(match (name, arg) {
            ("soft_reboot", None) => OneShot::SoftReboot,
            ("hard_reboot", None) => OneShot::HardReboot,
            ("recreate", None) => OneShot::Recreate,
            ("crash_dump", None) => OneShot::CrashDump,
            ("rescue", image) => OneShot::Rescue { image },
            ("unrescue", None) => OneShot::Unrescue,
            ("snapshot", Some(image)) => OneShot::Snapshot { image },
            ("resize", None) => OneShot::Resize,
            _ => return Err(UnknownOneShot(s.to_string())),
        })
    }
}

/// One guest of a host as the controller wants it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesiredGuest {
    pub spec: GuestSpec,
    pub desired: Desired,
    pub one_shot: Option<OneShot>,
    /// Changes with every API change of the guest's desired state.
    pub generation: i64,
    /// True when the controller already recorded this generation as done, with
    /// `known_power`: then only a change is worth a report.
    pub settled: bool,
    pub known_power: PowerState,
    /// How the guest comes here from another host, while a move brings it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrival: Option<crate::Arrival>,
    /// What this host (a move's source) does with its guest before it goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure: Option<crate::Departure>,
}

/// What the agent saw after converging one guest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestReport {
    pub uuid: String,
    /// The generation this report answers.
    pub generation: i64,
    /// The guest's power state now (`NoState` when it is not on this host).
    pub power: PowerState,
    /// True when the guest is not on this host any more.
    pub gone: bool,
    /// Why converging failed, for the instance fault.
    pub error: Option<String>,
    /// A live migration's destination waiting for the guest: where (opaque to the
    /// controller, passed to the source as [`Departure::Live`](crate::Departure)'s endpoint).
    /// The guest is not there yet, whatever `power` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming: Option<String>,
    /// A live migration's source: how far it is with sending the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing: Option<crate::Outgoing>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shots_keep_their_arguments_in_text_form() {
        let all = [
            OneShot::SoftReboot,
            OneShot::HardReboot,
            OneShot::Recreate,
            OneShot::CrashDump,
            OneShot::Rescue { image: None },
            OneShot::Rescue {
                image: Some("img-1".into()),
            },
            OneShot::Unrescue,
            OneShot::Snapshot {
                image: "img-2".into(),
            },
            OneShot::Resize,
        ];
        for s in all {
            assert_eq!(s.to_string().parse::<OneShot>().unwrap(), s);
        }
        assert_eq!(OneShot::Rescue { image: None }.to_string(), "rescue");
        assert_eq!(
            "snapshot:abc".parse::<OneShot>().unwrap(),
            OneShot::Snapshot {
                image: "abc".into()
            }
        );
        // A snapshot without its image, or an argument where none is taken, is no operation.
        assert!("snapshot".parse::<OneShot>().is_err());
        assert!("hard_reboot:x".parse::<OneShot>().is_err());
        assert!("reboot".parse::<OneShot>().is_err());
    }

    #[test]
    fn desired_states_round_trip() {
        for d in [
            Desired::Running,
            Desired::Stopped,
            Desired::Paused,
            Desired::Suspended,
            Desired::Absent,
        ] {
            assert_eq!(Desired::parse(d.as_str()), Some(d));
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        assert_eq!(Desired::Stopped.power(), PowerState::Shutdown);
    }

    #[test]
    fn power_codes_are_novas() {
        for p in [
            PowerState::NoState,
            PowerState::Running,
            PowerState::Paused,
            PowerState::Shutdown,
            PowerState::Crashed,
            PowerState::Suspended,
        ] {
            assert_eq!(PowerState::from_code(p.code()), p);
        }
        assert_eq!(PowerState::Shutdown.code(), 4);
        assert_eq!(PowerState::from_code(99), PowerState::NoState);
    }
}
