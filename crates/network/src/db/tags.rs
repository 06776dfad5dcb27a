//! Tags of any networking resource (`network_tags`), keyed by the resource's id.

use std::collections::HashMap;

use ferrostack_store::sqlx::{self, Row};

use super::{Conn, DbResult};

/// Tags of every resource in `ids` (all tagged resources when `ids` is long: cheaper than a
/// huge `IN` list).
pub async fn for_ids(conn: &mut Conn, ids: &[&str]) -> DbResult<HashMap<String, Vec<String>>> {
    let rows = match ids {
        [] => return Ok(HashMap::new()),
        [one] => {
            sqlx::query(
                "SELECT resource_id, tag FROM network_tags WHERE resource_id = $1 ORDER BY tag",
            )
            .bind(*one)
            .fetch_all(&mut *conn)
            .await?
        }
        _ => {
            sqlx::query("SELECT resource_id, tag FROM network_tags ORDER BY tag")
                .fetch_all(&mut *conn)
                .await?
        }
    };
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for r in rows {
        by.entry(r.try_get("resource_id")?)
            .or_default()
            .push(r.try_get("tag")?);
    }
    Ok(by)
}

/// A resource that carries tags (filled when read).
pub trait Tagged {
    fn id(&self) -> &str;
    fn tags_mut(&mut self) -> &mut Vec<String>;
}

macro_rules! tagged {
    ($($t:ty),*) => {$(
        impl Tagged for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn tags_mut(&mut self) -> &mut Vec<String> {
                &mut self.tags
            }
        }
    )*};
}

tagged!(
    crate::model::Network,
    crate::model::Subnet,
    crate::model::Port,
    crate::model::SecurityGroup,
    crate::model::Router,
    crate::model::FloatingIp,
    crate::model::SubnetPool
);

/// Fills the tags of every item.
pub async fn fill<T: Tagged>(conn: &mut Conn, items: &mut [T]) -> DbResult<()> {
    let ids: Vec<&str> = items.iter().map(Tagged::id).collect();
    let mut by = for_ids(conn, &ids).await?;
    for i in items.iter_mut() {
        let tags = by.remove(i.id()).unwrap_or_default();
        *i.tags_mut() = tags;
    }
    Ok(())
}

pub async fn replace(conn: &mut Conn, id: &str, tags: &[String]) -> DbResult<()> {
    sqlx::query("DELETE FROM network_tags WHERE resource_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for t in tags {
        add(conn, id, t).await?;
    }
    Ok(())
}

pub async fn add(conn: &mut Conn, id: &str, tag: &str) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO network_tags (resource_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(tag)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes one tag; false when the resource did not have it.
pub async fn remove(conn: &mut Conn, id: &str, tag: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM network_tags WHERE resource_id = $1 AND tag = $2")
        .bind(id)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn remove_all(conn: &mut Conn, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM network_tags WHERE resource_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
