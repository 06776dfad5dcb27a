use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::DbResult;
use crate::model::RevocationEvent;

fn from_row(r: &AnyRow) -> DbResult<RevocationEvent> {
    Ok(RevocationEvent {
        user_id: r.try_get("user_id")?,
        project_id: r.try_get("project_id")?,
        domain_id: r.try_get("domain_id")?,
        audit_id: r.try_get("audit_id")?,
        issued_before: r.try_get("issued_before")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    ev: &RevocationEvent,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO revocation_events (id, user_id, project_id, domain_id, audit_id, issued_before, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(crate::model::new_id())
    .bind(&ev.user_id)
    .bind(&ev.project_id)
    .bind(&ev.domain_id)
    .bind(&ev.audit_id)
    .bind(ev.issued_before)
    .bind(ev.revoked_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Events recorded after `since` (microseconds).
pub async fn list_since<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    since: i64,
) -> DbResult<Vec<RevocationEvent>> {
    sqlx::query(
        "SELECT user_id, project_id, domain_id, audit_id, issued_before, revoked_at FROM revocation_events \
         WHERE revoked_at > $1 ORDER BY revoked_at",
    )
    .bind(since)
    .fetch_all(ex)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Drops events older than any token that could still be valid.
pub async fn prune<'e, E: Executor<'e, Database = Any>>(ex: E, before: i64) -> DbResult<u64> {
    let r = sqlx::query("DELETE FROM revocation_events WHERE issued_before < $1")
        .bind(before)
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}
