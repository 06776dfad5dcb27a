//! `security_groups`, their rules and each project's `default` group.

use std::collections::HashMap;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{decode_err, tags, Conn, DbResult};
use crate::model::{Direction, EtherType, SecurityGroup, SecurityGroupRule};

const COLS: &str =
    "id, project_id, name, description, stateful, revision_number, created_at, updated_at";
const RULE_COLS: &str = "id, project_id, security_group_id, direction, ethertype, protocol, \
    port_range_min, port_range_max, remote_ip_prefix, remote_group_id, remote_address_group_id, \
    description, revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<SecurityGroup> {
    Ok(SecurityGroup {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        stateful: r.try_get::<i64, _>("stateful")? != 0,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        rules: Vec::new(),
        tags: Vec::new(),
    })
}

fn rule_from_row(r: &AnyRow) -> DbResult<SecurityGroupRule> {
    let dir: String = r.try_get("direction")?;
    let eth: String = r.try_get("ethertype")?;
    let prefix: Option<String> = r.try_get("remote_ip_prefix")?;
    Ok(SecurityGroupRule {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        security_group_id: r.try_get("security_group_id")?,
        direction: Direction::parse(&dir).ok_or_else(|| decode_err("direction", &dir))?,
        ethertype: EtherType::parse(&eth).ok_or_else(|| decode_err("ethertype", &eth))?,
        protocol: r.try_get("protocol")?,
        port_range_min: r.try_get("port_range_min")?,
        port_range_max: r.try_get("port_range_max")?,
        remote_ip_prefix: match prefix {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| decode_err("remote_ip_prefix", &p))?),
        },
        remote_group_id: r.try_get("remote_group_id")?,
        remote_address_group_id: r.try_get("remote_address_group_id")?,
        description: r.try_get("description")?,
        revision_number: r.try_get("revision_number")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert(conn: &mut Conn, g: &SecurityGroup) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO security_groups ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&g.id)
    .bind(&g.project_id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(i64::from(g.stateful))
    .bind(g.revision_number)
    .bind(g.created_at)
    .bind(g.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records `group_id` as the project's default group; false when it already has one.
pub async fn claim_default(conn: &mut Conn, project: &str, group_id: &str) -> DbResult<bool> {
    let r = sqlx::query(
        "INSERT INTO default_security_groups (project_id, security_group_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(project)
    .bind(group_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn default_of(conn: &mut Conn, project: &str) -> DbResult<Option<String>> {
    let row =
        sqlx::query("SELECT security_group_id FROM default_security_groups WHERE project_id = $1")
            .bind(project)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| r.try_get("security_group_id")).transpose()
}

/// Ids of every project's default group.
pub async fn default_ids(conn: &mut Conn) -> DbResult<Vec<String>> {
    let rows = sqlx::query("SELECT security_group_id FROM default_security_groups")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| r.try_get("security_group_id"))
        .collect()
}

/// Whether the group is some project's default group.
pub async fn is_default(conn: &mut Conn, group_id: &str) -> DbResult<bool> {
    let row =
        sqlx::query("SELECT project_id FROM default_security_groups WHERE security_group_id = $1")
            .bind(group_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.is_some())
}

async fn complete(conn: &mut Conn, groups: &mut [SecurityGroup]) -> DbResult<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let rules = if groups.len() == 1 {
        rules_of(conn, &groups[0].id).await?
    } else {
        list_rules(conn, None).await?
    };
    let mut by: HashMap<String, Vec<SecurityGroupRule>> = HashMap::new();
    for r in rules {
        by.entry(r.security_group_id.clone()).or_default().push(r);
    }
    tags::fill(conn, groups).await?;
    for g in groups.iter_mut() {
        g.rules = by.remove(&g.id).unwrap_or_default();
    }
    Ok(())
}

pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<SecurityGroup>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM security_groups WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut g = vec![from_row(&row)?];
    complete(conn, &mut g).await?;
    Ok(g.pop())
}

/// Groups in creation order; with `project`, only that project's.
pub async fn list(conn: &mut Conn, project: Option<&str>) -> DbResult<Vec<SecurityGroup>> {
    let rows = match project {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM security_groups ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM security_groups WHERE project_id = $1 ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut groups = rows.iter().map(from_row).collect::<DbResult<Vec<_>>>()?;
    complete(conn, &mut groups).await?;
    Ok(groups)
}

pub async fn update(conn: &mut Conn, g: &SecurityGroup) -> DbResult<()> {
    sqlx::query(
        "UPDATE security_groups SET name = $2, description = $3, stateful = $4, revision_number = $5, \
         updated_at = $6 WHERE id = $1",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.description)
    .bind(i64::from(g.stateful))
    .bind(g.revision_number)
    .bind(g.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn bump_revision(conn: &mut Conn, id: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE security_groups SET revision_number = revision_number + 1, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM security_group_rules WHERE security_group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM default_security_groups WHERE security_group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM security_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    tags::remove_all(conn, id).await
}

pub async fn insert_rule(conn: &mut Conn, r: &SecurityGroupRule) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO security_group_rules ({RULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15)"
    ))
    .bind(&r.id)
    .bind(&r.project_id)
    .bind(&r.security_group_id)
    .bind(r.direction.as_str())
    .bind(r.ethertype.as_str())
    .bind(&r.protocol)
    .bind(r.port_range_min)
    .bind(r.port_range_max)
    .bind(r.remote_ip_prefix.map(|p| p.to_string()))
    .bind(&r.remote_group_id)
    .bind(&r.remote_address_group_id)
    .bind(&r.description)
    .bind(r.revision_number)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_rule(conn: &mut Conn, id: &str) -> DbResult<Option<SecurityGroupRule>> {
    let row = sqlx::query(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(rule_from_row).transpose()
}

pub async fn rules_of(conn: &mut Conn, group_id: &str) -> DbResult<Vec<SecurityGroupRule>> {
    let rows = sqlx::query(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE security_group_id = $1 ORDER BY created_at, id"
    ))
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(rule_from_row).collect()
}

/// Rules in creation order; with `project`, those of the project's groups and its own.
pub async fn list_rules(
    conn: &mut Conn,
    project: Option<&str>,
) -> DbResult<Vec<SecurityGroupRule>> {
    let rows = match project {
        None => {
            sqlx::query(&format!(
                "SELECT {RULE_COLS} FROM security_group_rules ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {RULE_COLS} FROM security_group_rules WHERE project_id = $1 OR security_group_id IN \
                 (SELECT id FROM security_groups WHERE project_id = $1) ORDER BY created_at, id"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
    };
    rows.iter().map(rule_from_row).collect()
}

pub async fn delete_rule(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM security_group_rules WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Deletes the rules of other groups that name the group as their remote group (they go
/// with it, as Neutron's foreign key cascades); returns those groups.
pub async fn delete_rules_naming(conn: &mut Conn, group_id: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT security_group_id FROM security_group_rules \
         WHERE remote_group_id = $1 AND security_group_id <> $1",
    )
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    let groups = rows
        .iter()
        .map(|r| r.try_get("security_group_id"))
        .collect::<DbResult<Vec<String>>>()?;
    sqlx::query(
        "DELETE FROM security_group_rules WHERE remote_group_id = $1 AND security_group_id <> $1",
    )
    .bind(group_id)
    .execute(&mut *conn)
    .await?;
    for g in &groups {
        bump_revision(conn, g, ferrostack_store::now_micros()).await?;
    }
    Ok(groups)
}
