//! OpenStack wire conventions shared by every ferrostack service: error bodies, request ids,
//! request logging, JSON bodies with OpenStack-style errors, token validation and policy
//! enforcement, pagination, version discovery and microversions.
//!
//! A service crate builds an axum `Router`, returns `ApiError` from handlers and wraps its
//! router with [`error::ErrorFormat::layer`] so that every error leaves in that service's format.

pub mod auth;
pub mod error;
pub mod json;
pub mod microversion;
pub mod pagination;
pub mod request;
pub mod version;

pub use auth::{AppCredRef, Auth, AuthContext, MaybeAuth, RoleRef, ScopeRef, TokenValidator};
pub use error::{ApiError, ErrorCode, ErrorFormat};
pub use json::Json;
