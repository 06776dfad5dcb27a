//! The application layer of the networking service, as methods of `NetworkService`: who sees
//! what, every transaction, IP allocation, quotas and the default security group. The HTTP
//! handlers (`api/`) and the compute service call these; nothing here knows HTTP. One file
//! per resource, named like its `api/` file.

pub mod address_groups;
pub mod agents;
pub mod auto_allocate;
pub mod bootstrap;
pub mod floating_ips;
pub mod hosts;
pub mod networks;
pub mod port_forwardings;
pub mod ports;
pub mod quotas;
pub mod rbac;
pub mod router_hosts;
pub mod routers;
pub mod security_groups;
pub mod server_ports;
pub mod subnetpools;
pub mod subnets;
pub mod tags;

use ferrostack_api::AuthContext;
use ferrostack_store::sqlx::{Any, Transaction};

use crate::error::Result;
use crate::NetworkService;

/// Device owners of ports the service makes for itself (DHCP, router interfaces and gateways,
/// floating IPs): no security groups, and deleted with what they serve.
pub fn is_service_owner(device_owner: &str) -> bool {
    device_owner.starts_with("network:")
}

/// The project whose resources a listing is narrowed to: none for a cloud admin (all).
pub fn listing_scope(auth: &AuthContext) -> Option<&str> {
    if auth.is_admin {
        None
    } else {
        Some(auth.project_id().unwrap_or(""))
    }
}

/// The project a new resource belongs to: the body's `project_id` (or `tenant_id`) when an
/// admin gives one, else the caller's.
pub fn owner_for(auth: &AuthContext, requested: Option<&str>) -> Result<String> {
    match requested {
        Some(p) if Some(p) != auth.project_id() && !auth.is_admin => {
            Err(crate::NetworkError::policy("create:project_id"))
        }
        Some(p) => Ok(p.to_string()),
        None => Ok(auth.project_id().unwrap_or("").to_string()),
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl NetworkService {
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.db.begin_write().await?)
    }

    pub(crate) async fn read(&self) -> Result<ferrostack_store::sqlx::pool::PoolConnection<Any>> {
        Ok(self.db.pool.acquire().await?)
    }

    /// Refuses a change when the caller's `If-Match: revision_number=N` does not name the
    /// resource's current revision (Neutron's `revision-if-match`).
    pub(crate) fn check_revision(expected: Option<i64>, current: i64) -> Result<()> {
        match expected {
            Some(e) if e != current => Err(crate::NetworkError::new(
                http::StatusCode::PRECONDITION_FAILED,
                "RevisionNumberConstraintFailed",
                format!("Constrained to {e}, but current revision is {current}"),
            )),
            _ => Ok(()),
        }
    }
}
