//! Query strings: the key/value pairs, and placement's `resources`, `required` and
//! `member_of` syntaxes.

use std::collections::BTreeMap;

use ferrostack_api::microversion::Microversion;

use crate::app::request::{MemberOf, TraitReq};
use crate::error::{codes, PlacementError, Result};

pub struct Query(pub Vec<(String, String)>);

fn bad_query(why: impl std::fmt::Display) -> PlacementError {
    PlacementError::BadRequest(format!("Invalid query string parameters: {why}"))
}

impl Query {
    pub fn parse(raw: Option<String>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of a key given at most once.
    pub fn one(&self, key: &str) -> Result<Option<&str>> {
        match self.all(key).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(PlacementError::bad_request_code(
                codes::ILLEGAL_DUPLICATE_QUERYPARAM,
                format!("Query parameter '{key}' may be specified only once."),
            )),
        }
    }

    /// Refuses keys for which `allowed` is false (placement's schemas allow no others).
    pub fn check_keys(&self, allowed: impl Fn(&str) -> bool) -> Result<()> {
        match self.0.iter().find(|(k, _)| !allowed(k)) {
            Some((k, _)) => Err(bad_query(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            ))),
            None => Ok(()),
        }
    }
}

/// `VCPU:2,MEMORY_MB:1024`.
pub fn resources(value: &str) -> Result<BTreeMap<String, i64>> {
    let badly_formed = || {
        PlacementError::BadRequest(format!(
            "Badly formed resources parameter. Expected resources query string parameter in \
             form: ?resources=VCPU:2,MEMORY_MB:1024. Got: {value}."
        ))
    };
    let mut out = BTreeMap::new();
    for part in value.split(',') {
        let (rc, amount) = part.split_once(':').ok_or_else(badly_formed)?;
        if rc.is_empty() {
            return Err(badly_formed());
        }
        let n = amount
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                PlacementError::BadRequest(format!(
                    "Requested resource {rc} expected positive integer amount. Got: {amount}."
                ))
            })?;
        if out.insert(rc.to_string(), n).is_some() {
            return Err(badly_formed());
        }
    }
    Ok(out)
}

/// `required` values: `A,!B` (forbidden from 1.22), `in:C,D` (any-of, from 1.39).
pub fn required(values: &[&str], key: &str, v: Microversion) -> Result<TraitReq> {
    let mut r = TraitReq::default();
    for value in values {
        let expected = || {
            bad_query(format!(
                "Expected '{key}' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. \
                 Got: {value}"
            ))
        };
        if value.is_empty() {
            return Err(expected());
        }
        if let Some(list) = value.strip_prefix("in:").filter(|_| v.at_least(1, 39)) {
            let any: Vec<String> = list.split(',').map(str::to_string).collect();
            if any.iter().any(|t| t.is_empty() || t.starts_with('!')) {
                return Err(expected());
            }
            r.any_of.push(any);
            continue;
        }
        for t in value.split(',') {
            match t.strip_prefix('!').filter(|_| v.at_least(1, 22)) {
                Some("") => return Err(expected()),
                Some(f) => r.forbidden.push(f.to_string()),
                None if t.is_empty() => return Err(expected()),
                None => r.required.push(t.to_string()),
            }
        }
    }
    let conflicts: Vec<&String> = r
        .required
        .iter()
        .filter(|t| r.forbidden.contains(t))
        .collect();
    if !conflicts.is_empty() {
        return Err(PlacementError::BadRequest(format!(
            "Conflicting required and forbidden traits found in the following traits keys: \
             {key}: ({})",
            conflicts
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(r)
}

/// `member_of` values: `agg`, `in:agg1,agg2`, and from 1.32 `!agg`, `!in:agg1,agg2`.
pub fn member_of(values: &[&str], key: &str, v: Microversion) -> Result<MemberOf> {
    let mut m = MemberOf::default();
    for value in values {
        let bad = || {
            bad_query(format!(
                "Expected '{key}' parameter to contain valid UUID(s). Got: {value}"
            ))
        };
        let uuids = |list: &str| -> Result<Vec<String>> {
            list.split(',')
                .map(|a| super::normalize_uuid(a).ok_or_else(bad))
                .collect()
        };
        if let Some(rest) = value.strip_prefix('!').filter(|_| v.at_least(1, 32)) {
            if rest.contains('!') {
                return Err(bad());
            }
            match rest.strip_prefix("in:") {
                Some(list) => m.forbidden.extend(uuids(list)?),
                None if rest.contains(',') => {
                    return Err(bad_query(format!(
                        "Multiple values for '{key}' must be prefixed with the 'in:' or \
                         '!in:' keyword using the valid uuid format. Got: {value}"
                    )))
                }
                None => m.forbidden.extend(uuids(rest)?),
            }
            continue;
        }
        if value.contains('!') {
            return Err(bad_query(format!(
                "Forbidden member_of parameters may not be combined with the 'in:' prefix \
                 or be used before microversion 1.32. Got: {value}"
            )));
        }
        match value.strip_prefix("in:") {
            Some(list) => m.any_of.push(uuids(list)?),
            None if value.contains(',') => {
                return Err(bad_query(format!(
                    "Multiple values for '{key}' must be prefixed with the 'in:' keyword. \
                     Got: {value}"
                )))
            }
            None => m.any_of.push(uuids(value)?),
        }
    }
    Ok(m)
}

/// `in_tree`: a provider UUID.
pub fn in_tree(value: &str, key: &str) -> Result<String> {
    super::normalize_uuid(value).ok_or_else(|| {
        bad_query(format!(
            "Expected '{key}' parameter to be a format of uuid. Got: {value}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "5e1a9f0c-7f5a-4bd2-9d2c-3b6a1f2e4c11";
    const U2: &str = "6e1a9f0c-7f5a-4bd2-9d2c-3b6a1f2e4c12";

    #[test]
    fn parses_resources() {
        let r = resources("VCPU:2,MEMORY_MB:1024").unwrap();
        assert_eq!(r["VCPU"], 2);
        assert!(resources("VCPU").is_err());
        assert!(resources("VCPU:0").is_err());
        assert!(resources("VCPU:1,VCPU:2").is_err());
    }

    #[test]
    fn parses_required_by_version() {
        let r = required(&["A,!B"], "required", Microversion(1, 22)).unwrap();
        assert_eq!(
            (r.required, r.forbidden),
            (vec!["A".into()], vec!["B".into()])
        );
        let r = required(&["!B"], "required", Microversion(1, 21)).unwrap();
        assert_eq!(r.required, vec!["!B".to_string()]);
        let r = required(&["in:A,B", "C"], "required", Microversion(1, 39)).unwrap();
        assert_eq!(r.any_of, vec![vec!["A".to_string(), "B".to_string()]]);
        assert!(required(&["A,!A"], "required", Microversion(1, 39)).is_err());
        assert!(required(&[""], "required", Microversion(1, 39)).is_err());
    }

    #[test]
    fn parses_member_of() {
        let m = member_of(
            &[&format!("in:{U1},{U2}"), &format!("!{U2}")],
            "member_of",
            Microversion(1, 32),
        )
        .unwrap();
        assert_eq!(m.any_of[0].len(), 2);
        assert_eq!(m.forbidden, vec![U2.to_string()]);
        assert!(member_of(&[&format!("!{U1}")], "member_of", Microversion(1, 31)).is_err());
        assert!(member_of(&["nope"], "member_of", Microversion(1, 32)).is_err());
        assert!(member_of(&[&format!("{U1},{U2}")], "member_of", Microversion(1, 32)).is_err());
    }
}
