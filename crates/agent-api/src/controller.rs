//! The controller as an agent sees it.

use std::time::Duration;

use crate::{Answer, ConsoleIo, DesiredHost, HostInfo, HostReport, ImageInfo, LinkError, Query};

/// The controller of a host's agent: the compute service in process (`LocalController` in the
/// compute crate) or over HTTP (`HttpController` in the agent crate), the same calls either
/// way.
#[async_trait::async_trait]
pub trait Controller: Send + Sync {
    /// Registers (or refreshes) the host: its service, hypervisor record and placement
    /// inventory.
    async fn register(&self, host: &str, info: &HostInfo) -> Result<(), LinkError>;
    /// Everything the controller wants of `host`.
    async fn desired(&self, host: &str) -> Result<DesiredHost, LinkError>;
    async fn report(&self, host: &str, report: HostReport) -> Result<(), LinkError>;
    async fn heartbeat(&self, host: &str) -> Result<(), LinkError>;
    /// Returns when something for `host` may have changed (its desired state, a question), or
    /// after `timeout`.
    async fn wait_for_change(&self, host: &str, timeout: Duration);
    /// Uploads a snapshot file (`disk_format` as the driver wrote it) as the data of image
    /// `image_id`, which the controller created when the snapshot was asked for.
    async fn upload_snapshot(
        &self,
        host: &str,
        image_id: &str,
        path: &std::path::Path,
        disk_format: &str,
    ) -> Result<(), LinkError>;
    /// What the image service knows of image `image_id` (any visibility: the host boots it
    /// for an instance of its own).
    async fn image(&self, host: &str, image_id: &str) -> Result<ImageInfo, LinkError>;
    /// Writes the data of image `image_id` to `dest` (created or truncated). The caller
    /// checks it against the image's hash.
    async fn download_image(
        &self,
        host: &str,
        image_id: &str,
        dest: &std::path::Path,
    ) -> Result<(), LinkError>;
    /// Hands the root disk of a guest leaving `host` (the source of cold move `migration`) to
    /// the controller, which keeps it for the destination.
    async fn upload_migration_disk(
        &self,
        host: &str,
        migration: &str,
        path: &std::path::Path,
    ) -> Result<(), LinkError>;
    /// Writes the disk handed over for `migration` to `dest` (`host` is the move's
    /// destination); false when the source's driver had no disk to hand over (the fake).
    async fn download_migration_disk(
        &self,
        host: &str,
        migration: &str,
        dest: &std::path::Path,
    ) -> Result<bool, LinkError>;
    /// The guest whose port on network `network_id` holds `address`, as the metadata
    /// service shows it (nothing injected); None when no server's port holds it. `host`'s
    /// metadata proxy asks, for a request it received from `address` on that network.
    async fn metadata(
        &self,
        host: &str,
        network_id: &str,
        address: std::net::IpAddr,
    ) -> Result<Option<crate::GuestSpec>, LinkError>;
    /// The questions waiting for `host`'s answer.
    async fn queries(&self, host: &str) -> Result<Vec<Query>, LinkError>;
    async fn answer(&self, host: &str, query_id: &str, answer: &Answer) -> Result<(), LinkError>;
    /// Opens the connection the controller waits for to carry a console of one of `host`'s
    /// guests, which it asked for with question `query_id` (a console question).
    async fn dial_console(
        &self,
        host: &str,
        query_id: &str,
    ) -> Result<Box<dyn ConsoleIo>, LinkError>;
}
