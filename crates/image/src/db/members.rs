use ferrostack_store::sqlx::{self, any::AnyRow, Any, Executor, Row};

use super::DbResult;
use crate::model::{Member, MemberStatus};

fn from_row(r: &AnyRow) -> DbResult<Member> {
    let s: String = r.try_get("status")?;
    Ok(Member {
        image_id: r.try_get("image_id")?,
        member_id: r.try_get("member_id")?,
        status: MemberStatus::parse(&s)
            .ok_or_else(|| sqlx::Error::Decode(format!("bad member status {s}").into()))?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn insert<'e, E: Executor<'e, Database = Any>>(ex: E, m: &Member) -> DbResult<()> {
    sqlx::query("INSERT INTO image_members (image_id, member_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&m.image_id)
        .bind(&m.member_id)
        .bind(m.status.as_str())
        .bind(m.created_at)
        .bind(m.updated_at)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn set_status<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    image_id: &str,
    member_id: &str,
    s: MemberStatus,
) -> DbResult<bool> {
    let r = sqlx::query("UPDATE image_members SET status = $3, updated_at = $4 WHERE image_id = $1 AND member_id = $2")
        .bind(image_id)
        .bind(member_id)
        .bind(s.as_str())
        .bind(ferrostack_store::now_micros())
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    image_id: &str,
    member_id: &str,
) -> DbResult<Option<Member>> {
    sqlx::query("SELECT image_id, member_id, status, created_at, updated_at FROM image_members WHERE image_id = $1 AND member_id = $2")
        .bind(image_id)
        .bind(member_id)
        .fetch_optional(ex)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn list_for_image<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    image_id: &str,
) -> DbResult<Vec<Member>> {
    sqlx::query("SELECT image_id, member_id, status, created_at, updated_at FROM image_members WHERE image_id = $1 ORDER BY created_at")
        .bind(image_id)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Memberships of a project across images (for listing what is shared with it).
pub async fn list_for_member<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    member_id: &str,
) -> DbResult<Vec<Member>> {
    sqlx::query("SELECT image_id, member_id, status, created_at, updated_at FROM image_members WHERE member_id = $1")
        .bind(member_id)
        .fetch_all(ex)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn delete<'e, E: Executor<'e, Database = Any>>(
    ex: E,
    image_id: &str,
    member_id: &str,
) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member_id = $2")
        .bind(image_id)
        .bind(member_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}
