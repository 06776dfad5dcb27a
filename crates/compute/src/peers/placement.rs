//! What compute needs of placement: the providers' capacity for the scheduler, each compute
//! node's provider and its aggregates, and the allocations of instances and migrations. The
//! `_in` operations write inside the caller's transaction, so that compute's rows and the
//! allocations they imply commit together (both services share the database).

use async_trait::async_trait;
use ferrostack_placement::{
    Allocation, ComputeProvider, PlacementError, PlacementService, ProviderState,
};

use crate::db::Conn;

#[async_trait]
pub trait Placement: Send + Sync {
    /// Every root provider with its inventories, usage, traits and aggregates.
    async fn provider_states(&self) -> Result<Vec<ProviderState>, PlacementError>;
    /// Creates or updates the provider of a compute node (idempotent).
    async fn sync_compute_provider(&self, p: &ComputeProvider) -> Result<(), PlacementError>;
    /// Sets the aggregates of provider `uuid`.
    async fn set_provider_aggregates(
        &self,
        uuid: &str,
        aggregates: &[String],
    ) -> Result<(), PlacementError>;
    /// Deletes provider `uuid` (a deleted compute service's node).
    async fn delete_provider(&self, uuid: &str) -> Result<(), PlacementError>;
    /// Claims `allocs` for `consumer` in `tx`, checking capacity there; with `holder`, the
    /// holder takes over the consumer's current allocations (a move). A lost race is
    /// `PlacementError::Conflict`.
    async fn claim_in(
        &self,
        tx: &mut Conn,
        consumer: &str,
        holder: Option<&str>,
        project_id: &str,
        user_id: &str,
        allocs: &[Allocation],
    ) -> Result<(), PlacementError>;
    /// Moves the allocations of `from` to `to` in `tx` (a move confirmed or reverted).
    async fn move_allocations_in(
        &self,
        tx: &mut Conn,
        from: &str,
        to: &str,
        project_id: &str,
        user_id: &str,
    ) -> Result<(), PlacementError>;
    /// Removes every allocation of `consumer` in `tx`.
    async fn remove_allocations_in(
        &self,
        tx: &mut Conn,
        consumer: &str,
    ) -> Result<(), PlacementError>;
    /// Every consumer holding allocations, with its consumer type, read in `tx`.
    async fn consumers_in(
        &self,
        tx: &mut Conn,
    ) -> Result<Vec<(String, Option<String>)>, PlacementError>;
}

#[async_trait]
impl Placement for PlacementService {
    async fn provider_states(&self) -> Result<Vec<ProviderState>, PlacementError> {
        PlacementService::provider_states(self).await
    }
    async fn sync_compute_provider(&self, p: &ComputeProvider) -> Result<(), PlacementError> {
        PlacementService::sync_compute_provider(self, p).await
    }
    async fn set_provider_aggregates(
        &self,
        uuid: &str,
        aggregates: &[String],
    ) -> Result<(), PlacementError> {
        PlacementService::set_provider_aggregates(self, uuid, aggregates).await
    }
    async fn delete_provider(&self, uuid: &str) -> Result<(), PlacementError> {
        PlacementService::delete_provider(self, uuid).await
    }
    async fn claim_in(
        &self,
        tx: &mut Conn,
        consumer: &str,
        holder: Option<&str>,
        project_id: &str,
        user_id: &str,
        allocs: &[Allocation],
    ) -> Result<(), PlacementError> {
        PlacementService::claim_in(self, tx, consumer, holder, project_id, user_id, allocs).await
    }
    async fn move_allocations_in(
        &self,
        tx: &mut Conn,
        from: &str,
        to: &str,
        project_id: &str,
        user_id: &str,
    ) -> Result<(), PlacementError> {
        PlacementService::move_allocations_in(self, tx, from, to, project_id, user_id).await
    }
    async fn remove_allocations_in(
        &self,
        tx: &mut Conn,
        consumer: &str,
    ) -> Result<(), PlacementError> {
        PlacementService::remove_allocations_in(self, tx, consumer).await
    }
    async fn consumers_in(
        &self,
        tx: &mut Conn,
    ) -> Result<Vec<(String, Option<String>)>, PlacementError> {
        PlacementService::consumers_in(self, tx).await
    }
}
