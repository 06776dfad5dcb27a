//! Request bodies: the resource object(s) of a create or update, and typed attribute readers
//! whose errors are Neutron's (`Invalid input for <attr>. Reason: ...`).

use serde_json::{Map, Value};

use crate::error::{NetworkError, Result};

pub type Obj = Map<String, Value>;

/// The objects of a create body: `{"network": {...}}`, or `{"networks": [...]}` (bulk).
/// Returns them and whether the request was a bulk one.
pub fn create_body(bytes: &[u8], singular: &str, plural: &str) -> Result<(Vec<Obj>, bool)> {
    let v: Value = ferrostack_api::json::parse(bytes)?;
    if let Some(one) = v.get(singular) {
        return match one {
            Value::Object(m) => Ok((vec![m.clone()], false)),
            _ => Err(NetworkError::bad_request(
                "BadRequest",
                format!("Bad {singular} request: the body's '{singular}' must be an object."),
            )),
        };
    }
    match v.get(plural) {
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Value::Object(m) => out.push(m.clone()),
                    _ => {
                        return Err(NetworkError::bad_request(
                            "BadRequest",
                            format!("Bad {plural} request: every item must be an object."),
                        ))
                    }
                }
            }
            Ok((out, true))
        }
        _ => Err(NetworkError::bad_request(
            "BadRequest",
            format!("Resource body required: expected '{singular}' or '{plural}'."),
        )),
    }
}

/// The object of an update body (`{"network": {...}}`).
pub fn update_body(bytes: &[u8], singular: &str) -> Result<Obj> {
    let v: Value = ferrostack_api::json::parse(bytes)?;
    match v.get(singular) {
        Some(Value::Object(m)) => Ok(m.clone()),
        _ => Err(NetworkError::bad_request(
            "BadRequest",
            format!("Resource body required: expected '{singular}'."),
        )),
    }
}

/// Refuses attributes the resource does not have (or that cannot be set this way).
pub fn only(obj: &Obj, allowed: &[&str]) -> Result<()> {
    let bad: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(NetworkError::bad_request(
            "HTTPBadRequest",
            format!("Unrecognized attribute(s) '{}'", bad.join(", ")),
        ))
    }
}

/// A string attribute of at most `max` characters (`null` only where `nullable`).
pub fn string(obj: &Obj, key: &str, max: usize) -> Result<Option<String>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(NetworkError::invalid_attr(
            key,
            format!("'{s}' exceeds maximum length of {max}"),
        )),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not a valid string"),
        )),
    }
}

/// A boolean attribute; Neutron also takes "true"/"false" and 0/1.
pub fn boolean(obj: &Obj, key: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' cannot be converted to boolean"),
        )),
    }
}

/// An integer attribute (a JSON number or a numeric string); `null` is none.
pub fn integer(obj: &Obj, key: &str) -> Result<Option<i64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not an integer"),
        )),
    }
}

/// A list of strings.
pub fn strings(obj: &Obj, key: &str) -> Result<Option<Vec<String>>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(NetworkError::invalid_attr(
                    key,
                    format!("'{other}' is not a valid string"),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not a list"),
        )),
    }
}

/// An IP address given as a string.
pub fn ip(obj: &Obj, key: &str) -> Result<Option<std::net::IpAddr>> {
    match string(obj, key, 64)? {
        None => Ok(None),
        Some(s) => Ok(Some(
            crate::ipam::parse_ip(&s).map_err(|e| NetworkError::invalid_attr(key, e))?,
        )),
    }
}

/// A list of CIDRs (an address alone is its host prefix).
pub fn prefixes(obj: &Obj, key: &str) -> Result<Option<Vec<ipnet::IpNet>>> {
    match strings(obj, key)? {
        None => Ok(None),
        Some(list) => list
            .iter()
            .map(|p| crate::ipam::parse_prefix(p).map_err(|e| NetworkError::invalid_attr(key, e)))
            .collect::<Result<Vec<_>>>()
            .map(Some),
    }
}

/// A list of objects (`null`: an empty list).
pub fn objects(obj: &Obj, key: &str) -> Result<Option<Vec<Obj>>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Object(m) => Ok(m.clone()),
                other => Err(NetworkError::invalid_attr(
                    key,
                    format!("'{other}' is not a dictionary"),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(other) => Err(NetworkError::invalid_attr(
            key,
            format!("'{other}' is not a list"),
        )),
    }
}

/// The project a create names (`project_id`, or the older `tenant_id`; both must agree).
pub fn project(obj: &Obj) -> Result<Option<String>> {
    let p = string(obj, "project_id", 255)?;
    let t = string(obj, "tenant_id", 255)?;
    match (p, t) {
        (Some(a), Some(b)) if a != b => Err(NetworkError::bad_request(
            "HTTPBadRequest",
            "'project_id' and 'tenant_id' do not match",
        )),
        (Some(a), _) | (None, Some(a)) => Ok(Some(a)),
        (None, None) => Ok(None),
    }
}

/// `If-Match: revision_number=N` (Neutron's `revision-if-match`).
pub fn if_match(headers: &http::HeaderMap) -> Result<Option<i64>> {
    let Some(v) = headers.get(http::header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v.to_str().unwrap_or("");
    for part in s.split(',') {
        if let Some(n) = part.trim().strip_prefix("revision_number=") {
            return n.trim().parse().map(Some).map_err(|_| {
                NetworkError::bad_request(
                    "HTTPBadRequest",
                    format!("If-Match header without revision_number=<int>: {s}"),
                )
            });
        }
    }
    Ok(None)
}
