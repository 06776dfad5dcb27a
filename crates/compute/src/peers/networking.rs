//! What compute needs of the networking service: the networking each host's data plane should
//! carry (handed to the host's agent with its guests), the hosts' tunnel endpoints, and what
//! the agents report wired.

use async_trait::async_trait;
use ferrostack_agent_api::{HostNetworking, NetworkingReport, Vtep};
use ferrostack_api::ApiError;
use ferrostack_network::{NetworkError, NetworkService};

use crate::error::{ComputeError, Result};

#[async_trait]
pub trait Networking: Send + Sync {
    /// `host` runs a data plane whose VXLAN tunnels end at `vtep`.
    async fn register_host(&self, host: &str, vtep: Vtep) -> Result<()>;
    /// What `host`'s data plane should carry.
    async fn host_networking(&self, host: &str) -> Result<HostNetworking>;
    /// What `host`'s data plane wired.
    async fn apply_host_report(&self, host: &str, report: &NetworkingReport) -> Result<()>;
}

fn from_network(e: NetworkError) -> ComputeError {
    match e {
        NetworkError::Db(e) => ComputeError::Db(e),
        NetworkError::Api(e) => ComputeError::Api(e),
        NetworkError::Neutron {
            status, message, ..
        } => ComputeError::Api(ApiError::new(status, message)),
    }
}

/// Through the networking service's application layer, on its own connections: never inside
/// a compute transaction.
#[async_trait]
impl Networking for NetworkService {
    async fn register_host(&self, host: &str, vtep: Vtep) -> Result<()> {
        NetworkService::register_host(self, host, vtep)
            .await
            .map_err(from_network)
    }
    async fn host_networking(&self, host: &str) -> Result<HostNetworking> {
        NetworkService::host_networking(self, host)
            .await
            .map_err(from_network)
    }
    async fn apply_host_report(&self, host: &str, report: &NetworkingReport) -> Result<()> {
        NetworkService::apply_host_report(self, host, report)
            .await
            .map_err(from_network)
    }
}
