//! The application layer of the image service: every transaction, quota, visibility rule,
//! status transition and cache invalidation, as methods of `ImageService`. The HTTP handlers
//! (`api/`), the compute service (boot images, snapshots) and the dashboard call these; nothing
//! here knows HTTP. One file per resource, named like its `api/` file (`images.rs`,
//! `members.rs`, `data.rs`), plus `access.rs` (who sees an image, policy targets),
//! `snapshots.rs` (images the compute service makes) and `builtin.rs` (the test guest image).

pub mod access;
mod builtin;
pub mod data;
pub mod images;
pub mod members;
pub mod snapshots;
