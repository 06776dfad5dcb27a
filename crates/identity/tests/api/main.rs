//! API tests of the identity service (Keystone v3): the real router, in-process, on a real
//! database — SQLite always, and PostgreSQL too when `FERROSTACK_TEST_PG_URL` names a server
//! (each test then gets a database of its own). One test binary, one module per resource.

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
    pub use ferrostack_testkit::identity::IdentityCloud as TestCloud;
    pub use ferrostack_testkit::identity::*;
}

mod app_creds;
mod assignments;
mod auth;
mod bad_input;
mod catalog;
mod domains;
mod groups;
mod limits;
mod projects;
mod rbac;
mod roles;
mod users;
mod versions;
