//! Guests' consoles as the console proxy reaches them: a byte stream to a guest's VNC server
//! or serial port. Hosts whose agents run in this process register how their guests' consoles
//! are opened (the QEMU driver's sockets); for a guest on a host whose agent runs elsewhere,
//! the agent dials back to carry the stream ([`ConsoleDials`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

/// A console's bytes, both ways; which console of a guest (the agent protocol's types: a
/// remote host's agent carries the same consoles).
pub use ferrostack_agent_api::{ConsoleIo as ConsoleStream, ConsoleKind};

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

/// Consoles waiting for an agent to dial back with them, by the id of the question that asked
/// for each (and the host that must answer it).
/// Where an agent's connection goes: to the request waiting for it.
type Waiting = tokio::sync::oneshot::Sender<Box<dyn ConsoleStream>>;

#[derive(Default)]
pub struct ConsoleDials(std::sync::Mutex<HashMap<String, (String, Waiting)>>);

impl ConsoleDials {
    /// Waits for `host`'s agent to dial back for question `id`.
    pub fn expect(
        &self,
        id: &str,
        host: &str,
    ) -> tokio::sync::oneshot::Receiver<Box<dyn ConsoleStream>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(id.to_string(), (host.to_string(), tx));
        rx
    }

    /// Whether a console waits for `host`'s agent under question `id`.
    pub fn is_expected(&self, id: &str, host: &str) -> bool {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id).is_some_and(|(h, _)| h == host)
    }

    /// Hands the agent's connection to whoever waits for it; false when nobody does (any
    /// more), or not from this host.
    pub fn connect(&self, id: &str, host: &str, stream: Box<dyn ConsoleStream>) -> bool {
        let waiting = {
            let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match m.get(id) {
                Some((h, _)) if h == host => m.remove(id),
                _ => None,
            }
        };
        waiting.is_some_and(|(_, tx)| tx.send(stream).is_ok())
    }

    /// Stops waiting for question `id`.
    pub fn forget(&self, id: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(id);
    }
}
