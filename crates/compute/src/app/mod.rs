//! The application layer of the compute service: every transaction, invariant, quota count
//! and event. HTTP handlers (`api/`), the agents' link and the other services call these
//! functions; nothing here knows HTTP.

pub mod lifecycle;
pub mod moves;
pub mod server_extras;
pub mod servers;
