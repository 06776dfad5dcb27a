//! `/v3/auth/*`: issuing, validating and revoking tokens, and what a token may reach.

use std::collections::HashMap;

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::{Auth, AuthContext, Json};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::wire::{self, micros_to_iso};
use super::State;
use crate::app::auth::{
    may_scope_to_system, AppCredRef, AuthRequest, DomainRef, ProjectRef, ScopeRequest, UserRef,
};
use crate::app::{domains, projects, tokens};
use crate::error::{IdentityError, Result};
use crate::Identity;

pub fn routes() -> Router<std::sync::Arc<Identity>> {
    Router::new()
        .route(
            "/auth/tokens",
            get(validate_token)
                .head(check_token)
                .post(create_token)
                .delete(revoke_token),
        )
        .route("/auth/catalog", get(auth_catalog))
        .route("/auth/projects", get(auth_projects))
        .route("/auth/domains", get(auth_domains))
        .route("/auth/system", get(auth_system))
}

// ---- request parsing

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a serde_json::Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        IdentityError::validation(format!(
            "Invalid input for field '{path}': it must be an object."
        ))
    })
}

fn string(v: &Value, path: &str) -> Result<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| wire::type_error(path, v, "string"))
}

fn parse_domain(v: &Value, path: &str) -> Result<DomainRef> {
    let o = obj(v, path)?;
    if let Some(id) = o.get("id") {
        return Ok(DomainRef::Id(string(id, &format!("{path}/id"))?));
    }
    if let Some(n) = o.get("name") {
        return Ok(DomainRef::Name(string(n, &format!("{path}/name"))?));
    }
    Err(IdentityError::validation(format!(
        "Expecting to find id or name in {path}."
    )))
}

fn parse_user(v: &Value, path: &str) -> Result<UserRef> {
    let o = obj(v, path)?;
    if let Some(id) = o.get("id") {
        return Ok(UserRef::Id(string(id, &format!("{path}/id"))?));
    }
    if let Some(n) = o.get("name") {
        let domain = o.get("domain").ok_or_else(|| {
            IdentityError::validation(format!("Expecting to find domain in {path}."))
        })?;
        return Ok(UserRef::Name {
            name: string(n, &format!("{path}/name"))?,
            domain: parse_domain(domain, &format!("{path}/domain"))?,
        });
    }
    Err(IdentityError::validation(format!(
        "Expecting to find id or name in {path}."
    )))
}

/// Turns the `{"auth": {...}}` body into an [`AuthRequest`].
fn parse_auth(body: &Value) -> Result<AuthRequest> {
    let auth = body
        .get("auth")
        .ok_or_else(|| IdentityError::validation("Expecting to find auth in request body."))?;
    let identity = obj(auth, "auth")?
        .get("identity")
        .ok_or_else(|| IdentityError::validation("Expecting to find identity in auth."))?;
    let identity = obj(identity, "auth/identity")?;
    let methods = identity
        .get("methods")
        .and_then(Value::as_array)
        .ok_or_else(|| IdentityError::validation("Expecting to find methods in identity."))?
        .iter()
        .map(|m| string(m, "identity/methods"))
        .collect::<Result<Vec<_>>>()?;
    let mut req = AuthRequest {
        methods,
        password: None,
        token: None,
        application_credential: None,
        scope: ScopeRequest::Default,
    };
    if let Some(p) = identity.get("password") {
        let user = obj(p, "identity/password")?
            .get("user")
            .ok_or_else(|| IdentityError::validation("Expecting to find user in password."))?;
        let secret = obj(user, "password/user")?
            .get("password")
            .ok_or_else(|| IdentityError::validation("Expecting to find password in user."))?;
        req.password = Some((
            parse_user(user, "password/user")?,
            string(secret, "password/user/password")?,
        ));
    }
    if let Some(t) = identity.get("token") {
        let id = obj(t, "identity/token")?
            .get("id")
            .ok_or_else(|| IdentityError::validation("Expecting to find id in token."))?;
        req.token = Some(string(id, "token/id")?);
    }
    if let Some(a) = identity.get("application_credential") {
        let o = obj(a, "identity/application_credential")?;
        let secret = string(
            o.get("secret").ok_or_else(|| {
                IdentityError::validation("Expecting to find secret in application_credential.")
            })?,
            "application_credential/secret",
        )?;
        let r = if let Some(id) = o.get("id") {
            AppCredRef::Id(string(id, "application_credential/id")?)
        } else if let (Some(n), Some(u)) = (o.get("name"), o.get("user")) {
            AppCredRef::Name {
                name: string(n, "application_credential/name")?,
                user: parse_user(u, "application_credential/user")?,
            }
        } else {
            return Err(IdentityError::validation(
                "Expecting to find id, or name and user, in application_credential.",
            ));
        };
        req.application_credential = Some((r, secret));
    }
    if let Some(scope) = auth.get("scope") {
        req.scope = match scope {
            Value::String(s) if s == "unscoped" => ScopeRequest::Unscoped,
            Value::Object(o) => {
                if let Some(p) = o.get("project") {
                    let po = obj(p, "scope/project")?;
                    if let Some(id) = po.get("id") {
                        ScopeRequest::Project(ProjectRef::Id(string(id, "scope/project/id")?))
                    } else if let (Some(n), Some(d)) = (po.get("name"), po.get("domain")) {
                        ScopeRequest::Project(ProjectRef::Name {
                            name: string(n, "scope/project/name")?,
                            domain: parse_domain(d, "scope/project/domain")?,
                        })
                    } else {
                        return Err(IdentityError::validation(
                            "Expecting to find id, or name and domain, in scope/project.",
                        ));
                    }
                } else if let Some(d) = o.get("domain") {
                    ScopeRequest::Domain(parse_domain(d, "scope/domain")?)
                } else if let Some(s) = o.get("system") {
                    if s.get("all") == Some(&Value::Bool(true)) {
                        ScopeRequest::System
                    } else {
                        return Err(IdentityError::validation(
                            "Only the 'all' system scope is supported.",
                        ));
                    }
                } else if o.contains_key("OS-TRUST:trust") {
                    return Err(IdentityError::validation("Trusts are not supported."));
                } else {
                    return Err(IdentityError::validation(
                        "The scope must name a project, a domain or the system.",
                    ));
                }
            }
            _ => {
                return Err(IdentityError::validation(
                    "Invalid input for field 'auth/scope'.",
                ))
            }
        };
    }
    Ok(req)
}

// ---- token bodies

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    micros_to_iso(t.timestamp_micros())
}

/// The `{"token": {...}}` body for a validated token.
pub async fn token_body(id: &Identity, ctx: &AuthContext, with_catalog: bool) -> Result<Value> {
    let mut t = json!({
        "methods": ctx.methods,
        "user": {
            "id": ctx.user_id,
            "name": ctx.user_name,
            "domain": {"id": ctx.user_domain_id, "name": ctx.user_domain_name},
            "password_expires_at": null,
        },
        "audit_ids": ctx.audit_ids,
        "expires_at": time(&ctx.expires_at),
        "issued_at": time(&ctx.issued_at),
    });
    let scoped = ctx.project.is_some() || ctx.domain.is_some() || ctx.system;
    if let Some(p) = &ctx.project {
        t["project"] = json!({"id": p.id, "name": p.name, "domain": {"id": p.domain_id, "name": p.domain_name}});
        t["is_domain"] = json!(false);
        t["is_admin_project"] = json!(ctx.is_admin_project);
    }
    if let Some(d) = &ctx.domain {
        t["domain"] = json!({"id": d.id, "name": d.name});
    }
    if ctx.system {
        t["system"] = json!({"all": true});
    }
    if scoped {
        t["roles"] = json!(ctx
            .roles
            .iter()
            .map(|r| json!({"id": r.id, "name": r.name}))
            .collect::<Vec<_>>());
        if with_catalog {
            t["catalog"] = (*id.catalog().await?).clone();
        }
    }
    if let Some(ac) = &ctx.application_credential {
        t["application_credential"] =
            json!({"id": ac.id, "name": ac.name, "restricted": ac.restricted});
    }
    Ok(json!({ "token": t }))
}

fn with_subject(mut resp: Response, token: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

fn nocatalog(q: &HashMap<String, String>) -> bool {
    q.get("nocatalog").is_some_and(|v| wire::query_bool(v))
}

// ---- handlers

async fn create_token(
    state: State,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let id = &state.0;
    let req = parse_auth(&body)?;
    let (token, ctx) = id.authenticate(req).await?;
    let body = token_body(id, &ctx, !nocatalog(&q)).await?;
    Ok(with_subject(
        (StatusCode::CREATED, axum::Json(body)).into_response(),
        &token,
    ))
}

/// Validates the `X-Subject-Token`; an invalid subject is 404 as in Keystone.
async fn subject(
    id: &Identity,
    auth: &Auth,
    headers: &HeaderMap,
    action: &str,
) -> Result<std::sync::Arc<AuthContext>> {
    let subject = headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            IdentityError::validation("Expecting to find X-Subject-Token in the request headers.")
        })?;
    // An invalid subject is 404 before policy: there is no token to build a target from.
    let target = tokens::validate(id, subject)
        .await
        .map_err(|_| IdentityError::not_found("token", "the subject token"))?;
    let target_json = json!({"target": {"token": {"user_id": target.user_id,
        "user": {"id": target.user_id, "domain": {"id": target.user_domain_id}}}}});
    auth.enforce(&id.policy, action, &target_json)?;
    Ok(target)
}

async fn validate_token(
    state: State,
    auth: Auth,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    let ctx = subject(id, &auth, &headers, "identity:validate_token").await?;
    let body = token_body(id, &ctx, !nocatalog(&q)).await?;
    Ok(with_subject(axum::Json(body).into_response(), &ctx.token))
}

async fn check_token(state: State, auth: Auth, headers: HeaderMap) -> Result<Response> {
    let ctx = subject(&state.0, &auth, &headers, "identity:check_token").await?;
    Ok(with_subject(StatusCode::OK.into_response(), &ctx.token))
}

async fn revoke_token(state: State, auth: Auth, headers: HeaderMap) -> Result<StatusCode> {
    let id = &state.0;
    let ctx = subject(id, &auth, &headers, "identity:revoke_token").await?;
    tokens::revoke(id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn auth_catalog(state: State, auth: Auth) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_auth_catalog", &json!({}))?;
    if auth.project.is_none() && auth.domain.is_none() && !auth.system {
        return Err(IdentityError::ForbiddenWithReason(
            "The catalog is only available to a scoped token.".into(),
        ));
    }
    let c = id.catalog().await?;
    Ok(
        axum::Json(json!({"catalog": *c, "links": wire::collection_links(id, "auth/catalog")}))
            .into_response(),
    )
}

async fn auth_projects(state: State, auth: Auth) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_auth_projects", &json!({}))?;
    let projects = projects::for_user(id, &auth.user_id).await?;
    let list: Vec<Value> = projects
        .iter()
        .map(|p| super::projects::wire(id, p))
        .collect();
    Ok(
        axum::Json(json!({"projects": list, "links": wire::collection_links(id, "auth/projects")}))
            .into_response(),
    )
}

async fn auth_domains(state: State, auth: Auth) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_auth_domains", &json!({}))?;
    let out: Vec<Value> = domains::for_user(id, &auth.user_id)
        .await?
        .iter()
        .map(|d| super::domains::wire(id, d))
        .collect();
    Ok(
        axum::Json(json!({"domains": out, "links": wire::collection_links(id, "auth/domains")}))
            .into_response(),
    )
}

async fn auth_system(state: State, auth: Auth) -> Result<Response> {
    let id = &state.0;
    auth.enforce(&id.policy, "identity:get_auth_system", &json!({}))?;
    let system: Vec<Value> = if may_scope_to_system(id, &auth.user_id).await? {
        vec![json!({"all": true})]
    } else {
        vec![]
    };
    Ok(
        axum::Json(json!({"system": system, "links": wire::collection_links(id, "auth/system")}))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_password_project_scope() {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "x"}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let r = parse_auth(&body).unwrap();
        assert_eq!(r.methods, vec!["password"]);
        assert!(matches!(r.password, Some((UserRef::Name { .. }, _))));
        assert!(matches!(
            r.scope,
            ScopeRequest::Project(ProjectRef::Name { .. })
        ));
    }

    #[test]
    fn refuses_malformed_auth() {
        assert!(parse_auth(&json!({})).is_err());
        assert!(parse_auth(&json!({"auth": {"identity": {}}})).is_err());
        let e = parse_auth(
            &json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": 5, "password": "x"}}}}}),
        );
        assert!(e.is_err());
        let e = parse_auth(
            &json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "t"}}, "scope": {"system": {"all": false}}}}),
        );
        assert!(e.is_err());
    }
}
