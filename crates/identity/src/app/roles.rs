//! Roles (global and domain-specific) and the rules by which one role implies another. What a
//! role grants is in [`super::effective_roles`].

use super::effective_roles::RoleGraph;
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::Role;
use crate::Identity;

/// Roles that may not be implied by another (Keystone's `prohibited_implied_role`).
const PROHIBITED_IMPLIED: [&str; 1] = ["admin"];

fn duplicate_name(r: &Role) -> String {
    format!("Duplicate entry found with name {}", r.name)
}

fn no_such_rule(prior: &Role, implied: &Role) -> IdentityError {
    IdentityError::not_found(
        "implied role",
        format!("{} implies {}", prior.id, implied.id),
    )
}

/// The role `role_id`; `NotFound` when there is none.
pub async fn get(id: &Identity, role_id: &str) -> Result<Role> {
    db::roles::get(&id.db.pool, role_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("role", role_id))
}

/// The global roles, or those of `domain_id`, named `name` when given.
pub async fn list(id: &Identity, domain_id: Option<&str>, name: Option<&str>) -> Result<Vec<Role>> {
    Ok(db::roles::list(&id.db.pool, domain_id)
        .await?
        .into_iter()
        .filter(|r| name.is_none_or(|n| n == r.name))
        .collect())
}

/// Creates `r`; a validation error when its domain does not exist, `Conflict` when its name
/// is taken.
pub async fn create(id: &Identity, r: &Role) -> Result<()> {
    if let Some(d) = &r.domain_id {
        if db::domains::get(&id.db.pool, d).await?.is_none() {
            return Err(IdentityError::validation(format!(
                "Could not find domain: {d}."
            )));
        }
    }
    let mut tx = id.db.begin_write().await?;
    db::roles::insert(&mut *tx, r)
        .await
        .map_err(conflict_or("role", duplicate_name(r)))?;
    id.commit_change(tx, vec![]).await
}

/// Stores `r`, a changed copy of a stored role (its domain never changes); `Conflict` when its
/// new name is taken.
pub async fn update(id: &Identity, r: &Role) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::roles::update(&mut *tx, r)
        .await
        .map_err(conflict_or("role", duplicate_name(r)))?;
    id.commit_change(tx, vec![]).await
}

/// Deletes the role `role_id`; its grants and implication rules go with it (ON DELETE
/// CASCADE), and so does what it gave in tokens.
pub async fn delete(id: &Identity, role_id: &str) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::roles::delete(&mut *tx, role_id).await?;
    id.commit_change(tx, vec![]).await
}

/// Adds the rule "`prior` implies `implied`". Refused (403) for a prohibited implied role
/// (`admin`) and for a global role implying a domain-specific one; a validation error when the
/// rule would close a cycle.
pub async fn add_implied(id: &Identity, prior: &Role, implied: &Role) -> Result<()> {
    if PROHIBITED_IMPLIED.contains(&implied.name.as_str()) {
        return Err(IdentityError::ForbiddenWithReason(format!(
            "{} role may not be implied.",
            implied.name
        )));
    }
    if implied.domain_id.is_some() && prior.domain_id.is_none() {
        return Err(IdentityError::ForbiddenWithReason(
            "A global role cannot imply a domain-specific role.".into(),
        ));
    }
    let mut tx = id.db.begin_write().await?;
    let graph = RoleGraph::load(&mut tx).await?;
    if prior.id == implied.id || graph.implies(&implied.id, &prior.id) {
        return Err(IdentityError::validation(format!(
            "Implying {} from {} would create a cycle of implied roles.",
            implied.name, prior.name
        )));
    }
    db::roles::add_implied(&mut *tx, &prior.id, &implied.id).await?;
    id.commit_change(tx, vec![]).await
}

/// `Ok` when the rule "`prior` implies `implied`" exists, `NotFound` otherwise.
pub async fn check_implied(id: &Identity, prior: &Role, implied: &Role) -> Result<()> {
    let rules = db::roles::implied_rules(&id.db.pool).await?;
    if rules
        .iter()
        .any(|(p, i)| *p == prior.id && *i == implied.id)
    {
        Ok(())
    } else {
        Err(no_such_rule(prior, implied))
    }
}

/// Removes the rule "`prior` implies `implied`"; `NotFound` when there is none.
pub async fn remove_implied(id: &Identity, prior: &Role, implied: &Role) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    if !db::roles::remove_implied(&mut *tx, &prior.id, &implied.id).await? {
        return Err(no_such_rule(prior, implied));
    }
    id.commit_change(tx, vec![]).await
}

/// The roles `prior_id` implies directly, in rule order.
pub async fn implied_by(id: &Identity, prior_id: &str) -> Result<Vec<Role>> {
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let rules = db::roles::implied_rules(&mut *conn).await?;
    Ok(rules
        .iter()
        .filter(|(p, _)| p == prior_id)
        .filter_map(|(_, i)| graph.roles.get(i).cloned())
        .collect())
}

/// Every implication rule grouped by prior role: `(prior, the roles it implies directly)`, in
/// the order the priors first appear among the rules.
pub async fn inference_rules(id: &Identity) -> Result<Vec<(Role, Vec<Role>)>> {
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let rules = db::roles::implied_rules(&mut *conn).await?;
    let mut by_prior: Vec<(String, Vec<Role>)> = Vec::new();
    for (p, i) in &rules {
        let Some(ir) = graph.roles.get(i) else {
            continue;
        };
        match by_prior.iter_mut().find(|(k, _)| k == p) {
            Some((_, v)) => v.push(ir.clone()),
            None => by_prior.push((p.clone(), vec![ir.clone()])),
        }
    }
    Ok(by_prior
        .into_iter()
        .filter_map(|(p, implies)| graph.roles.get(&p).map(|pr| (pr.clone(), implies)))
        .collect())
}
