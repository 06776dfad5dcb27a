//! Evaluation of parsed checks against credentials and a target.

use std::collections::HashMap;

use serde_json::Value;

use crate::parse::{Check, FieldValue, Left, Part, Template};
use crate::{Credentials, Rule};

/// Deeper `rule:` chains than this are refused (cycles are rejected at load
/// time; this only guards the stack).
const MAX_DEPTH: usize = 64;

pub(crate) struct Context<'a> {
    pub(crate) rules: &'a HashMap<String, Rule>,
    pub(crate) target: &'a Value,
    pub(crate) creds: &'a Credentials,
}

impl Context<'_> {
    pub(crate) fn eval(&self, check: &Check, depth: usize) -> bool {
        match check {
            Check::True => true,
            Check::False | Check::Unsupported { .. } => false,
            Check::Rule(name) => {
                if depth >= MAX_DEPTH {
                    return false;
                }
                match self.rules.get(name) {
                    Some(rule) => self.eval(&rule.check, depth + 1),
                    None => false,
                }
            }
            Check::Role(template) => match render(template, self.target) {
                Rendered::Text {
                    text,
                    had_null: false,
                } => {
                    let wanted = text.to_lowercase();
                    self.creds.roles.iter().any(|r| r.to_lowercase() == wanted)
                }
                _ => false,
            },
            Check::Generic { left, right } => self.generic(left, right),
            Check::Field { field, value, .. } => field_matches(self.target, field, value),
            Check::Not(inner) => !self.eval(inner, depth),
            Check::And(items) => items.iter().all(|c| self.eval(c, depth)),
            Check::Or(items) => items.iter().any(|c| self.eval(c, depth)),
        }
    }

    fn generic(&self, left: &Left, right: &Template) -> bool {
        let Rendered::Text { text, had_null } = render(right, self.target) else {
            return false;
        };
        match left {
            // `'member':%(target.role.name)s`, `None:%(target.x)s`: a constant
            // compared with the rendered target value.  A null target value
            // renders as "None", like Python, so `None:%(x)s` tests for null.
            Left::Literal(literal) => *literal == text,
            Left::Credential(attr) => {
                // A substitution that hit a null target value never matches a
                // credential (oslo would compare "None" == "None").
                if had_null {
                    return false;
                }
                match credential(self.creds, attr) {
                    CredValue::Absent => false,
                    // Only the explicit literal `None` (e.g. `domain_id:None`)
                    // matches an unset credential.
                    CredValue::Null => right.is_literal("None"),
                    CredValue::One(v) => v == text,
                    CredValue::Many(vs) => vs.contains(&text),
                }
            }
        }
    }
}

/// Neutron's `FieldCheck`: the target's `field` (looked up like a
/// substitution key, so `router:external` is found as a flat key) against
/// the check's value.  A missing or null field never matches.
///
/// Neutron converts the value with the field's API converter; without the
/// attribute map the target's type decides: a boolean compares with the value
/// read as `convert_to_boolean` reads it (`True`/`False` in any case, `1`/`0`),
/// a string exactly, a number as its text.  A regular expression matches
/// string fields only (Python's `re.match` refuses other types).
fn field_matches(target: &Value, field: &str, expected: &FieldValue) -> bool {
    let Some(actual) = lookup(target, field) else {
        return false;
    };
    match expected {
        FieldValue::Matches(pattern) => match actual {
            Value::String(s) => pattern.is_match(s),
            _ => false,
        },
        FieldValue::Equals(value) => match actual {
            Value::Bool(b) => python_boolean(value) == Some(*b),
            Value::String(s) => s == value,
            Value::Number(_) => scalar_to_string(actual).is_some_and(|s| s == *value),
            Value::Null | Value::Array(_) | Value::Object(_) => false,
        },
    }
}

/// neutron_lib's `convert_to_boolean` for a string; `None` if it refuses it.
fn python_boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

enum Rendered {
    /// A substitution key was missing from the target (or not a scalar).
    Missing,
    Text {
        text: String,
        had_null: bool,
    },
}

fn render(template: &Template, target: &Value) -> Rendered {
    let mut text = String::new();
    let mut had_null = false;
    for part in &template.parts {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::Key(key) => match lookup(target, key) {
                Some(Value::Null) => {
                    had_null = true;
                    text.push_str("None");
                }
                Some(v) => match scalar_to_string(v) {
                    Some(s) => text.push_str(&s),
                    None => return Rendered::Missing,
                },
                None => return Rendered::Missing,
            },
        }
    }
    Rendered::Text { text, had_null }
}

/// Finds `key` (e.g. `target.user.domain_id`) in the target: first as a flat
/// key (keystone flattens its targets), then by walking nested objects, also
/// accepting partially flattened objects (`{"target": {"user.id": ..}}`).
pub(crate) fn lookup<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = value.as_object()?;
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    for (idx, _) in key.match_indices('.') {
        if let Some(child) = obj.get(&key[..idx]) {
            if let Some(found) = lookup(child, &key[idx + 1..]) {
                return Some(found);
            }
        }
    }
    None
}

/// Renders a scalar the way Python's `str()` would.
fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".to_owned()),
        Value::Bool(false) => Some("False".to_owned()),
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64()?;
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
                    Some(format!("{f:.1}"))
                } else {
                    Some(f.to_string())
                }
            } else {
                Some(n.to_string())
            }
        }
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

enum CredValue<'c> {
    /// The credentials have no such attribute.
    Absent,
    /// The attribute exists but is unset (Python `None`).
    Null,
    One(String),
    Many(&'c [String]),
}

fn opt(value: Option<&str>) -> CredValue<'static> {
    match value {
        Some(v) if !v.is_empty() => CredValue::One(v.to_owned()),
        _ => CredValue::Null,
    }
}

fn py_bool(b: bool) -> CredValue<'static> {
    CredValue::One(if b { "True" } else { "False" }.to_owned())
}

/// Credential attributes as oslo.context's `to_policy_values()` (plus
/// keystone's rendered `token`) names them.
fn credential<'c>(creds: &'c Credentials, attr: &str) -> CredValue<'c> {
    match attr {
        "user_id" | "token.user.id" => opt(Some(creds.user_id.as_str())),
        "user_domain_id" | "token.user.domain.id" => opt(Some(creds.user_domain_id.as_str())),
        // `tenant_id`: Neutron's contexts (neutron-lib before 2026.1) give
        // policies the project as `tenant_id` too, for rules and policy files
        // written `tenant_id:%(network:tenant_id)s`.
        "project_id" | "token.project.id" | "tenant_id" => opt(creds.project_id.as_deref()),
        "project_domain_id" | "token.project.domain.id" => opt(creds.project_domain_id.as_deref()),
        "domain_id" | "token.domain.id" => opt(creds.domain_id.as_deref()),
        "system_scope" | "system" => opt(creds.system_scope.as_deref()),
        "token.system.all" => match creds.system_scope.as_deref() {
            Some("all") => py_bool(true),
            _ => CredValue::Absent,
        },
        "is_admin_project" => py_bool(creds.is_admin_project),
        "roles" => CredValue::Many(&creds.roles),
        _ => CredValue::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_flat_then_nested() {
        let t = json!({
            "target.user.domain_id": "flat",
            "target": {"user": {"domain_id": "nested", "id": "u1"}, "a.b": {"c": 3}},
        });
        assert_eq!(lookup(&t, "target.user.domain_id"), Some(&json!("flat")));
        assert_eq!(lookup(&t, "target.user.id"), Some(&json!("u1")));
        assert_eq!(lookup(&t, "target.a.b.c"), Some(&json!(3)));
        assert_eq!(lookup(&t, "target.user.name"), None);
        assert_eq!(lookup(&json!("scalar"), "x"), None);
    }

    #[test]
    fn lookup_finds_keys_with_colons() {
        // Neutron's parent-owner keys (`network:project_id`) are flat keys
        // whose name has a ':'.
        let t = json!({"network:tenant_id": "p1", "router:external": true});
        assert_eq!(lookup(&t, "network:tenant_id"), Some(&json!("p1")));
        assert_eq!(lookup(&t, "router:external"), Some(&json!(true)));
        assert_eq!(lookup(&t, "network:project_id"), None);
    }

    fn field(f: &str, v: &str) -> (String, FieldValue) {
        let value = match v.strip_prefix('~') {
            Some(re) => FieldValue::Matches(crate::pattern::Pattern::parse(re).unwrap()),
            None => FieldValue::Equals(v.to_owned()),
        };
        (f.to_owned(), value)
    }

    fn fm(target: &Value, f: &str, v: &str) -> bool {
        let (f, v) = field(f, v);
        field_matches(target, &f, &v)
    }

    #[test]
    fn field_checks_compare_by_the_targets_type() {
        let t = json!({
            "shared": true,
            "router:external": false,
            "name": "True",
            "mtu": 1500,
            "weight": 1.5,
            "device_owner": "network:dhcp",
            "gone": null,
            "list": ["True"],
            "obj": {"shared": true},
        });
        // Booleans: the value read as a boolean, case-insensitively.
        for yes in ["True", "true", "TRUE", "1"] {
            assert!(fm(&t, "shared", yes), "{yes}");
            assert!(!fm(&t, "router:external", yes), "{yes}");
        }
        for no in ["False", "false", "0"] {
            assert!(!fm(&t, "shared", no), "{no}");
            assert!(fm(&t, "router:external", no), "{no}");
        }
        assert!(!fm(&t, "shared", "yes"));
        assert!(!fm(&t, "shared", ""));
        // Strings: exactly.
        assert!(fm(&t, "name", "True"));
        assert!(!fm(&t, "name", "true"));
        assert!(fm(&t, "device_owner", "network:dhcp"));
        // Numbers: their text.
        assert!(fm(&t, "mtu", "1500"));
        assert!(!fm(&t, "mtu", "1500.0"));
        assert!(fm(&t, "weight", "1.5"));
        // Missing, null, lists and objects never match.
        assert!(!fm(&t, "missing", "True"));
        assert!(!fm(&t, "gone", "None"));
        assert!(!fm(&t, "list", "True"));
        assert!(!fm(&t, "obj", "True"));
        // Regular expressions: string fields, matched at their start.
        assert!(fm(&t, "device_owner", "~^network:"));
        assert!(!fm(&t, "device_owner", "~^compute:"));
        assert!(!fm(&t, "shared", "~True"));
        assert!(!fm(&t, "missing", "~"));
        // A non-object target has no fields.
        assert!(!fm(&json!("x"), "shared", "True"));
    }

    #[test]
    fn tenant_id_is_the_project() {
        let creds = Credentials {
            project_id: Some("p1".into()),
            ..Credentials::default()
        };
        assert!(matches!(credential(&creds, "tenant_id"), CredValue::One(p) if p == "p1"));
        assert!(matches!(
            credential(&Credentials::default(), "tenant_id"),
            CredValue::Null
        ));
    }

    #[test]
    fn python_str_rendering() {
        assert_eq!(scalar_to_string(&json!(true)).unwrap(), "True");
        assert_eq!(scalar_to_string(&json!(false)).unwrap(), "False");
        assert_eq!(scalar_to_string(&json!(12)).unwrap(), "12");
        assert_eq!(scalar_to_string(&json!(1.0)).unwrap(), "1.0");
        assert_eq!(scalar_to_string(&json!(1.5)).unwrap(), "1.5");
        assert_eq!(scalar_to_string(&json!("s")).unwrap(), "s");
        assert!(scalar_to_string(&json!([1])).is_none());
        assert!(scalar_to_string(&json!(null)).is_none());
    }
}
