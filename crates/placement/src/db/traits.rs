use ferrostack_store::sqlx::{self, Row};

use super::{placeholders, Conn, DbResult};
use crate::model::NameFilter;

/// Trait names, filtered by name and by whether any provider has them.
pub async fn list(
    conn: &mut Conn,
    name: &NameFilter,
    associated: Option<bool>,
) -> DbResult<Vec<String>> {
    let mut sql = String::from("SELECT name FROM placement_traits t WHERE 1 = 1");
    let mut binds: Vec<String> = vec![];
    match name {
        NameFilter::All => {}
        NameFilter::In(names) => {
            if names.is_empty() {
                return Ok(vec![]);
            }
            sql.push_str(&format!(" AND name IN ({})", placeholders(1, names.len())));
            binds.extend(names.iter().cloned());
        }
        NameFilter::StartsWith(prefix) => {
            // Trait names are A-Z, 0-9 and _; escape the LIKE wildcard `_` in the prefix.
            sql.push_str(" AND name LIKE $1 ESCAPE '\\'");
            binds.push(format!(
                "{}%",
                prefix
                    .replace('\\', "\\\\")
                    .replace('_', "\\_")
                    .replace('%', "\\%")
            ));
        }
    }
    match associated {
        Some(true) => sql.push_str(
            " AND EXISTS (SELECT 1 FROM placement_provider_traits pt WHERE pt.trait = t.name)",
        ),
        Some(false) => sql.push_str(
            " AND NOT EXISTS (SELECT 1 FROM placement_provider_traits pt WHERE pt.trait = t.name)",
        ),
        None => {}
    }
    sql.push_str(" ORDER BY name");
    let mut q = sqlx::query_scalar::<_, String>(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    q.fetch_all(conn).await
}

/// `Some(standard)` when the trait exists.
pub async fn get(conn: &mut Conn, name: &str) -> DbResult<Option<bool>> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT standard FROM placement_traits WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(v.map(|s| s != 0))
}

/// Which of `names` do not exist.
pub async fn missing(conn: &mut Conn, names: &[String]) -> DbResult<Vec<String>> {
    if names.is_empty() {
        return Ok(vec![]);
    }
    let sql = format!(
        "SELECT name FROM placement_traits WHERE name IN ({})",
        placeholders(1, names.len())
    );
    let mut q = sqlx::query_scalar::<_, String>(&sql);
    for n in names {
        q = q.bind(n);
    }
    let found = q.fetch_all(conn).await?;
    let mut out: Vec<String> = names
        .iter()
        .filter(|n| !found.contains(n))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

pub async fn insert_custom(conn: &mut Conn, name: &str) -> DbResult<()> {
    let now = ferrostack_store::now_micros();
    sqlx::query(
        "INSERT INTO placement_traits (name, standard, created_at, updated_at) \
         VALUES ($1, 0, $2, $2)",
    )
    .bind(name)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, name: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM placement_traits WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn in_use(conn: &mut Conn, name: &str) -> DbResult<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM placement_provider_traits WHERE trait = $1")
            .bind(name)
            .fetch_one(conn)
            .await?;
    Ok(n > 0)
}

pub async fn for_provider(conn: &mut Conn, uuid: &str) -> DbResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT trait FROM placement_provider_traits WHERE provider_uuid = $1 ORDER BY trait",
    )
    .bind(uuid)
    .fetch_all(conn)
    .await
}

/// `(provider, trait)` of every provider.
pub async fn all_provider_traits(conn: &mut Conn) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT provider_uuid, trait FROM placement_provider_traits")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("provider_uuid")?, r.try_get("trait")?)))
        .collect()
}

/// Replaces the provider's traits.
pub async fn set_for_provider(conn: &mut Conn, uuid: &str, traits: &[String]) -> DbResult<()> {
    sqlx::query("DELETE FROM placement_provider_traits WHERE provider_uuid = $1")
        .bind(uuid)
        .execute(&mut *conn)
        .await?;
    for t in traits {
        sqlx::query("INSERT INTO placement_provider_traits (provider_uuid, trait) VALUES ($1, $2)")
            .bind(uuid)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
