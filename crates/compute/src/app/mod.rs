//! The application layer of the compute service: every transaction, invariant, quota count
//! and event. HTTP handlers (`api/`), the agents' link and the other services call these
//! functions; nothing here knows HTTP.

pub mod aggregates;
pub mod availability_zones;
pub mod consoles;
pub mod flavor_access;
pub mod flavors;
pub mod host_images;
pub mod hosts;
pub mod hypervisors;
pub mod images;
pub mod injection;
pub mod keypairs;
pub mod lifecycle;
pub mod limits;
pub mod metadata;
pub mod migration_control;
pub mod migration_disks;
pub mod migrations;
pub mod moves;
pub mod projects;
pub mod quotas;
pub mod server_actions;
pub mod server_diagnostics;
pub mod server_external_events;
pub mod server_groups;
pub mod server_interfaces;
pub mod server_ips;
pub mod server_list;
pub mod server_metadata;
pub mod server_password;
pub mod server_tags;
pub mod servers;
pub mod services;
pub mod usage;
