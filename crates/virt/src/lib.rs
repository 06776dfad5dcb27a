//! Hypervisor drivers behind one trait. The agent of a host owns one [`Driver`] and converges
//! what it runs to what the controller wants; drivers only do what they are told, idempotently.
//!
//! `fake` keeps instances in memory with the same state transitions a real guest goes through
//! (for API tests and for thousands of simulated hosts in one process); `qemu` runs one QEMU
//! per guest.

pub mod fake;
pub mod qemu;
pub mod vif;

// The protocol's guest and host types, which drivers take and return.
pub use ferrostack_agent_api::{
    ConsoleIo, ConsoleKind, GuestSpec, HostInfo, MoveProgress, Outgoing, PowerState,
};

/// A guest as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub uuid: String,
    pub power: PowerState,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("instance {0} does not exist on this host")]
    NotFound(String),
    /// The driver could not do it; `source` is the underlying error when there is one (an
    /// I/O error, a QMP error, a failed command).
    #[error("{message}")]
    Failed {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    #[error("{0} is not supported by the {1} driver")]
    Unsupported(&'static str, &'static str),
}

impl DriverError {
    pub fn failed(message: impl Into<String>) -> DriverError {
        DriverError::Failed {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by `source`, described by `message` (which need not repeat it).
    pub fn failed_with(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> DriverError {
        DriverError::Failed {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// Where a live migration's destination is with the guest it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Waiting for (or receiving) the guest at `endpoint`, which the source is given.
    Waiting { endpoint: String },
    /// The guest is here, paused until the agent lets it run.
    Arrived,
}

pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// A hypervisor driver. Every call is idempotent with respect to the end state: spawning a
/// guest that exists, or destroying one that does not, is not an error.
#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    /// `fake`, `qemu`: shown as `hypervisor_type` (upper-cased by Nova convention for qemu).
    fn name(&self) -> &'static str;
    async fn host_info(&self) -> Result<HostInfo>;
    /// Every guest the driver knows on this host, running or not.
    async fn list(&self) -> Result<Vec<Observed>>;
    /// Creates and starts a guest.
    async fn spawn(&self, spec: &GuestSpec) -> Result<()>;
    /// Stops and removes a guest and everything it owns on the host.
    async fn destroy(&self, uuid: &str) -> Result<()>;
    async fn power_on(&self, uuid: &str) -> Result<()>;
    async fn power_off(&self, uuid: &str) -> Result<()>;
    async fn reboot(&self, uuid: &str, hard: bool) -> Result<()>;
    async fn pause(&self, uuid: &str) -> Result<()>;
    async fn unpause(&self, uuid: &str) -> Result<()>;
    async fn suspend(&self, uuid: &str) -> Result<()>;
    async fn resume(&self, uuid: &str) -> Result<()>;
    /// The serial console log (the last `max_lines` lines when given).
    async fn console_output(&self, uuid: &str, max_lines: Option<usize>) -> Result<String>;
    /// Opens the guest's `kind` console (the VNC server of its screen, its serial port).
    async fn open_console(&self, uuid: &str, kind: ConsoleKind) -> Result<Box<dyn ConsoleIo>>;
    /// Driver-specific diagnostics (os-server-diagnostics).
    async fn diagnostics(&self, uuid: &str) -> Result<serde_json::Value>;
    /// Injects an NMI (trigger crash dump).
    async fn inject_nmi(&self, uuid: &str) -> Result<()>;
    /// Restarts the guest from `rescue_image_ref` with its own disk attached as the second
    /// disk (Nova's rescue); idempotent while rescued.
    async fn rescue(&self, uuid: &str, rescue_image_ref: &str) -> Result<()>;
    /// Restarts the guest from its own disk again.
    async fn unrescue(&self, uuid: &str) -> Result<()>;
    /// Writes a copy of the guest's root disk to `dest` (a new file the caller owns) and
    /// returns its disk format (`raw`, `qcow2`).
    async fn snapshot(&self, uuid: &str, dest: &std::path::Path) -> Result<String>;
    /// Gives a powered-off guest the sizes of `spec` (vCPUs, memory, a root disk that only
    /// grows): a resize on the guest's own host, or its revert.
    async fn resize(&self, spec: &GuestSpec) -> Result<()>;

    /// Cold move, on the source: writes the root disk of the powered-off guest to `dest` for
    /// its new host; false when the driver keeps no disk (the fake).
    async fn hand_over(&self, uuid: &str, dest: &std::path::Path) -> Result<bool>;
    /// Cold move, on the destination: creates and starts the guest from the disk another
    /// host handed over (`None`: there was none, as from the fake driver: a fresh disk).
    async fn receive(&self, spec: &GuestSpec, disk: Option<&std::path::Path>) -> Result<()>;
    /// Live migration, on the destination: prepares to receive the guest (idempotent: once
    /// prepared, reports where it is). `sent`: the source has sent everything, so a guest
    /// that arrived may be finished (its disk no longer served to the source) and run.
    async fn incoming(&self, spec: &GuestSpec, sent: bool) -> Result<Incoming>;
    /// Live migration, on the source: one step of sending the running (or paused) guest,
    /// disks and memory, to the destination waiting at `endpoint`. Called again and again:
    /// starts the copy the first time, then says how far it is, and [`Outgoing::Sent`] once
    /// the destination has all of it (the guest here is then stopped, to be destroyed).
    /// `force_complete`: pause the guest and lift any bandwidth cap so it finishes. A failed
    /// copy is cancelled (the guest runs on here) and returned as the error.
    async fn send(&self, uuid: &str, endpoint: &str, force_complete: bool) -> Result<Outgoing>;
    /// Live migration called off (abort, or the controller gave it up): stops any sending of
    /// the guest that is under way, and the guest runs (or stays paused) here as before it
    /// began. Called on every pass for every guest with no move to make, so it must be cheap
    /// when nothing is being sent.
    async fn stay(&self, uuid: &str) -> Result<()>;
    /// Makes the guest's NICs those of `spec` (`spec.nics`, by port): hot-plugged into and
    /// out of a running or paused guest, and kept for its next start. Idempotent.
    async fn set_nics(&self, spec: &GuestSpec) -> Result<()>;
}
