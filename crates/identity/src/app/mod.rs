//! Identity logic, independent of HTTP.

pub mod auth;
pub mod bootstrap;
pub mod catalog;
pub mod limits;
pub mod password;
pub mod roles;
pub mod tokens;
