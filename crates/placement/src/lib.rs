//! The placement service (`/placement`): resource providers, inventories, resource classes,
//! traits, aggregates, allocations, usages and allocation candidates, plus the in-process API
//! the compute scheduler and agents use (same database, same rules).
//!
//! Layout: `api/` (routes and thin handlers, one file per resource: parse, authorize, call one
//! `app/` function, render; no database access), `app/` (the application layer without HTTP:
//! every transaction and generation check, one file per resource named like its `api/` file,
//! the one allocation write path and its capacity checks, the allocation-candidate search, the
//! in-process API of the scheduler and agents), `db/` (SQL per table), `model.rs` (domain
//! types), `error.rs` (typed errors and their HTTP mapping).

pub mod api;
pub mod app;
pub mod db;
pub mod error;
pub mod model;

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrostack_policy::Enforcer;
use ferrostack_store::Db;

pub use error::PlacementError;

/// One inventory record (Placement's fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub total: i64,
    pub reserved: i64,
    pub min_unit: i64,
    pub max_unit: i64,
    pub step_size: i64,
    pub allocation_ratio: f64,
}

impl Inventory {
    /// An inventory of `total` with placement's defaults for everything else.
    pub fn new(total: i64) -> Inventory {
        Inventory {
            total,
            reserved: 0,
            min_unit: 1,
            max_unit: model::MAX_INT,
            step_size: 1,
            allocation_ratio: 1.0,
        }
    }

    /// What may be allocated in all: `(total - reserved) * allocation_ratio`, rounded down as
    /// placement's integer comparison does.
    pub fn capacity(&self) -> i64 {
        app::capacity::capacity(self)
    }
}

/// A compute node's provider as its agent reports it (idempotent sync).
#[derive(Debug, Clone)]
pub struct ComputeProvider {
    pub uuid: String,
    pub name: String,
    /// Resource class (VCPU, MEMORY_MB, DISK_GB, ...) -> inventory.
    pub inventories: BTreeMap<String, Inventory>,
    pub traits: Vec<String>,
}

/// What the scheduler needs of one (root) provider.
#[derive(Debug, Clone)]
pub struct ProviderState {
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub inventories: BTreeMap<String, Inventory>,
    /// Resource class -> amount allocated.
    pub used: BTreeMap<String, i64>,
    pub traits: Vec<String>,
    pub aggregates: Vec<String>,
}

/// Resources of one consumer on one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub provider_uuid: String,
    pub resources: BTreeMap<String, i64>,
}

pub struct PlacementService {
    pub db: Db,
    pub policy: Arc<Enforcer>,
}

impl PlacementService {
    /// Standard resource classes and traits are seeded by the migration, so there is nothing
    /// to initialise at start.
    pub fn new(db: Db, policy: Arc<Enforcer>) -> Arc<Self> {
        Arc::new(PlacementService { db, policy })
    }
}
