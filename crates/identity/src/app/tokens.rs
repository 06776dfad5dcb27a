//! Issuing tokens for an authenticated user and a scope, validating tokens into an
//! [`AuthContext`], and committing identity changes so that validations cached before them are
//! dropped and revoked tokens stop working at once.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use ferrostack_api::{AppCredRef, AuthContext, RoleRef, ScopeRef};
use ferrostack_store::sqlx::{Any, Transaction};

use super::effective_roles::{self as roles, RoleGraph};
use crate::db::{self, Conn};
use crate::error::{IdentityError, Result};
use crate::model::{RevocationEvent, User};
use crate::token::{payload, Decoded, Payload, Scope};
use crate::Identity;

/// A token payload's expiry (float seconds, as Keystone writes it) in microseconds.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a float-to-integer `as` saturates, and expiry times are far inside i64 microseconds"
)]
fn seconds_to_micros(s: f64) -> i64 {
    (s * 1e6) as i64
}

fn micros_to_time(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// Checks a decoded token against the current database state and resolves what it grants.
async fn build_context(
    id: &Identity,
    conn: &mut Conn,
    token: &str,
    d: &Decoded,
) -> Result<AuthContext> {
    let mut ctx = resolve(conn, &id.config.admin_project, token, d).await?;
    ctx.is_admin = id.policy.enforce(
        "context_is_admin",
        &serde_json::json!({}),
        &ctx.credentials(),
    );
    Ok(ctx)
}

/// The user, scope and roles a decoded token stands for, as the database has them now.
async fn resolve(
    conn: &mut Conn,
    admin_project: &crate::AdminProject,
    token: &str,
    d: &Decoded,
) -> Result<AuthContext> {
    let p = &d.payload;
    let user = db::users::get(&mut *conn, &p.user_id)
        .await?
        .filter(|u| u.enabled)
        .ok_or(IdentityError::Unauthorized)?;
    let user_domain = db::domains::get(&mut *conn, &user.domain_id)
        .await?
        .filter(|d| d.enabled)
        .ok_or(IdentityError::Unauthorized)?;
    let graph = RoleGraph::load(conn).await?;
    let mut ctx = AuthContext {
        token: token.to_string(),
        user_id: user.id.clone(),
        user_name: user.name.clone(),
        user_domain_id: user_domain.id.clone(),
        user_domain_name: user_domain.name.clone(),
        project: None,
        domain: None,
        system: false,
        roles: Vec::new(),
        methods: p.methods.clone(),
        audit_ids: p.audit_ids.clone(),
        issued_at: micros_to_time(d.issued_at),
        expires_at: micros_to_time(seconds_to_micros(p.expires_at)),
        application_credential: None,
        is_admin_project: false,
        is_admin: false,
    };
    match &p.scope {
        Scope::Unscoped => {}
        Scope::Project(pid)
        | Scope::ApplicationCredential {
            project_id: pid, ..
        } => {
            let project = db::projects::get(conn, pid)
                .await?
                .filter(|p| p.enabled)
                .ok_or(IdentityError::Unauthorized)?;
            let pdomain = db::domains::get(&mut *conn, &project.domain_id)
                .await?
                .filter(|d| d.enabled)
                .ok_or(IdentityError::Unauthorized)?;
            let granted = roles::granted_on_project(conn, &user.id, &project).await?;
            let mut roles = graph.token_roles(&granted);
            if let Scope::ApplicationCredential {
                application_credential_id,
                ..
            } = &p.scope
            {
                let ac = db::app_creds::get(conn, application_credential_id)
                    .await?
                    .filter(|a| a.user_id == user.id && a.project_id == project.id)
                    .ok_or(IdentityError::Unauthorized)?;
                if ac
                    .expires_at
                    .is_some_and(|e| e <= ferrostack_store::now_micros())
                {
                    return Err(IdentityError::Unauthorized);
                }
                // Only the delegated roles the user still holds (and what they imply).
                let allowed = graph.closure(ac.role_ids.iter());
                roles.retain(|r| allowed.contains(&r.id));
                ctx.application_credential = Some(AppCredRef {
                    id: ac.id,
                    name: ac.name,
                    restricted: !ac.unrestricted,
                });
            }
            if roles.is_empty() {
                return Err(IdentityError::Unauthorized);
            }
            ctx.roles = roles;
            ctx.is_admin_project =
                project.name == admin_project.name && pdomain.name == admin_project.domain_name;
            ctx.project = Some(ScopeRef {
                id: project.id,
                name: project.name,
                domain_id: pdomain.id,
                domain_name: pdomain.name,
            });
        }
        Scope::Domain(did) => {
            let domain = db::domains::get(&mut *conn, did)
                .await?
                .filter(|d| d.enabled)
                .ok_or(IdentityError::Unauthorized)?;
            let granted = roles::granted_on_domain(conn, &user.id, &domain.id).await?;
            ctx.roles = graph.token_roles(&granted);
            if ctx.roles.is_empty() {
                return Err(IdentityError::Unauthorized);
            }
            ctx.domain = Some(ScopeRef {
                id: domain.id.clone(),
                name: domain.name.clone(),
                domain_id: domain.id,
                domain_name: domain.name,
            });
        }
        Scope::System => {
            let granted = roles::granted_on_system(conn, &user.id).await?;
            ctx.roles = graph.token_roles(&granted);
            if ctx.roles.is_empty() {
                return Err(IdentityError::Unauthorized);
            }
            ctx.system = true;
        }
    }
    Ok(ctx)
}

/// Validates a token: a cache lookup when it was validated before at the current identity
/// generation; otherwise decrypt, check revocation, resolve from the database, and cache.
pub async fn validate(id: &Identity, token: &str) -> Result<Arc<AuthContext>> {
    if let Some(ctx) = id.tokens.cached(token) {
        return Ok(ctx);
    }
    let generation = id.tokens.generation();
    let decoded = id.tokens.decode(token).map_err(|e| {
        tracing::debug!(reason = %e, "token refused");
        IdentityError::Unauthorized
    })?;
    let mut conn = id.db.pool.acquire().await?;
    let ctx = Arc::new(build_context(id, &mut conn, token, &decoded).await?);
    id.tokens.remember(token, ctx.clone(), generation);
    Ok(ctx)
}

/// Issues a token for `user` with `scope`, and validates it at once so the caller gets the
/// resolved roles (and a scope the user has no role on is refused here).
pub async fn issue(
    id: &Identity,
    user: &User,
    mut methods: Vec<String>,
    scope: Scope,
    parent: Option<&AuthContext>,
) -> Result<(String, Arc<AuthContext>)> {
    let now = ferrostack_store::now_micros() as f64 / 1e6;
    let mut expires_at = now + id.config.token_expiration.as_secs_f64();
    let mut audit_ids = vec![payload::new_audit_id()];
    if let Some(parent) = parent {
        // A token obtained with a token keeps its parent's expiry and audit chain.
        expires_at = expires_at.min(parent.expires_at.timestamp_micros() as f64 / 1e6);
        if let Some(first) = parent.audit_ids.last() {
            audit_ids.push(first.clone());
        }
        // The new token records every method used along the chain (e.g. password + token).
        for m in parent.methods.iter().rev() {
            if !methods.contains(m) {
                methods.insert(0, m.clone());
            }
        }
    }
    let payload = Payload {
        user_id: user.id.clone(),
        methods,
        scope,
        expires_at,
        audit_ids,
    };
    let (token, issued_at) = id.tokens.encrypt(&payload);
    let decoded = Decoded { payload, issued_at };
    let mut conn = id.db.pool.acquire().await?;
    let generation = id.tokens.generation();
    let ctx = Arc::new(build_context(id, &mut conn, &token, &decoded).await?);
    id.tokens.remember(&token, ctx.clone(), generation);
    Ok((token, ctx))
}

impl Identity {
    /// Commits an identity change made in `tx`: records `events`, bumps the identity generation
    /// (dropping cached validations on every controller) and applies both locally at once.
    ///
    /// Every write that can change what a token grants must end here rather than in a plain
    /// `tx.commit()`, or cached validations would keep granting what was taken away. It is
    /// visible to the application layer only, so that no HTTP handler can commit a change
    /// without it.
    pub(in crate::app) async fn commit_change(
        &self,
        mut tx: Transaction<'static, Any>,
        events: Vec<RevocationEvent>,
    ) -> Result<()> {
        for ev in &events {
            db::revocations::insert(&mut *tx, ev).await?;
        }
        let g = db::bump_generation(&mut tx).await?;
        tx.commit().await?;
        self.tokens.add_events(events);
        self.tokens.set_generation(g);
        Ok(())
    }
}

/// A revocation event for tokens of `user_id` (optionally only those scoped to `project_id`)
/// issued until now.
pub(in crate::app) fn revoke_user(user_id: &str, project_id: Option<&str>) -> RevocationEvent {
    let now = ferrostack_store::now_micros();
    RevocationEvent {
        user_id: user_id.to_string(),
        project_id: project_id.unwrap_or_default().to_string(),
        issued_before: now,
        revoked_at: now,
        ..Default::default()
    }
}

/// A revocation event for every token scoped to `project_id` issued until now.
pub(in crate::app) fn revoke_project(project_id: &str) -> RevocationEvent {
    let now = ferrostack_store::now_micros();
    RevocationEvent {
        project_id: project_id.to_string(),
        issued_before: now,
        revoked_at: now,
        ..Default::default()
    }
}

/// A revocation event for every token of the domain `domain_id` issued until now.
pub(in crate::app) fn revoke_domain(domain_id: &str) -> RevocationEvent {
    let now = ferrostack_store::now_micros();
    RevocationEvent {
        domain_id: domain_id.to_string(),
        issued_before: now,
        revoked_at: now,
        ..Default::default()
    }
}

/// Revokes the token `ctx` was validated from, by its audit id (so tokens obtained with an
/// original token, which carry that audit id, go with it): it fails validation at once on
/// every controller.
pub async fn revoke(id: &Identity, ctx: &AuthContext) -> Result<()> {
    let now = ferrostack_store::now_micros();
    let ev = RevocationEvent {
        audit_id: ctx.audit_ids.first().cloned().unwrap_or_default(),
        issued_before: now,
        revoked_at: now,
        ..Default::default()
    };
    let tx = id.db.begin_write().await?;
    id.commit_change(tx, vec![ev]).await
}

/// The role refs of a context, for building wire bodies.
pub fn role_refs(ctx: &AuthContext) -> &[RoleRef] {
    &ctx.roles
}
