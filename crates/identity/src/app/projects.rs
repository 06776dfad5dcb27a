//! Projects: where a new one goes in the hierarchy, creation, changes (disabling one revokes
//! the tokens scoped to it), deletion of leaves, tags, and the projects a user has a role on.

use std::collections::{HashMap, HashSet};

use super::effective_roles;
use super::tokens::revoke_project;
use crate::db::{self, projects::ProjectFilter};
use crate::error::{conflict_or, IdentityError, Result};
use crate::model::Project;
use crate::Identity;

/// Deepest project hierarchy accepted (Keystone's `max_project_tree_depth` default).
const MAX_DEPTH: usize = 5;
/// Most tags a project may carry.
pub const MAX_TAGS: usize = 80;

/// A tag is 1 to 255 characters without '/' or ',' (they separate tags in URLs and filters).
pub fn check_tag(t: &str) -> Result<()> {
    if t.is_empty() || t.chars().count() > 255 || t.contains('/') || t.contains(',') {
        return Err(IdentityError::validation(format!(
            "Invalid input for field 'tags': '{t}' must be 1 to 255 characters without '/' or ','."
        )));
    }
    Ok(())
}

/// Every tag valid, and no more than [`MAX_TAGS`] of them.
pub fn check_tags(tags: &[String]) -> Result<()> {
    for t in tags {
        check_tag(t)?;
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(())
}

fn too_many_tags() -> IdentityError {
    IdentityError::validation(format!("A project may have at most {MAX_TAGS} tags."))
}

fn duplicate_name(name: &str) -> String {
    format!(
        "it is not permitted to have two projects with the same name in the same domain : {name}"
    )
}

/// The project `project_id`; `NotFound` when there is none.
pub async fn get(id: &Identity, project_id: &str) -> Result<Project> {
    let mut conn = id.db.pool.acquire().await?;
    db::projects::get(&mut conn, project_id)
        .await?
        .ok_or_else(|| IdentityError::not_found("project", project_id))
}

/// Where a new project goes: `(domain_id, parent_id)`. Under `parent_id` when it names a
/// project (in the parent's domain, which `domain_id` may repeat but not contradict, and within
/// the maximum depth); at the top of a domain when `parent_id` names a domain; otherwise at the
/// top of `domain_id`, else of `default_domain`. A `parent_id` naming nothing is a validation
/// error, as in Keystone.
pub async fn placement(
    id: &Identity,
    domain_id: Option<String>,
    parent_id: Option<String>,
    default_domain: String,
) -> Result<(String, Option<String>)> {
    let Some(pid) = parent_id else {
        return Ok((domain_id.unwrap_or(default_domain), None));
    };
    let mut conn = id.db.pool.acquire().await?;
    match db::projects::get(&mut conn, &pid).await? {
        Some(parent) => {
            if domain_id.as_ref().is_some_and(|d| *d != parent.domain_id) {
                return Err(IdentityError::validation(
                    "Cannot create a project in a different domain than its parent.",
                ));
            }
            if db::projects::ancestors(&mut conn, &parent.id).await?.len() + 2 > MAX_DEPTH {
                return Err(IdentityError::Forbidden(format!(
                    "Max hierarchy depth reached for {} branch.",
                    parent.id
                )));
            }
            Ok((parent.domain_id, Some(parent.id)))
        }
        None if db::domains::get(&mut *conn, &pid).await?.is_some() => Ok((pid, None)),
        None => Err(IdentityError::validation(format!(
            "Could not find project: {pid}."
        ))),
    }
}

/// Creates `p` (placed by [`placement`]); a validation error when its domain does not exist,
/// `Conflict` when its name is taken in the domain.
pub async fn create(id: &Identity, p: &Project) -> Result<()> {
    if db::domains::get(&id.db.pool, &p.domain_id).await?.is_none() {
        return Err(IdentityError::validation(format!(
            "Could not find domain: {}.",
            p.domain_id
        )));
    }
    check_tags(&p.tags)?;
    let mut tx = id.db.begin_write().await?;
    db::projects::insert(&mut tx, p)
        .await
        .map_err(conflict_or("project", duplicate_name(&p.name)))?;
    id.commit_change(tx, vec![]).await
}

/// Tag filters of a project listing, as Keystone's `tags`, `tags-any`, `not-tags` and
/// `not-tags-any`.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    /// Projects carrying every one of these.
    pub all: Option<Vec<String>>,
    /// Projects carrying at least one of these.
    pub any: Option<Vec<String>>,
    /// Projects not carrying all of these.
    pub not_all: Option<Vec<String>>,
    /// Projects carrying none of these.
    pub not_any: Option<Vec<String>>,
}

impl TagFilter {
    fn matches(&self, p: &Project) -> bool {
        let has = |t: &String| p.tags.contains(t);
        self.all.as_ref().is_none_or(|ts| ts.iter().all(has))
            && self.any.as_ref().is_none_or(|ts| ts.iter().any(has))
            && self.not_all.as_ref().is_none_or(|ts| !ts.iter().all(has))
            && self.not_any.as_ref().is_none_or(|ts| !ts.iter().any(has))
    }
}

/// Which projects a listing returns (every field that is set must match).
#[derive(Debug, Clone, Default)]
pub struct ProjectQuery {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub parent_id: Option<String>,
    pub enabled: Option<bool>,
    /// The caller's domain when only that domain's projects may be shown (a domain-scoped
    /// caller, whatever `domain_id` it asks for).
    pub only_domain: Option<String>,
    pub tags: TagFilter,
}

/// The projects matching `q`, in the store's order.
pub async fn list(id: &Identity, q: &ProjectQuery) -> Result<Vec<Project>> {
    let filter = ProjectFilter {
        name: q.name.clone(),
        domain_id: q.domain_id.clone(),
        parent_id: q.parent_id.clone(),
        enabled: q.enabled,
        ids: None,
    };
    let mut conn = id.db.pool.acquire().await?;
    Ok(db::projects::list(&mut conn, &filter)
        .await?
        .into_iter()
        .filter(|p| q.only_domain.as_ref().is_none_or(|d| *d == p.domain_id))
        .filter(|p| q.tags.matches(p))
        .collect())
}

/// The ancestors of `p`, its parent first (projects that vanished meanwhile are skipped).
pub async fn parents(id: &Identity, p: &Project) -> Result<Vec<Project>> {
    let mut conn = id.db.pool.acquire().await?;
    let mut out = Vec::new();
    for pid in db::projects::ancestors(&mut conn, &p.id).await? {
        if let Some(pp) = db::projects::get(&mut conn, &pid).await? {
            out.push(pp);
        }
    }
    Ok(out)
}

/// Every project below `p`, nearest generations first.
pub async fn subtree(id: &Identity, p: &Project) -> Result<Vec<Project>> {
    let mut conn = id.db.pool.acquire().await?;
    let all = db::projects::list(&mut conn, &ProjectFilter::default()).await?;
    let mut below: HashSet<String> = HashSet::from([p.id.clone()]);
    let mut subtree = Vec::new();
    // Walk outwards from the project until no new descendants appear.
    loop {
        let before = below.len();
        for c in &all {
            if c.parent_id.as_ref().is_some_and(|pp| below.contains(pp))
                && below.insert(c.id.clone())
            {
                subtree.push(c.clone());
            }
        }
        if below.len() == before {
            break;
        }
    }
    Ok(subtree)
}

/// Stores `p`, a changed copy of a stored project (its domain and parent never change);
/// `Conflict` when its new name is taken in the domain. Disabling the project revokes the
/// tokens scoped to it.
pub async fn update(id: &Identity, p: &Project) -> Result<()> {
    check_tags(&p.tags)?;
    let mut tx = id.db.begin_write().await?;
    let was_enabled = db::projects::get(&mut tx, &p.id)
        .await?
        .ok_or_else(|| IdentityError::not_found("project", &p.id))?
        .enabled;
    db::projects::update(&mut tx, p)
        .await
        .map_err(conflict_or("project", duplicate_name(&p.name)))?;
    let events = if was_enabled && !p.enabled {
        vec![revoke_project(&p.id)]
    } else {
        vec![]
    };
    id.commit_change(tx, events).await
}

/// Deletes the project `project_id` with its grants and limits (as Keystone), revoking the
/// tokens scoped to it. Refused (403) while it has children.
pub async fn delete(id: &Identity, project_id: &str) -> Result<()> {
    let mut tx = id.db.begin_write().await?;
    if db::projects::children_count(&mut tx, project_id).await? > 0 {
        return Err(IdentityError::ForbiddenWithReason(format!(
            "Cannot delete the project {project_id} since it is not a leaf in the hierarchy."
        )));
    }
    db::assignments::delete_for_target(&mut *tx, project_id).await?;
    db::limits::delete_for_owner(&mut *tx, project_id).await?;
    db::projects::delete(&mut tx, project_id).await?;
    id.commit_change(tx, vec![revoke_project(project_id)]).await
}

/// Replaces the tags of `project_id` with `tags` (each valid, at most [`MAX_TAGS`]).
pub async fn set_tags(id: &Identity, project_id: &str, tags: &[String]) -> Result<()> {
    check_tags(tags)?;
    let mut tx = id.db.begin_write().await?;
    db::projects::set_tags(&mut tx, project_id, tags).await?;
    // Tags grant nothing, so there is no cached validation to drop: a plain commit.
    tx.commit().await?;
    Ok(())
}

/// Adds `tag` to `p` (nothing to do when it is there already), keeping at most [`MAX_TAGS`].
pub async fn add_tag(id: &Identity, p: &Project, tag: &str) -> Result<()> {
    check_tag(tag)?;
    if p.tags.iter().any(|t| t == tag) {
        return Ok(());
    }
    if p.tags.len() >= MAX_TAGS {
        return Err(too_many_tags());
    }
    let mut tags = p.tags.clone();
    tags.push(tag.to_string());
    set_tags(id, &p.id, &tags).await
}

/// Removes `tag` from `p`; `NotFound` when `p` does not carry it.
pub async fn remove_tag(id: &Identity, p: &Project, tag: &str) -> Result<()> {
    if !p.tags.iter().any(|t| t == tag) {
        return Err(IdentityError::not_found("project tag", tag));
    }
    let tags: Vec<String> = p.tags.iter().filter(|t| *t != tag).cloned().collect();
    set_tags(id, &p.id, &tags).await
}

/// The enabled projects on which `user_id` has any role: directly, through a group, or
/// inherited from an ancestor or the domain.
pub async fn for_user(id: &Identity, user_id: &str) -> Result<Vec<Project>> {
    let mut conn = id.db.pool.acquire().await?;
    let actors = effective_roles::actors(&mut conn, user_id).await?;
    let assignments = db::assignments::list_for_actors(&mut *conn, &actors).await?;
    if assignments.is_empty() {
        return Ok(vec![]);
    }
    let all = db::projects::list(&mut conn, &ProjectFilter::default()).await?;
    let parents: HashMap<&str, Option<&str>> = all
        .iter()
        .map(|p| (p.id.as_str(), p.parent_id.as_deref()))
        .collect();
    let mut out = Vec::new();
    for p in &all {
        let mut ancestors = Vec::new();
        let mut cur = p.parent_id.as_deref();
        while let Some(c) = cur {
            ancestors.push(c.to_string());
            cur = parents.get(c).copied().flatten();
            if ancestors.len() > 64 {
                break;
            }
        }
        if p.enabled
            && assignments
                .iter()
                .any(|a| effective_roles::applies_to_project(a, p, &ancestors))
        {
            out.push(p.clone());
        }
    }
    Ok(out)
}
