//! Weighers: RAM, CPU and disk, each normalized to 0..1 across the candidate hosts and summed
//! (as Nova's weighers with multiplier 1.0). Spread favours the most free capacity, pack the
//! least.

use super::{HostState, Strategy};

const WEIGHED: [(&str, f64); 3] = [("MEMORY_MB", 1.0), ("VCPU", 1.0), ("DISK_GB", 1.0)];

pub fn rank(mut hosts: Vec<&HostState>, strategy: Strategy) -> Vec<&HostState> {
    if hosts.len() < 2 {
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
    order.sort_by(|&a, &b| {
        score[b]
            .partial_cmp(&score[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| hosts[a].host.cmp(&hosts[b].host))
    });
    let taken: Vec<&HostState> = order.iter().map(|&i| hosts[i]).collect();
    hosts.clear();
    hosts.extend(taken);
    hosts
}
