//! Guests' consoles carried between a host and the controller's console proxy. Controllers
//! never connect to agents: for a guest on a host whose agent runs elsewhere, the controller
//! asks (a [`Query`](crate::Query) with [`Ask::VncConsole`](crate::Ask) or
//! [`Ask::SerialConsole`](crate::Ask)) and the agent dials back
//! ([`Controller::dial_console`](crate::Controller)), then carries bytes between that
//! connection and the guest's console.

use tokio::io::{AsyncRead, AsyncWrite};

/// The protocol an agent's console connection over HTTP is upgraded to (`Upgrade:` header):
/// the console's bytes, unframed.
pub const CONSOLE_UPGRADE: &str = "ferrostack-console";

/// Which console of a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleKind {
    /// The screen, over RFB (VNC).
    Vnc,
    /// The first serial port.
    Serial,
}

impl ConsoleKind {
    /// The console of a console token's type (`novnc`, `serial`); None for one not proxied.
    pub fn of_type(console_type: &str) -> Option<ConsoleKind> {
        match console_type {
            "novnc" => Some(ConsoleKind::Vnc),
            "serial" => Some(ConsoleKind::Serial),
            _ => None,
        }
    }
}

/// A console's bytes, both ways.
pub trait ConsoleIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ConsoleIo for T {}
