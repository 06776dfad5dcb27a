//! Effective roles: direct and group assignments, inheritance down the project tree, and
//! implied roles expanded transitively. Domain-specific roles never appear in tokens; only the
//! global roles they imply do (as in Keystone).

use std::collections::{HashMap, HashSet};

use ferrostack_api::RoleRef;

use crate::db::{self, Conn};
use crate::error::Result;
use crate::model::{Assignment, AssignmentKind, Project, Role};

/// All roles and implied-role rules, loaded together.
pub struct RoleGraph {
    pub roles: HashMap<String, Role>,
    implies: HashMap<String, Vec<String>>,
}

impl RoleGraph {
    pub async fn load(conn: &mut Conn) -> Result<RoleGraph> {
        let roles = db::roles::list_all(&mut *conn).await?;
        let rules = db::roles::implied_rules(&mut *conn).await?;
        let mut implies: HashMap<String, Vec<String>> = HashMap::new();
        for (prior, implied) in rules {
            implies.entry(prior).or_default().push(implied);
        }
        Ok(RoleGraph {
            roles: roles.into_iter().map(|r| (r.id.clone(), r)).collect(),
            implies,
        })
    }

    /// Role ids implied by `ids` (transitively), `ids` included.
    pub fn closure<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut stack: Vec<String> = ids.into_iter().cloned().collect();
        let mut order = Vec::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            order.push(id.clone());
            if let Some(next) = self.implies.get(&id) {
                stack.extend(next.iter().cloned());
            }
        }
        order
    }

    /// The roles a token shows for these granted role ids: implied roles added, domain-specific
    /// roles removed, sorted by name.
    pub fn token_roles(&self, granted: &[String]) -> Vec<RoleRef> {
        let mut out: Vec<RoleRef> = self
            .closure(granted.iter())
            .into_iter()
            .filter_map(|id| self.roles.get(&id))
            .filter(|r| r.domain_id.is_none())
            .map(|r| RoleRef {
                id: r.id.clone(),
                name: r.name.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Whether `prior` implies `implied` through a chain of rules (used to refuse cycles).
    pub fn implies(&self, prior: &str, implied: &str) -> bool {
        self.closure([&prior.to_string()])
            .iter()
            .any(|r| r == implied)
    }
}

/// The user and the groups it belongs to: the actors whose assignments count for it.
pub async fn actors(conn: &mut Conn, user_id: &str) -> Result<Vec<String>> {
    let mut ids = vec![user_id.to_string()];
    ids.extend(db::groups::group_ids_for_user(&mut *conn, user_id).await?);
    Ok(ids)
}

/// Role ids granted to `user_id` on `project` (directly, through groups, or inherited from the
/// project's ancestors and its domain), before implied roles.
pub async fn granted_on_project(
    conn: &mut Conn,
    user_id: &str,
    project: &Project,
) -> Result<Vec<String>> {
    let actors = actors(conn, user_id).await?;
    let assignments = db::assignments::list_for_actors(&mut *conn, &actors).await?;
    let ancestors = db::projects::ancestors(conn, &project.id).await?;
    Ok(assignments
        .iter()
        .filter(|a| applies_to_project(a, project, &ancestors))
        .map(|a| a.role_id.clone())
        .collect())
}

/// Whether assignment `a` gives a role on `project`, whose ancestors are `ancestors`.
pub fn applies_to_project(a: &Assignment, project: &Project, ancestors: &[String]) -> bool {
    match a.kind {
        AssignmentKind::UserProject | AssignmentKind::GroupProject => {
            (!a.inherited && a.target_id == project.id)
                || (a.inherited && ancestors.contains(&a.target_id))
        }
        AssignmentKind::UserDomain | AssignmentKind::GroupDomain => {
            a.inherited && a.target_id == project.domain_id
        }
        _ => false,
    }
}

pub async fn granted_on_domain(
    conn: &mut Conn,
    user_id: &str,
    domain_id: &str,
) -> Result<Vec<String>> {
    let actors = actors(conn, user_id).await?;
    let assignments = db::assignments::list_for_actors(&mut *conn, &actors).await?;
    Ok(assignments
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                AssignmentKind::UserDomain | AssignmentKind::GroupDomain
            ) && !a.inherited
                && a.target_id == domain_id
        })
        .map(|a| a.role_id.clone())
        .collect())
}

pub async fn granted_on_system(conn: &mut Conn, user_id: &str) -> Result<Vec<String>> {
    let actors = actors(conn, user_id).await?;
    let assignments = db::assignments::list_for_actors(&mut *conn, &actors).await?;
    Ok(assignments
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                AssignmentKind::UserSystem | AssignmentKind::GroupSystem
            )
        })
        .map(|a| a.role_id.clone())
        .collect())
}

/// Whether `user_id` holds the global `admin` role (or a role that implies it) anywhere: on a
/// project, a domain or the system, directly or through a group. Only a cloud admin may change
/// or delete such a user; otherwise a domain's manager could take over an administrator of the
/// cloud who lives in its domain (the bootstrap admin is in `Default`).
pub async fn holds_admin_anywhere(conn: &mut Conn, user_id: &str) -> Result<bool> {
    let graph = RoleGraph::load(conn).await?;
    let Some(admin) = graph
        .roles
        .values()
        .find(|r| r.name == "admin" && r.domain_id.is_none())
        .map(|r| r.id.clone())
    else {
        return Ok(false);
    };
    let mut actors = vec![user_id.to_string()];
    actors.extend(
        db::groups::list_for_user(&mut *conn, user_id)
            .await?
            .into_iter()
            .map(|g| g.id),
    );
    let granted: Vec<String> = db::assignments::list_for_actors(&mut *conn, &actors)
        .await?
        .into_iter()
        .map(|a| a.role_id)
        .collect();
    Ok(graph.closure(granted.iter()).contains(&admin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, domain: Option<&str>) -> Role {
        Role {
            id: id.into(),
            name: format!("n-{id}"),
            domain_id: domain.map(str::to_string),
            description: String::new(),
            extra: Default::default(),
        }
    }

    #[test]
    fn implied_roles_expand_and_domain_roles_drop() {
        let g = RoleGraph {
            roles: [
                role("admin", None),
                role("member", None),
                role("reader", None),
                role("dom", Some("d1")),
            ]
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect(),
            implies: [
                ("admin".to_string(), vec!["member".to_string()]),
                ("member".to_string(), vec!["reader".to_string()]),
                ("dom".to_string(), vec!["member".to_string()]),
            ]
            .into_iter()
            .collect(),
        };
        let names: Vec<String> = g
            .token_roles(&["admin".into()])
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(names, vec!["admin", "member", "reader"]);
        let names: Vec<String> = g
            .token_roles(&["dom".into()])
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(names, vec!["member", "reader"]);
        assert!(g.implies("admin", "reader"));
        assert!(!g.implies("reader", "admin"));
    }

    #[test]
    fn inheritance_rules() {
        let p = Project {
            id: "child".into(),
            name: "c".into(),
            domain_id: "d".into(),
            parent_id: Some("parent".into()),
            description: String::new(),
            enabled: true,
            tags: vec![],
            extra: Default::default(),
        };
        let a = |kind, target: &str, inherited| Assignment {
            kind,
            actor_id: "u".into(),
            target_id: target.into(),
            role_id: "r".into(),
            inherited,
        };
        let anc = vec!["parent".to_string()];
        assert!(applies_to_project(
            &a(AssignmentKind::UserProject, "child", false),
            &p,
            &anc
        ));
        assert!(!applies_to_project(
            &a(AssignmentKind::UserProject, "parent", false),
            &p,
            &anc
        ));
        assert!(applies_to_project(
            &a(AssignmentKind::GroupProject, "parent", true),
            &p,
            &anc
        ));
        assert!(!applies_to_project(
            &a(AssignmentKind::UserProject, "child", true),
            &p,
            &anc
        ));
        assert!(applies_to_project(
            &a(AssignmentKind::UserDomain, "d", true),
            &p,
            &anc
        ));
        assert!(!applies_to_project(
            &a(AssignmentKind::UserDomain, "d", false),
            &p,
            &anc
        ));
    }
}
