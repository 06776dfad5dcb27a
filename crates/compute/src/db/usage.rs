//! Instances for os-simple-tenant-usage: those running at some point of a period, deleted
//! ones included (usage is billed after deletion too).

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};
use crate::model::UsageInstance;

/// Instances not terminated before `begin` and launched before `end` (Nova's
/// `get_active_by_window_joined`), of one project or all, ordered by creation.
pub async fn active_in_window(
    conn: &mut Conn,
    begin: i64,
    end: i64,
    project_id: Option<&str>,
) -> DbResult<Vec<UsageInstance>> {
    let rows = sqlx::query(
        "SELECT uuid, display_name, project_id, flavor, vcpus, memory_mb, root_gb, ephemeral_gb, \
         vm_state, launched_at, terminated_at FROM instances \
         WHERE (terminated_at IS NULL OR terminated_at > $1) AND launched_at < $2 \
         AND (project_id = $3 OR $4 = 1) ORDER BY created_at, uuid",
    )
    .bind(begin)
    .bind(end)
    .bind(project_id.unwrap_or_default())
    .bind(i64::from(project_id.is_none()))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let flavor: serde_json::Value =
                serde_json::from_str(&r.try_get::<String, _>("flavor")?).unwrap_or_default();
            Ok(UsageInstance {
                uuid: r.try_get("uuid")?,
                name: r.try_get("display_name")?,
                project_id: r.try_get("project_id")?,
                flavor_name: flavor["name"].as_str().unwrap_or_default().to_string(),
                vcpus: r.try_get("vcpus")?,
                memory_mb: r.try_get("memory_mb")?,
                local_gb: r.try_get::<i64, _>("root_gb")? + r.try_get::<i64, _>("ephemeral_gb")?,
                vm_state: r.try_get("vm_state")?,
                launched_at: r.try_get("launched_at")?,
                terminated_at: r.try_get("terminated_at")?,
            })
        })
        .collect()
}
