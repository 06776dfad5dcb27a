//! Domains: creation, changes (disabling one revokes every token it stands behind), deletion
//! with everything the domain owns, and the domains a user may scope a token to.

use std::collections::HashMap;

use super::effective_roles;
use super::tokens::{revoke_domain, revoke_project, revoke_user};
use crate::db::{self, projects::ProjectFilter};
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{AssignmentKind, Domain, DEFAULT_DOMAIN_ID};
use crate::Identity;

/// Which domains a listing returns (every field that is set must match).
#[derive(Debug, Clone, Default)]
pub struct DomainFilter {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

/// The domain `domain_id`; `NotFound` when there is none.
pub async fn get(id: &Identity, domain_id: &str) -> Result<Domain> {
    db::domains::get(&id.db.pool, domain_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", domain_id))
}

/// The domains matching `f`, in the store's order.
pub async fn list(id: &Identity, f: &DomainFilter) -> Result<Vec<Domain>> {
    Ok(db::domains::list(&id.db.pool)
        .await?
        .into_iter()
        .filter(|d| f.name.as_ref().is_none_or(|n| *n == d.name))
        .filter(|d| f.enabled.is_none_or(|e| e == d.enabled))
        .collect())
}

/// Creates `d`; `Conflict` when its name is taken.
pub async fn create(id: &Identity, d: &Domain) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::domains::insert(&mut *tx, d).await.map_err(conflict_or(
        "domain",
        format!("Duplicate entry found with name {}", d.name),
    ))?;
    id.commit_change(tx, vec![]).await
}

/// Stores `d`, a changed copy of a stored domain; `Conflict` when its new name is taken.
/// Disabling the domain revokes the tokens scoped to it, those of its users and those scoped
/// to its projects, so that they stay invalid once the domain is enabled again (as Keystone).
pub async fn update(id: &Identity, d: &Domain) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    let was_enabled = db::domains::get(&mut *tx, &d.id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", &d.id))?
        .enabled;
    db::domains::update(&mut *tx, d).await.map_err(conflict_or(
        "domain",
        format!("Duplicate entry found with name {}", d.name),
    ))?;
    let mut events = vec![];
    if was_enabled && !d.enabled {
        events.push(revoke_domain(&d.id));
        for u in db::users::list(&mut *tx, Some(&d.id), None).await? {
            events.push(revoke_user(&u.id, None));
        }
        let filter = ProjectFilter {
            domain_id: Some(d.id.clone()),
            ..Default::default()
        };
        for p in db::projects::list(&mut tx, &filter).await? {
            events.push(revoke_project(&p.id));
        }
    }
    id.commit_change(tx, events).await
}

/// Deletes the domain `domain_id` and everything it owns (projects, leaves first, with their
/// grants and limits; users, groups, domain-specific roles; grants on the domain), as
/// Keystone does. Refused (403) while the domain is enabled, and always for the default
/// domain.
pub async fn delete(id: &Identity, domain_id: &str) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    let d = db::domains::get(&mut *tx, domain_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", domain_id))?;
    if d.enabled {
        return Err(IdentityError::ForbiddenWithReason(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    if d.id == DEFAULT_DOMAIN_ID {
        return Err(IdentityError::ForbiddenWithReason(
            "The default domain cannot be deleted.".into(),
        ));
    }
    let mut projects = db::projects::list(
        &mut tx,
        &ProjectFilter {
            domain_id: Some(d.id.clone()),
            ..Default::default()
        },
    )
    .await?;
    // Delete leaves first: sort by depth, deepest first.
    let mut depth = HashMap::new();
    for p in &projects {
        depth.insert(
            p.id.clone(),
            db::projects::ancestors(&mut tx, &p.id).await?.len(),
        );
    }
    projects.sort_by_key(|p| std::cmp::Reverse(depth.get(&p.id).copied().unwrap_or(0)));
    for p in &projects {
        db::assignments::delete_for_target(&mut *tx, &p.id).await?;
        db::limits::delete_for_owner(&mut *tx, &p.id).await?;
        db::projects::delete(&mut tx, &p.id).await?;
    }
    db::limits::delete_for_owner(&mut *tx, &d.id).await?;
    for u in db::users::list(&mut *tx, Some(&d.id), None).await? {
        db::assignments::delete_for_actor(&mut *tx, &u.id).await?;
        db::users::delete(&mut *tx, &u.id).await?;
    }
    for g in db::groups::list(&mut *tx, Some(&d.id), None).await? {
        db::assignments::delete_for_actor(&mut *tx, &g.id).await?;
        db::groups::delete(&mut *tx, &g.id).await?;
    }
    for r in db::roles::list(&mut *tx, Some(&d.id)).await? {
        db::roles::delete(&mut *tx, &r.id).await?;
    }
    db::assignments::delete_for_target(&mut *tx, &d.id).await?;
    db::domains::delete(&mut *tx, &d.id).await?;
    id.commit_change(tx, vec![]).await
}

/// The enabled domains on which `user_id` holds a role directly or through a group (not an
/// inherited one): the domains it may scope a token to.
pub async fn for_user(id: &Identity, user_id: &str) -> Result<Vec<Domain>> {
    let mut conn = id.db.pool.acquire().await?;
    let actors = effective_roles::actors(&mut conn, user_id).await?;
    let assignments = db::assignments::list_for_actors(&mut *conn, &actors).await?;
    Ok(db::domains::list(&mut *conn)
        .await?
        .into_iter()
        .filter(|d| {
            d.enabled
                && assignments.iter().any(|a| {
                    matches!(
                        a.kind,
                        AssignmentKind::UserDomain | AssignmentKind::GroupDomain
                    ) && !a.inherited
                        && a.target_id == d.id
                })
        })
        .collect())
}
