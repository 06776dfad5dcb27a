//! Guests' consoles as the console proxy reaches them: a byte stream to a guest's VNC server
//! or serial port. Hosts whose agents run in this process register how their guests' consoles
//! are opened (the QEMU driver's sockets); a guest on a host whose agent runs elsewhere is not
//! reachable yet (its agent will have to dial back to carry the stream).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// A console's bytes, both ways.
pub trait ConsoleStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ConsoleStream for T {}

/// Which console of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleKind {
    /// The screen, over RFB (VNC).
    Vnc,
    /// The first serial port.
    Serial,
}

impl ConsoleKind {
    /// The console of a token's type (`novnc`, `serial`); None for one not proxied here.
    pub fn of_type(console_type: &str) -> Option<ConsoleKind> {
        match console_type {
            "novnc" => Some(ConsoleKind::Vnc),
            "serial" => Some(ConsoleKind::Serial),
            _ => None,
        }
    }
}

#[async_trait]
pub trait Consoles: Send + Sync {
    /// Opens the `kind` console of guest `uuid`; Err says why it cannot be.
    async fn open(&self, uuid: &str, kind: ConsoleKind) -> Result<Box<dyn ConsoleStream>, String>;
}

/// The console openers of the hosts whose agents run in this process, by host name.
#[derive(Default)]
pub struct ConsoleHosts(std::sync::RwLock<HashMap<String, Arc<dyn Consoles>>>);

impl ConsoleHosts {
    pub fn register(&self, host: &str, consoles: Arc<dyn Consoles>) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        m.insert(host.to_string(), consoles);
    }

    /// How the guests of `host` are reached, when it is one of this process's hosts.
    pub fn of(&self, host: &str) -> Option<Arc<dyn Consoles>> {
        let m = self.0.read().unwrap_or_else(|p| p.into_inner());
        m.get(host).cloned()
    }
}
