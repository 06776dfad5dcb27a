//! Replacing the allocations of consumers: [`replace`] is the one write path of `PUT
//! /allocations/{c}`, `POST /allocations`, `DELETE /allocations/{c}` and the in-process claims.
//! Everything happens in the caller's write transaction: provider generations are bumped first
//! (on PostgreSQL that locks the provider rows, so concurrent claims on a provider serialize;
//! on SQLite the transaction holds the write lock), then usage is read and capacity checked.
//! Also the reads of `/allocations/{c}` and `/resource_providers/{uuid}/allocations`.

use std::collections::{BTreeMap, BTreeSet};

use crate::app::{capacity, providers, AtGeneration};
use crate::db::{self, Conn};
use crate::error::{PlacementError, Result};
use crate::model::{AllocationRow, Consumer};
use crate::{Allocation, PlacementService};

/// The new allocations of one consumer.
#[derive(Debug, Clone)]
pub struct ConsumerWrite {
    pub consumer: String,
    pub project_id: String,
    pub user_id: String,
    /// Kept as it is when `None`.
    pub consumer_type: Option<String>,
    /// `Some(expected)` checks the consumer generation (microversion 1.28): `Some(None)`
    /// expects no consumer yet. `None` writes whatever the generation.
    pub generation: Option<Option<i64>>,
    /// Empty removes the consumer's allocations (and the consumer).
    pub allocations: Vec<Allocation>,
}

fn generation_conflict(expected: Option<i64>, got: Option<i64>) -> PlacementError {
    let show = |g: Option<i64>| g.map_or("None".to_string(), |g| g.to_string());
    let expected = expected.map_or("null".to_string(), |g| g.to_string());
    PlacementError::concurrent(format!(
        "consumer generation conflict - expected {expected} but got {}",
        show(got)
    ))
}

fn invalid_inventory(rc: &str, rp: &str) -> PlacementError {
    PlacementError::Conflict(format!(
        "Unable to allocate inventory: Inventory for '{rc}' on resource provider '{rp}' invalid."
    ))
}

/// Replaces the allocations of every consumer in `writes` at once.
pub async fn replace(conn: &mut Conn, writes: &[ConsumerWrite]) -> Result<()> {
    // Current consumers, their generations and their allocations.
    let mut current: BTreeMap<&str, Option<Consumer>> = BTreeMap::new();
    let mut old: Vec<AllocationRow> = vec![];
    for w in writes {
        let c = db::allocations::consumer(conn, &w.consumer).await?;
        if let Some(expected) = w.generation {
            let actual = c.as_ref().map(|c| c.generation);
            if actual != expected {
                return Err(generation_conflict(actual, expected));
            }
        }
        // Allocations are only ever written with their consumer row (and removed with it),
        // so a new consumer has none: a first claim skips two statements.
        if c.is_some() {
            old.extend(db::allocations::for_consumer(conn, &w.consumer).await?);
        }
        current.insert(&w.consumer, c);
    }

    // The new rows, one per (consumer, provider, class); zero amounts are no allocation.
    let mut rows: BTreeMap<(&str, &str, &str), i64> = BTreeMap::new();
    for w in writes {
        for a in &w.allocations {
            for (rc, &used) in &a.resources {
                if used < 0 {
                    return Err(PlacementError::BadRequest(format!(
                        "Unable to allocate inventory for consumer {}: negative amount of {rc}.",
                        w.consumer
                    )));
                }
                if used > 0 {
                    rows.insert((&w.consumer, &a.provider_uuid, rc), used);
                }
            }
        }
    }
    // Bump (and lock) every provider touched, in a fixed order so that concurrent writers on
    // PostgreSQL cannot deadlock.
    let new_providers: BTreeSet<&str> = rows.keys().map(|k| k.1).collect();
    let touched: BTreeSet<&str> = new_providers
        .iter()
        .copied()
        .chain(old.iter().map(|a| a.provider_uuid.as_str()))
        .collect();
    for rp in &touched {
        let exists = db::providers::bump_generation(conn, rp, None).await?;
        if !exists && new_providers.contains(rp) {
            return Err(PlacementError::BadRequest(format!(
                "Allocation for resource provider '{rp}' that does not exist."
            )));
        }
    }

    for w in writes {
        if current
            .get(w.consumer.as_str())
            .is_some_and(|c| c.is_some())
        {
            db::allocations::delete_for_consumer(conn, &w.consumer).await?;
        }
    }

    // Usage without these consumers, and what it was with their old allocations: a change
    // that leaves an over-committed provider no worse than before is allowed, as in placement.
    let provider_list: Vec<String> = new_providers.iter().map(|s| s.to_string()).collect();
    let mut used: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (rp, rc, u) in db::allocations::usage(conn, Some(&provider_list)).await? {
        used.insert((rp, rc), u);
    }
    let mut prev = used.clone();
    for a in &old {
        *prev
            .entry((a.provider_uuid.clone(), a.resource_class.clone()))
            .or_default() += a.used;
    }
    let mut inventories = BTreeMap::new();
    for rp in &new_providers {
        inventories.insert(*rp, db::inventories::for_provider(conn, rp).await?);
    }
    // A class with inventory exists; only when some class has none is it worth asking
    // whether the class exists at all (the clearer error).
    let lacking = rows
        .keys()
        .any(|(_, rp, rc)| inventories.get(rp).is_none_or(|i| !i.contains_key(*rc)));
    if lacking {
        let classes: Vec<String> = rows
            .keys()
            .map(|(_, _, rc)| rc.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if let Some(rc) = db::resource_classes::missing(conn, &classes).await?.first() {
            let consumer = rows.keys().next().map_or("", |k| k.0);
            return Err(PlacementError::BadRequest(format!(
                "Unable to allocate inventory for consumer {consumer}: No such resource class {rc}."
            )));
        }
    }
    let mut needed: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (&(_, rp, rc), &amount) in &rows {
        let inv = inventories
            .get(rp)
            .and_then(|i| i.get(rc))
            .ok_or_else(|| invalid_inventory(rc, rp))?;
        if !capacity::units_ok(inv, amount) {
            tracing::warn!(
                rc,
                rp,
                amount,
                "allocation violates min_unit, max_unit or step_size"
            );
            return Err(PlacementError::Conflict(format!(
                "Unable to allocate inventory: Unable to create allocation for '{rc}' on \
                 resource provider '{rp}'. The requested amount would violate inventory \
                 constraints."
            )));
        }
        *needed.entry((rp, rc)).or_default() += amount;
    }
    for (&(rp, rc), &amount) in &needed {
        let inv = &inventories[rp][rc];
        let key = (rp.to_string(), rc.to_string());
        let now_used = used.get(&key).copied().unwrap_or(0);
        let before = prev.get(&key).copied().unwrap_or(0);
        if !capacity::fits(inv, now_used, amount) && now_used + amount > before {
            return Err(PlacementError::Conflict(format!(
                "Unable to allocate inventory: Unable to create allocation for '{rc}' on \
                 resource provider '{rp}'. The requested amount would exceed the capacity."
            )));
        }
    }

    for w in writes {
        let mine: Vec<_> = rows
            .iter()
            .filter(|((c, _, _), _)| *c == w.consumer)
            .collect();
        if mine.is_empty() {
            db::allocations::delete_consumer(conn, &w.consumer).await?;
            continue;
        }
        write_consumer(
            conn,
            w,
            current.get(w.consumer.as_str()).and_then(|c| c.as_ref()),
        )
        .await?;
        let new_rows: Vec<AllocationRow> = mine
            .into_iter()
            .map(|(&(c, rp, rc), &used)| AllocationRow {
                consumer_uuid: c.to_string(),
                provider_uuid: rp.to_string(),
                resource_class: rc.to_string(),
                used,
            })
            .collect();
        db::allocations::insert_many(conn, &new_rows).await?;
    }
    Ok(())
}

/// Creates the consumer or updates it (bumping its generation, conditionally when asked).
async fn write_consumer(
    conn: &mut Conn,
    w: &ConsumerWrite,
    current: Option<&Consumer>,
) -> Result<()> {
    let c = Consumer {
        uuid: w.consumer.clone(),
        project_id: w.project_id.clone(),
        user_id: w.user_id.clone(),
        generation: 1,
        consumer_type: w.consumer_type.clone(),
    };
    if let Some(cur) = current {
        let expected = w.generation.map(|_| cur.generation);
        if db::allocations::update_consumer(conn, &c, expected).await? {
            return Ok(());
        }
        if w.generation.is_some() {
            return Err(generation_conflict(None, Some(cur.generation)));
        }
    }
    db::allocations::insert_consumer(conn, &c)
        .await
        .map_err(crate::error::on_unique(
            crate::error::codes::CONCURRENT_UPDATE,
            format!(
                "consumer generation conflict - consumer {} was created concurrently",
                w.consumer
            ),
        ))
}

/// The allocations of a consumer grouped per provider.
pub fn group(rows: &[AllocationRow]) -> Vec<Allocation> {
    let mut by: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
    for r in rows {
        by.entry(&r.provider_uuid)
            .or_default()
            .insert(r.resource_class.clone(), r.used);
    }
    by.into_iter()
        .map(|(rp, resources)| Allocation {
            provider_uuid: rp.to_string(),
            resources,
        })
        .collect()
}

/// A consumer's allocations, each with its provider's generation, and the consumer (`None`
/// when it has no allocations).
#[derive(Debug, Clone, Default)]
pub struct ConsumerAllocations {
    pub allocations: Vec<AtGeneration<Allocation>>,
    pub consumer: Option<Consumer>,
}

/// What one consumer holds of a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerUse {
    /// Resource class -> amount.
    pub resources: BTreeMap<String, i64>,
    pub consumer_generation: Option<i64>,
}

impl PlacementService {
    /// The allocations of `consumer` per provider (by provider uuid), with each provider's
    /// generation (0 if the provider vanished meanwhile). Empty, not an error, for an unknown
    /// consumer.
    pub async fn consumer_allocations(&self, consumer: &str) -> Result<ConsumerAllocations> {
        let mut conn = self.db.pool.acquire().await?;
        let rows = db::allocations::for_consumer(&mut conn, consumer).await?;
        let mut allocations = vec![];
        for a in group(&rows) {
            let generation = db::providers::get(&mut conn, &a.provider_uuid)
                .await?
                .map_or(0, |p| p.generation);
            allocations.push(AtGeneration::new(generation, a));
        }
        let consumer = if rows.is_empty() {
            None
        } else {
            db::allocations::consumer(&mut conn, consumer).await?
        };
        Ok(ConsumerAllocations {
            allocations,
            consumer,
        })
    }

    /// Removes every allocation of `consumer` (and the consumer) through [`replace`]; 404
    /// when it has none.
    pub async fn delete_allocations(&self, consumer: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        if db::allocations::for_consumer(&mut tx, consumer)
            .await?
            .is_empty()
        {
            return Err(PlacementError::NotFound(format!(
                "No allocations for consumer '{consumer}'"
            )));
        }
        replace(
            &mut tx,
            &[ConsumerWrite {
                consumer: consumer.to_string(),
                project_id: String::new(),
                user_id: String::new(),
                consumer_type: None,
                generation: None,
                allocations: vec![],
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Everything allocated from a provider, per consumer, with the provider's generation;
    /// 404 without the provider.
    pub async fn provider_allocations(
        &self,
        uuid: &str,
    ) -> Result<AtGeneration<BTreeMap<String, ConsumerUse>>> {
        let mut conn = self.db.pool.acquire().await?;
        let p = providers::get(&mut conn, uuid).await?;
        let rows = db::allocations::for_provider(&mut conn, uuid).await?;
        let consumers: Vec<String> = rows.iter().map(|r| r.consumer_uuid.clone()).collect();
        let generations: BTreeMap<String, i64> = db::allocations::consumers(&mut conn, &consumers)
            .await?
            .into_iter()
            .map(|c| (c.uuid, c.generation))
            .collect();
        let mut out: BTreeMap<String, ConsumerUse> = BTreeMap::new();
        for r in rows {
            let e = out
                .entry(r.consumer_uuid.clone())
                .or_insert_with(|| ConsumerUse {
                    resources: BTreeMap::new(),
                    consumer_generation: generations.get(&r.consumer_uuid).copied(),
                });
            e.resources.insert(r.resource_class, r.used);
        }
        Ok(AtGeneration::new(p.generation, out))
    }
}
