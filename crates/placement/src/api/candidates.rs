//! `GET /allocation_candidates` (1.10): request groups from the query string, the search in
//! `app::candidates`, and the response in the shape of the requested microversion.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::RawQuery;
use axum::response::Response;
use ferrostack_api::microversion::Microversion;
use ferrostack_api::Auth;
use http::StatusCode;
use serde_json::{json, Map, Value};

use super::query::{self, Query};
use super::{gate, reply, State};
use crate::app::candidates::{CandidateRequest, Candidates};
use crate::app::capacity;
use crate::app::request::{Group, TraitReq};
use crate::app::snapshot::Snapshot;
use crate::error::{codes, PlacementError, Result};

const GROUP_KEYS: [&str; 4] = ["resources", "required", "member_of", "in_tree"];

/// Splits `resources_X` into (`resources`, `_X`).
fn split_key(key: &str) -> Option<(&'static str, &str)> {
    GROUP_KEYS
        .iter()
        .find(|p| key.starts_with(**p))
        .map(|p| (*p, &key[p.len()..]))
}

fn suffix_ok(v: Microversion, s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    if !v.at_least(1, 25) {
        return false;
    }
    if v.at_least(1, 33) {
        s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    } else {
        s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0')
    }
}

fn key_allowed(v: Microversion, key: &str) -> bool {
    match key {
        "limit" => v.at_least(1, 16),
        "group_policy" => v.at_least(1, 25),
        "root_required" => v.at_least(1, 35),
        "same_subtree" => v.at_least(1, 36),
        _ => match split_key(key) {
            Some((prefix, suffix)) => {
                let since = match prefix {
                    "resources" => (1, 10),
                    "required" => (1, 17),
                    "member_of" => (1, 21),
                    _ => (1, 31),
                };
                v.at_least(since.0, since.1) && suffix_ok(v, suffix)
            }
            None => false,
        },
    }
}

fn bad_value(msg: String) -> PlacementError {
    PlacementError::bad_request_code(codes::QUERYPARAM_BAD_VALUE, msg)
}

/// The request groups, group policy, limit, root_required and same_subtree of a query.
fn parse(q: &Query, v: Microversion) -> Result<CandidateRequest> {
    q.check_keys(|k| key_allowed(v, k))?;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let suffixes: BTreeSet<&str> =
        q.0.iter()
            .filter_map(|(k, _)| split_key(k).map(|(_, s)| s))
            .collect();
    for s in suffixes {
        let mut g = Group {
            suffix: s.to_string(),
            ..Default::default()
        };
        if let Some(r) = q.one(&format!("resources{s}"))? {
            g.resources = query::resources(r)?;
        }
        let req_key = format!("required{s}");
        let req_values = q.all(&req_key);
        if !req_values.is_empty() {
            g.traits = query::required(&req_values, &req_key, v)?;
        }
        let mo_key = format!("member_of{s}");
        g.member_of = query::member_of(&q.all(&mo_key), &mo_key, v)?;
        let it_key = format!("in_tree{s}");
        if let Some(t) = q.one(&it_key)? {
            g.in_tree = Some(query::in_tree(t, &it_key)?);
        }
        groups.insert(s.to_string(), g);
    }
    if !groups.values().any(|g| !g.resources.is_empty()) {
        return Err(PlacementError::BadRequest(
            "At least one request group (`resources` or `resources{$S}`) must be specified.".into(),
        ));
    }
    let mut same_subtree = vec![];
    for value in q.all("same_subtree") {
        let list: Vec<String> = value.split(',').map(str::to_string).collect();
        if list.iter().any(String::is_empty) {
            return Err(bad_value(
                "Empty string (unsuffixed group) can not be specified in `same_subtree` ".into(),
            ));
        }
        let unknown: Vec<&String> = list.iter().filter(|s| !groups.contains_key(*s)).collect();
        if !unknown.is_empty() {
            return Err(bad_value(format!(
                "Real suffixes should be specified in `same_subtree`: {unknown:?} not found in \
                 request groups"
            )));
        }
        same_subtree.push(list);
    }
    let in_subtree: BTreeSet<&String> = same_subtree.iter().flatten().collect();
    let resourceless: Vec<&String> = groups
        .values()
        .filter(|g| g.same_provider() && g.resources.is_empty() && !in_subtree.contains(&g.suffix))
        .map(|g| &g.suffix)
        .collect();
    if !resourceless.is_empty() {
        return Err(bad_value(format!(
            "Resourceless suffixed group request should be specified in `same_subtree` query \
             param: bad group(s) - {resourceless:?}."
        )));
    }
    let numbered = groups
        .values()
        .filter(|g| g.same_provider() && !g.resources.is_empty())
        .count();
    let isolate = match q.one("group_policy")? {
        None if numbered > 1 => {
            return Err(PlacementError::BadRequest(
                "The \"group_policy\" parameter is required when specifying more than one \
                 \"resources{N}\" parameter."
                    .into(),
            ))
        }
        None | Some("none") => false,
        Some("isolate") => true,
        Some(other) => {
            return Err(PlacementError::BadRequest(format!(
                "Invalid query string parameters: '{other}' is not one of ['none', 'isolate']"
            )))
        }
    };
    let limit = match q.one("limit")? {
        None => None,
        Some(l) => Some(l.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            PlacementError::BadRequest(format!(
                "Invalid query string parameters: '{l}' does not match '^[1-9][0-9]*$'"
            ))
        })?),
    };
    let root_required = match q.one("root_required")? {
        None => TraitReq::default(),
        Some(r) => {
            if r.starts_with("in:") {
                return Err(bad_value(format!(
                    "Invalid query string parameters: 'in:' is not supported in root_required. Got: {r}"
                )));
            }
            query::required(&[r], "root_required", v)?
        }
    };
    // Empty unsuffixed group (only suffixed groups asked for): nothing to satisfy.
    groups.retain(|s, g| {
        !s.is_empty()
            || !g.resources.is_empty()
            || !g.traits.is_empty()
            || !g.member_of.is_empty()
            || g.in_tree.is_some()
    });
    Ok(CandidateRequest {
        groups: groups.into_values().collect(),
        isolate,
        limit,
        root_required,
        same_subtree,
        nested_aware: v.at_least(1, 29),
    })
}

fn render(snap: &Snapshot, req: &CandidateRequest, found: &Candidates, v: Microversion) -> Value {
    let requests: Vec<Value> = found
        .requests
        .iter()
        .map(|ar| {
            if v.at_least(1, 12) {
                let allocs: Map<String, Value> = ar
                    .allocations
                    .iter()
                    .map(|(rp, res)| (rp.clone(), json!({"resources": res})))
                    .collect();
                let mut body = json!({"allocations": allocs});
                if v.at_least(1, 34) {
                    body["mappings"] = json!(ar.mappings);
                }
                body
            } else {
                let allocs: Vec<Value> = ar
                    .allocations
                    .iter()
                    .map(|(rp, res)| json!({"resource_provider": {"uuid": rp}, "resources": res}))
                    .collect();
                json!({"allocations": allocs})
            }
        })
        .collect();
    let requested: BTreeSet<&String> = req.groups.iter().flat_map(|g| g.resources.keys()).collect();
    let mut summaries = Map::new();
    for u in &found.summaries {
        let p = &snap.providers[u];
        let resources: Map<String, Value> = p
            .inventories
            .iter()
            .filter(|(rc, _)| v.at_least(1, 27) || requested.contains(rc))
            .map(|(rc, inv)| {
                (
                    rc.clone(),
                    json!({"capacity": capacity::capacity(inv), "used": p.used.get(rc).copied().unwrap_or(0)}),
                )
            })
            .collect();
        let mut s = json!({"resources": resources});
        if v.at_least(1, 17) {
            s["traits"] = json!(p.traits);
        }
        if v.at_least(1, 29) {
            s["parent_provider_uuid"] = json!(p.parent_uuid);
            s["root_provider_uuid"] = json!(p.root_uuid);
        }
        summaries.insert(u.clone(), s);
    }
    json!({"allocation_requests": requests, "provider_summaries": summaries})
}

pub async fn list(
    state: State,
    auth: Auth,
    v: Microversion,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    gate(v, 1, 10)?;
    let svc = &state.0;
    auth.enforce(
        &svc.policy,
        "placement:allocation_candidates:list",
        &json!({}),
    )?;
    let req = parse(&Query::parse(raw), v)?;
    let found = svc.allocation_candidates(&req).await?;
    Ok(reply(
        StatusCode::OK,
        render(&found.snapshot, &req, &found.candidates, v),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s.to_string()))
    }

    #[test]
    fn parses_groups_and_checks_versions() {
        let r = parse(
            &q("resources=VCPU:1&resources1=VGPU:1&resources2=VGPU:1&group_policy=isolate"),
            Microversion(1, 25),
        )
        .unwrap();
        assert_eq!(r.groups.len(), 3);
        assert_eq!(r.groups[0].suffix, "");
        assert!(r.isolate);
        assert!(parse(
            &q("resources1=VGPU:1&resources2=VGPU:1"),
            Microversion(1, 25)
        )
        .is_err());
        assert!(parse(&q("resources1=VGPU:1"), Microversion(1, 24)).is_err());
        assert!(parse(&q("resources_X=VGPU:1"), Microversion(1, 32)).is_err());
        assert!(parse(&q("resources_X=VGPU:1"), Microversion(1, 33)).is_ok());
        assert!(parse(&q("required=HW_CPU_X86_AVX"), Microversion(1, 17)).is_err());
        assert!(parse(&q("resources=VCPU:1&limit=0"), Microversion(1, 16)).is_err());
        assert!(parse(&q("resources=VCPU:1&limit=2"), Microversion(1, 15)).is_err());
        assert!(parse(&q("resources=VCPU:1&required_A=X"), Microversion(1, 36)).is_err());
        let r = parse(
            &q("resources_A=VCPU:1&required_B=X&same_subtree=_A,_B"),
            Microversion(1, 36),
        )
        .unwrap();
        assert_eq!(
            r.same_subtree,
            vec![vec!["_A".to_string(), "_B".to_string()]]
        );
    }
}
