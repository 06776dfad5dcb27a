//! The outside world of an all-in-one cloud: a namespace with one bridge that the uplinks of
//! a physical network join, holding the external network's gateway address. It stands for
//! the operator's physical network and its router, so guests' traffic to "the outside" (SNAT,
//! floating IPs) never leaves the machine, and tests reach guests from there.

use ipnet::IpNet;

use crate::host::NetHost;
use crate::Result;

/// Makes (or finds) namespace `netns` with bridge `bridge` holding `gateway`.
pub async fn ensure_outside(
    host: &dyn NetHost,
    netns: &str,
    bridge: &str,
    gateway: IpNet,
) -> Result<()> {
    if !host.namespaces().await?.iter().any(|n| n == netns) {
        host.add_namespace(netns).await?;
    }
    if !host
        .links(Some(netns))
        .await?
        .iter()
        .any(|l| l.name == bridge)
    {
        host.add_bridge(netns, bridge, 1500).await?;
    }
    if !host.addresses(netns, bridge).await?.contains(&gateway) {
        host.add_address(netns, bridge, gateway).await?;
    }
    Ok(())
}
