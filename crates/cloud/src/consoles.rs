//! The consoles of the QEMU hosts whose agents run in this process, for the console proxy:
//! the guests' VNC and serial sockets, opened directly.

use std::path::PathBuf;

use ferrostack_compute::peers::{ConsoleKind, ConsoleStream, Consoles};
use ferrostack_virt::qemu::GuestDir;

pub struct QemuConsoles {
    /// The host's socket directory, where each of its guests has its sockets.
    pub run_root: PathBuf,
}

#[async_trait::async_trait]
impl Consoles for QemuConsoles {
    async fn open(&self, uuid: &str, kind: ConsoleKind) -> Result<Box<dyn ConsoleStream>, String> {
        // Only the socket directory matters here.
        let dir = GuestDir::with_run(&self.run_root, &self.run_root, uuid);
        let socket = match kind {
            ConsoleKind::Vnc => dir.vnc_socket(),
            ConsoleKind::Serial => dir.serial_socket(),
        };
        tokio::net::UnixStream::connect(&socket)
            .await
            .map(|s| Box::new(s) as Box<dyn ConsoleStream>)
            .map_err(|e| format!("the guest's console is not open ({e})"))
    }
}
