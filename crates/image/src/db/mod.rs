//! SQL of the image service, one file per resource.

pub mod images;
pub mod members;

pub use ferrostack_store::sqlx::AnyConnection as Conn;
pub type DbResult<T> = Result<T, ferrostack_store::sqlx::Error>;
