//! Users: creation, changes (a new password or disabling revokes the user's tokens), deletion,
//! the self-service password change, and the guard that keeps administrators out of reach of
//! a domain's managers.

use super::effective_roles;
use super::password;
use super::tokens::revoke_user;
use crate::db;
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::{Group, User};
use crate::Identity;

fn duplicate_name(u: &User) -> String {
    format!(
        "Duplicate entry found with name {} at domain ID {}",
        u.name, u.domain_id
    )
}

/// Which users a listing returns (every field that is set must match).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// The caller's domain when only that domain's users may be shown (a domain-scoped
    /// caller, whatever `domain_id` it asks for).
    pub only_domain: Option<String>,
}

/// The user `user_id`; `NotFound` when there is none.
pub async fn get(id: &Identity, user_id: &str) -> Result<User> {
    db::users::get(&id.db.pool, user_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("user", user_id))
}

/// The users matching `f`, in the store's order.
pub async fn list(id: &Identity, f: &UserFilter) -> Result<Vec<User>> {
    let domain = f.domain_id.as_deref().or(f.only_domain.as_deref());
    Ok(db::users::list(&id.db.pool, domain, f.name.as_deref())
        .await?
        .into_iter()
        .filter(|u| f.only_domain.as_ref().is_none_or(|d| *d == u.domain_id))
        .filter(|u| f.enabled.is_none_or(|e| e == u.enabled))
        .collect())
}

/// Creates `u` with `password` (hashed here) and returns it as stored. `NotFound` when its
/// domain does not exist (Keystone's DomainNotFound), `Conflict` when its name is taken there.
pub async fn create(id: &Identity, mut u: User, password: Option<String>) -> Result<User> {
    if db::domains::get(&id.db.pool, &u.domain_id).await?.is_none() {
        return Err(IdentityError::not_found("domain", &u.domain_id));
    }
    if let Some(pw) = password {
        u.password_hash = Some(password::hash(pw).await?);
    }
    let mut tx = id.db.begin_write().await?;
    db::users::insert(&mut *tx, &u)
        .await
        .map_err(conflict_or("user", duplicate_name(&u)))?;
    id.commit_change(tx, vec![]).await?;
    Ok(u)
}

/// Refuses (403) a change to `u` by a caller who is not a cloud admin when `u` holds `admin`
/// anywhere (directly, through a group or by implication): a domain manager passes
/// `identity:update_user` for every user of its domain, and could otherwise take over an
/// administrator of the cloud who lives there (the bootstrap admin is in `Default`).
pub async fn check_changeable(id: &Identity, caller_is_admin: bool, u: &User) -> Result<()> {
    if caller_is_admin {
        return Ok(());
    }
    let mut conn = id.db.pool.acquire().await?;
    if effective_roles::holds_admin_anywhere(&mut conn, &u.id).await? {
        return Err(IdentityError::ForbiddenWithReason(format!(
            "User {} holds the admin role: only a cloud administrator may change it.",
            u.id
        )));
    }
    Ok(())
}

/// Stores `u`, a changed copy of a stored user (its domain never changes), and sets
/// `new_password` when given; `Conflict` when its new name is taken. A new password revokes
/// the user's tokens; disabling the user revokes them and deletes its application credentials
/// (as Keystone). The caller checks [`check_changeable`] first.
pub async fn update(id: &Identity, u: &User, new_password: Option<String>) -> Result<()> {
    let hash = match new_password {
        Some(pw) => Some(password::hash(pw).await?),
        None => None,
    };
    let mut tx = id.db.begin_write().await?;
    let was_enabled = db::users::get(&mut *tx, &u.id)
        .await?
        .ok_or_else(|| IdentityError::not_found("user", &u.id))?
        .enabled;
    db::users::update(&mut *tx, u)
        .await
        .map_err(conflict_or("user", duplicate_name(u)))?;
    let mut events = vec![];
    if let Some(h) = &hash {
        db::users::set_password(&mut *tx, &u.id, h).await?;
        events.push(revoke_user(&u.id, None));
    }
    if was_enabled && !u.enabled {
        events.push(revoke_user(&u.id, None));
        db::app_creds::delete_for_user(&mut tx, &u.id).await?;
    }
    id.commit_change(tx, events).await
}

/// Deletes the user `user_id` with its grants and revokes its tokens. The caller checks
/// [`check_changeable`] first.
pub async fn delete(id: &Identity, user_id: &str) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    db::assignments::delete_for_actor(&mut *tx, user_id).await?;
    db::users::delete(&mut *tx, user_id).await?;
    id.commit_change(tx, vec![revoke_user(user_id, None)]).await
}

/// The self-service password change: `original` is checked as a login is (a locked-out user
/// cannot change it, and a wrong one counts toward the lockout, since anyone may try this
/// without a token); then the password becomes `new` and the user's tokens are revoked.
pub async fn change_password(
    id: &Identity,
    user_id: String,
    original: &str,
    new: String,
) -> Result<()> {
    let user = id
        .password_user(&super::auth::UserRef::Id(user_id), original)
        .await?;
    if !user.enabled {
        return Err(IdentityError::Unauthorized);
    }
    let hash = password::hash(new).await?;
    let mut tx = id.db.begin_write().await?;
    db::users::set_password(&mut *tx, &user.id, &hash).await?;
    id.commit_change(tx, vec![revoke_user(&user.id, None)])
        .await
}

/// The groups `user_id` is a member of.
pub async fn groups(id: &Identity, user_id: &str) -> Result<Vec<Group>> {
    Ok(db::groups::list_for_user(&id.db.pool, user_id).await?)
}
