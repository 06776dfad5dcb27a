use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::{flag, get_bool, DbResult};
use crate::model::{Assignment, AssignmentKind};

fn from_row(r: &AnyRow) -> DbResult<Assignment> {
    let kind: String = r.try_get("kind")?;
    Ok(Assignment {
        kind: AssignmentKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown assignment kind {kind}").into()))?,
        actor_id: r.try_get("actor_id")?,
        target_id: r.try_get("target_id")?,
        role_id: r.try_get("role_id")?,
        inherited: get_bool(r, "inherited")?,
    })
}

/// Grants a role; granting it again is a no-op.
pub async fn grant<'e, E: Executor<'e, Database = Any>>(ex: E, a: &Assignment) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO assignments (kind, actor_id, target_id, role_id, inherited) \
         SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM assignments WHERE kind = $1 \
         AND actor_id = $2 AND target_id = $3 AND role_id = $4 AND inherited = $5)",
    )
    .bind(a.kind.as_str())
    .bind(&a.actor_id)
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(flag(a.inherited))
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn revoke<'e, E: Executor<'e, Database = Any>>(ex: E, a: &Assignment) -> DbResult<bool> {
    let r = sqlx::query(
        "DELETE FROM assignments WHERE kind = $1 AND actor_id = $2 AND target_id = $3 \
         AND role_id = $4 AND inherited = $5",
    )
    .bind(a.kind.as_str())
    .bind(&a.actor_id)
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(flag(a.inherited))
    .execute(ex)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn exists<'e, E: Executor<'e, Database = Any>>(ex: E, a: &Assignment) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM assignments WHERE kind = $1 AND actor_id = $2 AND target_id = $3 \
         AND role_id = $4 AND inherited = $5",
    )
    .bind(a.kind.as_str())
    .bind(&a.actor_id)
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(flag(a.inherited))
    .fetch_one(ex)
    .await?;
    Ok(n > 0)
}

pub async fn list_all<'e, E: Executor<'e, Database = Any>>(ex: E) -> DbResult<Vec<Assignment>> {
    sqlx::query("SELECT kind, actor_id, target_id, role_id, inherited FROM assignments")
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Assignments whose actor is one of `actor_ids` (a user and their groups).
pub async fn list_for_actors<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    actor_ids: &[String],
) -> DbResult<Vec<Assignment>> {
    // A small IN list built from bound parameters; the actor list is a user and its groups.
    if actor_ids.is_empty() {
        return Ok(Vec::new());
    }
    let params: Vec<String> = (1..=actor_ids.len()).map(|i| format!("${i}")).collect();
    let q = format!(
        "SELECT kind, actor_id, target_id, role_id, inherited FROM assignments WHERE actor_id IN ({})",
        params.join(", ")
    );
    let mut query = sqlx::query(&q);
    for a in actor_ids {
        query = query.bind(a);
    }
    query.fetch_all(ex).await?.iter().map(from_row).collect()
}

pub async fn delete_for_actor<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    actor_id: &str,
) -> DbResult<()> {
    sqlx::query("DELETE FROM assignments WHERE actor_id = $1")
        .bind(actor_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete_for_target<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    target_id: &str,
) -> DbResult<()> {
    sqlx::query("DELETE FROM assignments WHERE target_id = $1")
        .bind(target_id)
        .execute(ex)
        .await?;
    Ok(())
}
