//! API tests of the placement service: the real router in-process behind identity's token
//! validation, on SQLite (and PostgreSQL when FERROSTACK_TEST_PG_URL is set).

// Test code: a panic is a failed test, and test data stays in range.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

#[macro_use]
extern crate ferrostack_testkit;

/// This crate's view of the one test cloud (`ferrostack-testkit`).
mod common {
    pub use ferrostack_testkit::placement::PlacementCloud as TestCloud;
    pub use ferrostack_testkit::placement::*;
}
mod allocations;
mod candidates;
mod classes_traits;
mod inprocess;
mod inventories;
mod providers;
