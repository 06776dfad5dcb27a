//! Provider trees: create, rename, re-parent (1.37), delete; traits and aggregates of a
//! provider. Each function runs in the caller's write transaction.

use std::collections::{BTreeSet, HashMap};

use crate::db::{self, Conn};
use crate::error::{codes, on_unique, PlacementError, Result};
use crate::model::Provider;

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
