//! Flavors, their extra specs and their project access list.

use std::collections::BTreeMap;

use ferrostack_store::sqlx::{self, any::AnyRow, Row};
use ferrostack_store::Db;

use super::{Conn, DbResult};
use crate::model::{Flavor, FlavorFilter};

const COLS: &str = "id, name, vcpus, ram, disk, ephemeral, swap, rxtx_factor, is_public, \
    disabled, description, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Flavor> {
    Ok(Flavor {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        vcpus: r.try_get("vcpus")?,
        ram: r.try_get("ram")?,
        disk: r.try_get("disk")?,
        ephemeral: r.try_get("ephemeral")?,
        swap: r.try_get("swap")?,
        rxtx_factor: r.try_get("rxtx_factor")?,
        is_public: r.try_get::<i64, _>("is_public")? != 0,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        description: r.try_get("description")?,
        extra_specs: BTreeMap::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Flavors matching `f`, unsorted, without extra specs (the caller sorts and pages, then
/// loads specs for the page with [`load_extra_specs`]).
pub async fn list(conn: &mut Conn, f: &FlavorFilter) -> DbResult<Vec<Flavor>> {
    let mut sql = format!("SELECT {COLS} FROM flavors WHERE ram >= $1 AND disk >= $2");
    match f.is_public {
        Some(true) => sql.push_str(
            " AND (is_public = 1 OR id IN (SELECT flavor_id FROM flavor_projects \
             WHERE project_id = $3))",
        ),
        Some(false) => sql.push_str(" AND is_public = 0 AND $3 = $3"),
        None => sql.push_str(" AND $3 = $3"),
    }
    if f.hide_disabled {
        sql.push_str(" AND disabled = 0");
    }
    let rows = sqlx::query(&sql)
        .bind(f.min_ram.unwrap_or(0))
        .bind(f.min_disk.unwrap_or(0))
        .bind(f.project_id.clone().unwrap_or_default())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Fills `extra_specs` of `flavors`.
pub async fn load_extra_specs(conn: &mut Conn, flavors: &mut [Flavor]) -> DbResult<()> {
    for f in flavors.iter_mut() {
        f.extra_specs = extra_specs(conn, &f.id).await?;
    }
    Ok(())
}

/// A flavor by id whoever asks, with its extra specs.
pub async fn get(conn: &mut Conn, id: &str) -> DbResult<Option<Flavor>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM flavors WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut f = from_row(&row)?;
    f.extra_specs = extra_specs(conn, id).await?;
    Ok(Some(f))
}

/// The flavor as `project_id` may see it (`None` = an admin, who sees every flavor): public
/// flavors and private ones the project was given access to. With its extra specs. This is
/// the lookup servers use for create and resize.
pub async fn get_visible(
    conn: &mut Conn,
    flavor_id: &str,
    project_id: Option<&str>,
) -> DbResult<Option<Flavor>> {
    let Some(f) = get(conn, flavor_id).await? else {
        return Ok(None);
    };
    match project_id {
        Some(p) if !f.is_public && !has_access(conn, flavor_id, p).await? => Ok(None),
        _ => Ok(Some(f)),
    }
}

pub async fn has_access(conn: &mut Conn, flavor_id: &str, project_id: &str) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2",
    )
    .bind(flavor_id)
    .bind(project_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

pub async fn name_exists(conn: &mut Conn, name: &str) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flavors WHERE name = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

pub async fn insert(conn: &mut Conn, f: &Flavor) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO flavors ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13)"
    ))
    .bind(&f.id)
    .bind(&f.name)
    .bind(f.vcpus)
    .bind(f.ram)
    .bind(f.disk)
    .bind(f.ephemeral)
    .bind(f.swap)
    .bind(f.rxtx_factor)
    .bind(i64::from(f.is_public))
    .bind(i64::from(f.disabled))
    .bind(&f.description)
    .bind(f.created_at)
    .bind(f.updated_at)
    .execute(&mut *conn)
    .await?;
    for (k, v) in &f.extra_specs {
        set_extra_spec(conn, &f.id, k, v).await?;
    }
    Ok(())
}

/// Deletes a flavor (specs and access go with it); false when there was none.
pub async fn delete(conn: &mut Conn, id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM flavors WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn set_description(
    conn: &mut Conn,
    id: &str,
    description: Option<&str>,
) -> DbResult<bool> {
    let r = sqlx::query("UPDATE flavors SET description = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(description)
        .bind(ferrostack_store::now_micros())
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn extra_specs(conn: &mut Conn, flavor_id: &str) -> DbResult<BTreeMap<String, String>> {
    let rows = sqlx::query("SELECT key, value FROM flavor_extra_specs WHERE flavor_id = $1")
        .bind(flavor_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
        .collect()
}

/// Sets one extra spec (insert or replace).
pub async fn set_extra_spec(
    conn: &mut Conn,
    flavor_id: &str,
    key: &str,
    value: &str,
) -> DbResult<()> {
    sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1 AND key = $2")
        .bind(flavor_id)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO flavor_extra_specs (flavor_id, key, value) VALUES ($1, $2, $3)")
        .bind(flavor_id)
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn delete_extra_spec(conn: &mut Conn, flavor_id: &str, key: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1 AND key = $2")
        .bind(flavor_id)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Projects given access to a private flavor, sorted.
pub async fn access_list(conn: &mut Conn, flavor_id: &str) -> DbResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT project_id FROM flavor_projects WHERE flavor_id = $1 ORDER BY project_id",
    )
    .bind(flavor_id)
    .fetch_all(&mut *conn)
    .await
}

/// False when the project already had access.
pub async fn add_access(conn: &mut Conn, flavor_id: &str, project_id: &str) -> DbResult<bool> {
    if has_access(conn, flavor_id, project_id).await? {
        return Ok(false);
    }
    sqlx::query("INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)")
        .bind(flavor_id)
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// False when the project had no access.
pub async fn remove_access(conn: &mut Conn, flavor_id: &str, project_id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2")
        .bind(flavor_id)
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// DevStack's default flavors: (id, name, vcpus, ram MiB, disk GiB).
const DEFAULT_FLAVORS: [(&str, &str, i64, i64, i64); 7] = [
    ("42", "m1.nano", 1, 128, 1),
    ("84", "m1.micro", 1, 192, 1),
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("5", "m1.xlarge", 8, 16384, 160),
];

/// Creates DevStack's default flavors when there are no flavors at all (a fresh cloud); a
/// cloud whose operator deleted or replaced them is left alone.
pub async fn ensure_default_flavors(db: &Db) -> DbResult<()> {
    let mut tx = db.begin_write().await?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM flavors")
        .fetch_one(&mut *tx)
        .await?;
    if n > 0 {
        return Ok(());
    }
    let now = ferrostack_store::now_micros();
    for (id, name, vcpus, ram, disk) in DEFAULT_FLAVORS {
        let f = Flavor {
            id: id.into(),
            name: name.into(),
            vcpus,
            ram,
            disk,
            ephemeral: 0,
            swap: 0,
            rxtx_factor: 1.0,
            is_public: true,
            disabled: false,
            description: None,
            extra_specs: BTreeMap::new(),
            created_at: now,
            updated_at: None,
        };
        insert(&mut tx, &f).await?;
    }
    tx.commit().await
}
