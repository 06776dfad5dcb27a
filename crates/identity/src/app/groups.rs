//! Groups and their members. A membership change changes what the member's tokens grant, so
//! each one bumps the identity generation.

use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{Group, User};
use crate::Identity;

fn duplicate_name(g: &Group) -> String {
    format!(
        "Duplicate entry found with name {} at domain ID {}",
        g.name, g.domain_id
    )
}

fn not_a_member(g: &Group, u: &User) -> IdentityError {
    IdentityError::NotFound {
        kind: "user in group",
        id: format!("{} in {}", u.id, g.id),
    }
}

/// Which groups a listing returns (every field that is set must match).
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    /// The caller's domain when only that domain's groups may be shown (a domain-scoped
    /// caller, whatever `domain_id` it asks for).
    pub only_domain: Option<String>,
}

/// The group `group_id`; `NotFound` when there is none.
pub async fn get(id: &Identity, group_id: &str) -> Result<Group> {
    db::groups::get(&id.db.pool, group_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("group", group_id))
}

/// The groups matching `f`, in the store's order.
pub async fn list(id: &Identity, f: &GroupFilter) -> Result<Vec<Group>> {
    let domain = f.domain_id.as_deref().or(f.only_domain.as_deref());
    Ok(db::groups::list(&id.db.pool, domain, f.name.as_deref())
        .await?
        .into_iter()
        .filter(|g| f.only_domain.as_ref().is_none_or(|d| *d == g.domain_id))
        .collect())
}

/// Creates `g`. `NotFound` when its domain does not exist (Keystone's DomainNotFound),
/// `Conflict` when its name is taken there.
pub async fn create(id: &Identity, g: &Group) -> Result<()> {
    if db::domains::get(&id.db.pool, &g.domain_id).await?.is_none() {
        return Err(IdentityError::not_found("domain", &g.domain_id));
    }
    let mut tx = id.db.begin_write().await?;
    db::groups::insert(&mut *tx, g)
        .await
        .map_err(conflict_or("group", duplicate_name(g)))?;
    id.commit_change(tx, vec![]).await
}

/// Stores `g`, a changed copy of a stored group (its domain never changes); `Conflict` when
/// its new name is taken.
pub async fn update(id: &Identity, g: &Group) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::groups::update(&mut *tx, g)
        .await
        .map_err(conflict_or("group", duplicate_name(g)))?;
    id.commit_change(tx, vec![]).await
}

/// Deletes the group `group_id` with its grants (its members lose what it gave them).
pub async fn delete(id: &Identity, group_id: &str) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::assignments::delete_for_actor(&mut *tx, group_id).await?;
    db::groups::delete(&mut *tx, group_id).await?;
    id.commit_change(tx, vec![]).await
}

/// The members of the group `group_id`.
pub async fn members(id: &Identity, group_id: &str) -> Result<Vec<User>> {
    Ok(db::users::list_in_group(&id.db.pool, group_id).await?)
}

/// `Ok` when `u` is a member of `g`, `NotFound` otherwise.
pub async fn check_member(id: &Identity, g: &Group, u: &User) -> Result<()> {
    if db::groups::is_member(&id.db.pool, &g.id, &u.id).await? {
        Ok(())
    } else {
        Err(not_a_member(g, u))
    }
}

/// Makes `u` a member of `g` (nothing changes when it is one already).
pub async fn add_member(id: &Identity, g: &Group, u: &User) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::groups::add_member(&mut *tx, &g.id, &u.id).await?;
    id.commit_change(tx, vec![]).await
}

/// Removes `u` from `g`; `NotFound` when it is not a member.
pub async fn remove_member(id: &Identity, g: &Group, u: &User) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    if !db::groups::remove_member(&mut *tx, &g.id, &u.id).await? {
        return Err(not_a_member(g, u));
    }
    id.commit_change(tx, vec![]).await
}
