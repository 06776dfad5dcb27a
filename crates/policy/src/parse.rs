//! Parser for the oslo.policy rule language.
//!
//! The grammar follows `oslo_policy._parser`:
//!
//! * a rule is split on whitespace into tokens; leading `(` and trailing `)`
//!   are split off each token;
//! * `and`, `or`, `not` (any case) are operators, everything else is a check;
//! * precedence is `not` > `and` > `or`; parentheses group.
//!
//! A check is `!` (never), `@` (always), `True`/`False`, or `kind:match`
//! where `kind` is `rule`, `role`, `http`/`https` (parsed, always false),
//! `field` (Neutron's `field:RESOURCE:FIELD=VALUE`), a Python literal
//! (`'text'`, `"text"`, `True`, `False`, `None`, a number) or the name/dotted
//! path of a credential attribute.  `match` may contain Python
//! `%(dotted.key)s` substitutions resolved against the target (not in
//! `field:` checks, which compare with a constant like Neutron's).

use std::fmt;

use crate::pattern::Pattern;
use crate::PolicyError;

/// A parsed check string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    /// `""`, `@`, `True`: always passes.
    True,
    /// `!`, `False`: always fails.
    False,
    /// `rule:NAME`: evaluates another rule.
    Rule(String),
    /// `role:NAME`: NAME (after substitution) among the caller's roles.
    Role(Template),
    /// `KEY:VALUE` / `'literal':%(key)s`.
    Generic {
        left: Left,
        right: Template,
    },
    /// Neutron's `field:RESOURCE:FIELD=VALUE`: the target's FIELD equals
    /// VALUE (`=~REGEX`: matches it).  RESOURCE only documents which resource
    /// the target is.
    Field {
        resource: String,
        field: String,
        value: FieldValue,
    },
    /// A kind we can parse but never grant (`http:`, `https:`).
    Unsupported {
        kind: String,
        matched: String,
    },
    Not(Box<Check>),
    And(Vec<Check>),
    Or(Vec<Check>),
}

/// Left side of a generic check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Left {
    /// A constant (quoted string or Python literal), already rendered the way
    /// Python's `str()` would render it.
    Literal(String),
    /// A credential attribute (possibly dotted, e.g. `token.domain.id`).
    Credential(String),
}

/// What a `field:` check compares the target's field with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    /// `=VALUE`: a boolean field equals it read as a boolean (`True`/`False`,
    /// any case, or `1`/`0`), a string field equals it exactly, a number
    /// field's text equals it.
    Equals(String),
    /// `=~REGEX`: a string field matches it at its start (Python `re.match`).
    Matches(Pattern),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Equals(v) => f.write_str(v),
            FieldValue::Matches(p) => write!(f, "~{p}"),
        }
    }
}

/// A string with `%(key)s` substitutions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    Key(String),
}

impl Template {
    /// True when the template has no substitution and equals `text`.
    pub(crate) fn is_literal(&self, text: &str) -> bool {
        match self.parts.as_slice() {
            [] => text.is_empty(),
            [Part::Text(t)] => t == text,
            _ => false,
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => write!(f, "{}", t.replace('%', "%%"))?,
                Part::Key(k) => write!(f, "%({k})s")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Check {
    /// Canonical, fully parenthesised rendering (used in tests and debugging).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::True => write!(f, "@"),
            Check::False => write!(f, "!"),
            Check::Rule(name) => write!(f, "rule:{name}"),
            Check::Role(t) => write!(f, "role:{t}"),
            Check::Generic { left, right } => match left {
                Left::Literal(l) => write!(f, "'{l}':{right}"),
                Left::Credential(c) => write!(f, "{c}:{right}"),
            },
            Check::Field {
                resource,
                field,
                value,
            } => write!(f, "field:{resource}:{field}={value}"),
            Check::Unsupported { kind, matched } => write!(f, "{kind}:{matched}"),
            Check::Not(inner) => write!(f, "not {inner}"),
            Check::And(items) => write_joined(f, items, " and "),
            Check::Or(items) => write_joined(f, items, " or "),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, items: &[Check], sep: &str) -> fmt::Result {
    write!(f, "(")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            write!(f, "{sep}")?;
        }
        write!(f, "{item}")?;
    }
    write!(f, ")")
}

impl Check {
    /// Names of the rules referenced with `rule:NAME`, in order of appearance.
    pub(crate) fn referenced_rules<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Check::Rule(name) => out.push(name),
            Check::Not(inner) => inner.referenced_rules(out),
            Check::And(items) | Check::Or(items) => {
                for item in items {
                    item.referenced_rules(out);
                }
            }
            Check::True
            | Check::False
            | Check::Role(_)
            | Check::Generic { .. }
            | Check::Field { .. }
            | Check::Unsupported { .. } => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Check(Check),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::LParen => "'('".to_owned(),
            Token::RParen => "')'".to_owned(),
            Token::And => "'and'".to_owned(),
            Token::Or => "'or'".to_owned(),
            Token::Not => "'not'".to_owned(),
            Token::Check(c) => format!("check '{c}'"),
        }
    }
}

/// Parses a check string (`"role:admin or rule:owner"`) for rule `rule`.
pub(crate) fn parse_rule(rule: &str, text: &str) -> Result<Check, PolicyError> {
    let err = |message: String| PolicyError::Syntax {
        rule: rule.to_owned(),
        message,
    };
    let tokens = tokenize(text).map_err(err)?;
    if tokens.is_empty() {
        return Ok(Check::True);
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let check = parser.parse_or().map_err(err)?;
    if let Some(tok) = parser.peek() {
        return Err(err(format!(
            "unexpected {} after a complete expression",
            tok.describe()
        )));
    }
    Ok(check)
}

/// Parses oslo's legacy list syntax: `[["a", "b"], ["c"]]` is `(a and b) or c`,
/// `[]` always passes.
pub(crate) fn parse_list_rule(
    rule: &str,
    value: &[serde_json::Value],
) -> Result<Check, PolicyError> {
    let err = |message: String| PolicyError::Syntax {
        rule: rule.to_owned(),
        message,
    };
    if value.is_empty() {
        return Ok(Check::True);
    }
    let mut alternatives = Vec::new();
    for inner in value {
        let items: Vec<&serde_json::Value> = match inner {
            serde_json::Value::String(_) => vec![inner],
            serde_json::Value::Array(items) => items.iter().collect(),
            other => {
                return Err(err(format!(
                    "list rules must contain strings or lists of strings, found {other}"
                )))
            }
        };
        if items.is_empty() {
            continue;
        }
        let mut conjuncts = Vec::new();
        for item in items {
            let text = item.as_str().ok_or_else(|| {
                err(format!(
                    "list rules must contain strings or lists of strings, found {item}"
                ))
            })?;
            conjuncts.push(parse_rule(rule, text)?);
        }
        alternatives.push(collapse(conjuncts, Check::And));
    }
    if alternatives.is_empty() {
        return Ok(Check::True);
    }
    Ok(collapse(alternatives, Check::Or))
}

fn collapse(mut items: Vec<Check>, build: fn(Vec<Check>) -> Check) -> Check {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    build(items)
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    for raw in text.split_whitespace() {
        let clean = raw.trim_start_matches('(');
        for _ in 0..(raw.len() - clean.len()) {
            out.push(Token::LParen);
        }
        if clean.is_empty() {
            continue;
        }
        let body = clean.trim_end_matches(')');
        let trailing = clean.len() - body.len();
        if !body.is_empty() {
            match body.to_ascii_lowercase().as_str() {
                "and" => out.push(Token::And),
                "or" => out.push(Token::Or),
                "not" => out.push(Token::Not),
                _ => {
                    if is_quoted(clean) {
                        return Err(format!(
                            "quoted string {clean} is not a check (expected kind:match)"
                        ));
                    }
                    out.push(Token::Check(parse_check(body)?));
                }
            }
        }
        for _ in 0..trailing {
            out.push(Token::RParen);
        }
    }
    Ok(out)
}

fn is_quoted(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0]
}

fn parse_check(token: &str) -> Result<Check, String> {
    match token {
        "!" | "False" => return Ok(Check::False),
        "@" | "True" => return Ok(Check::True),
        _ => {}
    }
    let Some((kind, matched)) = token.split_once(':') else {
        return Err(format!(
            "'{token}' is not a check (expected kind:match, @, ! or True/False)"
        ));
    };
    if kind.is_empty() {
        return Err(format!("check '{token}' has an empty kind before ':'"));
    }
    match kind {
        "rule" => {
            if matched.is_empty() {
                return Err(format!("check '{token}' names no rule"));
            }
            Ok(Check::Rule(matched.to_owned()))
        }
        "role" => {
            if matched.is_empty() {
                return Err(format!("check '{token}' names no role"));
            }
            Ok(Check::Role(
                parse_template(matched).map_err(|m| format!("check '{token}': {m}"))?,
            ))
        }
        "field" => parse_field(token, matched),
        "http" | "https" => Ok(Check::Unsupported {
            kind: kind.to_owned(),
            matched: matched.to_owned(),
        }),
        _ => {
            let right = parse_template(matched).map_err(|m| format!("check '{token}': {m}"))?;
            let left = match python_literal(kind) {
                Some(lit) => Left::Literal(lit),
                None => {
                    if kind.starts_with('\'') || kind.starts_with('"') {
                        return Err(format!(
                            "check '{token}' has an unterminated quoted literal"
                        ));
                    }
                    Left::Credential(kind.to_owned())
                }
            };
            Ok(Check::Generic { left, right })
        }
    }
}

/// Parses the match of Neutron's `field:RESOURCE:FIELD=VALUE` check the way
/// Neutron's `FieldCheck` splits it: RESOURCE up to the first `:`, FIELD up to
/// the first `=` after it (so FIELD may contain `:`, as in
/// `field:networks:router:external=True`), VALUE the rest; a VALUE starting
/// with `~` is a regular expression.
fn parse_field(token: &str, matched: &str) -> Result<Check, String> {
    let form = "(expected field:RESOURCE:FIELD=VALUE)";
    let Some((resource, field_value)) = matched.split_once(':') else {
        return Err(format!(
            "check '{token}' has no ':' between resource and field {form}"
        ));
    };
    let Some((field, value)) = field_value.split_once('=') else {
        return Err(format!(
            "check '{token}' has no '=' between field and value {form}"
        ));
    };
    if resource.is_empty() {
        return Err(format!("check '{token}' names no resource {form}"));
    }
    if field.is_empty() {
        return Err(format!("check '{token}' names no field {form}"));
    }
    let value = match value.strip_prefix('~') {
        Some(regex) => {
            FieldValue::Matches(Pattern::parse(regex).map_err(|m| format!("check '{token}': {m}"))?)
        }
        None => FieldValue::Equals(value.to_owned()),
    };
    Ok(Check::Field {
        resource: resource.to_owned(),
        field: field.to_owned(),
        value,
    })
}

/// Interprets `kind` as a Python literal the way `ast.literal_eval` followed by
/// `str()` would, for the literal forms that make sense in a policy.
fn python_literal(kind: &str) -> Option<String> {
    if is_quoted(kind) {
        return Some(kind[1..kind.len() - 1].to_owned());
    }
    match kind {
        "True" | "False" | "None" => return Some(kind.to_owned()),
        _ => {}
    }
    let digits = kind.strip_prefix('-').unwrap_or(kind);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = kind.parse::<i128>() {
            return Some(n.to_string());
        }
    }
    None
}

/// Parses Python `%`-formatting with a mapping: `%(key)s` and `%%`.
fn parse_template(text: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(idx) = rest.find('%') {
        literal.push_str(&rest[..idx]);
        let after = &rest[idx + 1..];
        if let Some(r) = after.strip_prefix('%') {
            literal.push('%');
            rest = r;
            continue;
        }
        let Some(inner) = after.strip_prefix('(') else {
            return Err(
                "'%' must start a %(key)s substitution (use %% for a literal %)".to_owned(),
            );
        };
        let Some(close) = inner.find(')') else {
            return Err("unterminated %( substitution".to_owned());
        };
        let key = &inner[..close];
        if key.is_empty() {
            return Err("empty %()s substitution key".to_owned());
        }
        let Some(r) = inner[close + 1..].strip_prefix('s') else {
            return Err(format!("substitution %({key}) must be followed by 's'"));
        };
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(Part::Key(key.to_owned()));
        rest = r;
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(Template { parts })
}

/// Deepest nesting of parentheses / `not` accepted.
const MAX_NESTING: usize = 64;

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.pos).cloned();
        if tok.is_some() {
            self.pos += 1;
        }
        tok
    }

    fn parse_or(&mut self) -> Result<Check, String> {
        let mut items = vec![self.parse_and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            items.push(self.parse_and()?);
        }
        Ok(flatten(items, true))
    }

    fn parse_and(&mut self) -> Result<Check, String> {
        let mut items = vec![self.parse_not()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            items.push(self.parse_not()?);
        }
        Ok(flatten(items, false))
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "expression nested deeper than {MAX_NESTING} levels"
            ));
        }
        Ok(())
    }

    fn parse_not(&mut self) -> Result<Check, String> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            self.enter()?;
            let inner = self.parse_not()?;
            self.depth -= 1;
            return Ok(Check::Not(Box::new(inner)));
        }
        self.parse_atom()
    }

    fn parse_atom(&mut self) -> Result<Check, String> {
        match self.next() {
            Some(Token::Check(c)) => Ok(c),
            Some(Token::LParen) => {
                if self.peek() == Some(&Token::RParen) {
                    return Err("empty parentheses".to_owned());
                }
                self.enter()?;
                let inner = self.parse_or()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token::RParen) => Ok(inner),
                    Some(other) => Err(format!("expected ')' but found {}", other.describe())),
                    None => Err("unbalanced parentheses: missing ')'".to_owned()),
                }
            }
            Some(Token::RParen) => Err("unbalanced parentheses: unexpected ')'".to_owned()),
            Some(op) => Err(format!("expected a check but found {}", op.describe())),
            None => Err("expression ends where a check was expected".to_owned()),
        }
    }
}

fn flatten(items: Vec<Check>, is_or: bool) -> Check {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Check::Or(inner) if is_or => out.extend(inner),
            Check::And(inner) if !is_or => out.extend(inner),
            other => out.push(other),
        }
    }
    collapse(out, if is_or { Check::Or } else { Check::And })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> String {
        parse_rule("t", text).unwrap().to_string()
    }

    fn e(text: &str) -> String {
        parse_rule("my_rule", text).unwrap_err().to_string()
    }

    #[test]
    fn special_checks() {
        assert_eq!(parse_rule("t", "").unwrap(), Check::True);
        assert_eq!(parse_rule("t", "   ").unwrap(), Check::True);
        assert_eq!(parse_rule("t", "@").unwrap(), Check::True);
        assert_eq!(parse_rule("t", "!").unwrap(), Check::False);
        assert_eq!(parse_rule("t", "True").unwrap(), Check::True);
        assert_eq!(parse_rule("t", "False").unwrap(), Check::False);
    }

    #[test]
    fn check_kinds() {
        assert_eq!(
            parse_rule("t", "rule:foo").unwrap(),
            Check::Rule("foo".into())
        );
        assert_eq!(p("role:admin"), "role:admin");
        assert_eq!(p("role:%(target.role.name)s"), "role:%(target.role.name)s");
        assert_eq!(p("user_id:%(user_id)s"), "user_id:%(user_id)s");
        assert_eq!(
            p("'manager':%(target.role.name)s"),
            "'manager':%(target.role.name)s"
        );
        assert_eq!(p("\"x\":%(a)s"), "'x':%(a)s");
        assert!(matches!(
            parse_rule("t", "http://example.com/check").unwrap(),
            Check::Unsupported { .. }
        ));
        match parse_rule("t", "None:%(a.b)s").unwrap() {
            Check::Generic {
                left: Left::Literal(l),
                right,
            } => {
                assert_eq!(l, "None");
                assert_eq!(right.parts, vec![Part::Key("a.b".into())]);
            }
            other => panic!("{other:?}"),
        }
        match parse_rule("t", "is_admin:1").unwrap() {
            Check::Generic {
                left: Left::Credential(c),
                right,
            } => {
                assert_eq!(c, "is_admin");
                assert!(right.is_literal("1"));
            }
            other => panic!("{other:?}"),
        }
        match parse_rule("t", "007:%(x)s").unwrap() {
            Check::Generic {
                left: Left::Literal(l),
                ..
            } => assert_eq!(l, "7"),
            other => panic!("{other:?}"),
        }
        // The match part may itself contain ':'.
        match parse_rule("t", "role:compute:admin").unwrap() {
            Check::Role(t) => assert!(t.is_literal("compute:admin")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn field_checks() {
        match parse_rule("t", "field:networks:shared=True").unwrap() {
            Check::Field {
                resource,
                field,
                value,
            } => {
                assert_eq!(resource, "networks");
                assert_eq!(field, "shared");
                assert_eq!(value, FieldValue::Equals("True".into()));
            }
            other => panic!("{other:?}"),
        }
        // The field runs up to the first '=', so it may contain ':'.
        match parse_rule("t", "field:networks:router:external=True").unwrap() {
            Check::Field { field, .. } => assert_eq!(field, "router:external"),
            other => panic!("{other:?}"),
        }
        // The value runs to the end of the token and may contain '=' and ':'.
        match parse_rule("t", "field:ports:name=a=b:c").unwrap() {
            Check::Field { value, .. } => assert_eq!(value, FieldValue::Equals("a=b:c".into())),
            other => panic!("{other:?}"),
        }
        match parse_rule("t", "field:port:device_owner=~^network:").unwrap() {
            Check::Field { value, .. } => {
                assert!(matches!(value, FieldValue::Matches(_)));
                assert_eq!(value.to_string(), "~^network:");
            }
            other => panic!("{other:?}"),
        }
        // An empty value compares with the empty string; `%(..)s` is no substitution.
        assert_eq!(p("field:networks:name="), "field:networks:name=");
        assert_eq!(p("field:networks:name=%(x)s"), "field:networks:name=%(x)s");
        assert_eq!(
            p("(not field:rbac_policy:target_tenant=* and not field:rbac_policy:target_project=*) or rule:admin_only"),
            "((not field:rbac_policy:target_tenant=* and not field:rbac_policy:target_project=*) or rule:admin_only)"
        );
        assert_eq!(
            p("field:networks:router:external=True"),
            "field:networks:router:external=True"
        );
    }

    #[test]
    fn malformed_field_checks_are_syntax_errors() {
        assert!(e("field:networks").contains("no ':' between resource and field"));
        assert!(e("field:networks").contains("my_rule"));
        assert!(e("field:networks:shared").contains("no '=' between field and value"));
        assert!(e("field:").contains("no ':'"));
        assert!(e("field::shared=True").contains("names no resource"));
        assert!(e("field:networks:=True").contains("names no field"));
        assert!(
            e("role:a or field:networks:shared").contains("expected field:RESOURCE:FIELD=VALUE")
        );
        assert!(e("field:port:device_owner=~(network|compute):").contains("not supported"));
    }

    #[test]
    fn templates() {
        let t = parse_template("a-%(x.y)s-%%-%(z)s").unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Text("a-".into()),
                Part::Key("x.y".into()),
                Part::Text("-%-".into()),
                Part::Key("z".into()),
            ]
        );
        assert!(parse_template("%(x)d").is_err());
        assert!(parse_template("%(x").is_err());
        assert!(parse_template("50%").is_err());
        assert!(parse_template("%()s").is_err());
    }

    #[test]
    fn precedence() {
        assert_eq!(
            p("role:a or role:b and role:c"),
            "(role:a or (role:b and role:c))"
        );
        assert_eq!(
            p("role:a and role:b or role:c"),
            "((role:a and role:b) or role:c)"
        );
        assert_eq!(p("not role:a and role:b"), "(not role:a and role:b)");
        assert_eq!(p("not role:a or role:b"), "(not role:a or role:b)");
        assert_eq!(p("not (role:a or role:b)"), "not (role:a or role:b)");
        assert_eq!(p("not not role:a"), "not not role:a");
        assert_eq!(
            p("(role:a or role:b) and role:c"),
            "((role:a or role:b) and role:c)"
        );
        assert_eq!(
            p("role:a and role:b and role:c or role:d or role:e and role:f"),
            "((role:a and role:b and role:c) or role:d or (role:e and role:f))"
        );
        assert_eq!(p("((role:a))"), "role:a");
        assert_eq!(p("( role:a )"), "role:a");
        assert_eq!(
            p("role:a AND role:b Or NOT role:c"),
            "((role:a and role:b) or not role:c)"
        );
    }

    #[test]
    fn syntax_errors_name_rule_and_problem() {
        assert!(e("role:a and").contains("my_rule"));
        assert!(e("role:a and").contains("check was expected"));
        assert!(e("(role:a").contains("missing ')'"));
        assert!(e("role:a)").contains("unexpected ')'"));
        assert!(e("role:a role:b").contains("unexpected"));
        assert!(e("and role:a").contains("expected a check"));
        assert!(e("admin").contains("kind:match"));
        assert!(e("()").contains("empty parentheses"));
        assert!(e("'quoted'").contains("quoted string"));
        assert!(e(":x").contains("empty kind"));
        assert!(e("rule:").contains("names no rule"));
        assert!(e("role:").contains("names no role"));
        assert!(e("user_id:%(x)d").contains("followed by 's'"));
        assert!(e("'abc:%(x)s").contains("unterminated"));
        assert!(e("not").contains("check was expected"));
        let deep = format!("{}role:a{}", "(".repeat(100), ")".repeat(100));
        assert!(e(&deep).contains("nested deeper"));
        let ok = format!("{}role:a{}", "(".repeat(60), ")".repeat(60));
        assert_eq!(p(&ok), "role:a");
        assert!(e(&"not ".repeat(100)).contains("nested deeper"));
    }

    #[test]
    fn list_rules() {
        let v: serde_json::Value = serde_json::json!([["role:a", "role:b"], ["role:c"]]);
        let c = parse_list_rule("t", v.as_array().unwrap()).unwrap();
        assert_eq!(c.to_string(), "((role:a and role:b) or role:c)");
        assert_eq!(parse_list_rule("t", &[]).unwrap(), Check::True);
        let v = serde_json::json!(["role:a", []]);
        assert_eq!(
            parse_list_rule("t", v.as_array().unwrap())
                .unwrap()
                .to_string(),
            "role:a"
        );
        let v = serde_json::json!([[1]]);
        assert!(parse_list_rule("t", v.as_array().unwrap()).is_err());
    }

    #[test]
    fn referenced_rules() {
        let c = parse_rule("t", "rule:a or (role:x and not rule:b)").unwrap();
        let mut out = Vec::new();
        c.referenced_rules(&mut out);
        assert_eq!(out, vec!["a", "b"]);
    }
}
