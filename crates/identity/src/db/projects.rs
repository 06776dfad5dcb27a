use ferrostack_store::now_micros;
use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{flag, get_bool, Conn, DbResult};
use crate::model::{extra_from_text, extra_to_text, Project};

const COLS: &str = "id, name, domain_id, parent_id, description, enabled, extra";

fn from_row(r: &AnyRow) -> DbResult<Project> {
    Ok(Project {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        domain_id: r.try_get("domain_id")?,
        parent_id: r.try_get("parent_id")?,
        description: r.try_get("description")?,
        enabled: get_bool(r, "enabled")?,
        tags: Vec::new(),
        extra: extra_from_text(&r.try_get::<String, _>("extra")?),
    })
}

async fn load_tags(conn: &mut Conn, projects: &mut [Project]) -> DbResult<()> {
    if projects.is_empty() {
        return Ok(());
    }
    if projects.len() == 1 {
        let tags: Vec<String> =
            sqlx::query_scalar("SELECT tag FROM project_tags WHERE project_id = $1 ORDER BY tag")
                .bind(&projects[0].id)
                .fetch_all(&mut *conn)
                .await?;
        projects[0].tags = tags;
        return Ok(());
    }
    let rows = sqlx::query("SELECT project_id, tag FROM project_tags ORDER BY tag")
        .fetch_all(&mut *conn)
        .await?;
    let mut by_id: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in rows {
        by_id
            .entry(r.try_get("project_id")?)
            .or_default()
            .push(r.try_get("tag")?);
    }
    for p in projects {
        if let Some(t) = by_id.remove(&p.id) {
            p.tags = t;
        }
    }
    Ok(())
}

pub async fn insert(conn: &mut Conn, p: &Project) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.domain_id)
    .bind(&p.parent_id)
    .bind(&p.description)
    .bind(flag(p.enabled))
    .bind(extra_to_text(&p.extra))
    .bind(now_micros())
    .execute(&mut *conn)
    .await?;
    set_tags(conn, &p.id, &p.tags).await
}

pub async fn update(conn: &mut Conn, p: &Project) -> DbResult<()> {
    sqlx::query(
        "UPDATE projects SET name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(flag(p.enabled))
    .bind(extra_to_text(&p.extra))
    .execute(&mut *conn)
    .await?;
    set_tags(conn, &p.id, &p.tags).await
}

pub async fn set_tags(conn: &mut Conn, project_id: &str, tags: &[String]) -> DbResult<()> {
    sqlx::query("DELETE FROM project_tags WHERE project_id = $1")
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    for t in tags {
        sqlx::query("INSERT INTO project_tags (project_id, tag) VALUES ($1, $2)")
            .bind(project_id)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<Project>> {
    let q = format!("SELECT {COLS} FROM projects WHERE id = $1");
    let Some(row) = sqlx::query(&q).bind(id).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let mut p = [from_row(&row)?];
    load_tags(conn, &mut p).await?;
    let [p] = p;
    Ok(Some(p))
}

pub async fn get_by_name(
    conn: &mut Conn,
    domain_id: &str,
    name: &str,
) -> DbResult<Option<Project>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM projects WHERE domain_id = $1 AND name = $2")
            .bind(domain_id)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    match id {
        Some(id) => get(conn, &id).await,
        None => Ok(None),
    }
}

/// Filters of `GET /v3/projects`; `None` means no filter.
#[derive(Debug, Default)]
pub struct ProjectFilter {
    pub name: Option<String>,
    pub domain_id: Option<String>,
    pub parent_id: Option<String>,
    pub enabled: Option<bool>,
    pub ids: Option<Vec<String>>,
}

pub async fn list(conn: &mut Conn, f: &ProjectFilter) -> DbResult<Vec<Project>> {
    let q = format!("SELECT {COLS} FROM projects ORDER BY name, id");
    let rows = sqlx::query(&q).fetch_all(&mut *conn).await?;
    let mut out = Vec::new();
    for r in &rows {
        let p = from_row(r)?;
        if f.name.as_ref().is_some_and(|n| *n != p.name)
            || f.domain_id.as_ref().is_some_and(|d| *d != p.domain_id)
            || f.enabled.is_some_and(|e| e != p.enabled)
            || f.ids.as_ref().is_some_and(|ids| !ids.contains(&p.id))
        {
            continue;
        }
        if let Some(parent) = &f.parent_id {
            let wire_parent = p.parent_id.clone().unwrap_or_else(|| p.domain_id.clone());
            if *parent != wire_parent {
                continue;
            }
        }
        out.push(p);
    }
    load_tags(conn, &mut out).await?;
    Ok(out)
}

pub async fn children_count(conn: &mut Conn, id: &str) -> DbResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE parent_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
}

pub async fn count_in_domain(conn: &mut Conn, domain_id: &str) -> DbResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE domain_id = $1")
        .bind(domain_id)
        .fetch_one(&mut *conn)
        .await
}

/// Ids of the ancestors of `id`, nearest first (not including the domain).
pub async fn ancestors(conn: &mut Conn, id: &str) -> DbResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = id.to_string();
    // Bounded walk: the hierarchy depth is limited at create time.
    for _ in 0..64 {
        let parent: Option<Option<String>> =
            sqlx::query_scalar("SELECT parent_id FROM projects WHERE id = $1")
                .bind(&cur)
                .fetch_optional(&mut *conn)
                .await?;
        match parent.flatten() {
            Some(p) => {
                out.push(p.clone());
                cur = p;
            }
            None => break,
        }
    }
    Ok(out)
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}
