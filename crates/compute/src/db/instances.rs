//! Instances, their metadata, tags and faults.

use std::collections::{BTreeMap, HashMap};

use ferrostack_store::sqlx::{self, any::AnyRow, Row};

use ferrostack_agent_api::{Desired, OneShot, PowerState};

use super::{Conn, DbResult};
use crate::instance::{Fault, FlavorSnapshot, Instance};
use crate::state::{TaskState, VmState};

/// A stored state string that is not one of ours: the row was written by something else.
fn bad_state(col: &str, v: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("instances.{col}: unknown value {v:?}").into())
}

const COLS: &str = "uuid, display_name, display_description, hostname, project_id, user_id, \
    image_ref, flavor, key_name, key_data, user_data, config_drive, availability_zone, host, node, \
    vm_state, task_state, power_state, desired_power, target_vm_state, one_shot, generation, \
    done_generation, locked, locked_by, locked_reason, access_ip_v4, access_ip_v6, reservation_id, \
    launch_index, progress, request_spec, addresses, launched_at, terminated_at, created_at, \
    updated_at, deleted";

fn from_row(r: &AnyRow) -> DbResult<Instance> {
    let flavor: String = r.try_get("flavor")?;
    let flavor: FlavorSnapshot = serde_json::from_str(&flavor)
        .map_err(|e| sqlx::Error::Decode(format!("bad flavor snapshot: {e}").into()))?;
    let json = |col: &str| -> DbResult<serde_json::Value> {
        let s: String = r.try_get(col)?;
        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
    };
    let vm = |col: &str| -> DbResult<VmState> {
        let v: String = r.try_get(col)?;
        VmState::parse(&v).ok_or_else(|| bad_state(col, &v))
    };
    let task_state = match r.try_get::<Option<String>, _>("task_state")? {
        Some(t) => Some(TaskState::parse(&t).ok_or_else(|| bad_state("task_state", &t))?),
        None => None,
    };
    let desired: String = r.try_get("desired_power")?;
    let one_shot = match r.try_get::<Option<String>, _>("one_shot")? {
        Some(s) => Some(
            s.parse::<OneShot>()
                .map_err(|_| bad_state("one_shot", &s))?,
        ),
        None => None,
    };
    Ok(Instance {
        uuid: r.try_get("uuid")?,
        display_name: r.try_get("display_name")?,
        display_description: r.try_get("display_description")?,
        hostname: r.try_get("hostname")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        image_ref: r.try_get("image_ref")?,
        flavor,
        key_name: r.try_get("key_name")?,
        key_data: r.try_get("key_data")?,
        user_data: r.try_get("user_data")?,
        config_drive: r.try_get("config_drive")?,
        availability_zone: r.try_get("availability_zone")?,
        host: r.try_get("host")?,
        node: r.try_get("node")?,
        vm_state: vm("vm_state")?,
        task_state,
        power_state: PowerState::from_code(r.try_get("power_state")?),
        desired_power: Desired::parse(&desired)
            .ok_or_else(|| bad_state("desired_power", &desired))?,
        target_vm_state: vm("target_vm_state")?,
        one_shot,
        generation: r.try_get("generation")?,
        done_generation: r.try_get("done_generation")?,
        locked: r.try_get::<i64, _>("locked")? != 0,
        locked_by: r.try_get("locked_by")?,
        locked_reason: r.try_get("locked_reason")?,
        access_ip_v4: r.try_get("access_ip_v4")?,
        access_ip_v6: r.try_get("access_ip_v6")?,
        reservation_id: r.try_get("reservation_id")?,
        launch_index: r.try_get("launch_index")?,
        progress: r.try_get("progress")?,
        request_spec: json("request_spec")?,
        addresses: json("addresses")?,
        launched_at: r.try_get("launched_at")?,
        terminated_at: r.try_get("terminated_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        deleted: r.try_get::<i64, _>("deleted")? != 0,
        metadata: BTreeMap::new(),
        tags: Vec::new(),
    })
}

pub async fn insert(conn: &mut Conn, i: &Instance) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO instances ({COLS}, vcpus, memory_mb, root_gb, ephemeral_gb) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
          $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, \
          $37, $38, $39, $40, $41, $42)"
    ))
    .bind(&i.uuid)
    .bind(&i.display_name)
    .bind(&i.display_description)
    .bind(&i.hostname)
    .bind(&i.project_id)
    .bind(&i.user_id)
    .bind(&i.image_ref)
    .bind(serde_json::to_string(&i.flavor).unwrap_or_default())
    .bind(&i.key_name)
    .bind(&i.key_data)
    .bind(&i.user_data)
    .bind(&i.config_drive)
    .bind(&i.availability_zone)
    .bind(&i.host)
    .bind(&i.node)
    .bind(i.vm_state.as_str())
    .bind(i.task_state.map(TaskState::as_str))
    .bind(i.power_state.code())
    .bind(i.desired_power.as_str())
    .bind(i.target_vm_state.as_str())
    .bind(i.one_shot.as_ref().map(OneShot::to_string))
    .bind(i.generation)
    .bind(i.done_generation)
    .bind(i.locked as i64)
    .bind(&i.locked_by)
    .bind(&i.locked_reason)
    .bind(&i.access_ip_v4)
    .bind(&i.access_ip_v6)
    .bind(&i.reservation_id)
    .bind(i.launch_index)
    .bind(i.progress)
    .bind(i.request_spec.to_string())
    .bind(i.addresses.to_string())
    .bind(i.launched_at)
    .bind(i.terminated_at)
    .bind(i.created_at)
    .bind(i.updated_at)
    .bind(i.deleted as i64)
    .bind(i.flavor.vcpus)
    .bind(i.flavor.ram)
    .bind(i.flavor.disk)
    .bind(i.flavor.ephemeral)
    .execute(&mut *conn)
    .await?;
    for (k, v) in &i.metadata {
        sqlx::query(
            "INSERT INTO instance_metadata (instance_uuid, key, value) VALUES ($1, $2, $3)",
        )
        .bind(&i.uuid)
        .bind(k)
        .bind(v)
        .execute(&mut *conn)
        .await?;
    }
    for t in &i.tags {
        sqlx::query("INSERT INTO instance_tags (instance_uuid, tag) VALUES ($1, $2)")
            .bind(&i.uuid)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Uuids per `IN (...)` query when loading children: well under every engine's limit on
/// bind parameters.
const CHILD_CHUNK: usize = 500;

/// Loads metadata and tags of `list`: only their own rows (one `IN (...)` query per chunk of
/// uuids and table; sqlx::Any has no array binds), so a page costs the same whatever the
/// number of instances in the database.
pub async fn load_children(conn: &mut Conn, list: &mut [Instance]) -> DbResult<()> {
    if list.is_empty() {
        return Ok(());
    }
    let idx: HashMap<String, usize> = list
        .iter()
        .enumerate()
        .map(|(i, x)| (x.uuid.clone(), i))
        .collect();
    let uuids: Vec<String> = list.iter().map(|x| x.uuid.clone()).collect();
    for chunk in uuids.chunks(CHILD_CHUNK) {
        let marks = (1..=chunk.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let meta_sql = format!(
            "SELECT instance_uuid, key, value FROM instance_metadata \
             WHERE instance_uuid IN ({marks})"
        );
        let tag_sql = format!(
            "SELECT instance_uuid, tag FROM instance_tags WHERE instance_uuid IN ({marks}) \
             ORDER BY tag"
        );
        let mut meta_q = sqlx::query(&meta_sql);
        let mut tag_q = sqlx::query(&tag_sql);
        for u in chunk {
            meta_q = meta_q.bind(u.clone());
            tag_q = tag_q.bind(u.clone());
        }
        for r in meta_q.fetch_all(&mut *conn).await? {
            let id: String = r.try_get("instance_uuid")?;
            if let Some(&i) = idx.get(&id) {
                list[i]
                    .metadata
                    .insert(r.try_get("key")?, r.try_get("value")?);
            }
        }
        for r in tag_q.fetch_all(&mut *conn).await? {
            let id: String = r.try_get("instance_uuid")?;
            if let Some(&i) = idx.get(&id) {
                list[i].tags.push(r.try_get("tag")?);
            }
        }
    }
    Ok(())
}

/// One instance (also a deleted one when `with_deleted`).
pub async fn get(conn: &mut Conn, uuid: &str, with_deleted: bool) -> DbResult<Option<Instance>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM instances WHERE uuid = $1 AND (deleted = 0 OR $2 = 1)"
    ))
    .bind(uuid)
    .bind(with_deleted as i64)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![from_row(&row)?];
    load_children(conn, &mut v).await?;
    Ok(v.pop())
}

/// Instances for listing: of one project (or all when `project` is None), newest first,
/// deleted ones only when `with_deleted` (changes-since). Without metadata and tags: load
/// them with [`load_children`] for the instances that need them (the page, usually).
pub async fn list(
    conn: &mut Conn,
    project: Option<&str>,
    with_deleted: bool,
) -> DbResult<Vec<Instance>> {
    // Conditions written out per case, so that the (project_id, deleted, ...) and (deleted,
    // ...) indexes serve them: deleted rows pile up, and a scan of them all would make every
    // filtered listing slower the longer the cloud runs.
    let mut conds = Vec::new();
    if project.is_some() {
        conds.push("project_id = $1");
    }
    if !with_deleted {
        conds.push("deleted = 0");
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!("SELECT {COLS} FROM instances {filter} ORDER BY created_at DESC, uuid DESC");
    let mut q = sqlx::query(&sql);
    if let Some(p) = project {
        q = q.bind(p);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// The `WHERE ... ORDER BY ... LIMIT` of a page of live instances in the default listing
/// order (newest first), after the instance `after` (created_at, uuid) when given. The index
/// `instances_listing` (project_id, deleted, created_at, uuid) serves it in order, so a page
/// reads its own rows only, however many instances exist.
fn page_query(project: Option<&str>, after: Option<(i64, &str)>, limit: Option<usize>) -> String {
    let mut sql = " FROM instances WHERE deleted = 0".to_string();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if project.is_some() {
        sql += &format!(" AND project_id = {}", next());
    }
    if after.is_some() {
        let (a, b, c) = (next(), next(), next());
        sql += &format!(" AND (created_at < {a} OR (created_at = {b} AND uuid < {c}))");
    }
    sql += " ORDER BY created_at DESC, uuid DESC";
    if limit.is_some() {
        sql += &format!(" LIMIT {}", next());
    }
    sql
}

fn bind_page<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    project: Option<&'q str>,
    after: Option<(i64, &'q str)>,
    limit: Option<usize>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    if let Some(p) = project {
        q = q.bind(p);
    }
    if let Some((created, uuid)) = after {
        q = q.bind(created).bind(created).bind(uuid);
    }
    if let Some(l) = limit {
        q = q.bind(i64::try_from(l).unwrap_or(i64::MAX));
    }
    q
}

/// One page of a project's (or every project's) live instances (see [`page_query`]), at most
/// `limit`, with their metadata and tags: aggregated to JSON by the database in the same
/// query, so a page of 1,000 is 1,000 rows rather than those plus a few thousand child rows.
pub async fn list_page(
    conn: &mut Conn,
    project: Option<&str>,
    after: Option<(i64, &str)>,
    limit: Option<usize>,
) -> DbResult<Vec<Instance>> {
    // Each engine spells JSON aggregation its own way.
    let children = if conn.backend_name() == "PostgreSQL" {
        "(SELECT json_object_agg(key, value)::text FROM instance_metadata m \
           WHERE m.instance_uuid = instances.uuid) AS metadata_json, \
         (SELECT json_agg(tag ORDER BY tag)::text FROM instance_tags t \
           WHERE t.instance_uuid = instances.uuid) AS tags_json"
    } else {
        "(SELECT json_group_object(key, value) FROM instance_metadata m \
           WHERE m.instance_uuid = instances.uuid) AS metadata_json, \
         (SELECT json_group_array(tag) FROM (SELECT tag FROM instance_tags t \
           WHERE t.instance_uuid = instances.uuid ORDER BY tag)) AS tags_json"
    };
    let sql = format!(
        "SELECT {COLS}, {children}{}",
        page_query(project, after, limit)
    );
    let rows = bind_page(sqlx::query(&sql), project, after, limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            let mut i = from_row(r)?;
            let json = |col: &str| -> DbResult<Option<String>> { r.try_get(col) };
            if let Some(m) = json("metadata_json")? {
                i.metadata = serde_json::from_str(&m).unwrap_or_default();
            }
            if let Some(t) = json("tags_json")? {
                i.tags = serde_json::from_str(&t).unwrap_or_default();
            }
            Ok(i)
        })
        .collect()
}

/// As [`list_page`], only (uuid, name): what `GET /servers` shows, without decoding full rows.
pub async fn list_page_names(
    conn: &mut Conn,
    project: Option<&str>,
    after: Option<(i64, &str)>,
    limit: Option<usize>,
) -> DbResult<Vec<(String, String)>> {
    let sql = format!(
        "SELECT uuid, display_name{}",
        page_query(project, after, limit)
    );
    let rows = bind_page(sqlx::query(&sql), project, after, limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Non-deleted instances placed on `host`, and deleted-but-not-yet-confirmed ones (so the
/// agent removes their guests).
pub async fn on_host(conn: &mut Conn, host: &str) -> DbResult<Vec<Instance>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM instances WHERE host = $1 AND deleted = 0"
    ))
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Sets the desired state of an instance and bumps its generation (the agent's cue).
#[allow(clippy::too_many_arguments)]
pub async fn set_desire(
    conn: &mut Conn,
    uuid: &str,
    desired_power: Desired,
    target_vm_state: VmState,
    task_state: Option<TaskState>,
    one_shot: Option<&OneShot>,
    now: i64,
) -> DbResult<i64> {
    let row = sqlx::query(
        "UPDATE instances SET desired_power = $2, target_vm_state = $3, task_state = $4, \
         one_shot = $5, generation = generation + 1, updated_at = $6 WHERE uuid = $1 \
         RETURNING generation",
    )
    .bind(uuid)
    .bind(desired_power.as_str())
    .bind(target_vm_state.as_str())
    .bind(task_state.map(TaskState::as_str))
    .bind(one_shot.map(OneShot::to_string))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get(0)
}

/// Sets columns that only the API changes (no agent involvement).
pub async fn set_text(
    conn: &mut Conn,
    uuid: &str,
    column: &'static str,
    value: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(&format!(
        "UPDATE instances SET {column} = $2, updated_at = $3 WHERE uuid = $1"
    ))
    .bind(uuid)
    .bind(value)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_lock(
    conn: &mut Conn,
    uuid: &str,
    locked: bool,
    by: Option<&str>,
    reason: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE instances SET locked = $2, locked_by = $3, locked_reason = $4, updated_at = $5 \
         WHERE uuid = $1",
    )
    .bind(uuid)
    .bind(locked as i64)
    .bind(by)
    .bind(reason)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records what the agent reported for `generation`: the state it reached.
pub async fn set_converged(
    conn: &mut Conn,
    uuid: &str,
    generation: i64,
    power_state: PowerState,
    vm_state: VmState,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET power_state = $3, vm_state = $4, task_state = NULL, one_shot = NULL, \
         done_generation = $2, progress = 100, launched_at = COALESCE(launched_at, $5), \
         updated_at = $5 WHERE uuid = $1 AND generation = $2 AND deleted = 0",
    )
    .bind(uuid)
    .bind(generation)
    .bind(power_state.code())
    .bind(vm_state.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn set_power_state(conn: &mut Conn, uuid: &str, power_state: PowerState) -> DbResult<()> {
    sqlx::query("UPDATE instances SET power_state = $2 WHERE uuid = $1 AND power_state <> $2")
        .bind(uuid)
        .bind(power_state.code())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Nova's power-state sync: a settled active (or paused) server whose guest powered off on
/// its own (or whose QEMU ended) is stopped, as if the stop API had been called, so its
/// agent does not start it again behind the user's back. False when the instance is not
/// in that state any more (an action came first).
pub async fn stopped_on_its_own(
    conn: &mut Conn,
    uuid: &str,
    generation: i64,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET desired_power = 'stopped', target_vm_state = 'stopped', \
         vm_state = 'stopped', power_state = $3, task_state = NULL, one_shot = NULL, \
         generation = generation + 1, done_generation = generation + 1, updated_at = $4 \
         WHERE uuid = $1 AND generation = $2 AND done_generation = generation AND deleted = 0 \
         AND task_state IS NULL AND desired_power IN ('running', 'paused') \
         AND vm_state IN ('active', 'paused')",
    )
    .bind(uuid)
    .bind(generation)
    .bind(PowerState::Shutdown.code())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Puts an instance in ERROR (keeping the generation's work done so the agent stops trying).
pub async fn set_error(conn: &mut Conn, uuid: &str, generation: i64, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE instances SET vm_state = 'error', task_state = NULL, one_shot = NULL, \
         done_generation = $2, updated_at = $3 WHERE uuid = $1 AND deleted = 0",
    )
    .bind(uuid)
    .bind(generation)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Places an instance on a host (after a successful claim).
pub async fn set_host(
    conn: &mut Conn,
    uuid: &str,
    host: Option<&str>,
    node: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE instances SET host = $2, node = $3, updated_at = $4 WHERE uuid = $1")
        .bind(uuid)
        .bind(host)
        .bind(node)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Marks an instance deleted (the row stays for usage reports and `changes-since`).
pub async fn mark_deleted(conn: &mut Conn, uuid: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE instances SET deleted = 1, deleted_at = $2, terminated_at = $2, \
         vm_state = 'deleted', task_state = NULL, power_state = 0, updated_at = $2 \
         WHERE uuid = $1 AND deleted = 0",
    )
    .bind(uuid)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM server_group_members WHERE instance_id = $1")
        .bind(uuid)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn update_fields(
    conn: &mut Conn,
    uuid: &str,
    name: Option<&str>,
    description: Option<Option<&str>>,
    hostname: Option<&str>,
    now: i64,
) -> DbResult<()> {
    if let Some(n) = name {
        set_text(conn, uuid, "display_name", Some(n), now).await?;
    }
    if let Some(d) = description {
        set_text(conn, uuid, "display_description", d, now).await?;
    }
    if let Some(h) = hostname {
        set_text(conn, uuid, "hostname", Some(h), now).await?;
    }
    Ok(())
}

pub async fn replace_metadata(
    conn: &mut Conn,
    uuid: &str,
    meta: &BTreeMap<String, String>,
) -> DbResult<()> {
    sqlx::query("DELETE FROM instance_metadata WHERE instance_uuid = $1")
        .bind(uuid)
        .execute(&mut *conn)
        .await?;
    for (k, v) in meta {
        sqlx::query(
            "INSERT INTO instance_metadata (instance_uuid, key, value) VALUES ($1, $2, $3)",
        )
        .bind(uuid)
        .bind(k)
        .bind(v)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn replace_tags(conn: &mut Conn, uuid: &str, tags: &[String]) -> DbResult<()> {
    sqlx::query("DELETE FROM instance_tags WHERE instance_uuid = $1")
        .bind(uuid)
        .execute(&mut *conn)
        .await?;
    for t in tags {
        sqlx::query("INSERT INTO instance_tags (instance_uuid, tag) VALUES ($1, $2)")
            .bind(uuid)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn add_fault(
    conn: &mut Conn,
    uuid: &str,
    code: i64,
    message: &str,
    details: &str,
    host: Option<&str>,
    now: i64,
) -> DbResult<()> {
    let id = ferrostack_store::id_expr(conn, ferrostack_store::IdSeq::InstanceFaults);
    sqlx::query(&format!(
        "INSERT INTO instance_faults (id, instance_uuid, code, message, details, host, created_at) \
         VALUES ({id}, $1, $2, $3, $4, $5, $6)"
    ))
    .bind(uuid)
    .bind(code)
    .bind(message)
    .bind(details)
    .bind(host)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The latest fault of each of `uuids` (those that have one).
pub async fn latest_faults(conn: &mut Conn, uuids: &[&str]) -> DbResult<HashMap<String, Fault>> {
    let mut out = HashMap::new();
    if uuids.is_empty() {
        return Ok(out);
    }
    // Faults are rare (ERROR instances only): reading them all stays small.
    let rows = sqlx::query(
        "SELECT instance_uuid, code, message, details, created_at FROM instance_faults \
         ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let wanted: std::collections::HashSet<&str> = uuids.iter().copied().collect();
    for r in rows {
        let id: String = r.try_get("instance_uuid")?;
        if wanted.contains(id.as_str()) {
            out.insert(
                id,
                Fault {
                    code: r.try_get("code")?,
                    message: r.try_get("message")?,
                    details: r.try_get("details")?,
                    created_at: r.try_get("created_at")?,
                },
            );
        }
    }
    Ok(out)
}

/// Takes the per-project lock row that serializes quota checks (see the migration).
pub async fn lock_project(conn: &mut Conn, project_id: &str) -> DbResult<()> {
    // One statement: two first creates of a project racing on PostgreSQL would otherwise both
    // find no row and one of their INSERTs fail; the upsert makes the loser wait on the row.
    sqlx::query(
        "INSERT INTO compute_project_locks (project_id, counter) VALUES ($1, 1) \
         ON CONFLICT (project_id) DO UPDATE SET counter = compute_project_locks.counter + 1",
    )
    .bind(project_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// (instances, cores, ram) in use by a project: every instance not deleted.
pub async fn usage(conn: &mut Conn, project_id: &str) -> DbResult<(i64, i64, i64)> {
    let r = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, \
         CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS m FROM instances \
         WHERE project_id = $1 AND deleted = 0",
    )
    .bind(project_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok((r.try_get("n")?, r.try_get("c")?, r.try_get("m")?))
}

/// Instances in BUILD that have no host yet (waiting for the scheduler), oldest first.
pub async fn waiting_for_host(conn: &mut Conn) -> DbResult<Vec<Instance>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM instances WHERE deleted = 0 AND host IS NULL AND vm_state = 'building' \
         ORDER BY created_at, launch_index"
    ))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// (instance uuid, host) of every placed, non-deleted instance.
pub async fn host_map(conn: &mut Conn) -> DbResult<Vec<(String, String)>> {
    let rows =
        sqlx::query("SELECT uuid, host FROM instances WHERE deleted = 0 AND host IS NOT NULL")
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("uuid")?, r.try_get("host")?)))
        .collect()
}

/// Hosts running members of a server group (other than `except`), with a count each.
pub async fn group_member_hosts(
    conn: &mut Conn,
    group_id: &str,
    except: &str,
) -> DbResult<HashMap<String, i64>> {
    let rows = sqlx::query(
        "SELECT i.host AS host FROM server_group_members m JOIN instances i \
         ON i.uuid = m.instance_id WHERE m.group_id = $1 AND i.uuid <> $2 AND i.deleted = 0 \
         AND i.host IS NOT NULL",
    )
    .bind(group_id)
    .bind(except)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        *out.entry(r.try_get::<String, _>("host")?).or_insert(0) += 1;
    }
    Ok(out)
}

/// Places a waiting instance on `host` (spawning) in the host's `zone`; false when it is no
/// longer waiting.
pub async fn place(
    conn: &mut Conn,
    uuid: &str,
    host: &str,
    zone: Option<&str>,
    now: i64,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE instances SET host = $2, node = $2, task_state = 'spawning', updated_at = $3, \
         availability_zone = COALESCE($4, availability_zone) \
         WHERE uuid = $1 AND host IS NULL AND deleted = 0 AND vm_state = 'building'",
    )
    .bind(uuid)
    .bind(host)
    .bind(now)
    .bind(zone)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Per host: (instances, vcpus, memory_mb, root_gb) of placed, non-deleted instances.
pub async fn usage_by_host(conn: &mut Conn) -> DbResult<HashMap<String, (i64, i64, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT host, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(vcpus) AS BIGINT) AS c, \
         CAST(SUM(memory_mb) AS BIGINT) AS m, CAST(SUM(root_gb) AS BIGINT) AS d FROM instances \
         WHERE deleted = 0 AND host IS NOT NULL GROUP BY host",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        out.insert(
            r.try_get("host")?,
            (
                r.try_get("n")?,
                r.try_get("c")?,
                r.try_get("m")?,
                r.try_get("d")?,
            ),
        );
    }
    Ok(out)
}

/// Per project on `host`: (project, vcpus, memory_mb, root_gb + ephemeral_gb) of its placed,
/// non-deleted instances, by project id.
pub async fn usage_on_host_by_project(
    conn: &mut Conn,
    host: &str,
) -> DbResult<Vec<(String, i64, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT project_id, CAST(SUM(vcpus) AS BIGINT) AS c, CAST(SUM(memory_mb) AS BIGINT) AS m, \
         CAST(SUM(root_gb + ephemeral_gb) AS BIGINT) AS d FROM instances \
         WHERE deleted = 0 AND host = $1 GROUP BY project_id ORDER BY project_id",
    )
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("project_id")?,
                r.try_get("c")?,
                r.try_get("m")?,
                r.try_get("d")?,
            ))
        })
        .collect()
}

/// Moves an instance's record to `host` with `flavor` (resize, migration, evacuation, revert):
/// the flavor snapshot and the resource columns usage reports read change together.
pub async fn move_to(
    conn: &mut Conn,
    uuid: &str,
    host: &str,
    flavor: &FlavorSnapshot,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE instances SET host = $2, node = $2, flavor = $3, vcpus = $4, memory_mb = $5, \
         root_gb = $6, ephemeral_gb = $7, updated_at = $8 WHERE uuid = $1",
    )
    .bind(uuid)
    .bind(host)
    .bind(serde_json::to_string(flavor).unwrap_or_default())
    .bind(flavor.vcpus)
    .bind(flavor.ram)
    .bind(flavor.disk)
    .bind(flavor.ephemeral)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Settles an instance in `vm_state` without asking its agent for anything (confirm resize:
/// the guest already runs as wanted). Later reports keep this state.
pub async fn settle_vm_state(
    conn: &mut Conn,
    uuid: &str,
    vm_state: VmState,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE instances SET vm_state = $2, target_vm_state = $2, task_state = NULL, \
         updated_at = $3 WHERE uuid = $1",
    )
    .bind(uuid)
    .bind(vm_state.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the boot image of an instance (rebuild).
pub async fn set_image(conn: &mut Conn, uuid: &str, image_ref: &str, now: i64) -> DbResult<()> {
    set_text(conn, uuid, "image_ref", Some(image_ref), now).await
}

/// Replaces the request spec of an instance (what scheduling and rebuilding need to know).
pub async fn set_request_spec(
    conn: &mut Conn,
    uuid: &str,
    spec: &serde_json::Value,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE instances SET request_spec = $2, updated_at = $3 WHERE uuid = $1")
        .bind(uuid)
        .bind(spec.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replaces the server's `addresses` (an interface attached or detached).
pub async fn set_addresses(
    conn: &mut Conn,
    uuid: &str,
    addresses: &serde_json::Value,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE instances SET addresses = $2, updated_at = $3 WHERE uuid = $1")
        .bind(uuid)
        .bind(addresses.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets the vm state alone (reset-state, the start of an unshelve).
pub async fn set_vm_state(
    conn: &mut Conn,
    uuid: &str,
    vm_state: VmState,
    now: i64,
) -> DbResult<()> {
    set_text(conn, uuid, "vm_state", Some(vm_state.as_str()), now).await
}
