//! Role grants (a user or group holds a role on a project, a domain or the system, optionally
//! inherited by the projects below) and the role assignment listing, direct or effective
//! (groups expanded into members, inheritance into projects, implied roles added).

use std::collections::{HashMap, HashSet};

use super::effective_roles::RoleGraph;
use super::tokens::revoke_user;
use crate::db::{self, projects::ProjectFilter};
use crate::error::{IdentityError, Result};
use crate::model::{Assignment, AssignmentKind, Project, Role};
use crate::Identity;

/// A domain-specific role is granted inside its own domain only: `target_domain` is the domain
/// of the grant's target (the project's domain, the domain itself, none for the system).
fn check_role_domain(role: &Role, target_domain: Option<&str>) -> Result<()> {
    match &role.domain_id {
        Some(rd) if target_domain != Some(rd.as_str()) => {
            Err(IdentityError::ForbiddenWithReason(format!(
                "Cannot assign the domain-specific role {} outside its domain.",
                role.id
            )))
        }
        _ => Ok(()),
    }
}

fn no_such_grant(a: &Assignment) -> IdentityError {
    IdentityError::not_found(
        "role assignment",
        format!("{} on {}", a.role_id, a.target_id),
    )
}

/// `Ok` when the grant `a` (of `role`, on a target in `target_domain`) exists, `NotFound`
/// otherwise; 403 for a domain-specific role outside its domain.
pub async fn check(
    id: &Identity,
    a: &Assignment,
    role: &Role,
    target_domain: Option<&str>,
) -> Result<()> {
    check_role_domain(role, target_domain)?;
    if db::assignments::exists(&id.db.pool, a).await? {
        Ok(())
    } else {
        Err(no_such_grant(a))
    }
}

/// Grants `a` (of `role`, on a target in `target_domain`; nothing changes when it exists
/// already); 403 for a domain-specific role outside its domain.
pub async fn grant(
    id: &Identity,
    a: &Assignment,
    role: &Role,
    target_domain: Option<&str>,
) -> Result<()> {
    check_role_domain(role, target_domain)?;
    let mut tx = id.db.begin_write().await?;
    db::assignments::grant(&mut *tx, a).await?;
    id.commit_change(tx, vec![]).await
}

/// Revokes `a` (of `role`, on a target in `target_domain`); `NotFound` when there is no such
/// grant, 403 for a domain-specific role outside its domain. Revoking a user's role on a
/// project revokes the user's tokens scoped there, as Keystone does.
pub async fn revoke(
    id: &Identity,
    a: &Assignment,
    role: &Role,
    target_domain: Option<&str>,
) -> Result<()> {
    check_role_domain(role, target_domain)?;
    let mut tx = id.db.begin_write().await?;
    if !db::assignments::revoke(&mut *tx, a).await? {
        return Err(no_such_grant(a));
    }
    let events = if a.kind == AssignmentKind::UserProject {
        vec![revoke_user(&a.actor_id, Some(&a.target_id))]
    } else {
        vec![]
    };
    id.commit_change(tx, events).await
}

/// The roles granted directly (not through groups or implication) to `actor_id` on
/// `target_id` with this `kind` and inheritance.
pub async fn granted_roles(
    id: &Identity,
    kind: AssignmentKind,
    actor_id: &str,
    target_id: &str,
    inherited: bool,
) -> Result<Vec<Role>> {
    let mut conn = id.db.pool.acquire().await?;
    let all = db::assignments::list_for_actors(&mut *conn, &[actor_id.to_string()]).await?;
    let graph = RoleGraph::load(&mut conn).await?;
    Ok(all
        .iter()
        .filter(|x| x.kind == kind && x.target_id == target_id && x.inherited == inherited)
        .filter_map(|x| graph.roles.get(&x.role_id).cloned())
        .collect())
}

/// The filters of a role assignment listing, as given in the query string (a filter that is
/// present applies even when empty, as in Keystone; the combinations refused are those where
/// both are non-empty).
#[derive(Debug, Clone, Default)]
pub struct AssignmentQuery {
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub role_id: Option<String>,
    pub project_id: Option<String>,
    /// With `project_id`: the projects below it count too.
    pub include_subtree: bool,
    pub domain_id: Option<String>,
    /// `scope.system`: only system grants.
    pub system: Option<String>,
    /// `scope.OS-INHERIT:inherited_to` present: only inherited grants.
    pub inherited_to: bool,
    /// Expand groups, inheritance and implied roles into what each user holds.
    pub effective: bool,
    /// Load the names of users, groups, domains, projects and roles.
    pub include_names: bool,
    /// The caller's domain when only that domain's assignments may be shown (a domain-scoped
    /// caller that is neither system-scoped nor a cloud admin).
    pub only_domain: Option<String>,
}

impl AssignmentQuery {
    /// Refuses filter combinations that are contradictory or always empty (Keystone's
    /// messages).
    fn validate(&self) -> Result<()> {
        let given = |v: &Option<String>| v.as_ref().is_some_and(|v| !v.is_empty());
        for (a, b, what) in [
            (
                &self.domain_id,
                &self.project_id,
                "Specify a domain or project, not both",
            ),
            (
                &self.domain_id,
                &self.system,
                "Specify system or domain, not both",
            ),
            (
                &self.project_id,
                &self.system,
                "Specify system or project, not both",
            ),
            (
                &self.user_id,
                &self.group_id,
                "Specify a user or group, not both",
            ),
        ] {
            if given(a) && given(b) {
                return Err(IdentityError::validation(what));
            }
        }
        if self.effective && given(&self.group_id) {
            return Err(IdentityError::validation(
                "Combining effective and group filter will always result in an empty list.",
            ));
        }
        if self.effective && given(&self.domain_id) && self.inherited_to {
            return Err(IdentityError::validation(
                "Combining effective, domain and inherited filters will always result in an empty list.",
            ));
        }
        Ok(())
    }
}

/// One row of the role assignment list.
#[derive(Debug, Clone)]
pub struct AssignmentRow {
    pub user: Option<String>,
    pub group: Option<String>,
    pub role: String,
    pub project: Option<String>,
    pub domain: Option<String>,
    pub system: bool,
    pub inherited: bool,
    /// The stored grant the row comes from.
    pub source: Assignment,
    /// For an effective row of an implied role: the role granted, which implies it.
    pub prior_role: Option<String>,
    /// For an effective row of a group's member: the group (`source.actor_id`).
    pub via_group: bool,
}

fn base_row(a: &Assignment) -> AssignmentRow {
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
    AssignmentRow {
        user,
        group,
        role: a.role_id.clone(),
        project,
        domain,
        system,
        inherited: a.inherited,
        source: a.clone(),
        prior_role: None,
        via_group: false,
    }
}

/// A role assignment listing and what it takes to render it.
#[derive(Debug, Default)]
pub struct AssignmentListing {
    pub rows: Vec<AssignmentRow>,
    /// Every role, by id.
    pub roles: HashMap<String, Role>,
    /// Every project, by id.
    pub projects: HashMap<String, Project>,
    /// With `include_names`: user id to (name, domain id).
    pub users: HashMap<String, (String, String)>,
    /// With `include_names`: group id to (name, domain id).
    pub groups: HashMap<String, (String, String)>,
    /// With `include_names`: domain id to name.
    pub domains: HashMap<String, String>,
}

/// Whether `p` lies below the project `ancestor` (bounded walk up the parents).
fn is_below(by_id: &HashMap<String, Project>, p: &Project, ancestor: &str) -> bool {
    let mut cur = p.parent_id.as_deref();
    let mut steps = 0;
    while let Some(c) = cur {
        if c == ancestor {
            return true;
        }
        cur = by_id.get(c).and_then(|x| x.parent_id.as_deref());
        steps += 1;
        if steps > 64 {
            break;
        }
    }
    false
}

/// The role assignments matching `q`, without duplicates, in grant order. Effective rows
/// expand group grants into one row per member, inherited grants into one row per project
/// below the target, and each role into the global roles it implies (domain-specific roles
/// never appear in effective rows, as they never appear in tokens).
pub async fn list(id: &Identity, q: &AssignmentQuery) -> Result<AssignmentListing> {
    q.validate()?;
    let mut conn = id.db.pool.acquire().await?;
    let all = db::assignments::list_all(&mut *conn).await?;
    let graph = RoleGraph::load(&mut conn).await?;
    // In the store's order (inherited grants expand in it), and by id.
    let ordered = db::projects::list(&mut conn, &ProjectFilter::default()).await?;
    let projects: HashMap<String, Project> =
        ordered.iter().map(|p| (p.id.clone(), p.clone())).collect();

    let mut rows: Vec<AssignmentRow> = Vec::new();
    if !q.effective {
        rows = all.iter().map(base_row).collect();
    } else {
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
            let users: Vec<String> = if a.kind.is_group() {
                members.get(&a.actor_id).cloned().unwrap_or_default()
            } else {
                vec![a.actor_id.clone()]
            };
            let targets: Vec<AssignmentRow> = if a.inherited {
                ordered
                    .iter()
                    .filter(|p| match a.kind {
                        AssignmentKind::UserDomain | AssignmentKind::GroupDomain => {
                            p.domain_id == a.target_id
                        }
                        _ => is_below(&projects, p, &a.target_id),
                    })
                    .map(|p| AssignmentRow {
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
                        rows.push(AssignmentRow {
                            user: Some(u.clone()),
                            group: None,
                            role: rid,
                            inherited: false,
                            prior_role: implied.then(|| a.role_id.clone()),
                            via_group: a.kind.is_group(),
                            ..t.clone()
                        });
                    }
                }
            }
        }
    }

    rows.retain(|r| {
        q.user_id
            .as_ref()
            .is_none_or(|u| r.user.as_deref() == Some(u.as_str()))
            && q.group_id
                .as_ref()
                .is_none_or(|g| r.group.as_deref() == Some(g.as_str()))
            && q.role_id.as_ref().is_none_or(|x| r.role == *x)
            && q.project_id.as_ref().is_none_or(|p| {
                r.project.as_deref() == Some(p.as_str())
                    || (q.include_subtree
                        && r.project
                            .as_deref()
                            .and_then(|rp| projects.get(rp))
                            .is_some_and(|rp| is_below(&projects, rp, p)))
            })
            && q.domain_id
                .as_ref()
                .is_none_or(|d| r.domain.as_deref() == Some(d.as_str()))
            && (q.system.is_none() || r.system)
            && (!q.inherited_to || r.inherited)
    });
    if let Some(d) = &q.only_domain {
        rows.retain(|r| {
            r.domain.as_deref() == Some(d.as_str())
                || r.project
                    .as_deref()
                    .and_then(|p| projects.get(p))
                    .is_some_and(|p| p.domain_id == *d)
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

    let mut out = AssignmentListing {
        rows,
        roles: graph.roles,
        projects,
        ..Default::default()
    };
    if q.include_names {
        out.users = db::users::list(&mut *conn, None, None)
            .await?
            .into_iter()
            .map(|u| (u.id, (u.name, u.domain_id)))
            .collect();
        out.groups = db::groups::list(&mut *conn, None, None)
            .await?
            .into_iter()
            .map(|g| (g.id, (g.name, g.domain_id)))
            .collect();
        out.domains = db::domains::list(&mut *conn)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
    }
    Ok(out)
}
