//! Wire helpers shared by the identity handlers: links, field validation, extras.

use serde_json::{json, Map, Value};

use crate::error::{IdentityError, Result};
use crate::Identity;

pub type Object = Map<String, Value>;

/// `{"self": "<v3 url>/<path>"}`
pub fn self_link(id: &Identity, path: &str) -> Value {
    json!({"self": format!("{}/{}", id.config.v3_url(), path)})
}

/// The `links` of a collection.
pub fn collection_links(id: &Identity, path: &str) -> Value {
    json!({"self": format!("{}/{}", id.config.v3_url(), path), "previous": null, "next": null})
}

/// Takes the object under `key` of a request body (`{"user": {...}}`), 400 when missing.
pub fn body_object(body: Value, key: &str) -> Result<Object> {
    match body {
        Value::Object(mut m) => match m.remove(key) {
            Some(Value::Object(o)) => Ok(o),
            Some(_) => Err(IdentityError::validation(format!(
                "Invalid input for field '{key}': it must be an object."
            ))),
            None => Err(IdentityError::validation(format!(
                "Expecting to find {key} in request body."
            ))),
        },
        _ => Err(IdentityError::validation(
            "The request body must be a JSON object.",
        )),
    }
}

/// A required string field of 1..=max characters (after trimming surrounding spaces).
pub fn take_name(o: &mut Object, field: &str, max: usize) -> Result<String> {
    match o.remove(field) {
        Some(Value::String(s)) => check_name(field, s, max),
        Some(other) => Err(type_error(field, &other, "string")),
        None => Err(IdentityError::validation(format!(
            "'{field}' is a required property"
        ))),
    }
}

/// `take_name` with surrounding spaces removed, as Keystone stores the names of users, groups,
/// projects and domains (the length is checked on the value as sent, like Keystone's schema).
pub fn take_stripped_name(o: &mut Object, field: &str, max: usize) -> Result<String> {
    take_name(o, field, max).map(|s| s.trim().to_string())
}

pub fn check_name(field: &str, s: String, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(IdentityError::validation(format!(
            "Invalid input for field '{field}': '{s}' is too short"
        )));
    }
    if s.chars().count() > max {
        return Err(IdentityError::validation(format!(
            "Invalid input for field '{field}': the value is longer than {max} characters"
        )));
    }
    Ok(s)
}

pub fn type_error(field: &str, v: &Value, expected: &str) -> IdentityError {
    IdentityError::validation(format!(
        "Invalid input for field '{field}': {v} is not of type '{expected}'"
    ))
}

/// An optional string field; JSON null counts as absent.
pub fn take_opt_string(o: &mut Object, field: &str, max: usize) -> Result<Option<String>> {
    match o.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s)),
        Some(Value::String(_)) => Err(IdentityError::validation(format!(
            "Invalid input for field '{field}': the value is longer than {max} characters"
        ))),
        Some(other) => Err(type_error(field, &other, "string")),
    }
}

pub fn take_opt_bool(o: &mut Object, field: &str) -> Result<Option<bool>> {
    match o.remove(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(type_error(field, &other, "boolean")),
    }
}

/// Keystone's "id" and "links" are read-only; a body may repeat the id of the resource.
pub fn drop_readonly(o: &mut Object, current_id: Option<&str>) -> Result<()> {
    if let Some(v) = o.remove("id") {
        if current_id.is_none_or(|c| v.as_str() != Some(c)) {
            return Err(IdentityError::validation(
                "The attribute 'id' cannot be set or changed.",
            ));
        }
    }
    o.remove("links");
    Ok(())
}

/// Parses a query-string boolean as Keystone does (`true`, `1`, `yes`, or empty for true).
pub fn query_bool(v: &str) -> bool {
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

/// Merges `extra` attributes (free-form fields Keystone stores) into a wire object.
pub fn with_extra(mut base: Value, extra: &Object) -> Value {
    if let Value::Object(m) = &mut base {
        for (k, v) in extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    base
}

pub fn micros_to_iso(us: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// Parses an ISO 8601 time as Keystone accepts it (with or without zone; UTC assumed).
pub fn parse_time(field: &str, s: &str) -> Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err(IdentityError::validation(format!(
        "Invalid input for field '{field}': '{s}' is not a valid ISO 8601 time"
    )))
}
