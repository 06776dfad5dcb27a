//! The QEMU driver's building blocks (issue 14, in progress): a QEMU process per guest,
//! detached from the agent, and its QMP control socket. Not yet a [`crate::Driver`]: the
//! driver that spawns guests from images, with disks, consoles and every lifecycle action,
//! is built on these.

pub mod disk;
pub mod driver;
pub mod host;
pub mod machine;
pub mod probe;
pub mod process;
pub mod qmp;

pub use probe::{Accel, Choice, VirtTypeSetting};
pub use process::{GuestDir, QemuProcess};
pub use qmp::{Qmp, RunState};

/// Why a QEMU operation failed, with the underlying error.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// QEMU refused to start; `stderr` is its own explanation.
    #[error("QEMU did not start: {stderr}")]
    Launch { stderr: String },
    #[error("QMP {command}: {message}")]
    Qmp {
        command: &'static str,
        message: String,
    },
    #[error("guest {0} has no running QEMU")]
    NotRunning(String),
}

impl From<QemuError> for crate::DriverError {
    fn from(e: QemuError) -> Self {
        crate::DriverError::failed_with(e.to_string(), e)
    }
}

pub type Result<T, E = QemuError> = std::result::Result<T, E>;

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> QemuError {
    let what = what.into();
    move |source| QemuError::Io { what, source }
}
