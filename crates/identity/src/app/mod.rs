//! The application layer of the identity service: every transaction, invariant and cache
//! invalidation. HTTP handlers (`api/`) parse, authorize, call one function here and render;
//! other services and the dashboard call the same functions. Nothing here knows HTTP.
//!
//! Every write that can change what a token grants commits through
//! `Identity::commit_change` (in `tokens.rs`, visible to this module only), which records
//! revocation events and bumps the identity generation that drops cached validations.

pub mod app_creds;
pub mod assignments;
pub mod auth;
pub mod bootstrap;
pub mod catalog;
pub mod domains;
pub mod effective_roles;
pub mod groups;
pub mod limits;
pub mod password;
pub mod projects;
pub mod roles;
pub mod tokens;
pub mod users;
