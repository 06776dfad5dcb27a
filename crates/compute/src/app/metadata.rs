//! The metadata service's side in compute: which guest a request comes from (its address on
//! a network, as the host's metadata proxy received it) and what it is. The proxy renders
//! the documents (`ferrostack_agent_api::metadata`) from the answer.

use ferrostack_agent_api::GuestSpec;

use crate::db::{self, instances};
use crate::error::Result;
use crate::ComputeService;

impl ComputeService {
    /// The guest whose port on network `network_id` holds `address`, without anything
    /// injected; None when no (live) server's port holds it. Its own address on its own
    /// network is the only way a guest names itself: the host's anti-spoofing makes sure it
    /// cannot send from another's.
    pub async fn metadata_guest(
        &self,
        network_id: &str,
        address: std::net::IpAddr,
    ) -> Result<Option<GuestSpec>> {
        let Some(uuid) = self.networking.server_at(network_id, address).await? else {
            return Ok(None);
        };
        let mut conn = self.db.pool.acquire().await?;
        let Some(inst) = instances::get(&mut conn, &uuid, false).await? else {
            return Ok(None);
        };
        let mut spec = crate::agent_link::desired_guest(&inst).spec;
        spec.nics = db::instance_nics::of_instance(&mut conn, &uuid)
            .await?
            .into_iter()
            .map(crate::agent_link::guest_nic)
            .collect();
        Ok(Some(spec.without_injected()))
    }
}
