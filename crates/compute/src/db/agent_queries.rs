//! Questions for agents in their own process (`agent_queries`): the asking API request
//! inserts one and polls for its answer; the host's agent lists the open ones and answers.

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};

/// An open question: (id, instance uuid, kind).
pub type Open = (String, String, String);

pub async fn insert(
    conn: &mut Conn,
    id: &str,
    host: &str,
    kind: &str,
    instance_uuid: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO agent_queries (id, host, kind, instance_uuid, args, answered, created_at) \
         VALUES ($1, $2, $3, $4, '{}', 0, $5)",
    )
    .bind(id)
    .bind(host)
    .bind(kind)
    .bind(instance_uuid)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The unanswered questions for `host`, oldest first.
pub async fn open_for(conn: &mut Conn, host: &str) -> DbResult<Vec<Open>> {
    let rows = sqlx::query(
        "SELECT id, instance_uuid, kind FROM agent_queries WHERE host = $1 AND answered = 0 \
         ORDER BY created_at, id",
    )
    .bind(host)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("instance_uuid")?,
                r.try_get("kind")?,
            ))
        })
        .collect()
}

/// Records the answer of `host` to question `id`; false when there is no such open question
/// of that host (answered already, or given up by its asker).
pub async fn answer(
    conn: &mut Conn,
    id: &str,
    host: &str,
    result: Option<&str>,
    error: Option<&str>,
) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE agent_queries SET answered = 1, result = $3, error = $4 \
         WHERE id = $1 AND host = $2 AND answered = 0",
    )
    .bind(id)
    .bind(host)
    .bind(result)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The answer to question `id` once there is one: Ok(result) or Err(error).
pub async fn answer_of(conn: &mut Conn, id: &str) -> DbResult<Option<Result<String, String>>> {
    let row = sqlx::query("SELECT result, error FROM agent_queries WHERE id = $1 AND answered = 1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(r) = row else { return Ok(None) };
    let error: Option<String> = r.try_get("error")?;
    let result: Option<String> = r.try_get("result")?;
    Ok(Some(match error {
        Some(e) => Err(e),
        None => Ok(result.unwrap_or_default()),
    }))
}

/// Removes question `id`, and any question older than `stale_before` (askers that gave up).
pub async fn remove(conn: &mut Conn, id: &str, stale_before: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM agent_queries WHERE id = $1 OR created_at < $2")
        .bind(id)
        .bind(stale_before)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
