//! Compute API tests: the in-process router with the fake driver, on SQLite (and PostgreSQL
//! when FERROSTACK_TEST_PG_URL is set).

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
    pub use ferrostack_testkit::compute::ComputeCloud as TestCloud;
    pub use ferrostack_testkit::compute::*;
}
mod agent_http;
mod agent_restart;
mod aggregates;
mod flavors;
mod hardening;
mod hosts;
mod hypervisors;
mod images;
mod injection;
mod keypairs;
mod quotas;
mod server_external_events;
mod server_extras;
mod server_groups;
mod server_list;
mod server_moves;
mod server_ports;
mod servers;
mod usage;
