//! Role grants (`/v3/projects|domains/{id}/users|groups/{id}/roles[/{role}]`, the system and
//! OS-INHERIT variants) and `GET /v3/role_assignments`.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::wire;
use super::State;
use crate::app::assignments::{self, AssignmentListing, AssignmentQuery};
use crate::app::{domains, groups, projects, roles, users};
use crate::error::{IdentityError, Result};
use crate::model::{Assignment, AssignmentKind};
use crate::Identity;

type Shared = std::sync::Arc<Identity>;

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Project,
    Domain,
    System,
}

#[derive(Clone, Copy, PartialEq)]
enum Actor {
    User,
    Group,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Check,
    Grant,
    Revoke,
}

fn kind(t: Target, a: Actor) -> AssignmentKind {
    match (t, a) {
        (Target::Project, Actor::User) => AssignmentKind::UserProject,
        (Target::Project, Actor::Group) => AssignmentKind::GroupProject,
        (Target::Domain, Actor::User) => AssignmentKind::UserDomain,
        (Target::Domain, Actor::Group) => AssignmentKind::GroupDomain,
        (Target::System, Actor::User) => AssignmentKind::UserSystem,
        (Target::System, Actor::Group) => AssignmentKind::GroupSystem,
    }
}

macro_rules! grant_routes {
    ($router:expr, $list_path:expr, $one_path:expr, $t:expr, $a:expr, $inh:expr) => {
        $router
            .route(
                $list_path,
                get(
                    |s: State, auth: Auth, Path((tid, aid)): Path<(String, String)>| async move {
                        list_grants(&s.0, &auth, $t, Some(tid), $a, aid, $inh).await
                    },
                ),
            )
            .route(
                $one_path,
                get(
                    |s: State,
                     auth: Auth,
                     Path((tid, aid, rid)): Path<(String, String, String)>| async move {
                        grant_op(&s.0, &auth, $t, Some(tid), $a, aid, rid, $inh, Op::Check).await
                    },
                )
                .put(
                    |s: State,
                     auth: Auth,
                     Path((tid, aid, rid)): Path<(String, String, String)>| async move {
                        grant_op(&s.0, &auth, $t, Some(tid), $a, aid, rid, $inh, Op::Grant).await
                    },
                )
                .delete(
                    |s: State,
                     auth: Auth,
                     Path((tid, aid, rid)): Path<(String, String, String)>| async move {
                        grant_op(&s.0, &auth, $t, Some(tid), $a, aid, rid, $inh, Op::Revoke).await
                    },
                ),
            )
    };
}

macro_rules! system_routes {
    ($router:expr, $list_path:expr, $one_path:expr, $a:expr) => {
        $router
            .route(
                $list_path,
                get(|s: State, auth: Auth, Path(aid): Path<String>| async move {
                    list_grants(&s.0, &auth, Target::System, None, $a, aid, false).await
                }),
            )
            .route(
                $one_path,
                get(
                    |s: State, auth: Auth, Path((aid, rid)): Path<(String, String)>| async move {
                        grant_op(
                            &s.0,
                            &auth,
                            Target::System,
                            None,
                            $a,
                            aid,
                            rid,
                            false,
                            Op::Check,
                        )
                        .await
                    },
                )
                .put(
                    |s: State, auth: Auth, Path((aid, rid)): Path<(String, String)>| async move {
                        grant_op(
                            &s.0,
                            &auth,
                            Target::System,
                            None,
                            $a,
                            aid,
                            rid,
                            false,
                            Op::Grant,
                        )
                        .await
                    },
                )
                .delete(
                    |s: State, auth: Auth, Path((aid, rid)): Path<(String, String)>| async move {
                        grant_op(
                            &s.0,
                            &auth,
                            Target::System,
                            None,
                            $a,
                            aid,
                            rid,
                            false,
                            Op::Revoke,
                        )
                        .await
                    },
                ),
            )
    };
}

pub fn routes() -> Router<Shared> {
    let r = Router::new().route("/role_assignments", get(role_assignments));
    let r = grant_routes!(
        r,
        "/projects/{t}/users/{a}/roles",
        "/projects/{t}/users/{a}/roles/{r}",
        Target::Project,
        Actor::User,
        false
    );
    let r = grant_routes!(
        r,
        "/projects/{t}/groups/{a}/roles",
        "/projects/{t}/groups/{a}/roles/{r}",
        Target::Project,
        Actor::Group,
        false
    );
    let r = grant_routes!(
        r,
        "/domains/{t}/users/{a}/roles",
        "/domains/{t}/users/{a}/roles/{r}",
        Target::Domain,
        Actor::User,
        false
    );
    let r = grant_routes!(
        r,
        "/domains/{t}/groups/{a}/roles",
        "/domains/{t}/groups/{a}/roles/{r}",
        Target::Domain,
        Actor::Group,
        false
    );
    let r = grant_routes!(
        r,
        "/OS-INHERIT/domains/{t}/users/{a}/roles/inherited_to_projects",
        "/OS-INHERIT/domains/{t}/users/{a}/roles/{r}/inherited_to_projects",
        Target::Domain,
        Actor::User,
        true
    );
    let r = grant_routes!(
        r,
        "/OS-INHERIT/domains/{t}/groups/{a}/roles/inherited_to_projects",
        "/OS-INHERIT/domains/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        Target::Domain,
        Actor::Group,
        true
    );
    let r = grant_routes!(
        r,
        "/OS-INHERIT/projects/{t}/users/{a}/roles/inherited_to_projects",
        "/OS-INHERIT/projects/{t}/users/{a}/roles/{r}/inherited_to_projects",
        Target::Project,
        Actor::User,
        true
    );
    let r = grant_routes!(
        r,
        "/OS-INHERIT/projects/{t}/groups/{a}/roles/inherited_to_projects",
        "/OS-INHERIT/projects/{t}/groups/{a}/roles/{r}/inherited_to_projects",
        Target::Project,
        Actor::Group,
        true
    );
    let r = system_routes!(
        r,
        "/system/users/{a}/roles",
        "/system/users/{a}/roles/{r}",
        Actor::User
    );
    system_routes!(
        r,
        "/system/groups/{a}/roles",
        "/system/groups/{a}/roles/{r}",
        Actor::Group
    )
}

/// Resolves the target and actor of a grant path (404 when missing) and builds the policy
/// target Keystone's grant rules read.
async fn resolve(
    id: &Identity,
    t: Target,
    target_id: Option<&str>,
    a: Actor,
    actor_id: &str,
) -> Result<(String, Option<String>, Value)> {
    let mut target = serde_json::Map::new();
    let (tid, target_domain) = match t {
        Target::Project => {
            let p = projects::get(id, target_id.unwrap_or_default()).await?;
            target.insert(
                "project".into(),
                json!({"id": p.id, "domain_id": p.domain_id}),
            );
            (p.id, Some(p.domain_id))
        }
        Target::Domain => {
            let d = domains::get(id, target_id.unwrap_or_default()).await?;
            target.insert("domain".into(), json!({"id": d.id}));
            (d.id.clone(), Some(d.id))
        }
        Target::System => ("all".to_string(), None),
    };
    match a {
        Actor::User => {
            let u = users::get(id, actor_id).await?;
            target.insert("user".into(), json!({"id": u.id, "domain_id": u.domain_id}));
        }
        Actor::Group => {
            let g = groups::get(id, actor_id).await?;
            target.insert(
                "group".into(),
                json!({"id": g.id, "domain_id": g.domain_id}),
            );
        }
    }
    Ok((tid, target_domain, Value::Object(target)))
}

fn action(op: &str, t: Target, a: Actor) -> String {
    match t {
        Target::System => {
            let who = if a == Actor::User { "user" } else { "group" };
            match op {
                "list" => format!("identity:list_system_grants_for_{who}"),
                _ => format!("identity:{op}_system_grant_for_{who}"),
            }
        }
        _ => match op {
            "list" => "identity:list_grants".to_string(),
            _ => format!("identity:{op}_grant"),
        },
    }
}

#[allow(clippy::too_many_arguments)]
async fn grant_op(
    id: &Identity,
    auth: &Auth,
    t: Target,
    target_id: Option<String>,
    a: Actor,
    actor_id: String,
    role_id: String,
    inherited: bool,
    op: Op,
) -> Result<Response> {
    let (tid, target_domain, mut target) =
        resolve(id, t, target_id.as_deref(), a, &actor_id).await?;
    let role = roles::get(id, &role_id).await?;
    target["role"] = json!({"id": role.id, "name": role.name, "domain_id": role.domain_id});
    let op_name = match op {
        Op::Check => "check",
        Op::Grant => "create",
        Op::Revoke => "revoke",
    };
    auth.enforce(
        &id.policy,
        &action(op_name, t, a),
        &json!({ "target": target }),
    )?;
    let asg = Assignment {
        kind: kind(t, a),
        actor_id,
        target_id: tid,
        role_id: role.id.clone(),
        inherited,
    };
    let target_domain = target_domain.as_deref();
    match op {
        Op::Check => assignments::check(id, &asg, &role, target_domain).await?,
        Op::Grant => assignments::grant(id, &asg, &role, target_domain).await?,
        Op::Revoke => assignments::revoke(id, &asg, &role, target_domain).await?,
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_grants(
    id: &Identity,
    auth: &Auth,
    t: Target,
    target_id: Option<String>,
    a: Actor,
    actor_id: String,
    inherited: bool,
) -> Result<Response> {
    let (tid, _, target) = resolve(id, t, target_id.as_deref(), a, &actor_id).await?;
    auth.enforce(
        &id.policy,
        &action("list", t, a),
        &json!({ "target": target }),
    )?;
    let roles: Vec<Value> = assignments::granted_roles(id, kind(t, a), &actor_id, &tid, inherited)
        .await?
        .iter()
        .map(|r| super::roles::wire(id, r))
        .collect();
    Ok(
        axum::Json(
            json!({"roles": roles, "links": {"self": null, "previous": null, "next": null}}),
        )
        .into_response(),
    )
}

// ---- GET /v3/role_assignments

/// The link of the grant `a`, as Keystone renders `links.assignment`.
fn assignment_link(id: &Identity, a: &Assignment) -> String {
    let base = id.config.v3_url();
    let (scope, actor) = match a.kind {
        AssignmentKind::UserProject => (
            format!("projects/{}", a.target_id),
            format!("users/{}", a.actor_id),
        ),
        AssignmentKind::GroupProject => (
            format!("projects/{}", a.target_id),
            format!("groups/{}", a.actor_id),
        ),
        AssignmentKind::UserDomain => (
            format!("domains/{}", a.target_id),
            format!("users/{}", a.actor_id),
        ),
        AssignmentKind::GroupDomain => (
            format!("domains/{}", a.target_id),
            format!("groups/{}", a.actor_id),
        ),
        AssignmentKind::UserSystem => ("system".into(), format!("users/{}", a.actor_id)),
        AssignmentKind::GroupSystem => ("system".into(), format!("groups/{}", a.actor_id)),
    };
    if a.inherited {
        format!(
            "{base}/OS-INHERIT/{scope}/{actor}/roles/{}/inherited_to_projects",
            a.role_id
        )
    } else {
        format!("{base}/{scope}/{actor}/roles/{}", a.role_id)
    }
}

async fn role_assignments(
    state: State,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = &state.0;
    let scope_domain = q.get("scope.domain.id").cloned();
    // As Keystone: a domain-scoped caller is checked against its own domain (and sees only
    // its domain's assignments below).
    let target_domain = auth
        .domain
        .as_ref()
        .map(|d| d.id.clone())
        .or_else(|| scope_domain.clone());
    let include_subtree = q
        .get("include_subtree")
        .is_some_and(|v| wire::query_bool(v));
    if include_subtree {
        // As Keystone: the tree variant has its own rule, checked against the project.
        let pid = q
            .get("scope.project.id")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                IdentityError::validation(
                    "scope.project.id must be specified if include_subtree is also specified",
                )
            })?;
        let p = projects::get(id, pid).await?;
        auth.enforce(
            &id.policy,
            "identity:list_role_assignments_for_tree",
            &json!({"domain_id": p.domain_id, "target": {"domain_id": p.domain_id,
                    "project": {"id": p.id, "domain_id": p.domain_id}}}),
        )?;
    } else {
        auth.enforce(
            &id.policy,
            "identity:list_role_assignments",
            &json!({"domain_id": target_domain, "target": {"domain_id": target_domain}}),
        )?;
    }
    let query = AssignmentQuery {
        user_id: q.get("user.id").cloned(),
        group_id: q.get("group.id").cloned(),
        role_id: q.get("role.id").cloned(),
        project_id: q.get("scope.project.id").cloned(),
        include_subtree,
        domain_id: scope_domain,
        system: q.get("scope.system").cloned(),
        inherited_to: q.contains_key("scope.OS-INHERIT:inherited_to"),
        effective: q.get("effective").is_some_and(|v| wire::query_bool(v)),
        include_names: q.get("include_names").is_some_and(|v| wire::query_bool(v)),
        // Domain-scoped callers see only their domain's assignments.
        only_domain: match &auth.domain {
            Some(d) if !(auth.system || auth.is_admin) => Some(d.id.clone()),
            _ => None,
        },
    };
    let include_names = query.include_names;
    let AssignmentListing {
        rows,
        roles,
        projects,
        users,
        groups,
        domains,
    } = assignments::list(id, &query).await?;
    let dom = |did: &str| json!({"id": did, "name": domains.get(did)});
    let role_json = |rid: &str| -> Value {
        match (include_names, roles.get(rid)) {
            (true, Some(r)) => {
                let mut v = json!({"id": r.id, "name": r.name});
                if let Some(d) = &r.domain_id {
                    v["domain"] = dom(d);
                }
                v
            }
            _ => json!({"id": rid}),
        }
    };
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut v = json!({"role": role_json(&r.role),
                               "links": {"assignment": assignment_link(id, &r.source)}});
            if let Some(p) = &r.prior_role {
                v["links"]["prior_role"] = json!(format!("{}/roles/{p}", id.config.v3_url()));
            }
            if let (true, Some(u)) = (r.via_group, &r.user) {
                v["links"]["membership"] = json!(format!(
                    "{}/groups/{}/users/{u}",
                    id.config.v3_url(),
                    r.source.actor_id
                ));
            }
            if let Some(u) = &r.user {
                v["user"] = match (include_names, users.get(u)) {
                    (true, Some((n, d))) => json!({"id": u, "name": n, "domain": dom(d)}),
                    _ => json!({"id": u}),
                };
            }
            if let Some(g) = &r.group {
                v["group"] = match (include_names, groups.get(g)) {
                    (true, Some((n, d))) => json!({"id": g, "name": n, "domain": dom(d)}),
                    _ => json!({"id": g}),
                };
            }
            let mut scope = if let Some(p) = &r.project {
                match (include_names, projects.get(p.as_str())) {
                    (true, Some(pp)) => {
                        json!({"project": {"id": p, "name": pp.name, "domain": dom(&pp.domain_id)}})
                    }
                    _ => json!({"project": {"id": p}}),
                }
            } else if let Some(d) = &r.domain {
                if include_names {
                    json!({"domain": dom(d)})
                } else {
                    json!({"domain": {"id": d}})
                }
            } else {
                json!({"system": {"all": true}})
            };
            if r.inherited {
                scope["OS-INHERIT:inherited_to"] = json!("projects");
            }
            v["scope"] = scope;
            v
        })
        .collect::<Vec<Value>>();
    Ok(axum::Json(
        json!({"role_assignments": list, "links": wire::collection_links(id, "role_assignments")}),
    )
    .into_response())
}
