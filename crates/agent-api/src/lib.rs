//! The protocol between the controllers and the agents of hosts. See the README: the agent
//! asks what its host should run, converges, reports what it observed, and answers questions;
//! it never receives commands, so a restart of either side simply converges again.

mod console;
mod controller;
mod desired;
mod error;
mod guest;
mod host;
mod image;
pub mod metadata;
mod moves;
mod network;
mod query;

pub use console::{ConsoleIo, ConsoleKind, CONSOLE_UPGRADE};
pub use controller::Controller;
pub use desired::{DesiredHost, HostReport};
pub use error::{BoxError, LinkError};
pub use guest::{
    Desired, DesiredGuest, GuestNic, GuestReport, GuestSpec, Injected, InjectedFile, OneShot,
    PowerState,
};
pub use host::HostInfo;
pub use image::ImageInfo;
pub use moves::{Arrival, Departure, MoveProgress, Outgoing};
pub use network::{
    tap_name, AddressPair, DhcpHost, DhcpServer, DhcpSubnet, Direction, EtherType, FilterRule,
    FloatingNat, GroupMembers, HostNetworking, HostPort, HostRouter, Ipv6Mode, Ipv6Subnet,
    NetSegment, NetworkingReport, PortForward, Remote, RouterGateway, RouterPort,
    SecurityGroupRules, SegmentKind, Vtep, VxlanPeer,
};
pub use query::{Answer, Ask, Query};
