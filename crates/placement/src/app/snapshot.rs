//! All providers with inventories, usage, traits and aggregates, loaded with a handful of
//! set-based queries (no query per provider), for the scheduler's host states, provider
//! filters and the candidate search.

use std::collections::HashMap;

use crate::db::{self, Conn};
use crate::error::Result;
use crate::model::ProviderInfo;

pub struct Snapshot {
    /// In listing order (creation time).
    pub order: Vec<String>,
    pub providers: HashMap<String, ProviderInfo>,
}

impl Snapshot {
    pub async fn load(conn: &mut Conn, roots_only: bool) -> Result<Snapshot> {
        let list = db::providers::list(conn, roots_only).await?;
        let mut providers: HashMap<String, ProviderInfo> = HashMap::with_capacity(list.len());
        let mut order = Vec::with_capacity(list.len());
        for p in list {
            order.push(p.uuid.clone());
            providers.insert(
                p.uuid.clone(),
                ProviderInfo {
                    uuid: p.uuid,
                    name: p.name,
                    generation: p.generation,
                    parent_uuid: p.parent_uuid,
                    root_uuid: p.root_uuid,
                    ..Default::default()
                },
            );
        }
        for (uuid, rc, inv) in db::inventories::all(conn, roots_only).await? {
            if let Some(p) = providers.get_mut(&uuid) {
                p.inventories.insert(rc, inv);
            }
        }
        for (uuid, rc, used) in db::allocations::usage(conn, None).await? {
            if let Some(p) = providers.get_mut(&uuid) {
                p.used.insert(rc, used);
            }
        }
        for (uuid, t) in db::traits::all_provider_traits(conn).await? {
            if let Some(p) = providers.get_mut(&uuid) {
                p.traits.insert(t);
            }
        }
        for (uuid, a) in db::aggregates::all(conn).await? {
            if let Some(p) = providers.get_mut(&uuid) {
                p.aggregates.insert(a);
            }
        }
        Ok(Snapshot { order, providers })
    }

    /// Whether `ancestor` is `p` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: &str, p: &str) -> bool {
        let mut cur = Some(p);
        while let Some(u) = cur {
            if u == ancestor {
                return true;
            }
            cur = self.providers.get(u).and_then(|x| x.parent_uuid.as_deref());
        }
        false
    }
}
