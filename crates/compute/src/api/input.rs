//! Request-body checks with Nova's JSON-schema error messages ("Invalid input for
//! field/attribute name. Value: ... is too long"), so clients and Tempest see the texts they
//! expect. Each resource module states its schema with these helpers.

use serde_json::{Map, Value};

use crate::error::{ComputeError, Result};

/// Nova's largest integer for sizes and counts (the database's MAX_INT).
pub const MAX_INT: i64 = 0x7FFF_FFFF;

/// A value as Python prints it in Nova's messages (`'abc'` for strings inside messages,
/// `True`, `None`, dicts with single quotes).
pub fn repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("'{k}': {}", repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The value as `%(value)s` renders it: strings bare, the rest as Python reprs.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// "Invalid input for field/attribute {field}. Value: {value}. {message}"
pub fn invalid(field: &str, value: &Value, message: impl std::fmt::Display) -> ComputeError {
    ComputeError::BadRequest(format!(
        "Invalid input for field/attribute {field}. Value: {}. {message}",
        shown(value)
    ))
}

/// Checks the body is `{"<key>": {...}}` with only that key, and returns the inner object.
/// `allowed`/`required` are the inner object's properties.
pub fn envelope<'a>(
    body: &'a Value,
    key: &str,
    allowed: &[&str],
    required: &[&str],
) -> Result<&'a Map<String, Value>> {
    let outer = body.as_object().ok_or_else(|| {
        ComputeError::BadRequest(format!("{} is not of type 'object'", repr(body)))
    })?;
    let inner = outer
        .get(key)
        .ok_or_else(|| ComputeError::BadRequest(format!("'{key}' is a required property")))?;
    no_extra(outer, None, &[key])?;
    let obj = inner.as_object().ok_or_else(|| {
        invalid(
            key,
            inner,
            format!("{} is not of type 'object'", repr(inner)),
        )
    })?;
    properties(obj, key, allowed, required)?;
    Ok(obj)
}

/// Checks `obj` (found under `field`) has every `required` property and no others than
/// `allowed`.
pub fn properties(
    obj: &Map<String, Value>,
    field: &str,
    allowed: &[&str],
    required: &[&str],
) -> Result<()> {
    let value = Value::Object(obj.clone());
    for r in required {
        if !obj.contains_key(*r) {
            return Err(invalid(
                field,
                &value,
                format!("'{r}' is a required property"),
            ));
        }
    }
    no_extra(obj, Some(field), allowed)
}

/// Checks a body's top level has no other keys than `allowed` (Nova's message has no field
/// there).
pub fn top_level(obj: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    no_extra(obj, None, allowed)
}

fn no_extra(obj: &Map<String, Value>, field: Option<&str>, allowed: &[&str]) -> Result<()> {
    let extra: Vec<String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let (verb, list) = if extra.len() == 1 {
        ("was", extra[0].clone())
    } else {
        ("were", extra.join(", "))
    };
    let msg = format!("Additional properties are not allowed ({list} {verb} unexpected)");
    Err(match field {
        Some(f) => invalid(f, &Value::Object(obj.clone()), msg),
        None => ComputeError::BadRequest(msg),
    })
}

/// A string of `min..=max` characters.
pub fn string<'a>(field: &str, v: &'a Value, min: usize, max: usize) -> Result<&'a str> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid(field, v, format!("{} is not of type 'string'", repr(v))))?;
    let n = s.chars().count();
    if n < min {
        return Err(invalid(field, v, format!("{} is too short", repr(v))));
    }
    if n > max {
        return Err(invalid(field, v, format!("{} is too long", repr(v))));
    }
    Ok(s)
}

/// A `hostname` (2.90): a host name of 2-63 letters, digits and hyphens; from 2.94 an FQDN of
/// up to 255 characters, dots and underscores allowed. Starts and ends with a letter or digit.
pub fn hostname(v: &Value, mv: ferrostack_api::microversion::Microversion) -> Result<String> {
    let fqdn = mv.at_least(2, 94);
    let s = string("hostname", v, 2, if fqdn { 255 } else { 63 })?;
    let inner_ok =
        |c: char| c.is_ascii_alphanumeric() || c == '-' || (fqdn && (c == '.' || c == '_'));
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !(edge_ok(s.chars().next()) && edge_ok(s.chars().last()) && s.chars().all(inner_ok)) {
        let pattern = if fqdn {
            "^[a-zA-Z0-9]+[a-zA-Z0-9-._]*[a-zA-Z0-9]+$"
        } else {
            "^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"
        };
        return Err(invalid(
            "hostname",
            v,
            format!("{} does not match '{pattern}'", repr(v)),
        ));
    }
    Ok(s.to_string())
}

/// Nova's `name` format: 1-255 printable characters, not starting or ending with
/// whitespace.
pub fn name<'a>(field: &str, v: &'a Value) -> Result<&'a str> {
    let s = string(field, v, 1, 255)?;
    let bad_edge = |c: Option<char>| c.is_some_and(|c| c.is_whitespace() || !printable(c));
    if s.chars().any(|c| !printable(c)) || bad_edge(s.chars().next()) || bad_edge(s.chars().last())
    {
        return Err(ComputeError::BadRequest(
            "An invalid 'name' value was provided. The name must be: printable characters. \
             Can not start or end with whitespace."
                .into(),
        ));
    }
    Ok(s)
}

/// Nova's "printable" for names: no control, format, private-use or unassigned characters, no
/// line or paragraph separators (Unicode categories C*, Zl, Zp), and, as Nova's character
/// table, nothing beyond the Basic Multilingual Plane. (The format characters listed are the
/// ones of the BMP that matter in practice: soft hyphen, zero-width and bidi controls, BOM.)
fn printable(c: char) -> bool {
    let n = u32::from(c);
    !(c.is_control()
        || n > 0xFFFF
        || matches!(n, 0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E
            | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF
            | 0xFDD0..=0xFDEF | 0xFFFE | 0xFFFF))
}

/// An integer given as a JSON integer or a string of digits (Nova's `positive_integer`,
/// `non_negative_integer`, `volume_size` types), within `min..=max`.
pub fn integer(field: &str, v: &Value, min: i64, max: i64, allow_negative: bool) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            invalid(
                field,
                v,
                format!("{} is not of type 'integer', 'string'", repr(v)),
            )
        })?,
        Value::String(s) => {
            let pattern = if allow_negative {
                "^-?[0-9]+$"
            } else {
                "^[0-9]+$"
            };
            let digits = s.strip_prefix('-').filter(|_| allow_negative).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    field,
                    v,
                    format!("{} does not match '{pattern}'", repr(v)),
                ));
            }
            s.parse::<i64>().map_err(|_| {
                invalid(
                    field,
                    v,
                    format!("{s} is greater than the maximum of {max}"),
                )
            })?
        }
        _ => {
            return Err(invalid(
                field,
                v,
                format!("{} is not of type 'integer', 'string'", repr(v)),
            ))
        }
    };
    if n < min {
        return Err(invalid(
            field,
            v,
            format!("{n} is less than the minimum of {min}"),
        ));
    }
    if n > max {
        return Err(invalid(
            field,
            v,
            format!("{n} is greater than the maximum of {max}"),
        ));
    }
    Ok(n)
}

/// Nova's `boolean` type: JSON booleans and the usual strings (`"true"`, `"1"`, `"yes"`, ...).
pub fn boolean(field: &str, v: &Value) -> Result<bool> {
    let parsed = match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(
            field,
            v,
            format!(
                "{} is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', \
                 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', \
                 'NO', 'No', 'no']",
                repr(v)
            ),
        )
    })
}

/// oslo's `bool_from_string(strict=True)` spellings.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" | "t" | "y" => Some(true),
        "false" | "0" | "off" | "no" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Nova's metadata keys (and flavor extra spec keys): 1-255 of `[a-zA-Z0-9-_:. ]`.
pub fn metadata_key_ok(k: &str) -> bool {
    (1..=255).contains(&k.chars().count())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c))
}

/// A metadata object (`{key: "value"}`, keys as [`metadata_key_ok`], values up to 255
/// characters); `null` values allowed when `with_null` (they delete a key).
pub fn metadata(
    field: &str,
    v: &Value,
    with_null: bool,
) -> Result<std::collections::BTreeMap<String, Option<String>>> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(field, v, format!("{} is not of type 'object'", repr(v))))?;
    let mut out = std::collections::BTreeMap::new();
    for (k, val) in obj {
        if !metadata_key_ok(k) {
            return Err(invalid(
                field,
                v,
                format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let s = match val {
            Value::Null if with_null => None,
            Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
            Value::String(_) => return Err(invalid(k, val, format!("{} is too long", repr(val)))),
            other => {
                let ty = if with_null {
                    "'string', 'null'"
                } else {
                    "'string'"
                };
                return Err(invalid(
                    k,
                    other,
                    format!("{} is not of type {ty}", repr(other)),
                ));
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// The query string as ordered pairs.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The first value of query parameter `key`.
pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// From microversion 2.75 Nova rejects query parameters it does not know.
pub fn only_query_params(pairs: &[(String, String)], allowed: &[&str]) -> Result<()> {
    if let Some((k, _)) = pairs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(ComputeError::BadRequest(format!(
            "Invalid input for query parameters {k}. Value: {k}. Additional properties are \
             not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(())
}

/// `limit` and `marker` query parameters as Nova reads them (`limit` a non-negative
/// integer, capped at `max_limit` = 1000 like Nova's `[api] max_limit`).
pub fn limit_marker(pairs: &[(String, String)]) -> Result<(Option<usize>, Option<String>)> {
    let limit = match query_get(pairs, "limit") {
        None => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ComputeError::BadRequest(format!(
                "Invalid input for query parameters limit. Value: {s}. '{s}' does not match \
                 '^[0-9]*$'"
            ))
        })?),
    };
    Ok((
        limit.map(|l| l.min(1000)),
        query_get(pairs, "marker").map(str::to_string),
    ))
}

/// A timestamp as Nova renders database datetimes (`2016-12-27T22:51:32.000000`, no zone).
pub fn nova_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// `accessIPv4`: a dotted-quad IPv4 address (Nova's `ipv4` format), returned normalized.
pub(crate) fn access_ip_v4(v: &Value) -> Result<String> {
    let s = string("accessIPv4", v, 0, usize::MAX)?;
    s.parse::<std::net::Ipv4Addr>()
        .map(|ip| ip.to_string())
        .map_err(|_| invalid("accessIPv4", v, format!("{} is not a 'ipv4'", repr(v))))
}

/// `accessIPv6`: an IPv6 address (Nova's `ipv6` format), returned in the canonical compressed
/// form Nova stores (`0000:...:babe:220.12.22.2` -> `::babe:dc0c:1602`).
pub(crate) fn access_ip_v6(v: &Value) -> Result<String> {
    let s = string("accessIPv6", v, 0, usize::MAX)?;
    s.parse::<std::net::Ipv6Addr>()
        .map(|ip| ip.to_string())
        .map_err(|_| invalid("accessIPv6", v, format!("{} is not a 'ipv6'", repr(v))))
}

#[cfg(test)]
mod access_ip_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn access_ips_are_validated_and_normalized() {
        assert_eq!(
            access_ip_v6(&json!("0000:0000:0000:0000:0000:babe:220.12.22.2")).unwrap(),
            "::babe:dc0c:1602"
        );
        assert_eq!(access_ip_v6(&json!("2001:DB8::1")).unwrap(), "2001:db8::1");
        assert!(access_ip_v6(&json!("1.2.3.4")).is_err());
        assert!(access_ip_v6(&json!(":::1")).is_err());
        assert_eq!(access_ip_v4(&json!("10.0.0.1")).unwrap(), "10.0.0.1");
        assert!(access_ip_v4(&json!("10.0.0")).is_err());
        assert!(access_ip_v4(&json!("::1")).is_err());
        assert!(access_ip_v4(&json!(4)).is_err());
        let e = access_ip_v4(&json!("1.2.3.256")).unwrap_err().to_string();
        assert!(e.contains("is not a 'ipv4'"), "{e}");
    }
}

#[cfg(test)]
mod hostname_tests {
    use super::*;
    use ferrostack_api::microversion::Microversion;
    use serde_json::json;

    #[test]
    fn names_are_printable_without_edge_whitespace() {
        for ok in ["vm", "my server", "é-ñ", "名前", "a\u{00A0}b"] {
            assert!(name("name", &json!(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            " x",
            "x ",
            "a\u{0}b",
            "a\tb",
            "a\u{200B}b",
            "a\u{202E}b",
            "a\u{1F600}",
            "a\u{E000}",
            "\u{00A0}x",
        ] {
            assert!(name("name", &json!(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_before_and_from_2_94() {
        let (v90, v94) = (Microversion(2, 90), Microversion(2, 94));
        let fqdn = format!("{}-guest-test.domaintest.com", "x".repeat(52));
        assert_eq!(hostname(&json!("web-1"), v90).unwrap(), "web-1");
        for bad in ["a", "-web", "web-", "web.example.com", "we_b"] {
            assert!(hostname(&json!(bad), v90).is_err(), "{bad}");
        }
        assert!(hostname(&json!("x".repeat(64)), v90).is_err());
        assert_eq!(hostname(&json!(fqdn), v94).unwrap(), fqdn);
        assert_eq!(
            hostname(&json!("we_b.example"), v94).unwrap(),
            "we_b.example"
        );
        for bad in [".web", "web.", "w b", "x".repeat(256).as_str()] {
            assert!(hostname(&json!(bad), v94).is_err(), "{bad}");
        }
        assert!(hostname(&json!(7), v94).is_err());
    }
}

/// Nova's `personality` (before 2.57): a list of `{"path": ..., "contents": <base64>}`.
pub fn personality(v: &Value) -> Result<Vec<ferrostack_agent_api::InjectedFile>> {
    use base64::Engine;
    let items = v.as_array().ok_or_else(|| {
        invalid(
            "personality",
            v,
            format!("{} is not of type 'array'", repr(v)),
        )
    })?;
    let mut files = Vec::with_capacity(items.len());
    for item in items {
        let o = item.as_object().ok_or_else(|| {
            invalid(
                "personality",
                item,
                format!("{} is not of type 'object'", repr(item)),
            )
        })?;
        if let Some(extra) = o.keys().find(|k| *k != "path" && *k != "contents") {
            return Err(invalid(
                "personality",
                item,
                format!("Additional properties are not allowed ('{extra}' was unexpected)"),
            ));
        }
        let field = |k: &str| -> Result<String> {
            match o.get(k) {
                None => Err(ComputeError::BadRequest(format!(
                    "Bad personality format: missing {k}"
                ))),
                Some(x) => Ok(string(&format!("personality/{k}"), x, 0, usize::MAX)?.to_string()),
            }
        };
        let path = field("path")?;
        // Python's b64decode (Nova's check) skips line breaks, as `base64` writes them.
        let contents: String = field("contents")?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if base64::engine::general_purpose::STANDARD
            .decode(&contents)
            .is_err()
        {
            return Err(invalid(
                "personality/contents",
                &o["contents"],
                format!("{} is not a 'base64'", repr(&o["contents"])),
            ));
        }
        files.push(ferrostack_agent_api::InjectedFile { path, contents });
    }
    Ok(files)
}
