//! os-instance-actions: one action per API operation on a server, with events for its steps.
//! They double as the task records of the agent protocol: an action is finished when the
//! agent reports its generation done.

use ferrostack_store::sqlx::{self, Row};

use ferrostack_store::{id_expr, IdSeq};

use super::{Conn, DbResult};

#[derive(Debug, Clone)]
pub struct Action {
    pub id: i64,
    pub instance_uuid: String,
    pub request_id: String,
    pub action: String,
    pub project_id: String,
    pub user_id: String,
    pub message: Option<String>,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    pub updated_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub event: String,
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
    pub start_time: i64,
    pub finish_time: Option<i64>,
}

/// Starts an action and its first event (`compute_<action>` as Nova names them).
#[allow(clippy::too_many_arguments)]
pub async fn start(
    conn: &mut Conn,
    instance: &str,
    request_id: &str,
    action: &str,
    project_id: &str,
    user_id: &str,
    host: Option<&str>,
    now: i64,
) -> DbResult<i64> {
    // Ids from the store's sequences, each in its INSERT: one round trip per row (the action
    // records are on every write path of the compute API).
    let id: i64 = sqlx::query_scalar(&format!(
        "INSERT INTO instance_actions (id, instance_uuid, request_id, action, project_id, user_id, \
         start_time, updated_at) VALUES ({}, $1, $2, $3, $4, $5, $6, $6) RETURNING id",
        id_expr(conn, IdSeq::InstanceActions)
    ))
    .bind(instance)
    .bind(request_id)
    .bind(action)
    .bind(project_id)
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO instance_action_events (id, action_id, event, host, start_time) VALUES \
         ({}, $1, $2, $3, $4)",
        id_expr(conn, IdSeq::InstanceActionEvents)
    ))
    .bind(id)
    .bind(format!("compute_{}", event_name(action)))
    .bind(host)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

fn event_name(action: &str) -> String {
    match action {
        "create" => "build_and_run_instance".into(),
        "reboot" => "reboot_instance".into(),
        "stop" => "stop_instance".into(),
        "start" => "start_instance".into(),
        "delete" => "terminate_instance".into(),
        "live_migration_cancel" => "live_migration_abort".into(),
        "live_migration_force_complete" => "live_migration_force_complete".into(),
        other => format!("{other}_instance"),
    }
}

/// Finishes every open action of an instance: `Success`, or `Error` with the reason.
pub async fn finish_open(
    conn: &mut Conn,
    instance: &str,
    error: Option<&str>,
    host: Option<&str>,
    now: i64,
) -> DbResult<()> {
    let result = if error.is_some() { "Error" } else { "Success" };
    sqlx::query(
        "UPDATE instance_action_events SET result = $2, traceback = $3, host = COALESCE(host, $4), \
         finish_time = $5 WHERE finish_time IS NULL AND action_id IN \
         (SELECT id FROM instance_actions WHERE instance_uuid = $1 AND finish_time IS NULL)",
    )
    .bind(instance)
    .bind(result)
    .bind(error)
    .bind(host)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE instance_actions SET finish_time = $2, updated_at = $2, message = $3 \
         WHERE instance_uuid = $1 AND finish_time IS NULL",
    )
    .bind(instance)
    .bind(now)
    .bind(error.map(|_| "Error"))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn action_row(r: &ferrostack_store::sqlx::any::AnyRow) -> DbResult<Action> {
    Ok(Action {
        id: r.try_get("id")?,
        instance_uuid: r.try_get("instance_uuid")?,
        request_id: r.try_get("request_id")?,
        action: r.try_get("action")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        message: r.try_get("message")?,
        start_time: r.try_get("start_time")?,
        finish_time: r.try_get("finish_time")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const ACTION_COLS: &str = "id, instance_uuid, request_id, action, project_id, user_id, message, \
    start_time, finish_time, updated_at";

pub async fn list(conn: &mut Conn, instance: &str) -> DbResult<Vec<Action>> {
    let rows = sqlx::query(&format!(
        "SELECT {ACTION_COLS} FROM instance_actions WHERE instance_uuid = $1 \
         ORDER BY start_time DESC, id DESC"
    ))
    .bind(instance)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(action_row).collect()
}

pub async fn by_request(
    conn: &mut Conn,
    instance: &str,
    request_id: &str,
) -> DbResult<Option<(Action, Vec<Event>)>> {
    let row = sqlx::query(&format!(
        "SELECT {ACTION_COLS} FROM instance_actions WHERE instance_uuid = $1 AND request_id = $2"
    ))
    .bind(instance)
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let action = action_row(&row)?;
    let rows = sqlx::query(
        "SELECT event, result, traceback, host, start_time, finish_time FROM \
         instance_action_events WHERE action_id = $1 ORDER BY id",
    )
    .bind(action.id)
    .fetch_all(&mut *conn)
    .await?;
    let events = rows
        .iter()
        .map(|r| {
            Ok(Event {
                event: r.try_get("event")?,
                result: r.try_get("result")?,
                traceback: r.try_get("traceback")?,
                host: r.try_get("host")?,
                start_time: r.try_get("start_time")?,
                finish_time: r.try_get("finish_time")?,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    Ok(Some((action, events)))
}
