//! Availability zones: as in Nova, a compute host's zone is that of its aggregates, else the
//! default zone; other services (scheduler, conductor) live in the hidden `internal` zone. A
//! zone is available when one of its services is enabled.

use crate::app::services::COMPUTE_BINARY;
use crate::db;
use crate::error::Result;
use crate::model::Service;
use crate::ComputeService;

/// Nova's `internal_service_availability_zone`.
pub const INTERNAL_ZONE: &str = "internal";

/// Every service in its zone, and the zones' names.
#[derive(Debug, Clone)]
pub struct Zones {
    /// (zone, service) for every service, by service id.
    pub services: Vec<(String, Service)>,
    /// Zones with an enabled service, sorted.
    pub available: Vec<String>,
    /// Zones whose services are all disabled, sorted.
    pub unavailable: Vec<String>,
}

impl ComputeService {
    /// The zones of the cloud and the services in each.
    pub async fn availability_zones(&self) -> Result<Zones> {
        let mut conn = self.db.pool.acquire().await?;
        let services = db::hosts::services(&mut conn).await?;
        let aggregates = db::aggregates::all(&mut conn).await?;
        drop(conn);
        let default = &self.config.default_availability_zone;
        let with_zone: Vec<(String, Service)> = services
            .into_iter()
            .map(|s| {
                let zone = if s.binary == COMPUTE_BINARY {
                    db::aggregates::zone_of(&aggregates, &s.host, default)
                } else {
                    INTERNAL_ZONE.to_string()
                };
                (zone, s)
            })
            .collect();
        let mut available: Vec<String> = with_zone
            .iter()
            .filter(|(_, s)| !s.disabled)
            .map(|(z, _)| z.clone())
            .collect();
        available.sort();
        available.dedup();
        let mut unavailable: Vec<String> = with_zone
            .iter()
            .filter(|(z, s)| s.disabled && !available.contains(z))
            .map(|(z, _)| z.clone())
            .collect();
        unavailable.sort();
        unavailable.dedup();
        Ok(Zones {
            services: with_zone,
            available,
            unavailable,
        })
    }
}
