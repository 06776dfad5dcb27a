//! SQL of the placement service, one file per resource. Functions take a connection (a pooled
//! one for reads, the write transaction for writes).

pub mod aggregates;
pub mod allocations;
pub mod inventories;
pub mod providers;
pub mod resource_classes;
pub mod traits;

pub use ferrostack_store::sqlx::AnyConnection as Conn;
pub type DbResult<T> = Result<T, ferrostack_store::sqlx::Error>;

/// `$start, $start+1, ...` for `n` values of an `IN (...)` list (sqlx::Any binds no arrays).
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_from_start() {
        assert_eq!(super::placeholders(2, 3), "$2, $3, $4");
    }
}
