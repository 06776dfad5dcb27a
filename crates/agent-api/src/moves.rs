//! Guests moving between hosts with their disks: what the destination and the source of a
//! move are asked to do on top of the guest's desired power state.
//!
//! A cold move (resize or migration to another host): the source powers its guest off and
//! hands its root disk to the controller ([`Departure::HandOver`]); once it has, the
//! destination gets the guest with [`Arrival::Disk`] and builds it from that disk. A live
//! migration: the destination prepares a paused guest that waits for the running one
//! ([`Arrival::Live`]) and reports where it listens ([`GuestReport::incoming`](crate::GuestReport));
//! the source then sends disk and memory there ([`Departure::Live`]) and removes its guest;
//! the controller tells the destination, which lets the guest run on.

use serde::{Deserialize, Serialize};

/// How a guest comes to the host it is desired on, when it is not there yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrival {
    /// Built from the disk the source handed over for `migration` (cold moves).
    Disk { migration: String },
    /// Received running from the source (live migration). `sent`: the source has sent
    /// everything and let its copy go, so the guest may run here.
    Live { migration: String, sent: bool },
}

impl Arrival {
    pub fn migration(&self) -> &str {
        match self {
            Arrival::Disk { migration } | Arrival::Live { migration, .. } => migration,
        }
    }
}

/// What the source of a move does with its guest before it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Departure {
    /// Power off and hand the root disk to the controller for `migration`.
    HandOver { migration: String },
    /// Send the running guest (its local disks and memory) to the destination, which waits
    /// at `endpoint` (as the destination's driver reported it), then remove it here.
    Live { migration: String, endpoint: String },
}

impl Departure {
    pub fn migration(&self) -> &str {
        match self {
            Departure::HandOver { migration } | Departure::Live { migration, .. } => migration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_are_tagged_objects() {
        let a = Arrival::Live {
            migration: "m".into(),
            sent: false,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "live", "migration": "m", "sent": false})
        );
        assert_eq!(serde_json::from_value::<Arrival>(v).unwrap(), a);
        let d = Departure::HandOver {
            migration: "m".into(),
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "hand_over", "migration": "m"})
        );
        assert_eq!(d.migration(), "m");
    }
}
