//! IP address management, pure: CIDR and pool validation, the default gateway and pools of a
//! subnet, and picking free addresses. The database decides who gets an address (the
//! allocation's primary key); this module only says which address to try.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};

use crate::model::Pool;

/// Why an address, a CIDR or a pool is refused (the message is the client's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX))),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// Parses an address as Neutron's `ip_address` validator does (no zone, no leading zeros).
pub fn parse_ip(s: &str) -> Result<IpAddr, Invalid> {
    s.parse::<IpAddr>()
        .map_err(|_| Invalid(format!("'{s}' is not a valid IP address")))
}

/// Parses a subnet CIDR: an address with a prefix length that is the network's own address
/// (`10.0.0.1/24` is refused with the CIDR to use instead).
pub fn parse_subnet_cidr(s: &str) -> Result<IpNet, Invalid> {
    let net: IpNet = s
        .parse()
        .map_err(|_| Invalid(format!("'{s}' is not a valid IP subnet")))?;
    if net.addr() != net.network() {
        return Err(Invalid(format!(
            "'{s}' isn't a recognized IP subnet cidr, '{}' is recommended",
            net.trunc()
        )));
    }
    Ok(net)
}

/// Parses a prefix such as a rule's `remote_ip_prefix` (an address alone is a host prefix);
/// host bits are cleared, as Neutron normalizes them.
pub fn parse_prefix(s: &str) -> Result<IpNet, Invalid> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    match s.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => Err(Invalid(format!("'{s}' is not a valid IP subnet"))),
    }
}

/// The first and last addresses a subnet may hand out: all of it but the network address and,
/// for IPv4, the broadcast address (a /31 or /32 keeps every address, as RFC 3021 allows).
fn usable(cidr: &IpNet) -> Option<(u128, u128)> {
    let first = to_u128(cidr.network());
    let last = to_u128(cidr.broadcast());
    match cidr {
        IpNet::V4(n) if n.prefix_len() >= 31 => Some((first, last)),
        IpNet::V4(_) => Some((first + 1, last - 1)),
        IpNet::V6(n) if n.prefix_len() == 128 => Some((first, last)),
        IpNet::V6(_) => Some((first + 1, last)),
    }
}

/// The gateway a subnet gets when none is given: its first usable address.
pub fn default_gateway(cidr: &IpNet) -> Option<IpAddr> {
    let (first, last) = usable(cidr)?;
    (first <= last).then(|| from_u128(first, cidr.addr()))
}

/// The pools a subnet gets when none are given: every usable address but the gateway.
pub fn default_pools(cidr: &IpNet, gateway: Option<IpAddr>) -> Vec<Pool> {
    let Some((first, last)) = usable(cidr) else {
        return Vec::new();
    };
    let like = cidr.addr();
    let mut ranges = vec![(first, last)];
    if let Some(gw) = gateway.map(to_u128) {
        ranges = ranges
            .into_iter()
            .flat_map(|(a, b)| {
                if gw < a || gw > b {
                    vec![(a, b)]
                } else {
                    let mut out = Vec::new();
                    if gw > a {
                        out.push((a, gw - 1));
                    }
                    if gw < b {
                        out.push((gw + 1, b));
                    }
                    out
                }
            })
            .collect();
    }
    ranges
        .into_iter()
        .map(|(a, b)| Pool {
            start: from_u128(a, like),
            end: from_u128(b, like),
        })
        .collect()
}

/// Checks pools given for a subnet: inside its CIDR, ordered ends, no overlap, same family.
pub fn validate_pools(cidr: &IpNet, pools: &[Pool]) -> Result<(), Invalid> {
    let mut seen: Vec<(u128, u128)> = Vec::new();
    for p in pools {
        if p.start.is_ipv4() != cidr.addr().is_ipv4() || p.end.is_ipv4() != cidr.addr().is_ipv4() {
            return Err(Invalid(format!(
                "Invalid input for operation: allocation pool {}-{} is not of the subnet's IP version.",
                p.start, p.end
            )));
        }
        let (a, b) = (to_u128(p.start), to_u128(p.end));
        if a > b {
            return Err(Invalid(format!(
                "The allocation pool {}-{} spans beyond the subnet cidr {cidr}.",
                p.start, p.end
            )));
        }
        if !cidr.contains(&p.start) || !cidr.contains(&p.end) {
            return Err(Invalid(format!(
                "The allocation pool {}-{} spans beyond the subnet cidr {cidr}.",
                p.start, p.end
            )));
        }
        if let Some((sa, sb)) = seen.iter().find(|(sa, sb)| a <= *sb && *sa <= b) {
            return Err(Invalid(format!(
                "Found overlapping allocation pools: {}-{} and {}-{} for subnet {cidr}.",
                from_u128(*sa, p.start),
                from_u128(*sb, p.start),
                p.start,
                p.end
            )));
        }
        seen.push((a, b));
    }
    Ok(())
}

/// The pool a gateway address falls in, if any (a conflict: the gateway is never handed out).
pub fn pool_containing(pools: &[Pool], ip: IpAddr) -> Option<Pool> {
    let v = to_u128(ip);
    pools
        .iter()
        .find(|p| p.start.is_ipv4() == ip.is_ipv4() && to_u128(p.start) <= v && v <= to_u128(p.end))
        .copied()
}

/// Whether `ip` is the network address or (IPv4) the broadcast address of `cidr`: neither can
/// be a port's.
pub fn is_reserved(cidr: &IpNet, ip: IpAddr) -> bool {
    match usable(cidr) {
        Some((first, last)) => {
            let v = to_u128(ip);
            v < first || v > last
        }
        None => true,
    }
}

/// The lowest address of `pools` not in `used`.
pub fn first_free(pools: &[Pool], used: &HashSet<IpAddr>) -> Option<IpAddr> {
    for p in pools {
        let (mut v, end) = (to_u128(p.start), to_u128(p.end));
        while v <= end {
            let ip = from_u128(v, p.start);
            if !used.contains(&ip) {
                return Some(ip);
            }
            v += 1;
        }
    }
    None
}

/// Whether two CIDRs share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The IPv6 address SLAAC derives from a MAC (EUI-64) inside a /64.
pub fn eui64(prefix: &Ipv6Net, mac: &str) -> Option<IpAddr> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    if bytes.len() != 6 {
        return None;
    }
    let iid = [
        bytes[0] ^ 0x02,
        bytes[1],
        bytes[2],
        0xff,
        0xfe,
        bytes[3],
        bytes[4],
        bytes[5],
    ];
    let net = u128::from(prefix.network());
    let low = u64::from_be_bytes(iid) as u128;
    Some(IpAddr::V6(Ipv6Addr::from(net | low)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn a_cidr_must_be_its_network_address() {
        assert!(parse_subnet_cidr("10.0.0.0/24").is_ok());
        let e = parse_subnet_cidr("10.0.0.1/24").unwrap_err();
        assert!(e.0.contains("'10.0.0.0/24' is recommended"), "{e}");
        assert!(parse_subnet_cidr("10.0.0.300/24").is_err());
        assert!(parse_subnet_cidr("fd00::/64").is_ok());
    }

    #[test]
    fn default_pools_leave_out_network_broadcast_and_gateway() {
        let c = net("10.0.0.0/24");
        let gw = default_gateway(&c);
        assert_eq!(gw, Some(ip("10.0.0.1")));
        assert_eq!(
            default_pools(&c, gw),
            vec![Pool {
                start: ip("10.0.0.2"),
                end: ip("10.0.0.254")
            }]
        );
        // A gateway in the middle splits the pool.
        assert_eq!(
            default_pools(&c, Some(ip("10.0.0.100"))),
            vec![
                Pool {
                    start: ip("10.0.0.1"),
                    end: ip("10.0.0.99")
                },
                Pool {
                    start: ip("10.0.0.101"),
                    end: ip("10.0.0.254")
                }
            ]
        );
        // No gateway: everything usable.
        assert_eq!(default_pools(&c, None)[0].start, ip("10.0.0.1"));
        let v6 = net("fd00::/64");
        assert_eq!(default_gateway(&v6), Some(ip("fd00::1")));
        let p = default_pools(&v6, Some(ip("fd00::1")));
        assert_eq!(p[0].start, ip("fd00::2"));
        assert_eq!(p[0].end, ip("fd00::ffff:ffff:ffff:ffff"));
    }

    #[test]
    fn pools_must_sit_inside_the_cidr_and_not_overlap() {
        let c = net("10.0.0.0/24");
        let p = |a: &str, b: &str| Pool {
            start: ip(a),
            end: ip(b),
        };
        assert!(validate_pools(&c, &[p("10.0.0.2", "10.0.0.10")]).is_ok());
        assert!(validate_pools(&c, &[p("10.0.0.2", "10.0.1.10")]).is_err());
        assert!(validate_pools(&c, &[p("10.0.0.10", "10.0.0.2")]).is_err());
        assert!(validate_pools(
            &c,
            &[p("10.0.0.2", "10.0.0.10"), p("10.0.0.10", "10.0.0.20")]
        )
        .unwrap_err()
        .0
        .contains("overlapping"));
        assert!(validate_pools(&c, &[p("fd00::1", "fd00::2")]).is_err());
        assert_eq!(
            pool_containing(&[p("10.0.0.2", "10.0.0.10")], ip("10.0.0.5")),
            Some(p("10.0.0.2", "10.0.0.10"))
        );
        assert_eq!(
            pool_containing(&[p("10.0.0.2", "10.0.0.10")], ip("10.0.0.1")),
            None
        );
    }

    #[test]
    fn free_addresses_are_taken_lowest_first_across_pools() {
        let pools = [
            Pool {
                start: ip("10.0.0.2"),
                end: ip("10.0.0.3"),
            },
            Pool {
                start: ip("10.0.0.10"),
                end: ip("10.0.0.10"),
            },
        ];
        let mut used = HashSet::new();
        assert_eq!(first_free(&pools, &used), Some(ip("10.0.0.2")));
        used.insert(ip("10.0.0.2"));
        used.insert(ip("10.0.0.3"));
        assert_eq!(first_free(&pools, &used), Some(ip("10.0.0.10")));
        used.insert(ip("10.0.0.10"));
        assert_eq!(first_free(&pools, &used), None);
    }

    #[test]
    fn reserved_addresses_and_overlaps() {
        let c = net("10.0.0.0/24");
        assert!(is_reserved(&c, ip("10.0.0.0")));
        assert!(is_reserved(&c, ip("10.0.0.255")));
        assert!(!is_reserved(&c, ip("10.0.0.1")));
        assert!(overlaps(&net("10.0.0.0/16"), &net("10.0.5.0/24")));
        assert!(!overlaps(&net("10.0.0.0/24"), &net("10.0.1.0/24")));
        assert_eq!(parse_prefix("10.0.0.5/24").unwrap(), net("10.0.0.0/24"));
        assert_eq!(parse_prefix("10.0.0.5").unwrap(), net("10.0.0.5/32"));
    }

    #[test]
    fn slaac_addresses_follow_the_mac() {
        let p: Ipv6Net = "2001:db8::/64".parse().unwrap();
        assert_eq!(
            eui64(&p, "fa:16:3e:12:34:56"),
            Some(ip("2001:db8::f816:3eff:fe12:3456"))
        );
    }
}
