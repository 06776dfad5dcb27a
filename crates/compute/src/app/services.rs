//! Compute services (`os-services`): each host's service, its availability zone, and the
//! operator's switches (disabled with a reason, forced down), which the scheduler reads.

use crate::db;
use crate::error::{ComputeError, Result};
use crate::model::Service;
use crate::ComputeService;

/// The binary of a host's compute service.
pub const COMPUTE_BINARY: &str = "nova-compute";

/// The operator's switches of a service, each changed only when given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusChange<'a> {
    /// Disable (with an optional reason) or enable (`(false, None)`).
    pub disabled: Option<(bool, Option<&'a str>)>,
    pub forced_down: Option<bool>,
}

impl ComputeService {
    /// Every service by id, each with its host's availability zone (that of the first of
    /// the host's aggregates with one, else the default zone).
    pub async fn services_with_zones(&self) -> Result<Vec<(Service, String)>> {
        let mut conn = self.db.pool.acquire().await?;
        let services = db::hosts::services(&mut conn).await?;
        let aggregates = db::aggregates::all(&mut conn).await?;
        let default = &self.config.default_availability_zone;
        Ok(services
            .into_iter()
            .map(|s| {
                let zone = db::aggregates::zone_of(&aggregates, &s.host, default);
                (s, zone)
            })
            .collect())
    }

    /// The service with this uuid, with its host's availability zone.
    pub async fn service_by_uuid(&self, uuid: &str) -> Result<Option<(Service, String)>> {
        let mut conn = self.db.pool.acquire().await?;
        let Some(s) = db::hosts::service_by_uuid(&mut conn, uuid).await? else {
            return Ok(None);
        };
        let zone = db::aggregates::host_availability_zone(
            &mut conn,
            &s.host,
            &self.config.default_availability_zone,
        )
        .await?;
        Ok(Some((s, zone)))
    }

    /// The service a client names: its integer id, else its uuid.
    pub async fn service_by_id_or_uuid(&self, id: &str) -> Result<Option<Service>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(match id.parse::<i64>() {
            Ok(n) => db::hosts::service_by_id(&mut conn, n).await?,
            Err(_) => db::hosts::service_by_uuid(&mut conn, id).await?,
        })
    }

    /// The service of `binary` on `host`.
    pub async fn service_by_host(&self, host: &str, binary: &str) -> Result<Option<Service>> {
        let mut conn = self.db.pool.acquire().await?;
        Ok(db::hosts::service_by_host(&mut conn, host, binary).await?)
    }

    /// Writes a service's switches; the scheduler's cached host states are dropped after it,
    /// so a disabled or forced-down host gets no new instance.
    pub async fn set_service_status(&self, id: i64, change: StatusChange<'_>) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        db::hosts::set_service_status(
            &mut tx,
            id,
            change.disabled,
            change.forced_down,
            ferrostack_store::now_micros(),
        )
        .await?;
        tx.commit().await?;
        self.hosts.invalidate().await;
        Ok(())
    }

    /// Deletes a compute service with its compute node and resource provider; 409 while
    /// instances are on its host.
    pub async fn delete_service(&self, s: &Service) -> Result<()> {
        let mut conn = self.db.pool.acquire().await?;
        let busy = db::instances::host_map(&mut conn)
            .await?
            .iter()
            .any(|(_, h)| *h == s.host);
        if busy {
            return Err(ComputeError::Conflict(
                "Unable to delete compute service that is hosting instances. Migrate or \
                 delete the instances first."
                    .into(),
            ));
        }
        let node = db::hosts::node_by_host(&mut conn, &s.host).await?;
        drop(conn);
        let mut tx = self.db.begin_write().await?;
        db::hosts::delete_service(&mut tx, s.id, &s.host).await?;
        tx.commit().await?;
        if let Some(n) = node {
            self.placement.delete_provider(&n.uuid).await?;
        }
        self.hosts.invalidate().await;
        Ok(())
    }
}
