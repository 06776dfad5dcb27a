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
mod common;
mod data;
mod images;
mod members;
