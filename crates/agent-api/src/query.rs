//! Questions only a host can answer.

use serde::{Deserialize, Serialize};

/// A question the controller asks of a host's agent, answered from its driver. Agents fetch
/// the questions waiting for them (`Controller::queries`), in the controller's process and on
/// other machines alike, and answer each (`Controller::answer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Query {
    pub id: String,
    /// The guest asked about.
    pub uuid: String,
    pub ask: Ask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// The whole serial console log.
    ConsoleOutput,
    /// The driver's diagnostics of the guest, as JSON text.
    Diagnostics,
    /// Dial back with the guest's screen (VNC): the query's id names the connection; the
    /// answer is only an error when it cannot be done.
    VncConsole,
    /// Dial back with the guest's serial console, likewise.
    SerialConsole,
}

impl Ask {
    /// The name stored and sent (`console_output`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ask::ConsoleOutput => "console_output",
            Ask::Diagnostics => "diagnostics",
            Ask::VncConsole => "vnc_console",
            Ask::SerialConsole => "serial_console",
        }
    }

    /// The question that has the agent dial back with a console of `kind`.
    pub fn dial_back(kind: crate::ConsoleKind) -> Ask {
        match kind {
            crate::ConsoleKind::Vnc => Ask::VncConsole,
            crate::ConsoleKind::Serial => Ask::SerialConsole,
        }
    }

    /// The console to dial back with, for those questions.
    pub fn console(self) -> Option<crate::ConsoleKind> {
        match self {
            Ask::VncConsole => Some(crate::ConsoleKind::Vnc),
            Ask::SerialConsole => Some(crate::ConsoleKind::Serial),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<Ask> {
        Some(match s {
            "console_output" => Ask::ConsoleOutput,
            "diagnostics" => Ask::Diagnostics,
            "vnc_console" => Ask::VncConsole,
            "serial_console" => Ask::SerialConsole,
            _ => return None,
        })
    }
}

/// The answer to a [`Query`]: its text, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub result: Option<String>,
    pub error: Option<String>,
}

impl Answer {
    pub fn of(r: Result<String, String>) -> Answer {
        match r {
            Ok(text) => Answer {
                result: Some(text),
                error: None,
            },
            Err(e) => Answer {
                result: None,
                error: Some(e),
            },
        }
    }

    /// Ok(text) or Err(why the host could not tell).
    pub fn into_result(self) -> Result<String, String> {
        match (self.result, self.error) {
            (_, Some(e)) => Err(e),
            (Some(text), None) => Ok(text),
            (None, None) => Err("the host gave no answer".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ask_names_round_trip_and_match_serde() {
        for a in [
            Ask::ConsoleOutput,
            Ask::Diagnostics,
            Ask::VncConsole,
            Ask::SerialConsole,
        ] {
            assert_eq!(Ask::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert_eq!(Ask::parse("reboot"), None);
    }
}
