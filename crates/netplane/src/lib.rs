//! The Linux network data plane of one host (see the README and `docs/network-dataplane.md`):
//! a namespace of its own holding a bridge per network, VXLAN devices with the controller's
//! forwarding entries, uplinks of flat networks, guests' taps, and one nftables ruleset
//! (security groups and anti-spoofing) compiled by [`nft::compile`], a pure function.
//! [`Dataplane::converge`] brings the host to the [`HostNetworking`] the controller wants,
//! through the [`NetHost`] trait: [`linux::Linux`] on the real kernel, [`fake::FakeHost`] in
//! memory.

pub mod dataplane;
pub mod dhcp;
pub mod fake;
pub mod host;
pub mod linux;
pub mod names;
pub mod nft;
pub mod outside;
pub mod router;

pub use dataplane::{Dataplane, HostConfig, Uplink};
pub use ferrostack_agent_api::HostNetworking;
pub use host::{Fdb, Link, NetHost, Route};

#[derive(Debug, thiserror::Error)]
pub enum NetplaneError {
    #[error("running {command}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command}: {stderr}")]
    Command { command: String, stderr: String },
    #[error("reading the output of {what}: {message}")]
    Parse { what: String, message: String },
    #[error(transparent)]
    Compile(#[from] nft::CompileError),
    #[error("every conntrack zone is taken")]
    OutOfZones,
    #[error("physical network {0:?} has no uplink on this host")]
    NoPhysnet(String),
    #[error("tap {0} is no port this host's data plane carries")]
    UnknownTap(String),
    #[error("VLAN networks need the kernel's 802.1q support, which this host lacks: {0}")]
    NoVlan(String),
}

pub type Result<T, E = NetplaneError> = std::result::Result<T, E>;
