//! Migration records of moves (resize, cold/live migration, evacuation): writing them and
//! finding what a host must still do for instances that left it or are coming back.

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use ferrostack_agent_api::Desired;

use super::{Conn, DbResult};
use crate::instance::FlavorSnapshot;
use crate::state::VmState;

/// One migration row, as the move logic uses it.
#[derive(Debug, Clone)]
pub struct Migration {
    pub id: i64,
    pub uuid: String,
    pub instance_uuid: String,
    pub source_compute: String,
    pub dest_compute: String,
    pub migration_type: String,
    pub status: String,
    pub old_flavor: Option<FlavorSnapshot>,
    pub new_flavor: Option<FlavorSnapshot>,
    /// The instance's vm state and desired power before the move (what a revert returns to).
    pub prior_vm_state: Option<VmState>,
    pub prior_power: Option<Desired>,
    pub source_cleaned: bool,
    /// Where a live migration's destination waits for the guest (its driver's words).
    pub dest_endpoint: Option<String>,
    /// An admin forced the live migration to complete.
    pub force_complete: bool,
    pub project_id: String,
    pub user_id: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Migration {
    /// A resize that stayed on the instance's host: one guest, no copy elsewhere.
    pub fn in_place(&self) -> bool {
        self.source_compute == self.dest_compute
    }

    pub fn is_live(&self) -> bool {
        self.migration_type == "live-migration"
    }

    /// A resize or cold migration.
    pub fn is_cold(&self) -> bool {
        matches!(self.migration_type.as_str(), "resize" | "migration")
    }
}

/// Statuses in which the instance itself is still moving (another move must wait).
pub const IN_PROGRESS: &[&str] = &[
    "migrating",
    "post-migrating",
    "finished",
    "confirming",
    "reverting",
    "running",
    "accepted",
];

const COLS: &str = "id, uuid, instance_uuid, source_compute, dest_compute, migration_type, \
    status, old_flavor, new_flavor, prior_vm_state, prior_power, source_cleaned, dest_endpoint, \
    force_complete, project_id, user_id, created_at, updated_at";

fn from_row(r: &AnyRow) -> DbResult<Migration> {
    let flavor = |col: &str| -> DbResult<Option<FlavorSnapshot>> {
        let s: Option<String> = r.try_get(col)?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    };
    Ok(Migration {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        instance_uuid: r.try_get("instance_uuid")?,
        source_compute: r
            .try_get::<Option<String>, _>("source_compute")?
            .unwrap_or_default(),
        dest_compute: r
            .try_get::<Option<String>, _>("dest_compute")?
            .unwrap_or_default(),
        migration_type: r.try_get("migration_type")?,
        status: r.try_get("status")?,
        old_flavor: flavor("old_flavor")?,
        new_flavor: flavor("new_flavor")?,
        prior_vm_state: r
            .try_get::<Option<String>, _>("prior_vm_state")?
            .and_then(|s| VmState::parse(&s)),
        prior_power: r
            .try_get::<Option<String>, _>("prior_power")?
            .and_then(|s| Desired::parse(&s)),
        source_cleaned: r.try_get::<i64, _>("source_cleaned")? != 0,
        dest_endpoint: r.try_get("dest_endpoint")?,
        force_complete: r.try_get::<i64, _>("force_complete")? != 0,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Inserts a migration with the next id (inside the caller's write transaction).
pub async fn insert(conn: &mut Conn, m: &Migration) -> DbResult<i64> {
    let id = ferrostack_store::next_id(conn, ferrostack_store::IdSeq::Migrations).await?;
    let snap = |f: &Option<FlavorSnapshot>| f.as_ref().and_then(|f| serde_json::to_string(f).ok());
    sqlx::query(
        "INSERT INTO migrations (id, uuid, instance_uuid, source_compute, dest_compute, \
         source_node, dest_node, old_flavor_id, new_flavor_id, migration_type, status, \
         old_flavor, new_flavor, prior_vm_state, prior_power, source_cleaned, project_id, \
         user_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, 0, $14, $15, $16, $16)",
    )
    .bind(id)
    .bind(&m.uuid)
    .bind(&m.instance_uuid)
    .bind(&m.source_compute)
    .bind(&m.dest_compute)
    .bind(m.old_flavor.as_ref().map(|f| f.id.clone()))
    .bind(m.new_flavor.as_ref().map(|f| f.id.clone()))
    .bind(&m.migration_type)
    .bind(&m.status)
    .bind(snap(&m.old_flavor))
    .bind(snap(&m.new_flavor))
    .bind(m.prior_vm_state.map(VmState::as_str))
    .bind(m.prior_power.map(Desired::as_str))
    .bind(&m.project_id)
    .bind(&m.user_id)
    .bind(m.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// The newest migration of an instance whose status is one of `statuses`.
pub async fn latest_of(
    conn: &mut Conn,
    instance_uuid: &str,
    statuses: &[&str],
) -> DbResult<Option<Migration>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM migrations WHERE instance_uuid = $1 ORDER BY id DESC"
    ))
    .bind(instance_uuid)
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        let m = from_row(r)?;
        if statuses.contains(&m.status.as_str()) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

pub async fn set_status(conn: &mut Conn, id: i64, status: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE migrations SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records that the host the instance left has removed its guest.
pub async fn set_source_cleaned(conn: &mut Conn, id: i64, status: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE migrations SET status = $2, source_cleaned = 1, updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves migration `id` from status `from` to `to`; false (nothing changed) when it is not in
/// `from` any more: another transaction decided first (PostgreSQL's row lock makes the later
/// one see the committed status).
pub async fn transition(
    conn: &mut Conn,
    id: i64,
    from: &str,
    to: &str,
    now: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE migrations SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that the source removed its copy, leaving the status as it is.
pub async fn set_source_cleaned_only(conn: &mut Conn, id: i64, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE migrations SET source_cleaned = 1, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Which migrations make host `$1` keep or remove a guest of an instance placed elsewhere: the
/// source of a move until it has removed its copy, the destination of a reverted resize, and
/// the destination of a failed or aborted move (another host's) until it has removed what it
/// started.
const SIDE: &str = "(source_compute = $1 AND source_cleaned = 0 AND status IN ('migrating', \
    'post-migrating', 'finished', 'confirming', 'running', 'completed', 'accepted', 'done')) \
    OR (dest_compute = $1 AND status = 'reverting') \
    OR (dest_compute = $1 AND status IN ('error', 'cancelled') AND dest_cleaned = 0 \
        AND dest_compute <> source_compute)";

/// Migrations that make `host` keep or remove a guest of an instance placed elsewhere (see
/// [`SIDE`]).
pub async fn side_work(conn: &mut Conn, host: &str) -> DbResult<Vec<Migration>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM migrations WHERE {SIDE} ORDER BY id"
    ))
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The uuids of migrations whose source host still holds resources for them (in placement,
/// the migration uuid's allocation): until the source removed its copy.
pub async fn holding_uuids(conn: &mut Conn) -> DbResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT uuid FROM migrations WHERE source_cleaned = 0 AND status IN ('migrating', \
         'post-migrating', 'finished', 'confirming', 'running', 'completed', 'accepted', 'done')",
    )
    .fetch_all(&mut *conn)
    .await
}

/// Resizes waiting for confirmation since before `cutoff` (for auto-confirm).
pub async fn finished_before(conn: &mut Conn, cutoff: i64) -> DbResult<Vec<Migration>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM migrations WHERE status = 'finished' AND updated_at < $1 ORDER BY id"
    ))
    .bind(cutoff)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// A deleted instance's unfinished moves: every host involved removes its guest.
pub async fn abandon_for_delete(conn: &mut Conn, instance_uuid: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE migrations SET status = 'confirming', updated_at = $2 WHERE instance_uuid = $1 \
         AND status IN ('migrating', 'post-migrating', 'finished', 'running', 'accepted')",
    )
    .bind(instance_uuid)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The migration that makes `host` hold or remove a copy of instance `instance_uuid`
/// (see [`side_work`]).
pub async fn side_of(
    conn: &mut Conn,
    instance_uuid: &str,
    host: &str,
) -> DbResult<Option<Migration>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM migrations WHERE instance_uuid = $2 AND ({SIDE}) ORDER BY id LIMIT 1"
    ))
    .bind(host)
    .bind(instance_uuid)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Moves bringing guests to `host` that it must build in a particular way (from a handed-over
/// disk, received live) or must wait for (a cold move whose source has not handed its disk
/// over yet).
pub async fn arriving(conn: &mut Conn, host: &str) -> DbResult<Vec<Migration>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM migrations WHERE dest_compute = $1 AND source_compute <> $1 \
         AND status IN ('migrating', 'post-migrating', 'running') \
         AND migration_type IN ('resize', 'migration', 'live-migration') ORDER BY id"
    ))
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Records where a live migration's destination waits for the guest.
pub async fn set_dest_endpoint(conn: &mut Conn, id: i64, endpoint: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE migrations SET dest_endpoint = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(endpoint)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records that an admin forced live migration `id` to complete.
pub async fn set_force_complete(conn: &mut Conn, id: i64, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE migrations SET force_complete = 1, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records how far a live migration's source is (bytes of memory and disk).
pub async fn set_progress(
    conn: &mut Conn,
    id: i64,
    p: &ferrostack_agent_api::MoveProgress,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE migrations SET memory_total = $2, memory_processed = $3, memory_remaining = $4, \
         disk_total = $5, disk_processed = $6, disk_remaining = $7, updated_at = $8 WHERE id = $1",
    )
    .bind(id)
    .bind(p.memory_total)
    .bind(p.memory_processed)
    .bind(p.memory_remaining)
    .bind(p.disk_total)
    .bind(p.disk_processed)
    .bind(p.disk_remaining)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that the destination of a failed move has removed what it had started.
pub async fn set_dest_cleaned(conn: &mut Conn, id: i64, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE migrations SET dest_cleaned = 1, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn by_uuid(conn: &mut Conn, uuid: &str) -> DbResult<Option<Migration>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM migrations WHERE uuid = $1"))
        .bind(uuid)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Migration `id` of instance `instance_uuid`.
pub async fn of_instance(
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
