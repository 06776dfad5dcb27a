//! Domain types as the database holds them (wire bodies are built in `api/`).

use std::collections::{BTreeMap, BTreeSet};

use crate::Inventory;

/// Placement's upper bound of integer fields (a 32-bit signed integer).
pub const MAX_INT: i64 = 2_147_483_647;

/// Custom resource classes and traits start with this prefix.
pub const CUSTOM_PREFIX: &str = "CUSTOM_";

/// A provider with this trait shares its inventory with the providers of its aggregates.
pub const SHARES_VIA_AGGREGATE: &str = "MISC_SHARES_VIA_AGGREGATE";

/// Project and user recorded for allocations written before microversion 1.8 without them
/// (placement's `incomplete_consumer_project_id` / `_user_id` defaults).
pub const INCOMPLETE_CONSUMER_ID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent_uuid: Option<String>,
    pub root_uuid: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceClass {
    pub name: String,
    pub standard: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub uuid: String,
    pub project_id: String,
    pub user_id: String,
    pub generation: i64,
    pub consumer_type: Option<String>,
}

/// One row of `placement_allocations`.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationRow {
    pub consumer_uuid: String,
    pub provider_uuid: String,
    pub resource_class: String,
    pub used: i64,
}

/// A `name` filter of the trait listing (`GET /traits`).
#[derive(Debug, Clone, PartialEq)]
pub enum NameFilter {
    All,
    In(Vec<String>),
    StartsWith(String),
}

/// Usage of a project (and user), per consumer type (`None` for consumers without one) and
/// class, with the number of consumers of each type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectUsage {
    pub by_type: BTreeMap<Option<String>, BTreeMap<String, i64>>,
    pub consumers_by_type: BTreeMap<Option<String>, i64>,
}

/// Everything the filters and the candidate search need to know of one provider.
#[derive(Debug, Clone, Default)]
pub struct ProviderInfo {
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent_uuid: Option<String>,
    pub root_uuid: String,
    pub inventories: BTreeMap<String, Inventory>,
    pub used: BTreeMap<String, i64>,
    pub traits: BTreeSet<String>,
    pub aggregates: BTreeSet<String>,
}

impl ProviderInfo {
    /// Free capacity of `rc` (0 without inventory).
    pub fn free(&self, rc: &str) -> i64 {
        self.inventories.get(rc).map_or(0, |inv| {
            inv.capacity() - self.used.get(rc).copied().unwrap_or(0)
        })
    }
}

/// Whether `name` is a valid custom resource class or trait name: `CUSTOM_` then `A-Z`, `0-9`
/// and `_`, at most 255 characters.
pub fn is_custom_name(name: &str) -> bool {
    name.len() <= 255
        && name.len() > CUSTOM_PREFIX.len()
        && name.starts_with(CUSTOM_PREFIX)
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_names() {
        assert!(is_custom_name("CUSTOM_GOLD_1"));
        assert!(!is_custom_name("CUSTOM_"));
        assert!(!is_custom_name("CUSTOM_gold"));
        assert!(!is_custom_name("GOLD"));
        assert!(!is_custom_name(&format!("CUSTOM_{}", "A".repeat(250))));
    }
}
