//! Migrations (resize, cold and live migration, evacuation) as `/os-migrations` and
//! `/servers/{id}/migrations` show them (read only; the move actions write the rows).

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use super::{Conn, DbResult};

#[derive(Debug, Clone)]
pub struct Migration {
    pub id: i64,
    pub uuid: String,
    pub instance_uuid: String,
    pub source_compute: Option<String>,
    pub dest_compute: Option<String>,
    pub source_node: Option<String>,
    pub dest_node: Option<String>,
    pub dest_host: Option<String>,
    pub old_flavor_id: Option<String>,
    pub new_flavor_id: Option<String>,
    pub migration_type: String,
    pub status: String,
    pub project_id: String,
    pub user_id: String,
    pub memory_total: Option<i64>,
    pub memory_processed: Option<i64>,
    pub memory_remaining: Option<i64>,
    pub disk_total: Option<i64>,
    pub disk_processed: Option<i64>,
    pub disk_remaining: Option<i64>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

/// The statuses of a live migration still in progress (Nova's in-progress list).
pub const LIVE_IN_PROGRESS: [&str; 4] = ["queued", "preparing", "running", "post-migrating"];

const COLS: &str = "id, uuid, instance_uuid, source_compute, dest_compute, source_node, \
    dest_node, dest_host, old_flavor_id, new_flavor_id, migration_type, status, project_id, \
    user_id, memory_total, memory_processed, memory_remaining, disk_total, disk_processed, \
    disk_remaining, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Migration> {
    Ok(Migration {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        instance_uuid: r.try_get("instance_uuid")?,
        source_compute: r.try_get("source_compute")?,
        dest_compute: r.try_get("dest_compute")?,
        source_node: r.try_get("source_node")?,
        dest_node: r.try_get("dest_node")?,
        dest_host: r.try_get("dest_host")?,
        old_flavor_id: r.try_get("old_flavor_id")?,
        new_flavor_id: r.try_get("new_flavor_id")?,
        migration_type: r.try_get("migration_type")?,
        status: r.try_get("status")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        memory_total: r.try_get("memory_total")?,
        memory_processed: r.try_get("memory_processed")?,
        memory_remaining: r.try_get("memory_remaining")?,
        disk_total: r.try_get("disk_total")?,
        disk_processed: r.try_get("disk_processed")?,
        disk_remaining: r.try_get("disk_remaining")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Filters of `GET /os-migrations` (all optional; `host` matches source or destination).
#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub host: Option<String>,
    pub source_compute: Option<String>,
    pub status: Option<String>,
    pub instance_uuid: Option<String>,
    pub migration_type: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// `updated_at` bounds (changes-since / changes-before).
    pub updated_since: Option<i64>,
    pub updated_before: Option<i64>,
}

/// Migrations matching `f`, newest first (created_at, id descending, Nova's default order).
pub async fn list(conn: &mut Conn, f: &Filters) -> DbResult<Vec<Migration>> {
    // Unset filters are bound as '' / -1 so the statement stays one portable text.
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM migrations WHERE \
         ($1 = '' OR source_compute = $1 OR dest_compute = $1) \
         AND ($2 = '' OR source_compute = $2) \
         AND ($3 = '' OR status = $3) \
         AND ($4 = '' OR instance_uuid = $4) \
         AND ($5 = '' OR migration_type = $5) \
         AND ($6 = '' OR user_id = $6) \
         AND ($7 = '' OR project_id = $7) \
         AND ($8 < 0 OR updated_at >= $8) \
         AND ($9 < 0 OR updated_at <= $9) \
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(f.host.as_deref().unwrap_or(""))
    .bind(if f.host.is_some() {
        ""
    } else {
        f.source_compute.as_deref().unwrap_or("")
    })
    .bind(f.status.as_deref().unwrap_or(""))
    .bind(f.instance_uuid.as_deref().unwrap_or(""))
    .bind(f.migration_type.as_deref().unwrap_or(""))
    .bind(f.user_id.as_deref().unwrap_or(""))
    .bind(f.project_id.as_deref().unwrap_or(""))
    .bind(f.updated_since.unwrap_or(-1))
    .bind(f.updated_before.unwrap_or(-1))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// One migration of an instance by its id.
pub async fn get_for_instance(
    conn: &mut Conn,
    instance_uuid: &str,
    id: i64,
) -> DbResult<Option<Migration>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM migrations WHERE id = $1 AND instance_uuid = $2"
    ))
    .bind(id)
    .bind(instance_uuid)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}
