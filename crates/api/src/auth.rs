//! Token validation middleware, the [`Auth`] extractor and policy enforcement.
//!
//! The middleware validates `X-Auth-Token` once per request through the [`TokenValidator`]
//! the identity service provides (a cache lookup for a known token) and stores the outcome;
//! handlers that need a caller take [`Auth`], which answers 401 when the token is missing
//! or invalid. Every handler then calls [`Auth::enforce`] with its policy action.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use ferrostack_policy::{Credentials, Enforcer};
use http::request::Parts;

use crate::request::LogIdentity;
use crate::ApiError;

/// A role held by the caller through the token's scope (implied roles included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
}

/// A project or domain reference with its name and its domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRef {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub domain_name: String,
}

/// What a validated token says about its bearer.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub token: String,
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    pub project: Option<ScopeRef>,
    /// Domain scope: `domain_id`/`domain_name` of ScopeRef are the domain itself.
    pub domain: Option<ScopeRef>,
    pub system: bool,
    pub roles: Vec<RoleRef>,
    pub methods: Vec<String>,
    pub audit_ids: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub application_credential: Option<AppCredRef>,
    pub is_admin_project: bool,
    /// A cloud administrator: the caller passes the `context_is_admin` policy rule (an admin
    /// role on the admin project or the system, unless the operator's policy says otherwise).
    /// Decided once at validation, as Nova's `context.is_admin`; services use it for what
    /// policy rules do not express (which projects a listing spans, who sees what).
    pub is_admin: bool,
}

/// The application credential a token was obtained with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredRef {
    pub id: String,
    pub name: String,
    pub restricted: bool,
}

impl AuthContext {
    pub fn project_id(&self) -> Option<&str> {
        self.project.as_ref().map(|p| p.id.as_str())
    }
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.name.eq_ignore_ascii_case(name))
    }
    /// The policy engine's view of this caller.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            user_id: self.user_id.clone(),
            user_domain_id: self.user_domain_id.clone(),
            project_id: self.project.as_ref().map(|p| p.id.clone()),
            project_domain_id: self.project.as_ref().map(|p| p.domain_id.clone()),
            domain_id: self.domain.as_ref().map(|d| d.id.clone()),
            system_scope: self.system.then(|| "all".to_string()),
            roles: self.roles.iter().map(|r| r.name.to_lowercase()).collect(),
            is_admin_project: self.is_admin_project,
        }
    }
}

/// Validates tokens; implemented by the identity service.
#[async_trait::async_trait]
pub trait TokenValidator: Send + Sync {
    async fn validate(&self, token: &str) -> Result<Arc<AuthContext>, ApiError>;
}

/// Outcome of validating the request's `X-Auth-Token`, kept in the request extensions.
#[derive(Clone)]
enum TokenState {
    Valid(Arc<AuthContext>),
    Invalid(ApiError),
}

/// Shared state of the auth middleware.
#[derive(Clone)]
pub struct AuthLayerState {
    pub validator: Arc<dyn TokenValidator>,
}

/// Middleware: validates `X-Auth-Token` when present.
pub async fn validate_token(
    State(state): State<AuthLayerState>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut who = None;
    if let Some(token) = token {
        let st = match state.validator.validate(&token).await {
            Ok(ctx) => {
                who = Some(LogIdentity {
                    user_id: ctx.user_id.clone(),
                    project_id: ctx.project_id().unwrap_or_default().to_string(),
                });
                TokenState::Valid(ctx)
            }
            Err(e) => TokenState::Invalid(e),
        };
        req.extensions_mut().insert(st);
    }
    let mut resp = next.run(req).await;
    if let Some(who) = who {
        resp.extensions_mut().insert(who);
    }
    resp
}

/// Marks an in-process sub-request (one service calling another's router, as Nova calls
/// Glance) as made by `caller`, whose token the outer request already validated.
pub fn act_as(req: &mut Request, caller: Arc<AuthContext>) {
    req.extensions_mut().insert(TokenState::Valid(caller));
}

/// The authenticated caller. Extracting it fails with 401 without a valid token.
#[derive(Clone, Debug)]
pub struct Auth(pub Arc<AuthContext>);

impl std::ops::Deref for Auth {
    type Target = AuthContext;
    fn deref(&self) -> &AuthContext {
        &self.0
    }
}

impl Auth {
    /// Checks `action` against the policy for this caller and `target`; 403 when refused.
    pub fn enforce(
        &self,
        enforcer: &Enforcer,
        action: &str,
        target: &serde_json::Value,
    ) -> Result<(), ApiError> {
        if enforcer.enforce(action, target, &self.credentials()) {
            Ok(())
        } else {
            tracing::debug!(action, user = %self.user_id, "policy refused");
            Err(ApiError::forbidden(format!(
                "You are not authorized to perform the requested action: {action}."
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<TokenState>() {
            Some(TokenState::Valid(ctx)) => Ok(Auth(ctx.clone())),
            Some(TokenState::Invalid(e)) => Err(e.clone()),
            None => Err(ApiError::unauthorized(
                "The request you have made requires authentication.",
            )),
        }
    }
}

/// The caller when there is one; never rejects (for endpoints that also serve anonymous calls).
#[derive(Clone, Debug)]
pub struct MaybeAuth(pub Option<Arc<AuthContext>>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuth {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuth(match parts.extensions.get::<TokenState>() {
            Some(TokenState::Valid(ctx)) => Some(ctx.clone()),
            _ => None,
        }))
    }
}
