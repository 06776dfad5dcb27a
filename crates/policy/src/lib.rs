//! oslo.policy compatible policy engine for ferrostack.
//!
//! An [`Enforcer`] holds named rules written in the oslo.policy rule language
//! (`"identity:get_user": "(rule:admin_required) or user_id:%(target.user.id)s"`)
//! and evaluates them for the caller's [`Credentials`] against a JSON target.
//!
//! [`Enforcer::with_defaults`] loads the built-in defaults (Keystone's
//! `identity:*` rules, Glance's, Nova's, Placement's and Neutron's, see
//! `src/defaults/*.yaml`); operators override single rules with a
//! `policy.yaml`/`policy.json` through [`Enforcer::load_overrides`].
//!
//! Like oslo.policy with `enforce_scope = True`, default rules carry the token
//! scopes (`system`, `domain`, `project`) they accept; enforcing a rule with a
//! token of another scope is denied whatever the check string says.  Overriding
//! a rule's check string keeps its scope types.

mod check;
mod parse;
mod pattern;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;

use crate::parse::Check;

/// Rules shared by every service (`context_is_admin`).
const BASE_DEFAULTS: &str = include_str!("defaults/base.yaml");
/// Keystone's default `identity:*` rules.
const IDENTITY_DEFAULTS: &str = include_str!("defaults/identity.yaml");
const IMAGE_DEFAULTS: &str = include_str!("defaults/image.yaml");
const COMPUTE_DEFAULTS: &str = include_str!("defaults/compute.yaml");
const COMPUTE_RESOURCE_DEFAULTS: &str = include_str!("defaults/compute_resources.yaml");
const COMPUTE_SERVER_EXTRAS_DEFAULTS: &str = include_str!("defaults/compute_server_extras.yaml");
const PLACEMENT_DEFAULTS: &str = include_str!("defaults/placement.yaml");
/// Neutron's default rules (`create_network`, `get_port:binding:host_id`, ...).
const NETWORK_DEFAULTS: &str = include_str!("defaults/network.yaml");

/// Name of the rule used for actions that have no rule of their own.
pub const DEFAULT_RULE: &str = "default";

/// Who is calling, from the validated token. Role names are lower-cased by the caller.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub user_id: String,
    pub user_domain_id: String,
    /// Project-scoped token.
    pub project_id: Option<String>,
    pub project_domain_id: Option<String>,
    /// Domain-scoped token.
    pub domain_id: Option<String>,
    /// `Some("all")` for system-scoped tokens.
    pub system_scope: Option<String>,
    /// Effective role names (implied roles already expanded).
    pub roles: Vec<String>,
    pub is_admin_project: bool,
}

impl Credentials {
    /// The scope of the token these credentials come from, as oslo.policy
    /// determines it: system if `system_scope` is set, else domain if
    /// `domain_id` is set, else project (unscoped tokens count as project).
    pub fn token_scope(&self) -> Scope {
        if self.system_scope.as_deref().is_some_and(|s| !s.is_empty()) {
            Scope::System
        } else if self.domain_id.as_deref().is_some_and(|s| !s.is_empty()) {
            Scope::Domain
        } else {
            Scope::Project
        }
    }
}

/// Token scope a rule may be enforced with (oslo.policy `scope_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    System,
    Domain,
    Project,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::System => "system",
            Scope::Domain => "domain",
            Scope::Project => "project",
        }
    }

    fn parse(s: &str) -> Option<Scope> {
        match s {
            "system" => Some(Scope::System),
            "domain" => Some(Scope::Domain),
            "project" => Some(Scope::Project),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors from loading policy rules.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A check string could not be parsed.
    #[error("policy rule \"{rule}\": {message}")]
    Syntax { rule: String, message: String },
    /// Rules reference each other in a loop (`a -> b -> a`).
    #[error("policy rules reference each other in a cycle: {}", .path.join(" -> "))]
    Cycle { path: Vec<String> },
    /// The policy document is not a mapping of rule names to check strings.
    #[error("invalid policy document: {0}")]
    Document(String),
}

/// One loaded rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// The check string as written (lists rendered canonically).
    source: String,
    pub(crate) check: Check,
    /// Token scopes allowed; empty means any.
    scope_types: Vec<Scope>,
}

/// Evaluates named oslo.policy rules.
#[derive(Debug, Clone)]
pub struct Enforcer {
    rules: HashMap<String, Rule>,
    enforce_scope: bool,
}

impl Default for Enforcer {
    fn default() -> Self {
        Self::new()
    }
}

/// Entry of a built-in defaults file: a bare check string, or a check string
/// with the token scopes it accepts.
#[derive(Deserialize)]
#[serde(untagged)]
enum DefaultEntry {
    Check(String),
    Scoped {
        check: String,
        #[serde(default)]
        scope_types: Vec<String>,
    },
}

impl Enforcer {
    /// An enforcer with no rules at all (denies everything), scope enforcement on.
    pub fn new() -> Self {
        Enforcer {
            rules: HashMap::new(),
            enforce_scope: true,
        }
    }

    /// Built-in defaults of every service this crate knows (identity, image,
    /// compute, placement, network).
    ///
    /// The embedded defaults are verified by this crate's tests; should they
    /// ever fail to load, the result is an empty enforcer that denies
    /// everything (fail closed). Use [`Enforcer::try_with_defaults`] to see
    /// the error.
    pub fn with_defaults() -> Self {
        Self::try_with_defaults().unwrap_or_else(|_| Self::new())
    }

    /// Like [`Enforcer::with_defaults`], reporting a broken defaults file.
    pub fn try_with_defaults() -> Result<Self, PolicyError> {
        let mut enforcer = Self::new();
        enforcer.load_defaults(BASE_DEFAULTS)?;
        enforcer.load_defaults(IDENTITY_DEFAULTS)?;
        enforcer.load_defaults(IMAGE_DEFAULTS)?;
        enforcer.load_defaults(COMPUTE_DEFAULTS)?;
        enforcer.load_defaults(COMPUTE_RESOURCE_DEFAULTS)?;
        enforcer.load_defaults(COMPUTE_SERVER_EXTRAS_DEFAULTS)?;
        enforcer.load_defaults(PLACEMENT_DEFAULTS)?;
        enforcer.load_defaults(NETWORK_DEFAULTS)?;
        Ok(enforcer)
    }

    /// Adds one defaults file.  All services share one namespace of rule
    /// names, so a rule another defaults file already defined differently
    /// (another check string or other scope types) is refused: one service's
    /// `owner` or `default` must not silently replace another's.
    fn load_defaults(&mut self, text: &str) -> Result<(), PolicyError> {
        let entries: BTreeMap<String, DefaultEntry> =
            serde_yaml::from_str(text).map_err(|e| PolicyError::Document(e.to_string()))?;
        let mut new_rules = HashMap::with_capacity(entries.len());
        for (name, entry) in entries {
            let (source, scopes) = match entry {
                DefaultEntry::Check(check) => (check, Vec::new()),
                DefaultEntry::Scoped { check, scope_types } => (check, scope_types),
            };
            let mut scope_types = Vec::with_capacity(scopes.len());
            for s in &scopes {
                let scope = Scope::parse(s).ok_or_else(|| PolicyError::Syntax {
                    rule: name.clone(),
                    message: format!(
                        "unknown scope type '{s}' (expected system, domain or project)"
                    ),
                })?;
                scope_types.push(scope);
            }
            let source = normalize_source(&source);
            let check = parse::parse_rule(&name, &source)?;
            if let Some(existing) = self.rules.get(&name) {
                if existing.source != source || existing.scope_types != scope_types {
                    return Err(PolicyError::Document(format!(
                        "default rule \"{name}\" is defined twice with different meanings: \
                         \"{}\" and \"{source}\"",
                        existing.source
                    )));
                }
            }
            new_rules.insert(
                name,
                Rule {
                    source,
                    check,
                    scope_types,
                },
            );
        }
        self.merge(new_rules)
    }

    /// Rules from a policy.yaml/json text (oslo syntax: `"name": "check string"`);
    /// they override defaults of the same name.
    ///
    /// Values may also use oslo's legacy list syntax (`[["a", "b"], ["c"]]`
    /// meaning `(a and b) or c`). The whole text is applied or nothing is: on
    /// a syntax error or a `rule:` reference cycle the enforcer is unchanged.
    pub fn load_overrides(&mut self, text: &str) -> Result<(), PolicyError> {
        let doc: serde_json::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| PolicyError::Document(e.to_string()))?
        } else {
            serde_yaml::from_str(text).map_err(|e| PolicyError::Document(e.to_string()))?
        };
        let map = match doc {
            serde_json::Value::Null => return Ok(()),
            serde_json::Value::Object(map) => map,
            other => {
                return Err(PolicyError::Document(format!(
                    "expected a mapping of rule names to check strings, found {}",
                    json_kind(&other)
                )))
            }
        };
        let mut new_rules = HashMap::with_capacity(map.len());
        for (name, value) in map {
            let (source, check) = match &value {
                serde_json::Value::String(s) => {
                    let source = normalize_source(s);
                    let check = parse::parse_rule(&name, &source)?;
                    (source, check)
                }
                serde_json::Value::Array(items) => {
                    let check = parse::parse_list_rule(&name, items)?;
                    (check.to_string(), check)
                }
                other => {
                    return Err(PolicyError::Syntax {
                        rule: name.clone(),
                        message: format!(
                            "expected a check string, found {} (quote the value)",
                            json_kind(other)
                        ),
                    })
                }
            };
            // Overrides change the check string only; scope types stay those
            // of the default, as in oslo.policy.
            let scope_types = self
                .rules
                .get(&name)
                .map(|r| r.scope_types.clone())
                .unwrap_or_default();
            new_rules.insert(
                name,
                Rule {
                    source,
                    check,
                    scope_types,
                },
            );
        }
        self.merge(new_rules)
    }

    /// Adds `new_rules` (replacing same-named rules) unless that creates a
    /// reference cycle.
    fn merge(&mut self, new_rules: HashMap<String, Rule>) -> Result<(), PolicyError> {
        let mut merged = self.rules.clone();
        merged.extend(new_rules);
        if let Some(path) = find_cycle(&merged) {
            return Err(PolicyError::Cycle { path });
        }
        self.rules = merged;
        Ok(())
    }

    /// Evaluate rule `action` (e.g. "identity:create_project") for `creds` against `target`.
    /// An action with no rule falls back to the rule named "default"; with no "default" either, deny.
    ///
    /// When scope enforcement is on (the default) and the action's rule lists
    /// scope types, a token of any other scope is denied.
    pub fn enforce(&self, action: &str, target: &serde_json::Value, creds: &Credentials) -> bool {
        let rule = match self.rules.get(action) {
            Some(rule) => {
                if self.enforce_scope
                    && !rule.scope_types.is_empty()
                    && !rule.scope_types.contains(&creds.token_scope())
                {
                    return false;
                }
                rule
            }
            None => match self.rules.get(DEFAULT_RULE) {
                Some(rule) => rule,
                None => return false,
            },
        };
        let ctx = check::Context {
            rules: &self.rules,
            target,
            creds,
        };
        ctx.eval(&rule.check, 0)
    }

    /// True when the enforcer has a rule of this name (used by tests that check coverage).
    pub fn has_rule(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// Names of all rules, sorted.
    pub fn rule_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.rules.keys().cloned().collect();
        names.sort();
        names
    }

    /// The check string of a rule, as loaded.
    pub fn check_str(&self, name: &str) -> Option<&str> {
        self.rules.get(name).map(|r| r.source.as_str())
    }

    /// Token scopes a rule accepts (empty: any scope); `None` if there is no such rule.
    pub fn scope_types(&self, name: &str) -> Option<&[Scope]> {
        self.rules.get(name).map(|r| r.scope_types.as_slice())
    }

    /// Turn scope-type enforcement on (default) or off (oslo's `enforce_scope`).
    pub fn set_enforce_scope(&mut self, enforce: bool) {
        self.enforce_scope = enforce;
    }

    /// Whether scope types are enforced.
    pub fn enforce_scope(&self) -> bool {
        self.enforce_scope
    }
}

/// Collapses line breaks of multi-line YAML scalars into single spaces.
fn normalize_source(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Returns a `rule:` reference cycle (`[a, b, a]`) if there is one.
fn find_cycle(rules: &HashMap<String, Rule>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        InProgress,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::with_capacity(rules.len());
    let mut names: Vec<&str> = rules.keys().map(String::as_str).collect();
    names.sort_unstable();

    for start in names {
        if marks.contains_key(start) {
            continue;
        }
        // Iterative DFS: stack of (rule name, its references, next index).
        let mut stack: Vec<(&str, Vec<&str>, usize)> = Vec::new();
        marks.insert(start, Mark::InProgress);
        stack.push((start, refs_of(rules, start), 0));
        while let Some(frame) = stack.last_mut() {
            let (name, refs, idx) = (frame.0, &frame.1, frame.2);
            if idx >= refs.len() {
                marks.insert(name, Mark::Done);
                stack.pop();
                continue;
            }
            let next = refs[idx];
            frame.2 += 1;
            if !rules.contains_key(next) {
                continue;
            }
            match marks.get(next) {
                Some(Mark::Done) => {}
                Some(Mark::InProgress) => {
                    let pos = stack.iter().position(|f| f.0 == next).unwrap_or(0);
                    let mut path: Vec<String> =
                        stack[pos..].iter().map(|f| f.0.to_owned()).collect();
                    path.push(next.to_owned());
                    return Some(path);
                }
                None => {
                    marks.insert(next, Mark::InProgress);
                    let next_refs = refs_of(rules, next);
                    stack.push((next, next_refs, 0));
                }
            }
        }
    }
    None
}

fn refs_of<'a>(rules: &'a HashMap<String, Rule>, name: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    if let Some(rule) = rules.get(name) {
        rule.check.referenced_rules(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_files_may_repeat_a_rule_only_unchanged() {
        let mut e = Enforcer::new();
        e.load_defaults(r#""a": {check: "role:x", scope_types: [project]}"#)
            .unwrap();
        // The same rule again is fine.
        e.load_defaults(r#""a": {check: "role:x", scope_types: [project]}"#)
            .unwrap();
        // Another check string or other scope types are not.
        let err = e.load_defaults(r#""a": "role:y""#).unwrap_err();
        assert!(err.to_string().contains("defined twice"), "{err}");
        assert!(e
            .load_defaults(r#""a": {check: "role:x", scope_types: [system]}"#)
            .is_err());
        assert_eq!(e.check_str("a"), Some("role:x"));
    }
}
