//! SQL of the networking service, one file per resource.

pub mod address_groups;
pub mod auto_allocated;
pub mod floating_ips;
pub mod hosts;
pub mod networks;
pub mod port_forwardings;
pub mod ports;
pub mod quotas;
pub mod rbac;
pub mod routers;
pub mod security_groups;
pub mod subnetpools;
pub mod subnets;
pub mod tags;

pub use ferrostack_store::sqlx::AnyConnection as Conn;
pub type DbResult<T> = Result<T, ferrostack_store::sqlx::Error>;

use ferrostack_store::sqlx;

/// A stored value that does not parse (only a database written by something else).
pub(crate) fn decode_err(what: &str, v: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("bad {what} {v:?}").into())
}

/// Reads a JSON text column.
pub(crate) fn json_col<T: serde::de::DeserializeOwned>(
    r: &ferrostack_store::AnyRow,
    col: &str,
) -> DbResult<T> {
    use ferrostack_store::Row;
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|_| decode_err(col, &s))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// `$n, $n+1, ...` placeholders for an `IN (...)` list of `count` values from `$first`.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes a row's lock until the transaction ends (PostgreSQL; SQLite has one writer anyway),
/// so writers that read-then-write around that row queue instead of racing: address picks on
/// a subnet, block picks in a subnet pool, overlap checks of a network's subnets. `table` is
/// one of this crate's table names.
pub(crate) async fn lock_row(conn: &mut Conn, table: &'static str, id: &str) -> DbResult<()> {
    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
        sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(())
}
