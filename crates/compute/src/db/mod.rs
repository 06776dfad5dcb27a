//! SQL of the compute service, one module per resource. Nothing outside `db/` writes SQL.

pub mod actions;
pub mod agent_queries;
pub mod aggregates;
pub mod flavors;
pub mod hosts;
pub mod instance_injections;
pub mod instance_nics;
pub mod instances;
pub mod keypairs;
pub mod migrations;
pub mod quotas;
pub mod server_extras;
pub mod server_groups;
pub mod server_migrations;
pub mod usage;

pub use ferrostack_store::sqlx::AnyConnection as Conn;
pub type DbResult<T> = Result<T, ferrostack_store::sqlx::Error>;
