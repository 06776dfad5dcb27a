//! Role grants (`/v3/projects|domains/{id}/users|groups/{id}/roles[/{role}]`, the system and
//! OS-INHERIT variants) and `GET /v3/role_assignments`.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Value};

use super::wire;
use super::State;
use crate::app::roles::RoleGraph;
use crate::db::{self, projects::ProjectFilter};
use crate::error::{IdentityError, Result};
use crate::model::{Assignment, AssignmentKind, Project};
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
            let p = super::projects::get_project(id, target_id.unwrap_or_default()).await?;
            target.insert(
                "project".into(),
                json!({"id": p.id, "domain_id": p.domain_id}),
            );
            (p.id, Some(p.domain_id))
        }
        Target::Domain => {
            let d = super::domains::get_domain(id, target_id.unwrap_or_default()).await?;
            target.insert("domain".into(), json!({"id": d.id}));
            (d.id.clone(), Some(d.id))
        }
        Target::System => ("all".to_string(), None),
    };
    match a {
        Actor::User => {
            let u = super::users::get_user(id, actor_id).await?;
            target.insert("user".into(), json!({"id": u.id, "domain_id": u.domain_id}));
        }
        Actor::Group => {
            let g = super::groups::get_group(id, actor_id).await?;
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
    let role = super::roles::get_role(id, &role_id).await?;
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
    if let Some(rd) = &role.domain_id {
        if target_domain.as_ref() != Some(rd) {
            return Err(IdentityError::ForbiddenWithReason(format!(
                "Cannot assign the domain-specific role {} outside its domain.",
                role.id
            )));
        }
    }
    let asg = Assignment {
        kind: kind(t, a),
        actor_id: actor_id.clone(),
        target_id: tid.clone(),
        role_id: role.id.clone(),
        inherited,
    };
    match op {
        Op::Check => {
            if db::assignments::exists(&id.db.pool, &asg).await? {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Err(IdentityError::not_found(
                    "role assignment",
                    format!("{} on {}", role.id, tid),
                ))
            }
        }
        Op::Grant => {
            let mut tx = id.db.begin_write().await?;
            db::assignments::grant(&mut *tx, &asg).await?;
            id.commit_change(tx, vec![]).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::Revoke => {
            let mut tx = id.db.begin_write().await?;
            if !db::assignments::revoke(&mut *tx, &asg).await? {
                return Err(IdentityError::not_found(
                    "role assignment",
                    format!("{} on {}", role.id, tid),
                ));
            }
            // As Keystone: removing a user's role on a project revokes its tokens there.
            let events = if asg.kind == AssignmentKind::UserProject {
                vec![Identity::revoke_user_event(&actor_id, Some(&tid))]
            } else {
                vec![]
            };
            id.commit_change(tx, events).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
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
    let k = kind(t, a);
    let all =
        db::assignments::list_for_actors(&id.db.pool, std::slice::from_ref(&actor_id)).await?;
    let mut conn = id.db.pool.acquire().await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let roles: Vec<Value> = all
        .iter()
        .filter(|x| x.kind == k && x.target_id == tid && x.inherited == inherited)
        .filter_map(|x| graph.roles.get(&x.role_id))
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

/// One row of the role assignment list after expansion.
#[derive(Clone)]
struct Row {
    user: Option<String>,
    group: Option<String>,
    role: String,
    project: Option<String>,
    domain: Option<String>,
    system: bool,
    inherited: bool,
    /// For effective rows: the assignment (and membership) they come from.
    source: Option<String>,
    prior_role: Option<String>,
    /// For rows of a group's member: the membership (`/groups/{g}/users/{u}`).
    membership: Option<String>,
}

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

fn base_row(a: &Assignment) -> Row {
    let (user, group) = if a.kind.is_group() {
        (None, Some(a.actor_id.clone()))
    } else {
        (Some(a.actor_id.clone()), None)
    };
    let (project, domain, system) = match a.kind {
        AssignmentKind::UserProject | AssignmentKind::GroupProject => {
            (Some(a.target_id.clone()), None, false)
        }
        AssignmentKind::UserDomain | AssignmentKind::GroupDomain => {
            (None, Some(a.target_id.clone()), false)
        }
        _ => (None, None, true),
    };
    Row {
        user,
        group,
        role: a.role_id.clone(),
        project,
        domain,
        system,
        inherited: a.inherited,
        source: None,
        prior_role: None,
        membership: None,
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
    if q.get("include_subtree")
        .is_some_and(|v| wire::query_bool(v))
    {
        // As Keystone: the tree variant has its own rule, checked against the project.
        let pid = q
            .get("scope.project.id")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                IdentityError::validation(
                    "scope.project.id must be specified if include_subtree is also specified",
                )
            })?;
        let p = super::projects::get_project(id, pid).await?;
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
    let effective = q.get("effective").is_some_and(|v| wire::query_bool(v));
    let given = |k: &str| q.get(k).is_some_and(|v| !v.is_empty());
    for (a, b, what) in [
        (
            "scope.domain.id",
            "scope.project.id",
            "Specify a domain or project, not both",
        ),
        (
            "scope.domain.id",
            "scope.system",
            "Specify system or domain, not both",
        ),
        (
            "scope.project.id",
            "scope.system",
            "Specify system or project, not both",
        ),
        ("user.id", "group.id", "Specify a user or group, not both"),
    ] {
        if given(a) && given(b) {
            return Err(IdentityError::validation(what));
        }
    }
    if effective && given("group.id") {
        return Err(IdentityError::validation(
            "Combining effective and group filter will always result in an empty list.",
        ));
    }
    if effective && given("scope.domain.id") && q.contains_key("scope.OS-INHERIT:inherited_to") {
        return Err(IdentityError::validation(
            "Combining effective, domain and inherited filters will always result in an empty list.",
        ));
    }
    let include_names = q.get("include_names").is_some_and(|v| wire::query_bool(v));
    let mut conn = id.db.pool.acquire().await?;
    let all = db::assignments::list_all(&mut *conn).await?;
    let graph = RoleGraph::load(&mut conn).await?;
    let projects = db::projects::list(&mut conn, &ProjectFilter::default()).await?;
    let by_id: HashMap<&str, &Project> = projects.iter().map(|p| (p.id.as_str(), p)).collect();
    let is_below = |p: &Project, anc: &str| -> bool {
        let mut cur = p.parent_id.as_deref();
        let mut steps = 0;
        while let Some(c) = cur {
            if c == anc {
                return true;
            }
            cur = by_id.get(c).and_then(|x| x.parent_id.as_deref());
            steps += 1;
            if steps > 64 {
                break;
            }
        }
        false
    };

    let mut rows: Vec<Row> = Vec::new();
    if !effective {
        rows = all.iter().map(base_row).collect();
        for (r, a) in rows.iter_mut().zip(all.iter()) {
            r.source = Some(assignment_link(id, a));
        }
    } else {
        // Expand groups into members, inheritance into projects, then implied roles.
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        for a in all.iter().filter(|a| a.kind.is_group()) {
            if !members.contains_key(&a.actor_id) {
                members.insert(
                    a.actor_id.clone(),
                    db::groups::user_ids_in_group(&mut *conn, &a.actor_id).await?,
                );
            }
        }
        for a in &all {
            let link = assignment_link(id, a);
            let users: Vec<String> = if a.kind.is_group() {
                members.get(&a.actor_id).cloned().unwrap_or_default()
            } else {
                vec![a.actor_id.clone()]
            };
            let targets: Vec<Row> = if a.inherited {
                projects
                    .iter()
                    .filter(|p| match a.kind {
                        AssignmentKind::UserDomain | AssignmentKind::GroupDomain => {
                            p.domain_id == a.target_id
                        }
                        _ => is_below(p, &a.target_id),
                    })
                    .map(|p| Row {
                        project: Some(p.id.clone()),
                        domain: None,
                        system: false,
                        inherited: false,
                        ..base_row(a)
                    })
                    .collect()
            } else {
                vec![base_row(a)]
            };
            for t in targets {
                for u in &users {
                    for rid in graph.closure(std::iter::once(&a.role_id)) {
                        if graph.roles.get(&rid).is_some_and(|r| r.domain_id.is_some()) {
                            continue;
                        }
                        let implied = rid != a.role_id;
                        rows.push(Row {
                            user: Some(u.clone()),
                            group: None,
                            role: rid,
                            inherited: false,
                            source: Some(link.clone()),
                            prior_role: implied.then(|| a.role_id.clone()),
                            membership: a.kind.is_group().then(|| {
                                format!("{}/groups/{}/users/{u}", id.config.v3_url(), a.actor_id)
                            }),
                            ..t.clone()
                        });
                    }
                }
            }
        }
    }

    // Filters.
    let subtree = q
        .get("include_subtree")
        .is_some_and(|v| wire::query_bool(v));
    rows.retain(|r| {
        q.get("user.id")
            .is_none_or(|u| r.user.as_deref() == Some(u.as_str()))
            && q.get("group.id")
                .is_none_or(|g| r.group.as_deref() == Some(g.as_str()))
            && q.get("role.id").is_none_or(|x| r.role == *x)
            && q.get("scope.project.id").is_none_or(|p| {
                r.project.as_deref() == Some(p.as_str())
                    || (subtree
                        && r.project
                            .as_deref()
                            .and_then(|rp| by_id.get(rp))
                            .is_some_and(|rp| is_below(rp, p)))
            })
            && scope_domain
                .as_ref()
                .is_none_or(|d| r.domain.as_deref() == Some(d.as_str()))
            && q.get("scope.system").is_none_or(|_| r.system)
            && q.get("scope.OS-INHERIT:inherited_to")
                .is_none_or(|_| r.inherited)
    });
    // Domain-scoped callers see only their domain's assignments.
    if let (Some(d), false) = (&auth.domain, auth.system || auth.is_admin) {
        rows.retain(|r| {
            r.domain.as_deref() == Some(d.id.as_str())
                || r.project
                    .as_deref()
                    .and_then(|p| by_id.get(p))
                    .is_some_and(|p| p.domain_id == d.id)
        });
    }
    let mut seen = HashSet::new();
    rows.retain(|r| {
        seen.insert((
            r.user.clone(),
            r.group.clone(),
            r.role.clone(),
            r.project.clone(),
            r.domain.clone(),
            r.system,
            r.inherited,
        ))
    });

    // Names, when asked for.
    let (users, groups, domains) = if include_names {
        let users: HashMap<String, (String, String)> = db::users::list(&mut *conn, None, None)
            .await?
            .into_iter()
            .map(|u| (u.id, (u.name, u.domain_id)))
            .collect();
        let groups: HashMap<String, (String, String)> = db::groups::list(&mut *conn, None, None)
            .await?
            .into_iter()
            .map(|g| (g.id, (g.name, g.domain_id)))
            .collect();
        let domains: HashMap<String, String> = db::domains::list(&mut *conn)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        (users, groups, domains)
    } else {
        Default::default()
    };
    let dom = |did: &str| json!({"id": did, "name": domains.get(did)});
    let role_json = |rid: &str| -> Value {
        match (include_names, graph.roles.get(rid)) {
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
            let mut v = json!({"role": role_json(&r.role), "links": {"assignment": r.source}});
            if let Some(p) = &r.prior_role {
                v["links"]["prior_role"] = json!(format!("{}/roles/{p}", id.config.v3_url()));
            }
            if let Some(m) = &r.membership {
                v["links"]["membership"] = json!(m);
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
                match (include_names, by_id.get(p.as_str())) {
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
