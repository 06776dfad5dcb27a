//! Trait and aggregate requirements of provider filters and request groups.

use std::collections::{BTreeMap, BTreeSet};

/// Required, any-of (1.39) and forbidden (1.22) traits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraitReq {
    pub required: Vec<String>,
    /// Each inner list needs at least one of its traits.
    pub any_of: Vec<Vec<String>>,
    pub forbidden: Vec<String>,
}

impl TraitReq {
    pub fn is_empty(&self) -> bool {
        self.required.is_empty() && self.any_of.is_empty() && self.forbidden.is_empty()
    }

    /// Every trait named, to check that they exist.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .required
            .iter()
            .chain(self.any_of.iter().flatten())
            .chain(self.forbidden.iter())
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Whether a set of traits (one provider's, or the union of several providers') satisfies
    /// the requirement; for a union, "forbidden" means no provider has the trait.
    pub fn matches(&self, traits: &BTreeSet<String>) -> bool {
        self.required.iter().all(|t| traits.contains(t))
            && self
                .any_of
                .iter()
                .all(|any| any.iter().any(|t| traits.contains(t)))
            && !self.forbidden.iter().any(|t| traits.contains(t))
    }
}

/// `member_of`: each `any_of` list needs one of its aggregates; none of `forbidden` (1.32).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberOf {
    pub any_of: Vec<Vec<String>>,
    pub forbidden: Vec<String>,
}

impl MemberOf {
    pub fn is_empty(&self) -> bool {
        self.any_of.is_empty() && self.forbidden.is_empty()
    }

    pub fn matches(&self, aggs: &BTreeSet<String>) -> bool {
        self.any_of
            .iter()
            .all(|any| any.iter().any(|a| aggs.contains(a)))
            && !self.forbidden.iter().any(|a| aggs.contains(a))
    }
}

/// One request group of `GET /allocation_candidates`: `resources{S}`, `required{S}`,
/// `member_of{S}`, `in_tree{S}`; the unsuffixed group has suffix "".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub suffix: String,
    pub resources: BTreeMap<String, i64>,
    pub traits: TraitReq,
    pub member_of: MemberOf,
    pub in_tree: Option<String>,
}

impl Group {
    /// Suffixed groups are satisfied by one provider; the unsuffixed one by any providers of
    /// the tree (and sharing providers).
    pub fn same_provider(&self) -> bool {
        !self.suffix.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn traits_required_any_forbidden() {
        let r = TraitReq {
            required: vec!["A".into()],
            any_of: vec![vec!["B".into(), "C".into()]],
            forbidden: vec!["D".into()],
        };
        assert!(r.matches(&set(&["A", "C"])));
        assert!(!r.matches(&set(&["A"])));
        assert!(!r.matches(&set(&["A", "B", "D"])));
        assert!(TraitReq::default().matches(&set(&[])));
        assert_eq!(r.names(), vec!["A", "B", "C", "D"]);
    }

    #[test]
    fn member_of_any_and_forbidden() {
        let m = MemberOf {
            any_of: vec![vec!["a1".into(), "a2".into()], vec!["a3".into()]],
            forbidden: vec!["a4".into()],
        };
        assert!(m.matches(&set(&["a2", "a3"])));
        assert!(!m.matches(&set(&["a2"])));
        assert!(!m.matches(&set(&["a1", "a3", "a4"])));
    }
}
