//! Guests moving between hosts with their disks: what the destination and the source of a
//! move are asked to do on top of the guest's desired power state.
//!
//! A cold move (resize or migration to another host): the source powers its guest off and
//! hands its root disk to the controller ([`Departure::HandOver`]); once it has, the
//! destination gets the guest with [`Arrival::Disk`] and builds it from that disk. A live
//! migration: the destination prepares a paused guest that waits for the running one
//! ([`Arrival::Live`]) and reports where it listens ([`GuestReport::incoming`](crate::GuestReport));
//! the source then sends disk and memory there ([`Departure::Live`]), reporting how far it is
//! ([`Outgoing`]) until all is sent; the controller then tells the destination, which lets
//! the guest run on, and the source, which removes its stopped copy. A live migration the
//! controller calls off (abort, or a failure) simply stops being desired: the source cancels
//! what it was sending and its guest runs on as before.

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
    /// at `endpoint` (as the destination's driver reported it). The guest stays here, stopped,
    /// until the controller has recorded that it was sent. `force_complete`: an admin asked
    /// to finish now (Nova's force-complete): the guest is paused so its memory stops
    /// changing, and the copy goes at full speed.
    Live {
        migration: String,
        endpoint: String,
        #[serde(default)]
        force_complete: bool,
    },
}

impl Departure {
    pub fn migration(&self) -> &str {
        match self {
            Departure::HandOver { migration } | Departure::Live { migration, .. } => migration,
        }
    }
}

/// How far a live migration's source is, as it reports each pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outgoing {
    /// Still sending: the figures shown in `/servers/{id}/migrations`.
    Sending(MoveProgress),
    /// Everything is at the destination; the guest here is stopped and may be removed.
    Sent,
}

/// A live migration's progress in bytes (Nova's migration `memory_*` and `disk_*` fields);
/// None where the hypervisor does not tell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveProgress {
    pub memory_total: Option<i64>,
    pub memory_processed: Option<i64>,
    pub memory_remaining: Option<i64>,
    pub disk_total: Option<i64>,
    pub disk_processed: Option<i64>,
    pub disk_remaining: Option<i64>,
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
        // An agent of before force-complete sent no flag: not forced.
        let v = serde_json::json!({"kind": "live", "migration": "m", "endpoint": "e"});
        assert_eq!(
            serde_json::from_value::<Departure>(v).unwrap(),
            Departure::Live {
                migration: "m".into(),
                endpoint: "e".into(),
                force_complete: false
            }
        );
        let o = Outgoing::Sending(MoveProgress {
            memory_total: Some(10),
            ..Default::default()
        });
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["kind"], "sending");
        assert_eq!(v["memory_total"], 10);
        assert_eq!(serde_json::from_value::<Outgoing>(v).unwrap(), o);
    }
}
