//! The application layer of placement: every transaction, invariant and generation check,
//! without HTTP. The handlers of `api/` call one function here per request; the compute
//! scheduler and the agents call the in-process API of this file (same rules, same database).
//! One file per resource, named like its `api/` file; `capacity`, `request` and `snapshot`
//! are shared by several.

pub mod aggregates;
pub mod allocations;
pub mod candidates;
pub mod capacity;
pub mod classes;
pub mod inventories;
pub mod providers;
pub mod request;
pub mod snapshot;
pub mod traits;
pub mod usages;

use std::collections::{BTreeMap, BTreeSet};

use crate::db;
use crate::error::{PlacementError, Result};
use crate::model::{is_custom_name, Provider};
use crate::{Allocation, ComputeProvider, PlacementService, ProviderState};
use allocations::ConsumerWrite;
use snapshot::Snapshot;

/// Something of a provider with the provider's generation when it was read or written: what
/// a client passes back for its next conditional write.
#[derive(Debug, Clone, PartialEq)]
pub struct AtGeneration<T> {
    pub generation: i64,
    pub value: T,
}

impl<T> AtGeneration<T> {
    pub fn new(generation: i64, value: T) -> Self {
        AtGeneration { generation, value }
    }
}

/// The consumer types (microversion 1.38) of compute's allocations, as Nova names them: an
/// instance's own resources, and the source host's resources a migration holds during a move.
pub mod consumer_type {
    pub const INSTANCE: &str = "INSTANCE";
    pub const MIGRATION: &str = "MIGRATION";
}

impl PlacementService {
    /// Creates or updates the root provider of a compute node (name, inventories, traits);
    /// idempotent; bumps generation on change only. Custom classes and traits it names are
    /// created. A capacity below current usage is accepted (and logged): the node reports
    /// what it has.
    pub async fn sync_compute_provider(&self, p: &ComputeProvider) -> Result<(), PlacementError> {
        self.sync_inner(p).await.map_err(PlacementError::into_plain)
    }

    async fn sync_inner(&self, cp: &ComputeProvider) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let conn = &mut *tx;
        let mut changed = false;
        let provider = match db::providers::get(conn, &cp.uuid).await? {
            Some(p) => p,
            None => {
                changed = true;
                providers::create(conn, &cp.uuid, &cp.name, None).await?
            }
        };
        if provider.name != cp.name {
            providers::update(conn, &cp.uuid, Some(&cp.name), None, false).await?;
        }
        let classes: Vec<String> = cp.inventories.keys().cloned().collect();
        for rc in db::resource_classes::missing(conn, &classes).await? {
            if !is_custom_name(&rc) {
                return Err(PlacementError::BadRequest(format!(
                    "No such resource class {rc}."
                )));
            }
            db::resource_classes::insert_custom(conn, &rc).await?;
        }
        for t in db::traits::missing(conn, &cp.traits).await? {
            if !is_custom_name(&t) {
                return Err(PlacementError::BadRequest(format!(
                    "No such trait(s): {t}."
                )));
            }
            db::traits::insert_custom(conn, &t).await?;
        }
        changed |= inventories::set_all(
            conn,
            &cp.uuid,
            &cp.inventories,
            inventories::BelowUsage::Warn,
        )
        .await?;
        changed |= providers::set_traits(conn, &cp.uuid, &cp.traits).await?;
        if changed {
            db::providers::bump_generation(conn, &cp.uuid, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets a provider's aggregates (mirrors Nova host aggregates).
    pub async fn set_provider_aggregates(
        &self,
        uuid: &str,
        aggregates: &[String],
    ) -> Result<(), PlacementError> {
        let mut tx = self.db.begin_write().await?;
        providers::get(&mut tx, uuid).await?;
        if providers::set_aggregates(&mut tx, uuid, aggregates).await? {
            db::providers::bump_generation(&mut tx, uuid, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a provider; Conflict if it has allocations (or child providers).
    pub async fn delete_provider(&self, uuid: &str) -> Result<(), PlacementError> {
        self.remove_provider(uuid)
            .await
            .map_err(PlacementError::into_plain)
    }

    /// All root providers with inventories, usage, traits and aggregates (the scheduler's
    /// host state): five set-based queries whatever the number of providers.
    pub async fn provider_states(&self) -> Result<Vec<ProviderState>, PlacementError> {
        let mut conn = self.db.pool.acquire().await?;
        let mut snap = Snapshot::load(&mut conn, true).await?;
        Ok(snap
            .order
            .iter()
            .filter_map(|u| snap.providers.remove(u))
            .map(|p| ProviderState {
                uuid: p.uuid,
                name: p.name,
                generation: p.generation,
                inventories: p.inventories,
                used: p.used,
                traits: p.traits.into_iter().collect(),
                aggregates: p.aggregates.into_iter().collect(),
            })
            .collect())
    }

    /// Atomically replaces all allocations of `consumer` with `allocs` (empty = remove),
    /// checking every affected provider's capacity in the same write transaction, so two
    /// concurrent claims can never overcommit a provider. Err(Conflict) names the provider and
    /// the resource class when capacity would be exceeded.
    pub async fn claim(
        &self,
        consumer: &str,
        project_id: &str,
        user_id: &str,
        allocs: &[Allocation],
    ) -> Result<(), PlacementError> {
        self.write_allocations(&[ConsumerWrite {
            consumer: consumer.to_string(),
            project_id: project_id.to_string(),
            user_id: user_id.to_string(),
            consumer_type: None,
            generation: None,
            allocations: allocs.to_vec(),
        }])
        .await
        .map_err(PlacementError::into_plain)
    }

    pub async fn allocations_of(&self, consumer: &str) -> Result<Vec<Allocation>, PlacementError> {
        let mut conn = self.db.pool.acquire().await?;
        let rows = db::allocations::for_consumer(&mut conn, consumer).await?;
        Ok(allocations::group(&rows))
    }

    pub async fn remove_allocations(&self, consumer: &str) -> Result<(), PlacementError> {
        self.claim(consumer, "", "", &[]).await
    }

    /// Removes every allocation of `consumer` inside the caller's write transaction `tx`, so
    /// that they go with the caller's own change (an instance marked deleted, a migration
    /// finished) or not at all: a crash between the two can leave nothing behind.
    pub async fn remove_allocations_in(
        &self,
        tx: &mut db::Conn,
        consumer: &str,
    ) -> Result<(), PlacementError> {
        allocations::replace(
            tx,
            &[ConsumerWrite {
                consumer: consumer.to_string(),
                project_id: String::new(),
                user_id: String::new(),
                consumer_type: None,
                generation: None,
                allocations: vec![],
            }],
        )
        .await
        .map_err(PlacementError::into_plain)
    }

    /// Every consumer with allocations and its type ([`consumer_type`] for compute's): what
    /// the allocation audit checks against the instances and migrations.
    pub async fn consumers_in(
        &self,
        tx: &mut db::Conn,
    ) -> Result<Vec<(String, Option<String>)>, PlacementError> {
        Ok(db::allocations::consumers_with_allocations(tx).await?)
    }

    /// Moves all allocations of `from` to consumer `to` (as Nova does for migrations: the
    /// source host's allocation is held by the migration uuid, and a revert gives it back to
    /// the instance), inside the caller's write transaction `tx`. `to`'s own allocations are
    /// replaced.
    pub async fn move_allocations_in(
        &self,
        tx: &mut db::Conn,
        from: &str,
        to: &str,
        project_id: &str,
        user_id: &str,
    ) -> Result<(), PlacementError> {
        let rows = db::allocations::for_consumer(tx, from).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let writes = [
            ConsumerWrite {
                consumer: from.to_string(),
                project_id: project_id.to_string(),
                user_id: user_id.to_string(),
                consumer_type: None,
                generation: None,
                allocations: vec![],
            },
            ConsumerWrite {
                consumer: to.to_string(),
                project_id: project_id.to_string(),
                user_id: user_id.to_string(),
                consumer_type: Some(consumer_type::INSTANCE.to_string()),
                generation: None,
                allocations: allocations::group(&rows),
            },
        ];
        allocations::replace(tx, &writes)
            .await
            .map_err(PlacementError::into_plain)
    }

    /// Claims `allocs` for `consumer` while its current allocations pass to `holder`, in one
    /// write transaction (the start of a move: the migration uuid holds the source host's
    /// resources until the move is confirmed or reverted). Err(Conflict) when the new
    /// allocations do not fit; then nothing changed.
    pub async fn claim_moving(
        &self,
        consumer: &str,
        holder: &str,
        project_id: &str,
        user_id: &str,
        allocs: &[Allocation],
    ) -> Result<(), PlacementError> {
        let mut tx = self.db.begin_write().await?;
        self.claim_in(&mut tx, consumer, Some(holder), project_id, user_id, allocs)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`claim`](Self::claim), or with `holder` [`claim_moving`](Self::claim_moving), inside
    /// the caller's write transaction `tx`: the caller's own writes (placing the instance,
    /// recording a migration) then commit with the claim or not at all, and a decision pays
    /// for one transaction instead of two. The claim runs under a savepoint, so on
    /// Err(Conflict) `tx` is as it was and the caller may try another provider.
    pub async fn claim_in(
        &self,
        tx: &mut db::Conn,
        consumer: &str,
        holder: Option<&str>,
        project_id: &str,
        user_id: &str,
        allocs: &[Allocation],
    ) -> Result<(), PlacementError> {
        use ferrostack_store::sqlx::Connection;
        let write = |c: &str, kind: &str, a: Vec<Allocation>| ConsumerWrite {
            consumer: c.to_string(),
            project_id: project_id.to_string(),
            user_id: user_id.to_string(),
            consumer_type: Some(kind.to_string()),
            generation: None,
            allocations: a,
        };
        let mut sp = tx.begin().await?;
        let mut writes = Vec::with_capacity(2);
        if let Some(holder) = holder {
            let rows = db::allocations::for_consumer(&mut sp, consumer).await?;
            writes.push(write(
                holder,
                consumer_type::MIGRATION,
                allocations::group(&rows),
            ));
        }
        writes.push(write(consumer, consumer_type::INSTANCE, allocs.to_vec()));
        match allocations::replace(&mut sp, &writes).await {
            Ok(()) => {
                sp.commit().await?;
                Ok(())
            }
            Err(e) => {
                sp.rollback().await?;
                Err(e.into_plain())
            }
        }
    }

    /// Replaces the allocations of several consumers in one write transaction.
    pub async fn write_allocations(&self, writes: &[ConsumerWrite]) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        allocations::replace(&mut tx, writes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The full snapshot of every provider (for filters and candidates).
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut conn = self.db.pool.acquire().await?;
        Snapshot::load(&mut conn, false).await
    }

    /// A provider or 404.
    pub async fn provider(&self, uuid: &str) -> Result<Provider> {
        let mut conn = self.db.pool.acquire().await?;
        providers::get(&mut conn, uuid).await
    }
}

/// Resource classes named in `resources` that do not exist, as placement's 400.
pub async fn check_classes_exist(
    conn: &mut db::Conn,
    classes: impl IntoIterator<Item = &String>,
) -> Result<()> {
    let names: Vec<String> = classes
        .into_iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(rc) = db::resource_classes::missing(conn, &names).await?.first() {
        return Err(PlacementError::BadRequest(format!(
            "Invalid resource class in resources parameter: No such resource class {rc}."
        )));
    }
    Ok(())
}

/// Traits that do not exist, for filters' 400s.
pub async fn missing_traits(conn: &mut db::Conn, names: &[String]) -> Result<Vec<String>> {
    Ok(db::traits::missing(conn, names).await?)
}

/// Usage of every inventory class of a provider (0 when unused).
pub async fn provider_usages(conn: &mut db::Conn, uuid: &str) -> Result<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = db::inventories::for_provider(conn, uuid)
        .await?
        .into_keys()
        .map(|rc| (rc, 0))
        .collect();
    for (rc, u) in inventories::usage_of(conn, uuid).await? {
        out.insert(rc, u);
    }
    Ok(out)
}
