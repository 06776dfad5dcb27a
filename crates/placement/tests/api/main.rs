//! API tests of the placement service: the real router in-process behind identity's token
//! validation, on SQLite (and PostgreSQL when FERROSTACK_TEST_PG_URL is set).

#[macro_use]
mod common;
mod allocations;
mod candidates;
mod classes_traits;
mod inprocess;
mod inventories;
mod providers;
