//! The other services as compute sees them: one trait per peer, named for what compute needs
//! of it and owned here, so that compute depends on these traits and never on another
//! service's type. Each file holds its trait and the adapter of the peer this cloud runs in
//! process (the consumer adapts; the orphan rule keeps those impls here). The peers' data
//! types (images, allocations, providers, their errors) still come from their crates.

pub mod consoles;
mod images;
mod networking;
mod placement;
mod projects;

pub use consoles::{ConsoleDials, ConsoleHosts, ConsoleKind, ConsoleStream, Consoles};
pub use images::Images;
pub use networking::{
    FloatingIpView, GroupView, NetworkView, Networking, NicRequest, NovaRule, PortView, RuleView,
    ServerNic,
};
pub use placement::Placement;
pub use projects::Projects;
