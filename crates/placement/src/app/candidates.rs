//! The allocation-candidate search (`GET /allocation_candidates`), in memory over a
//! [`Snapshot`]: for each provider tree, the providers of the tree plus the sharing providers
//! (`MISC_SHARES_VIA_AGGREGATE`) of its aggregates may serve the request; the unsuffixed
//! group may spread over several of them, each suffixed group is served by one provider.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::app::request::{Group, TraitReq};
use crate::app::snapshot::Snapshot;
use crate::app::{capacity, check_classes_exist, missing_traits};
use crate::error::{PlacementError, Result};
use crate::model::{ProviderInfo, SHARES_VIA_AGGREGATE};
use crate::PlacementService;

/// Combinations examined per group and per tree, so a large tree cannot make one request
/// explode; the first ones found are kept.
const MAX_COMBINATIONS: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct CandidateRequest {
    pub groups: Vec<Group>,
    /// `group_policy=isolate`: suffixed groups use different providers.
    pub isolate: bool,
    pub limit: Option<usize>,
    pub root_required: TraitReq,
    /// Each list of suffixes: one of the providers serving these groups is an ancestor of
    /// (or the same as) all the others.
    pub same_subtree: Vec<Vec<String>>,
    /// 1.29+: allocations may use nested providers. Before, only root providers serve.
    pub nested_aware: bool,
}

/// One way to serve the request: provider -> class -> amount, and which providers served
/// each group (by suffix, "" for the unsuffixed group).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocationRequest {
    pub allocations: BTreeMap<String, BTreeMap<String, i64>>,
    pub mappings: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct Candidates {
    pub requests: Vec<AllocationRequest>,
    /// Providers to summarize, in a stable order.
    pub summaries: Vec<String>,
}

/// How one group can be served within a tree.
struct Choice<'a> {
    alloc: BTreeMap<&'a str, BTreeMap<&'a str, i64>>,
    providers: Vec<&'a str>,
}

/// Index combinations of lists of the given lengths, at most `cap` of them.
fn product(lens: &[usize], cap: usize) -> Vec<Vec<usize>> {
    if lens.contains(&0) {
        return vec![];
    }
    let mut out = vec![];
    let mut idx = vec![0; lens.len()];
    loop {
        out.push(idx.clone());
        if out.len() >= cap {
            return out;
        }
        let mut i = lens.len();
        loop {
            if i == 0 {
                return out;
            }
            i -= 1;
            idx[i] += 1;
            if idx[i] < lens[i] {
                break;
            }
            idx[i] = 0;
        }
    }
}

struct Search<'a> {
    snap: &'a Snapshot,
    req: &'a CandidateRequest,
    /// The root of each group's `in_tree` provider.
    in_tree_roots: Vec<Option<&'a str>>,
}

impl<'a> Search<'a> {
    fn used(p: &ProviderInfo, rc: &str) -> i64 {
        p.used.get(rc).copied().unwrap_or(0)
    }

    fn serves(p: &ProviderInfo, rc: &str, amount: i64) -> bool {
        p.inventories
            .get(rc)
            .is_some_and(|inv| capacity::can_serve(inv, Self::used(p, rc), amount))
    }

    /// The tree and aggregate conditions of a group, on one provider. A provider counts as a
    /// member of its root's aggregates too.
    fn placement_ok(&self, gi: usize, p: &ProviderInfo) -> bool {
        let g = &self.req.groups[gi];
        if let Some(root) = self.in_tree_roots[gi] {
            if p.root_uuid != root {
                return false;
            }
        }
        if !g.member_of.is_empty() {
            let mut aggs = p.aggregates.clone();
            if let Some(root) = self.snap.providers.get(&p.root_uuid) {
                aggs.extend(root.aggregates.iter().cloned());
            }
            if !g.member_of.matches(&aggs) {
                return false;
            }
        }
        true
    }

    fn choices(
        &self,
        gi: usize,
        pool: &[&'a ProviderInfo],
        tree: &[&'a ProviderInfo],
    ) -> Vec<Choice<'a>> {
        let g = &self.req.groups[gi];
        if g.resources.is_empty() {
            // A resourceless group names a provider of the tree for `same_subtree`.
            return tree
                .iter()
                .filter(|p| self.placement_ok(gi, p) && g.traits.matches(&p.traits))
                .map(|p| Choice {
                    alloc: BTreeMap::new(),
                    providers: vec![p.uuid.as_str()],
                })
                .take(MAX_COMBINATIONS)
                .collect();
        }
        if g.same_provider() {
            return pool
                .iter()
                .filter(|p| {
                    self.placement_ok(gi, p)
                        && g.traits.matches(&p.traits)
                        && g.resources.iter().all(|(rc, &n)| Self::serves(p, rc, n))
                })
                .map(|p| Choice {
                    alloc: BTreeMap::from([(
                        p.uuid.as_str(),
                        g.resources
                            .iter()
                            .map(|(rc, &n)| (rc.as_str(), n))
                            .collect(),
                    )]),
                    providers: vec![p.uuid.as_str()],
                })
                .take(MAX_COMBINATIONS)
                .collect();
        }
        // The unsuffixed group: each class from any provider; required traits are satisfied
        // by the providers together, a forbidden trait by none of them.
        let lists: Vec<(&str, i64, Vec<&'a ProviderInfo>)> = g
            .resources
            .iter()
            .map(|(rc, &n)| {
                let ps = pool
                    .iter()
                    .copied()
                    .filter(|p| {
                        self.placement_ok(gi, p)
                            && !g.traits.forbidden.iter().any(|t| p.traits.contains(t))
                            && Self::serves(p, rc, n)
                    })
                    .collect();
                (rc.as_str(), n, ps)
            })
            .collect();
        let lens: Vec<usize> = lists.iter().map(|l| l.2.len()).collect();
        let mut out = vec![];
        for idx in product(&lens, MAX_COMBINATIONS) {
            let mut alloc: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
            let mut traits: BTreeSet<String> = BTreeSet::new();
            for (i, &j) in idx.iter().enumerate() {
                let (rc, n, ps) = &lists[i];
                let p = ps[j];
                alloc.entry(p.uuid.as_str()).or_default().insert(rc, *n);
                traits.extend(p.traits.iter().cloned());
            }
            if g.traits.matches(&traits) {
                let providers = alloc.keys().copied().collect();
                out.push(Choice { alloc, providers });
            }
        }
        out
    }

    fn same_subtree_ok(&self, chosen: &[&Choice<'a>]) -> bool {
        self.req.same_subtree.iter().all(|suffixes| {
            let provs: BTreeSet<&str> = self
                .req
                .groups
                .iter()
                .zip(chosen)
                .filter(|(g, _)| suffixes.contains(&g.suffix))
                .flat_map(|(_, c)| c.providers.iter().copied())
                .collect();
            provs
                .iter()
                .any(|a| provs.iter().all(|b| self.snap.is_ancestor_or_self(a, b)))
        })
    }

    /// Merges the groups' choices into one allocation request, or None when the merged
    /// amounts do not fit or the group policy / same_subtree refuse it.
    fn combine(&self, chosen: &[&Choice<'a>]) -> Option<AllocationRequest> {
        if self.req.isolate {
            let mut seen = HashSet::new();
            for (g, c) in self.req.groups.iter().zip(chosen) {
                if g.same_provider() && !g.resources.is_empty() {
                    for p in &c.providers {
                        if !seen.insert(*p) {
                            return None;
                        }
                    }
                }
            }
        }
        let mut merged: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for c in chosen {
            for (rp, res) in &c.alloc {
                let e = merged.entry(rp.to_string()).or_default();
                for (rc, n) in res {
                    *e.entry(rc.to_string()).or_default() += n;
                }
            }
        }
        if merged.is_empty() {
            return None;
        }
        for (rp, res) in &merged {
            let p = &self.snap.providers[rp];
            if !res.iter().all(|(rc, &n)| Self::serves(p, rc, n)) {
                return None;
            }
        }
        if !self.same_subtree_ok(chosen) {
            return None;
        }
        let mut mappings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (g, c) in self.req.groups.iter().zip(chosen) {
            let e = mappings.entry(g.suffix.clone()).or_default();
            e.extend(c.providers.iter().map(|s| s.to_string()));
            e.sort();
            e.dedup();
        }
        Some(AllocationRequest {
            allocations: merged,
            mappings,
        })
    }
}

/// The candidates found and the snapshot they were found in (which the provider summaries
/// describe).
pub struct Found {
    pub snapshot: Snapshot,
    pub candidates: Candidates,
}

impl PlacementService {
    /// The allocation candidates of `req` over the providers as they are now. Unknown
    /// resource classes or traits named by the request are 400s.
    pub async fn allocation_candidates(&self, req: &CandidateRequest) -> Result<Found> {
        {
            let mut conn = self.db.pool.acquire().await?;
            check_classes_exist(
                &mut conn,
                req.groups.iter().flat_map(|g| g.resources.keys()),
            )
            .await?;
            let mut names: Vec<String> = req.groups.iter().flat_map(|g| g.traits.names()).collect();
            names.extend(req.root_required.names());
            names.sort();
            names.dedup();
            let missing = missing_traits(&mut conn, &names).await?;
            if !missing.is_empty() {
                return Err(PlacementError::BadRequest(format!(
                    "No such trait(s): {}.",
                    missing.join(", ")
                )));
            }
        }
        let snapshot = self.snapshot().await?;
        let candidates = search(&snapshot, req);
        Ok(Found {
            snapshot,
            candidates,
        })
    }
}

/// The search itself, in memory over `snap`.
pub fn search(snap: &Snapshot, req: &CandidateRequest) -> Candidates {
    let mut in_tree_roots = vec![];
    for g in &req.groups {
        match &g.in_tree {
            None => in_tree_roots.push(None),
            Some(u) => match snap.providers.get(u) {
                Some(p) => in_tree_roots.push(Some(p.root_uuid.as_str())),
                // No such provider: nothing can be in its tree.
                None => return Candidates::default(),
            },
        }
    }
    let s = Search {
        snap,
        req,
        in_tree_roots,
    };

    let mut roots: Vec<&str> = vec![];
    let mut trees: HashMap<&str, Vec<&ProviderInfo>> = HashMap::new();
    let mut sharing_by_agg: HashMap<&str, Vec<&ProviderInfo>> = HashMap::new();
    for u in &snap.order {
        let p = &snap.providers[u];
        let tree = trees.entry(p.root_uuid.as_str()).or_insert_with(|| {
            roots.push(p.root_uuid.as_str());
            vec![]
        });
        tree.push(p);
        if p.traits.contains(SHARES_VIA_AGGREGATE) {
            for a in &p.aggregates {
                sharing_by_agg.entry(a.as_str()).or_default().push(p);
            }
        }
    }

    let mut out = Candidates::default();
    let mut seen: HashSet<AllocationRequest> = HashSet::new();
    let mut summarized: HashSet<&str> = HashSet::new();
    'trees: for root in roots {
        let Some(root_p) = snap.providers.get(root) else {
            continue;
        };
        if !req.root_required.matches(&root_p.traits) {
            continue;
        }
        let tree = &trees[root];
        let mut pool: Vec<&ProviderInfo> = tree.clone();
        let mut sharing: BTreeSet<&str> = BTreeSet::new();
        for p in tree {
            for a in &p.aggregates {
                for sp in sharing_by_agg.get(a.as_str()).into_iter().flatten() {
                    if sp.root_uuid != root {
                        sharing.insert(sp.uuid.as_str());
                    }
                }
            }
        }
        pool.extend(sharing.iter().map(|u| &snap.providers[*u]));
        let mut tree_only: Vec<&ProviderInfo> = tree.clone();
        if !req.nested_aware {
            pool.retain(|p| p.parent_uuid.is_none());
            tree_only.retain(|p| p.parent_uuid.is_none());
        }
        let mut per_group = vec![];
        for gi in 0..req.groups.len() {
            let c = s.choices(gi, &pool, &tree_only);
            if c.is_empty() {
                continue 'trees;
            }
            per_group.push(c);
        }
        let lens: Vec<usize> = per_group.iter().map(Vec::len).collect();
        for idx in product(&lens, MAX_COMBINATIONS) {
            let chosen: Vec<&Choice> = idx
                .iter()
                .enumerate()
                .map(|(g, &i)| &per_group[g][i])
                .collect();
            let Some(ar) = s.combine(&chosen) else {
                continue;
            };
            if !seen.insert(ar.clone()) {
                continue;
            }
            for rp in ar.allocations.keys() {
                let p = &snap.providers[rp];
                let members: Vec<&ProviderInfo> = if req.nested_aware {
                    trees[p.root_uuid.as_str()].clone()
                } else {
                    vec![p]
                };
                for m in members {
                    if summarized.insert(m.uuid.as_str()) {
                        out.summaries.push(m.uuid.clone());
                    }
                }
            }
            out.requests.push(ar);
            if req.limit.is_some_and(|l| out.requests.len() >= l) {
                break 'trees;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::request::MemberOf;
    use crate::Inventory;

    fn provider(uuid: &str, parent: Option<&str>, root: &str, inv: &[(&str, i64)]) -> ProviderInfo {
        ProviderInfo {
            uuid: uuid.into(),
            name: uuid.into(),
            parent_uuid: parent.map(str::to_string),
            root_uuid: root.into(),
            inventories: inv
                .iter()
                .map(|(rc, n)| (rc.to_string(), Inventory::new(*n)))
                .collect(),
            ..Default::default()
        }
    }

    fn snap(ps: Vec<ProviderInfo>) -> Snapshot {
        Snapshot {
            order: ps.iter().map(|p| p.uuid.clone()).collect(),
            providers: ps.into_iter().map(|p| (p.uuid.clone(), p)).collect(),
        }
    }

    fn group(suffix: &str, res: &[(&str, i64)]) -> Group {
        Group {
            suffix: suffix.into(),
            resources: res.iter().map(|(rc, n)| (rc.to_string(), *n)).collect(),
            ..Default::default()
        }
    }

    fn req(groups: Vec<Group>) -> CandidateRequest {
        CandidateRequest {
            groups,
            nested_aware: true,
            ..Default::default()
        }
    }

    #[test]
    fn product_enumerates_and_caps() {
        assert_eq!(product(&[2, 2], 10).len(), 4);
        assert_eq!(product(&[2, 0], 10).len(), 0);
        assert_eq!(product(&[10, 10], 7).len(), 7);
        assert_eq!(product(&[], 10), vec![Vec::<usize>::new()]);
    }

    #[test]
    fn capacity_and_traits_filter_trees() {
        let mut a = provider("a", None, "a", &[("VCPU", 4), ("MEMORY_MB", 1024)]);
        a.traits.insert("HW_CPU_X86_AVX2".into());
        let mut b = provider("b", None, "b", &[("VCPU", 8), ("MEMORY_MB", 4096)]);
        b.used.insert("VCPU".into(), 6);
        let s = snap(vec![a, b]);
        let r = search(&s, &req(vec![group("", &[("VCPU", 2)])]));
        assert_eq!(r.requests.len(), 2);
        let r = search(&s, &req(vec![group("", &[("VCPU", 3)])]));
        assert_eq!(r.requests.len(), 1);
        assert!(r.requests[0].allocations.contains_key("a"));
        let mut g = group("", &[("VCPU", 1)]);
        g.traits.forbidden = vec!["HW_CPU_X86_AVX2".into()];
        let r = search(&s, &req(vec![g]));
        assert_eq!(r.requests.len(), 1);
        assert!(r.requests[0].allocations.contains_key("b"));
        assert_eq!(r.summaries, vec!["b".to_string()]);
    }

    #[test]
    fn nested_tree_spreads_unsuffixed_group() {
        let cn = provider("cn", None, "cn", &[("VCPU", 4)]);
        let pf = provider("pf", Some("cn"), "cn", &[("SRIOV_NET_VF", 8)]);
        let s = snap(vec![cn, pf]);
        let r = search(
            &s,
            &req(vec![group("", &[("VCPU", 1), ("SRIOV_NET_VF", 1)])]),
        );
        assert_eq!(r.requests.len(), 1);
        assert_eq!(r.requests[0].allocations.len(), 2);
        assert_eq!(r.requests[0].mappings[""], vec!["cn", "pf"]);
        let mut old = req(vec![group("", &[("VCPU", 1), ("SRIOV_NET_VF", 1)])]);
        old.nested_aware = false;
        assert!(search(&s, &old).requests.is_empty());
    }

    #[test]
    fn sharing_provider_serves_trees_of_its_aggregate() {
        let mut cn = provider("cn", None, "cn", &[("VCPU", 4)]);
        cn.aggregates.insert("agg".into());
        let mut ss = provider("ss", None, "ss", &[("DISK_GB", 100)]);
        ss.aggregates.insert("agg".into());
        ss.traits.insert(SHARES_VIA_AGGREGATE.into());
        let s = snap(vec![cn, ss]);
        let r = search(&s, &req(vec![group("", &[("VCPU", 1), ("DISK_GB", 10)])]));
        assert_eq!(r.requests.len(), 1);
        assert_eq!(r.requests[0].allocations["ss"]["DISK_GB"], 10);
    }

    #[test]
    fn isolate_and_member_of() {
        let mut cn = provider("cn", None, "cn", &[]);
        cn.aggregates.insert("agg".into());
        let n0 = provider("n0", Some("cn"), "cn", &[("VCPU", 4)]);
        let n1 = provider("n1", Some("cn"), "cn", &[("VCPU", 4)]);
        let s = snap(vec![cn, n0, n1]);
        let groups = vec![group("1", &[("VCPU", 2)]), group("2", &[("VCPU", 2)])];
        let mut r = req(groups.clone());
        r.isolate = true;
        assert_eq!(search(&s, &r).requests.len(), 2);
        r.isolate = false;
        assert_eq!(search(&s, &r).requests.len(), 4);
        let mut g = group("1", &[("VCPU", 1)]);
        g.member_of = MemberOf {
            any_of: vec![vec!["agg".into()]],
            forbidden: vec![],
        };
        assert_eq!(search(&s, &req(vec![g.clone()])).requests.len(), 2);
        g.member_of.forbidden = vec!["agg".into()];
        assert!(search(&s, &req(vec![g])).requests.is_empty());
    }

    #[test]
    fn merged_groups_respect_capacity_and_limit() {
        let cn = provider("cn", None, "cn", &[("VCPU", 3)]);
        let s = snap(vec![cn]);
        let r = req(vec![group("", &[("VCPU", 2)]), group("1", &[("VCPU", 2)])]);
        assert!(search(&s, &r).requests.is_empty());
        let many = snap(
            (0..10)
                .map(|i| {
                    let u = format!("p{i}");
                    provider(&u, None, &u, &[("VCPU", 4)])
                })
                .collect(),
        );
        let mut r = req(vec![group("", &[("VCPU", 1)])]);
        r.limit = Some(3);
        assert_eq!(search(&many, &r).requests.len(), 3);
    }

    #[test]
    fn same_subtree_needs_a_common_ancestor() {
        let cn = provider("cn", None, "cn", &[]);
        let numa0 = provider("numa0", Some("cn"), "cn", &[("VCPU", 4)]);
        let numa1 = provider("numa1", Some("cn"), "cn", &[("VCPU", 4)]);
        let gpu0 = provider("gpu0", Some("numa0"), "cn", &[("VGPU", 1)]);
        let s = snap(vec![cn, numa0, numa1, gpu0]);
        let mut r = req(vec![
            group("_C", &[("VCPU", 1)]),
            group("_G", &[("VGPU", 1)]),
        ]);
        r.same_subtree = vec![vec!["_C".into(), "_G".into()]];
        let found = search(&s, &r);
        assert_eq!(found.requests.len(), 1);
        assert_eq!(found.requests[0].mappings["_C"], vec!["numa0"]);
    }
}
