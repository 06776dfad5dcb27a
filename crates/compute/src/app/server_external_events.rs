//! External events (`os-server-external-events`): how Neutron, Cinder and Ironic tell Nova
//! that something happened to a server. No service here sends events yet and nothing waits
//! for them: an accepted event is recorded nowhere and changes nothing; networking and
//! volumes will give the first ones a meaning.

use crate::db::instances;
use crate::error::Result;
use crate::ComputeService;

/// One event, as its sender names it.
#[derive(Debug, Clone)]
pub struct ExternalEvent {
    pub name: String,
    pub server_uuid: String,
    /// `completed`, `failed` or `in-progress`.
    pub status: String,
    pub tag: Option<String>,
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// No such server.
    ServerNotFound,
    /// The server is on no host: nothing there could wait for the event.
    ServerOnNoHost,
}

impl ComputeService {
    /// Delivers each event to its server; the answers are in the events' order.
    pub async fn deliver_external_events(&self, events: &[ExternalEvent]) -> Result<Vec<Delivery>> {
        let mut conn = self.db.pool.acquire().await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let inst = instances::get(&mut conn, &e.server_uuid, false).await?;
            out.push(match inst {
                None => Delivery::ServerNotFound,
                Some(i) if i.host.is_none() => Delivery::ServerOnNoHost,
                Some(_) => Delivery::Accepted,
            });
        }
        Ok(out)
    }
}
