//! Provider trees: list with filters, create, rename, re-parent (1.37), delete; traits and
//! aggregates of a provider. The free functions run in the caller's write transaction (the
//! agents' sync uses them too); the `PlacementService` methods are the operations of
//! `/resource_providers`, each one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::app::request::{MemberOf, TraitReq};
use crate::app::{capacity, check_classes_exist, missing_traits};
use crate::db::{self, Conn};
use crate::error::{codes, on_unique, PlacementError, Result};
use crate::model::{Provider, ProviderInfo};
use crate::PlacementService;

/// The filters of a provider listing; an empty filter lists every provider.
#[derive(Debug, Clone, Default)]
pub struct ProviderFilter {
    pub name: Option<String>,
    pub uuid: Option<String>,
    /// Aggregates (1.3).
    pub member_of: MemberOf,
    /// Classes and amounts a provider must still be able to serve (1.4).
    pub resources: BTreeMap<String, i64>,
    /// Only the tree of this provider (1.14).
    pub in_tree: Option<String>,
    /// Traits (1.18).
    pub required: TraitReq,
}

impl PlacementService {
    /// Providers matching `f`, in listing order (creation time). Unknown resource classes in
    /// `f.resources` or traits in `f.required` are 400s; an unknown `in_tree` provider
    /// matches nothing.
    pub async fn list_providers(&self, f: &ProviderFilter) -> Result<Vec<ProviderInfo>> {
        {
            let mut conn = self.db.pool.acquire().await?;
            check_classes_exist(&mut conn, f.resources.keys()).await?;
            let missing = missing_traits(&mut conn, &f.required.names()).await?;
            if !missing.is_empty() {
                return Err(PlacementError::BadRequest(format!(
                    "Invalid trait(s) in \"required\" parameter: No such trait(s): {}.",
                    missing.join(", ")
                )));
            }
        }
        let mut snap = self.snapshot().await?;
        let tree_root = f
            .in_tree
            .as_ref()
            .map(|t| snap.providers.get(t).map(|p| p.root_uuid.clone()));
        let keep = |p: &ProviderInfo| {
            f.name.as_ref().is_none_or(|n| &p.name == n)
                && f.uuid.as_ref().is_none_or(|x| &p.uuid == x)
                && f.member_of.matches(&p.aggregates)
                && f.required.matches(&p.traits)
                && tree_root
                    .as_ref()
                    .is_none_or(|r| r.as_deref() == Some(p.root_uuid.as_str()))
                && f.resources.iter().all(|(rc, &n)| {
                    p.inventories.get(rc).is_some_and(|inv| {
                        capacity::can_serve(inv, p.used.get(rc).copied().unwrap_or(0), n)
                    })
                })
        };
        Ok(snap
            .order
            .iter()
            .filter_map(|u| snap.providers.remove(u))
            .filter(|p| keep(p))
            .collect())
    }

    /// Creates a provider (a root, or a child of `parent`); 409
    /// `placement.duplicate_name` when the uuid or the name is taken, 400 without the parent.
    pub async fn create_provider(
        &self,
        uuid: &str,
        name: &str,
        parent: Option<&str>,
    ) -> Result<Provider> {
        let mut tx = self.db.begin_write().await?;
        let p = create(&mut tx, uuid, name, parent).await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Renames a provider and, with `parent` (`Some(None)`: make it a root), re-parents it
    /// with its subtree; moving a provider that has a parent, or making it a root, needs
    /// `allow_reparenting` (1.37). Bumps the generation; returns the provider as written.
    pub async fn update_provider(
        &self,
        uuid: &str,
        name: &str,
        parent: Option<Option<&str>>,
        allow_reparenting: bool,
    ) -> Result<Provider> {
        let mut tx = self.db.begin_write().await?;
        let p = update(&mut tx, uuid, Some(name), parent, allow_reparenting).await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Removes a provider with placement's coded 409s (children, allocations); the
    /// in-process [`delete_provider`](Self::delete_provider) flattens them.
    pub async fn remove_provider(&self, uuid: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        delete(&mut tx, uuid).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub fn not_found(uuid: &str) -> PlacementError {
    PlacementError::NotFound(format!("No resource provider with uuid {uuid} found"))
}

pub async fn get(conn: &mut Conn, uuid: &str) -> Result<Provider> {
    db::providers::get(conn, uuid)
        .await?
        .ok_or_else(|| not_found(uuid))
}

pub async fn create(
    conn: &mut Conn,
    uuid: &str,
    name: &str,
    parent: Option<&str>,
) -> Result<Provider> {
    if db::providers::get(conn, uuid).await?.is_some() {
        return Err(PlacementError::conflict_code(
            codes::DUPLICATE_NAME,
            format!("Conflicting resource provider uuid: {uuid} already exists."),
        ));
    }
    if db::providers::get_by_name(conn, name).await?.is_some() {
        return Err(PlacementError::conflict_code(
            codes::DUPLICATE_NAME,
            format!("Conflicting resource provider name: {name} already exists."),
        ));
    }
    let root = match parent {
        None => uuid.to_string(),
        Some(parent) => match db::providers::get(conn, parent).await? {
            Some(p) => p.root_uuid,
            None => {
                return Err(PlacementError::BadRequest(format!(
                    "Unable to create resource provider \"{name}\", {uuid}: Object action \
                     create failed because: parent provider UUID does not exist."
                )))
            }
        },
    };
    let now = ferrostack_store::now_micros();
    let p = Provider {
        uuid: uuid.to_string(),
        name: name.to_string(),
        generation: 0,
        parent_uuid: parent.map(str::to_string),
        root_uuid: root,
        created_at: now,
        updated_at: now,
    };
    db::providers::insert(conn, &p).await.map_err(on_unique(
        codes::DUPLICATE_NAME,
        format!("Conflicting resource provider name: {name} already exists."),
    ))?;
    Ok(p)
}

/// Renames and/or re-parents a provider. `parent` is `None` when not given, `Some(None)` to
/// make it a root. Before 1.37 a parent may only be set where there was none.
pub async fn update(
    conn: &mut Conn,
    uuid: &str,
    name: Option<&str>,
    parent: Option<Option<&str>>,
    allow_reparenting: bool,
) -> Result<Provider> {
    let mut p = get(conn, uuid).await?;
    let fail = |why: &str| {
        PlacementError::BadRequest(format!(
            "Unable to save resource provider {uuid}: Object action update failed because: {why}"
        ))
    };
    let mut moved: Option<(String, BTreeSet<String>)> = None;
    if let Some(new_parent) = parent {
        if new_parent != p.parent_uuid.as_deref() {
            let sub = subtree(conn, &p).await?;
            match (new_parent, p.parent_uuid.is_some(), allow_reparenting) {
                (None, _, false) => return Err(fail("un-parenting a provider is not allowed.")),
                (Some(_), true, false) => {
                    return Err(fail("re-parenting a provider is not allowed."))
                }
                _ => {}
            }
            let new_root = match new_parent {
                None => uuid.to_string(),
                Some(np) => {
                    let parent = db::providers::get(conn, np)
                        .await?
                        .ok_or_else(|| fail("parent provider UUID does not exist."))?;
                    if sub.contains(np) {
                        return Err(fail("creating loop in the provider tree is not allowed."));
                    }
                    parent.root_uuid
                }
            };
            p.parent_uuid = new_parent.map(str::to_string);
            if new_root != p.root_uuid {
                moved = Some((new_root.clone(), sub));
            }
            p.root_uuid = new_root;
        }
    }
    if let Some(name) = name {
        p.name = name.to_string();
    }
    if let Some((root, sub)) = moved {
        let sub: Vec<String> = sub.into_iter().collect();
        db::providers::set_root(conn, &sub, &root).await?;
    }
    db::providers::update(conn, &p).await.map_err(on_unique(
        codes::DUPLICATE_NAME,
        format!("Conflicting resource provider {} already exists.", p.name),
    ))?;
    p.generation += 1;
    Ok(p)
}

/// `p` and all its descendants.
async fn subtree(conn: &mut Conn, p: &Provider) -> Result<BTreeSet<String>> {
    let tree = db::providers::tree(conn, &p.root_uuid).await?;
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for (u, parent) in tree {
        if let Some(parent) = parent {
            children.entry(parent).or_default().push(u);
        }
    }
    let mut out = BTreeSet::new();
    let mut stack = vec![p.uuid.clone()];
    while let Some(u) = stack.pop() {
        if out.insert(u.clone()) {
            stack.extend(children.get(&u).cloned().unwrap_or_default());
        }
    }
    Ok(out)
}

pub async fn delete(conn: &mut Conn, uuid: &str) -> Result<()> {
    get(conn, uuid).await?;
    if !db::providers::children(conn, uuid).await?.is_empty() {
        return Err(PlacementError::conflict_code(
            codes::PROVIDER_CANNOT_DELETE_PARENT,
            format!("Unable to delete parent resource provider {uuid}: It has child resource providers."),
        ));
    }
    if db::allocations::provider_has_allocations(conn, uuid).await? {
        return Err(PlacementError::conflict_code(
            codes::PROVIDER_IN_USE,
            format!(
                "Unable to delete resource provider {uuid}: Resource provider has allocations."
            ),
        ));
    }
    db::providers::delete(conn, uuid).await?;
    Ok(())
}

/// Replaces the provider's traits (all must exist). Returns whether they changed.
pub async fn set_traits(conn: &mut Conn, uuid: &str, traits: &[String]) -> Result<bool> {
    let missing = db::traits::missing(conn, traits).await?;
    if !missing.is_empty() {
        return Err(PlacementError::BadRequest(format!(
            "No such trait(s): {}.",
            missing.join(", ")
        )));
    }
    let want: BTreeSet<&String> = traits.iter().collect();
    let have = db::traits::for_provider(conn, uuid).await?;
    if have.iter().collect::<BTreeSet<_>>() == want {
        return Ok(false);
    }
    let want: Vec<String> = want.into_iter().cloned().collect();
    db::traits::set_for_provider(conn, uuid, &want).await?;
    Ok(true)
}

/// Replaces the provider's aggregates. Returns whether they changed.
pub async fn set_aggregates(conn: &mut Conn, uuid: &str, aggs: &[String]) -> Result<bool> {
    let want: BTreeSet<&String> = aggs.iter().collect();
    let have = db::aggregates::for_provider(conn, uuid).await?;
    if have.iter().collect::<BTreeSet<_>>() == want {
        return Ok(false);
    }
    let want: Vec<String> = want.into_iter().cloned().collect();
    db::aggregates::set_for_provider(conn, uuid, &want).await?;
    Ok(true)
}
