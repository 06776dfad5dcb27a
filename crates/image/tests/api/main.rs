//! API tests of the image service: the real router in-process, on a real database (SQLite, and
//! PostgreSQL when FERROSTACK_TEST_PG_URL is set) and a real file store.

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
    pub use ferrostack_testkit::image::ImageCloud as TestCloud;
    pub use ferrostack_testkit::image::*;
}
mod data;
mod images;
mod members;
