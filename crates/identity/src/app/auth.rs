//! Authentication (`POST /v3/auth/tokens`): the password, token and application_credential
//! methods, scope resolution, and lockout after repeated failures.

use std::sync::Arc;

use ferrostack_api::AuthContext;

use super::{effective_roles as roles, password, tokens};
use crate::db;
use crate::error::{IdentityError, Result};
use crate::model::{Project, User};
use crate::token::Scope;
use crate::Identity;

#[derive(Debug, Clone)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

#[derive(Debug, Clone)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

#[derive(Debug, Clone)]
pub enum ScopeRequest {
    /// No scope given: the user's default project when it has a role there, else unscoped.
    Default,
    Unscoped,
    Project(ProjectRef),
    Domain(DomainRef),
    System,
}

#[derive(Debug, Clone)]
pub enum AppCredRef {
    Id(String),
    Name { name: String, user: UserRef },
}

/// A parsed authentication request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub methods: Vec<String>,
    pub password: Option<(UserRef, String)>,
    pub token: Option<String>,
    pub application_credential: Option<(AppCredRef, String)>,
    pub scope: ScopeRequest,
}

async fn resolve_domain_id(id: &Identity, d: &DomainRef) -> Result<Option<String>> {
    Ok(match d {
        DomainRef::Id(i) => Some(i.clone()),
        DomainRef::Name(n) => db::domains::get_by_name(&id.db.pool, n)
            .await?
            .map(|d| d.id),
    })
}

async fn find_user(id: &Identity, u: &UserRef) -> Result<Option<User>> {
    Ok(match u {
        UserRef::Id(i) => db::users::get(&id.db.pool, i).await?,
        UserRef::Name { name, domain } => match resolve_domain_id(id, domain).await? {
            Some(d) => db::users::get_by_name(&id.db.pool, &d, name).await?,
            None => None,
        },
    })
}

impl Identity {
    fn locked_out(&self, u: &User) -> bool {
        let max = self.config.lockout_failure_attempts;
        if max == 0 || u.failed_auth_count < i64::from(max) {
            return false;
        }
        let until = u.failed_auth_at.unwrap_or(0)
            + i64::try_from(self.config.lockout_duration.as_micros()).unwrap_or(i64::MAX / 2);
        ferrostack_store::now_micros() < until
    }

    /// The user `user_ref` names, when `secret` is its password. A locked-out user is refused
    /// whatever the secret; a wrong one counts toward the lockout. Used by password
    /// authentication and by the self-service password change (which needs no token, so it
    /// must not be a way around the lockout).
    pub(crate) async fn password_user(&self, user_ref: &UserRef, secret: &str) -> Result<User> {
        let user = find_user(self, user_ref).await?;
        if let Some(u) = &user {
            if self.locked_out(u) {
                return Err(IdentityError::UnauthorizedWithReason(format!(
                    "The account is locked for user: {}.",
                    u.id
                )));
            }
        }
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = password::verify(hash, secret.to_string()).await;
        match (user, ok) {
            (Some(u), true) => {
                if u.failed_auth_count != 0 {
                    db::users::record_success(&self.db.writer, &u.id).await?;
                }
                Ok(u)
            }
            (Some(u), false) => {
                db::users::record_failed_auth(&self.db.writer, &u.id).await?;
                tracing::info!(user_id = %u.id, "password authentication failed");
                Err(IdentityError::Unauthorized)
            }
            (None, _) => Err(IdentityError::Unauthorized),
        }
    }

    async fn resolve_project(&self, p: &ProjectRef) -> Result<Project> {
        // One connection at a time: holding one while the name lookup takes another could
        // exhaust the pool under load.
        let found = match p {
            ProjectRef::Id(i) => db::projects::get(&mut *self.db.pool.acquire().await?, i).await?,
            ProjectRef::Name { name, domain } => match resolve_domain_id(self, domain).await? {
                Some(d) => {
                    db::projects::get_by_name(&mut *self.db.pool.acquire().await?, &d, name).await?
                }
                None => None,
            },
        };
        // An unknown or disabled scope is an authentication failure, as in Keystone.
        found
            .filter(|p| p.enabled)
            .ok_or(IdentityError::Unauthorized)
    }

    /// Authenticates `req` and issues a token. Returns the token and what it grants.
    pub async fn authenticate(&self, req: AuthRequest) -> Result<(String, Arc<AuthContext>)> {
        if req.methods.is_empty() {
            return Err(IdentityError::validation(
                "Invalid input for field 'identity/methods': [] is too short",
            ));
        }
        let mut user: Option<User> = None;
        let mut parent: Option<Arc<AuthContext>> = None;
        let mut scope_override: Option<Scope> = None;
        for m in &req.methods {
            let this = match m.as_str() {
                "password" => {
                    let (u, secret) = req.password.as_ref().ok_or_else(|| {
                        IdentityError::validation("Expecting to find password in identity.")
                    })?;
                    self.password_user(u, secret).await?
                }
                "token" => {
                    let t = req.token.as_ref().ok_or_else(|| {
                        IdentityError::validation("Expecting to find token in identity.")
                    })?;
                    let ctx = tokens::validate(self, t)
                        .await
                        .map_err(|_| IdentityError::Unauthorized)?;
                    if ctx.application_credential.is_some() {
                        return Err(IdentityError::ForbiddenWithReason(
                            "A token created with an application credential cannot be used to obtain a new token."
                                .into(),
                        ));
                    }
                    let u = db::users::get(&self.db.pool, &ctx.user_id)
                        .await?
                        .ok_or(IdentityError::Unauthorized)?;
                    parent = Some(ctx);
                    u
                }
                "application_credential" => {
                    let (r, secret) = req.application_credential.as_ref().ok_or_else(|| {
                        IdentityError::validation(
                            "Expecting to find application_credential in identity.",
                        )
                    })?;
                    let (u, scope) = self.app_cred_user(r, secret).await?;
                    scope_override = Some(scope);
                    u
                }
                other => {
                    return Err(IdentityError::UnauthorizedWithReason(format!(
                        "Attempted to authenticate with an unsupported method: {other}."
                    )))
                }
            };
            if user.as_ref().is_some_and(|u| u.id != this.id) {
                return Err(IdentityError::Unauthorized);
            }
            user = Some(this);
        }
        let user = user.ok_or(IdentityError::Unauthorized)?;
        if !user.enabled {
            return Err(IdentityError::Unauthorized);
        }
        let scope = match scope_override {
            Some(s) => {
                // Keystone's ApplicationCredentialAuthError: an authentication failure (401).
                if !matches!(req.scope, ScopeRequest::Default) {
                    return Err(IdentityError::UnauthorizedWithReason(
                        "Error authenticating with application credential: Application credentials cannot \
                         request a scope."
                            .into(),
                    ));
                }
                s
            }
            None => {
                self.resolve_scope(&user, &req.scope, parent.as_deref())
                    .await?
            }
        };
        tokens::issue(self, &user, req.methods.clone(), scope, parent.as_deref()).await
    }

    async fn resolve_scope(
        &self,
        user: &User,
        s: &ScopeRequest,
        parent: Option<&AuthContext>,
    ) -> Result<Scope> {
        Ok(match s {
            ScopeRequest::Unscoped => Scope::Unscoped,
            ScopeRequest::System => Scope::System,
            ScopeRequest::Project(p) => Scope::Project(self.resolve_project(p).await?.id),
            ScopeRequest::Domain(d) => {
                let id = resolve_domain_id(self, d)
                    .await?
                    .ok_or(IdentityError::Unauthorized)?;
                Scope::Domain(id)
            }
            ScopeRequest::Default => {
                if let Some(p) = parent {
                    // Re-authenticating with a token and no scope keeps the token's scope.
                    if let Some(pr) = &p.project {
                        return Ok(Scope::Project(pr.id.clone()));
                    }
                    if let Some(d) = &p.domain {
                        return Ok(Scope::Domain(d.id.clone()));
                    }
                    if p.system {
                        return Ok(Scope::System);
                    }
                    return Ok(Scope::Unscoped);
                }
                match &user.default_project_id {
                    Some(pid) => {
                        let mut conn = self.db.pool.acquire().await?;
                        match db::projects::get(&mut conn, pid)
                            .await?
                            .filter(|p| p.enabled)
                        {
                            Some(project)
                                if !roles::granted_on_project(&mut conn, &user.id, &project)
                                    .await?
                                    .is_empty() =>
                            {
                                Scope::Project(project.id)
                            }
                            _ => Scope::Unscoped,
                        }
                    }
                    None => Scope::Unscoped,
                }
            }
        })
    }

    async fn app_cred_user(&self, r: &AppCredRef, secret: &str) -> Result<(User, Scope)> {
        let ac = match r {
            AppCredRef::Id(i) => db::app_creds::get(&mut *self.db.pool.acquire().await?, i).await?,
            AppCredRef::Name { name, user } => match find_user(self, user).await? {
                Some(u) => {
                    db::app_creds::get_by_name(&mut *self.db.pool.acquire().await?, &u.id, name)
                        .await?
                }
                None => None,
            },
        };
        let hash = ac.as_ref().map(|a| a.secret_hash.clone());
        let ok = password::verify(hash, secret.to_string()).await;
        let ac = match (ac, ok) {
            (Some(ac), true) => ac,
            _ => return Err(IdentityError::Unauthorized),
        };
        if ac
            .expires_at
            .is_some_and(|e| e <= ferrostack_store::now_micros())
        {
            return Err(IdentityError::Unauthorized);
        }
        let user = db::users::get(&self.db.pool, &ac.user_id)
            .await?
            .ok_or(IdentityError::Unauthorized)?;
        Ok((
            user,
            Scope::ApplicationCredential {
                project_id: ac.project_id,
                application_credential_id: ac.id,
            },
        ))
    }
}

/// Whether `user_id` holds a role on the system (directly or through a group): whether it may
/// scope a token to the system. (The projects and domains it may scope to are
/// [`super::projects::for_user`] and [`super::domains::for_user`].)
pub async fn may_scope_to_system(id: &Identity, user_id: &str) -> Result<bool> {
    let mut conn = id.db.pool.acquire().await?;
    Ok(!roles::granted_on_system(&mut conn, user_id)
        .await?
        .is_empty())
}
