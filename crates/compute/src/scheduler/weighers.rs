//! Weighers: RAM, CPU and disk, each normalized to 0..1 across the candidate hosts and summed
//! (as Nova's weighers with multiplier 1.0). Spread favours the most free capacity, pack the
//! least.

use super::{HostState, Strategy};

const WEIGHED: [(&str, f64); 3] = [("MEMORY_MB", 1.0), ("VCPU", 1.0), ("DISK_GB", 1.0)];

pub fn rank(hosts: Vec<&HostState>, strategy: Strategy) -> Vec<&HostState> {
    rank_top(hosts, strategy, usize::MAX)
}

/// The best `k` hosts of `hosts`, best first (the same order as the first `k` of [`rank`]).
pub fn rank_top(mut hosts: Vec<&HostState>, strategy: Strategy, k: usize) -> Vec<&HostState> {
    if hosts.len() < 2 || k == 0 {
        hosts.truncate(k);
        return hosts;
    }
    let sign = match strategy {
        Strategy::Spread => 1.0,
        Strategy::Pack => -1.0,
    };
    let mut score = vec![0.0f64; hosts.len()];
    for (class, multiplier) in WEIGHED {
        let vals: Vec<f64> = hosts
            .iter()
            .map(|h| h.free.get(class).copied().unwrap_or(0) as f64)
            .collect();
        let (lo, hi) = vals
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi > lo {
            for (s, v) in score.iter_mut().zip(&vals) {
                *s += sign * multiplier * (v - lo) / (hi - lo);
            }
        }
    }
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    // Ties keep a stable, name-based order so decisions are reproducible.
    let cmp = |&a: &usize, &b: &usize| {
        score[b]
            .partial_cmp(&score[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| hosts[a].host.cmp(&hosts[b].host))
    };
    if k < order.len() {
        // Only the best k: partition around the k-th, then sort those.
        order.select_nth_unstable_by(k - 1, cmp);
        order.truncate(k);
    }
    order.sort_by(cmp);
    let taken: Vec<&HostState> = order.iter().map(|&i| hosts[i]).collect();
    hosts.clear();
    hosts.extend(taken);
    hosts
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn host(name: &str, vcpu: i64, ram: i64) -> HostState {
        let res = BTreeMap::from([
            ("VCPU".to_string(), vcpu),
            ("MEMORY_MB".to_string(), ram),
            ("DISK_GB".to_string(), 100),
        ]);
        HostState {
            host: name.into(),
            provider_uuid: format!("rp-{name}"),
            hypervisor_type: "fake".into(),
            enabled: true,
            up: true,
            free: res.clone(),
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
