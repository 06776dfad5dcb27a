//! API tests of the networking service: the real router in-process, on a real database
//! (SQLite, and PostgreSQL when FERROSTACK_TEST_PG_URL is set).

// Test code: a panic is a failed test, and test data stays in range.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
extern crate ferrostack_testkit;

/// This crate's view of the one test cloud (`ferrostack-testkit`).
mod common {
    pub use ferrostack_testkit::network::NetworkCloud as TestCloud;
    #[allow(unused_imports)]
    pub use ferrostack_testkit::network::*;
}
mod auto_allocate;
mod hosts;
mod networks;
mod ports;
mod quotas;
mod rbac;
mod routers;
mod security_groups;
mod subnets;
