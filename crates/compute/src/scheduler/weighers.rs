//! Weighers: RAM, CPU and disk, each normalized to 0..1 across the candidate hosts and summed
//! (as Nova's weighers with multiplier 1.0). Spread favours the most free capacity, pack the
//! least.

use super::{HostState, Resources, Strategy};

/// Reads one amount of a host's free capacity.
type Read = fn(&Resources) -> i64;

/// What each weigher reads, with its multiplier.
const WEIGHED: [(Read, f64); 3] = [
    (|r| r.memory_mb, 1.0),
    (|r| r.vcpu, 1.0),
    (|r| r.disk_gb, 1.0),
];

pub fn rank(hosts: Vec<&HostState>, strategy: Strategy) -> Vec<&HostState> {
    rank_top(hosts, strategy, usize::MAX)
}

/// The best `k` hosts of `hosts`, best first (the same order as the first `k` of [`rank`]).
/// Equally weighed hosts keep their order in `hosts` (the scheduler's host states are sorted
/// by name, so ties go to the first name, reproducibly).
pub fn rank_top(mut hosts: Vec<&HostState>, strategy: Strategy, k: usize) -> Vec<&HostState> {
    if hosts.len() < 2 || k == 0 {
        hosts.truncate(k);
        return hosts;
    }
    let sign = match strategy {
        Strategy::Spread => 1.0,
        Strategy::Pack => -1.0,
    };
    let mut lo = [i64::MAX; WEIGHED.len()];
    let mut hi = [i64::MIN; WEIGHED.len()];
    for h in &hosts {
        for (j, (read, _)) in WEIGHED.iter().enumerate() {
            let v = read(&h.free);
            lo[j] = lo[j].min(v);
            hi[j] = hi[j].max(v);
        }
    }
    // (score, position): a compact key, so partitioning 10,000 hosts stays in cache.
    let mut keyed: Vec<(f64, u32)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut score = 0.0;
            for (j, (read, multiplier)) in WEIGHED.iter().enumerate() {
                if hi[j] > lo[j] {
                    score += multiplier * (read(&h.free) - lo[j]) as f64 / (hi[j] - lo[j]) as f64;
                }
            }
            (sign * score, u32::try_from(i).unwrap_or(u32::MAX))
        })
        .collect();
    let cmp = |a: &(f64, u32), b: &(f64, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if k < keyed.len() {
        // Only the best k: partition around the k-th, then sort those.
        keyed.select_nth_unstable_by(k - 1, cmp);
        keyed.truncate(k);
    }
    keyed.sort_unstable_by(cmp);
    keyed.into_iter().map(|(_, i)| hosts[i as usize]).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn host(name: &str, vcpu: i64, ram: i64) -> HostState {
        let res = Resources {
            vcpu,
            memory_mb: ram,
            disk_gb: 100,
        };
        HostState {
            host: name.into(),
            provider_uuid: format!("rp-{name}"),
            hypervisor_type: "fake".into(),
            enabled: true,
            up: true,
            free: res,
            capacity: res,
            availability_zone: "nova".into(),
            aggregate_metadata: BTreeMap::new(),
            instances: Default::default(),
        }
    }

    #[test]
    fn the_top_k_are_the_first_k_of_the_full_ranking() {
        // Distinct and tied scores alike (names break the ties).
        let hosts: Vec<HostState> = (0..50)
            .map(|i| host(&format!("h{i:02}"), (i * 7) % 5, (i * 13) % 11 * 512))
            .collect();
        for strategy in [Strategy::Spread, Strategy::Pack] {
            let full: Vec<&str> = rank(hosts.iter().collect(), strategy)
                .iter()
                .map(|h| h.host.as_str())
                .collect();
            for k in [0, 1, 3, 10, 49, 50, 80] {
                let top: Vec<&str> = rank_top(hosts.iter().collect(), strategy, k)
                    .iter()
                    .map(|h| h.host.as_str())
                    .collect();
                assert_eq!(top, full[..k.min(full.len())], "k={k}");
            }
        }
    }
}
