//! Names of what the data plane makes on a host. Interface names have at most 15 bytes.
//! Everything of one host lives in its data-plane namespace, whose name carries the cloud's
//! prefix and the host's name, so two clouds (or two simulated hosts of one cloud) on one
//! machine never collide; only taps are born in the root namespace (QEMU makes them there),
//! and they are named after their port, whose id is unique anyway.

/// The data-plane namespace of `host` in the cloud whose host-level names start with `prefix`.
pub fn dataplane_netns(prefix: &str, host: &str) -> String {
    format!("{prefix}-dp-{host}")
}

/// A network's bridge (in the data-plane namespace).
pub fn bridge(network_id: &str) -> String {
    format!("br{}", short(network_id))
}

/// A network's VXLAN device (in the data-plane namespace, its underlay in the root one).
pub fn vxlan(network_id: &str) -> String {
    format!("vx{}", short(network_id))
}

/// A physical network's uplink (in the data-plane namespace).
pub fn uplink(network_id: &str) -> String {
    format!("up{}", short(network_id))
}

/// A VLAN network's 802.1q device on its physical network's trunk (in the data-plane
/// namespace).
pub fn vlan(network_id: &str) -> String {
    format!("vl{}", short(network_id))
}

/// A guest port's tap, as Neutron names it (`tap` and the port id's first 11 characters).
pub fn tap(port_id: &str) -> String {
    ferrostack_agent_api::tap_name(port_id)
}

/// Every name the data plane gives a guest's tap starts with this (the ruleset drops frames
/// of taps it has no rules for).
pub const TAP_PREFIX: &str = "tap";

/// The first 11 characters of an id (Neutron's device name length for a uuid).
pub(crate) fn short(id: &str) -> &str {
    let end = id.char_indices().nth(11).map_or(id.len(), |(i, _)| i);
    &id[..end]
}

/// An id as an nftables identifier (letters, digits and `_` only).
pub fn nft_ident(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let id = "3f2a1b4c-5d6e-7f80-9a0b-1c2d3e4f5a6b";
        for n in [bridge(id), vxlan(id), uplink(id), vlan(id), tap(id)] {
            assert!(n.len() <= 15, "{n}");
        }
        assert_eq!(tap(id), "tap3f2a1b4c-5d");
        assert_eq!(bridge("net1"), "brnet1");
        assert_eq!(nft_ident("a-b.c"), "a_b_c");
    }
}
