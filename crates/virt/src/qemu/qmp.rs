//! QMP, QEMU's control protocol, over the guest's unix socket (through the `qapi` crate). A
//! connection is opened per operation: QEMU serves one QMP client at a time, and an agent that
//! restarts must find the socket free.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qapi::futures::QmpStreamTokio;
use qapi::qmp;

use super::{QemuError, Result};

/// How long one QMP operation may take (connect, negotiate, execute).
const QMP_TIMEOUT: Duration = Duration::from_secs(10);

/// QEMU's run state (`query-status`), as the lifecycle needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    /// Stopped by `stop` (pause) or not started yet (`-S`).
    Paused,
    /// The guest powered itself off and QEMU waits (`-no-shutdown`).
    Shutdown,
    /// Suspended to RAM by the guest.
    Suspended,
    /// Anything else QEMU reports (`inmigrate`, `postmigrate`, `internal-error`, ...).
    Other,
}

impl RunState {
    fn from_qapi(name: &str) -> RunState {
        match name {
            "running" => RunState::Running,
            "paused" | "prelaunch" => RunState::Paused,
            "shutdown" => RunState::Shutdown,
            "suspended" => RunState::Suspended,
            _ => RunState::Other,
        }
    }
}

/// The QMP endpoint of one guest.
#[derive(Debug, Clone)]
pub struct Qmp {
    socket: PathBuf,
}

impl Qmp {
    pub fn new(socket: &Path) -> Qmp {
        Qmp {
            socket: socket.to_path_buf(),
        }
    }

    /// Runs `command` on a fresh, negotiated connection.
    async fn execute<C: qapi::qmp::QmpCommand>(
        &self,
        name: &'static str,
        command: C,
    ) -> Result<C::Ok> {
        let socket = self.socket.clone();
        let run = async move {
            let stream = QmpStreamTokio::open_uds(&socket)
                .await
                .map_err(super::io(format!("connecting to {}", socket.display())))?;
            let stream = stream
                .negotiate()
                .await
                .map_err(super::io("QMP capabilities negotiation"))?;
            let (service, events) = stream.spawn_tokio();
            let result = service.execute(command).await;
            drop(service);
            events.abort();
            result.map_err(|e| QemuError::Qmp {
                command: name,
                message: e.to_string(),
            })
        };
        tokio::time::timeout(QMP_TIMEOUT, run)
            .await
            .map_err(|_| QemuError::Qmp {
                command: name,
                message: format!("no answer within {} s", QMP_TIMEOUT.as_secs()),
            })?
    }

    pub async fn status(&self) -> Result<RunState> {
        let info = self.execute("query-status", qmp::query_status {}).await?;
        let name = serde_json::to_value(info.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(RunState::from_qapi(&name))
    }

    /// Pauses the guest's vCPUs (Nova's pause).
    pub async fn stop(&self) -> Result<()> {
        self.execute("stop", qmp::stop {}).await.map(|_| ())
    }

    /// Resumes the guest's vCPUs (unpause; also starts a guest launched with `-S`).
    pub async fn cont(&self) -> Result<()> {
        self.execute("cont", qmp::cont {}).await.map(|_| ())
    }

    /// Presses the ACPI power button (a graceful stop, which the guest may ignore).
    pub async fn powerdown(&self) -> Result<()> {
        self.execute("system_powerdown", qmp::system_powerdown {})
            .await
            .map(|_| ())
    }

    /// Resets the machine (hard reboot without restarting QEMU).
    pub async fn reset(&self) -> Result<()> {
        self.execute("system_reset", qmp::system_reset {})
            .await
            .map(|_| ())
    }

    /// Injects an NMI (trigger crash dump).
    pub async fn inject_nmi(&self) -> Result<()> {
        self.execute("inject-nmi", qmp::inject_nmi {})
            .await
            .map(|_| ())
    }

    /// Ends QEMU at once.
    pub async fn quit(&self) -> Result<()> {
        self.execute("quit", qmp::quit {}).await.map(|_| ())
    }
}
