//! API tests of the image service: the real router in-process, on a real database (SQLite, and
//! PostgreSQL when FERROSTACK_TEST_PG_URL is set) and a real file store.

#[macro_use]
mod common;
mod data;
mod images;
mod members;
