//! Application credentials: who may create and delete them, the roles one delegates, and
//! their storage (the secret is kept as an argon2 hash only).

use ferrostack_api::{AuthContext, RoleRef};

use super::effective_roles::RoleGraph;
use super::password;
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{new_id, ApplicationCredential, Role};
use crate::Identity;

/// Whether `caller` may create an application credential for `user_id`: only for itself, not
/// with a restricted application credential, and with a project-scoped token (the credential's
/// project). Returns that project's id.
pub fn check_creator(caller: &AuthContext, user_id: &str) -> Result<String> {
    if caller.user_id != user_id {
        return Err(IdentityError::ForbiddenWithReason(
            "Application credentials are created by their own user.".into(),
        ));
    }
    if caller
        .application_credential
        .as_ref()
        .is_some_and(|a| a.restricted)
    {
        return Err(IdentityError::ForbiddenWithReason(
            "A restricted application credential cannot create another application credential."
                .into(),
        ));
    }
    caller
        .project
        .as_ref()
        .map(|p| p.id.clone())
        .ok_or_else(|| {
            IdentityError::ForbiddenWithReason("A project-scoped token is required.".into())
        })
}

/// A role a creation request names, as sent: `{"id": ...}` and/or `{"name": ...}`.
#[derive(Debug, Clone, Default)]
pub struct RoleSpec {
    /// Whether the request has an `id` key at all (whatever its value).
    pub has_id: bool,
    /// The `id`, when it is a string.
    pub id: Option<String>,
    /// The `name`, when it is a string.
    pub name: Option<String>,
}

/// The role ids a new credential delegates. No list (or an empty one, which is what the
/// openstack client sends without `--role`) delegates every role of the token. Otherwise each
/// role named must be one of the token's (an unknown role name is `NotFound`, any other role
/// the token lacks a validation error, as Keystone 30.0.0 `_get_roles`), and the roles they
/// imply are delegated too.
pub async fn delegated_roles(
    id: &Identity,
    token_roles: &[RoleRef],
    requested: Option<Vec<RoleSpec>>,
) -> Result<Vec<String>> {
    let requested = match requested {
        Some(list) if !list.is_empty() => list,
        _ => return Ok(token_roles.iter().map(|r| r.id.clone()).collect()),
    };
    let mut ids = Vec::new();
    for r in requested {
        let found = token_roles.iter().find(|t| {
            r.id.as_deref() == Some(t.id.as_str()) || r.name.as_deref() == Some(t.name.as_str())
        });
        match found {
            Some(t) => ids.push(t.id.clone()),
            None => {
                if let (false, Some(n)) = (r.has_id, &r.name) {
                    if db::roles::get_by_name(&id.db.pool, None, n)
                        .await?
                        .is_none()
                    {
                        return Err(IdentityError::not_found("role", n));
                    }
                }
                return Err(IdentityError::validation(
                    "Invalid application credential: Cannot create an application credential with \
                     unassigned role",
                ));
            }
        }
    }
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    for r in graph.closure(ids.clone().iter()) {
        if !ids.contains(&r) {
            ids.push(r);
        }
    }
    Ok(ids)
}

/// A credential to create.
#[derive(Debug, Clone)]
pub struct NewAppCred {
    pub name: String,
    pub description: String,
    pub user_id: String,
    pub project_id: String,
    /// The secret in clear; only its hash is stored.
    pub secret: String,
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    /// From [`delegated_roles`].
    pub role_ids: Vec<String>,
}

/// The roles of `ac` that still exist, in its order.
fn roles_in(graph: &RoleGraph, ac: &ApplicationCredential) -> Vec<Role> {
    ac.role_ids
        .iter()
        .filter_map(|r| graph.roles.get(r).cloned())
        .collect()
}

/// Creates the credential; `Conflict` when the user has one of that name. Returns it as
/// stored with its roles.
pub async fn create(id: &Identity, new: NewAppCred) -> Result<(ApplicationCredential, Vec<Role>)> {
    let ac = ApplicationCredential {
        id: new_id(),
        name: new.name,
        user_id: new.user_id,
        project_id: new.project_id,
        secret_hash: password::hash(new.secret).await?,
        description: new.description,
        expires_at: new.expires_at,
        unrestricted: new.unrestricted,
        role_ids: new.role_ids,
    };
    let mut tx = id.db.begin_write().await?;
    db::app_creds::insert(&mut tx, &ac)
        .await
        .map_err(conflict_or(
            "application_credential",
            format!("Duplicate entry found with name {}", ac.name),
        ))?;
    id.commit_change(tx, vec![]).await?;
    let roles = roles_of(id, &ac).await?;
    Ok((ac, roles))
}

/// The credentials of `user_id` (named `name` when given), each with its roles.
pub async fn list(
    id: &Identity,
    user_id: &str,
    name: Option<&str>,
) -> Result<Vec<(ApplicationCredential, Vec<Role>)>> {
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    Ok(db::app_creds::list_for_user(&mut conn, user_id)
        .await?
        .into_iter()
        .filter(|a| name.is_none_or(|n| n == a.name))
        .map(|a| {
            let roles = roles_in(&graph, &a);
            (a, roles)
        })
        .collect())
}

/// The credential `cred_id` of `user_id`; `NotFound` when there is none (or it is another
/// user's).
pub async fn find(id: &Identity, user_id: &str, cred_id: &str) -> Result<ApplicationCredential> {
    let mut conn = id.db.pool.acquire().await?;
    db::app_creds::get(&mut conn, cred_id)
        .await?
        .filter(|a| a.user_id == user_id)
        .ok_or_else(|| IdentityError::not_found("application credential", cred_id))
}

/// The roles `ac` delegates that still exist, in its order.
pub async fn roles_of(id: &Identity, ac: &ApplicationCredential) -> Result<Vec<Role>> {
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    Ok(roles_in(&graph, ac))
}

/// Deletes the credential `cred_id` on behalf of `caller` (refused, 403, when the caller
/// authenticated with a restricted application credential). Tokens obtained with it stop
/// validating at once: the generation bump drops cached validations and a fresh validation
/// finds the credential gone.
pub async fn delete(id: &Identity, caller: &AuthContext, cred_id: &str) -> Result<()> {
    if caller
        .application_credential
        .as_ref()
        .is_some_and(|a| a.restricted)
    {
        return Err(IdentityError::ForbiddenWithReason(
            "A restricted application credential cannot delete application credentials.".into(),
        ));
    }
    let mut tx = id.db.begin_write().await?;
    db::app_creds::delete(&mut tx, cred_id).await?;
    id.commit_change(tx, vec![]).await
}
