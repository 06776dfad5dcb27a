//! The regular expressions of Neutron's `field:RESOURCE:FIELD=~REGEX` checks.
//!
//! Neutron matches them with Python's `re.match`: anchored at the start of the
//! target value, not at its end.  This crate takes no regex dependency; it
//! implements the subset policies use (Neutron's own default is
//! `field:port:device_owner=~^network:`):
//!
//! * literal characters, `\` escapes of punctuation, `\n`, `\t`;
//! * `.` (any character but a line break), `\d`, `\w`, `\s` and their
//!   negations `\D`, `\W`, `\S` (Unicode, as Python 3's);
//! * classes `[abc]`, `[a-z0-9_]`, `[^:]`;
//! * the quantifiers `*`, `+`, `?` (a lazy `*?`, `+?`, `??` is accepted: it
//!   cannot change whether `re.match` finds a match);
//! * `^` at the start (redundant with `re.match`) and `$` at the end.
//!
//! Groups, alternation (`|`), counted repetition (`{m,n}`) and the other
//! escapes are refused when the policy is loaded, so an operator's rule never
//! silently means something else than in Neutron.

use std::fmt;

/// A parsed pattern; matches like Python's `re.match(pattern, value)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pattern {
    /// The pattern as written (without Neutron's leading `~`).
    source: String,
    items: Vec<Item>,
    /// Ends with `$`.
    anchored_end: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    atom: Atom,
    min: usize,
    /// `None`: unbounded.
    max: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Atom {
    Char(char),
    /// `.`: anything but `\n`.
    Any,
    Digit(bool),
    Word(bool),
    Space(bool),
    Class {
        negated: bool,
        members: Vec<ClassMember>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ClassMember {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl ClassMember {
    fn matches(&self, c: char) -> bool {
        match *self {
            ClassMember::Range(lo, hi) => lo <= c && c <= hi,
            ClassMember::Digit(yes) => c.is_numeric() == yes,
            ClassMember::Word(yes) => is_word(c) == yes,
            ClassMember::Space(yes) => c.is_whitespace() == yes,
        }
    }
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::Any => c != '\n',
            Atom::Digit(yes) => c.is_numeric() == *yes,
            Atom::Word(yes) => is_word(c) == *yes,
            Atom::Space(yes) => c.is_whitespace() == *yes,
            Atom::Class { negated, members } => members.iter().any(|m| m.matches(c)) != *negated,
        }
    }
}

/// After a `\`: a class escape, or the escaped character; `None` for escapes
/// this subset does not support (`\b`, `\A`, `\1`, ...).
enum Escape {
    Char(char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

fn escape(c: char) -> Option<Escape> {
    Some(match c {
        'd' => Escape::Digit(true),
        'D' => Escape::Digit(false),
        'w' => Escape::Word(true),
        'W' => Escape::Word(false),
        's' => Escape::Space(true),
        'S' => Escape::Space(false),
        'n' => Escape::Char('\n'),
        't' => Escape::Char('\t'),
        c if !c.is_alphanumeric() => Escape::Char(c),
        _ => return None,
    })
}

impl Pattern {
    /// Parses `text` (the part after `~`); the error says what is not supported.
    pub(crate) fn parse(text: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut items: Vec<Item> = Vec::new();
        let mut anchored_end = false;
        // The last item may take a quantifier (not after another quantifier).
        let mut can_repeat = false;
        // Just after a quantifier, where a `?` makes it lazy.
        let mut after_quantifier = false;
        let mut i = 0;
        if chars.first() == Some(&'^') {
            i = 1;
        }
        while let Some(&c) = chars.get(i) {
            i += 1;
            let lazy_allowed = std::mem::take(&mut after_quantifier);
            let atom = match c {
                '.' => Atom::Any,
                '\\' => {
                    let Some(&e) = chars.get(i) else {
                        return Err("regular expression ends with a lone '\\'".to_owned());
                    };
                    i += 1;
                    match escape(e) {
                        Some(Escape::Char(x)) => Atom::Char(x),
                        Some(Escape::Digit(y)) => Atom::Digit(y),
                        Some(Escape::Word(y)) => Atom::Word(y),
                        Some(Escape::Space(y)) => Atom::Space(y),
                        None => {
                            return Err(format!(
                                "regular expression escape '\\{e}' is not supported"
                            ))
                        }
                    }
                }
                '[' => {
                    let (atom, next) = parse_class(&chars, i)?;
                    i = next;
                    atom
                }
                '*' | '+' | '?' => {
                    if !can_repeat {
                        // A lazy marker after a quantifier: `*?`, `+?`, `??`.
                        if c == '?' && lazy_allowed {
                            continue;
                        }
                        return Err(format!(
                            "regular expression has nothing to repeat before '{c}'"
                        ));
                    }
                    if let Some(last) = items.last_mut() {
                        match c {
                            '*' => {
                                last.min = 0;
                                last.max = None;
                            }
                            '+' => last.max = None,
                            _ => last.min = 0,
                        }
                    }
                    can_repeat = false;
                    after_quantifier = true;
                    continue;
                }
                '$' => {
                    if i != chars.len() {
                        return Err(
                            "'$' is supported only at the end of a regular expression".to_owned()
                        );
                    }
                    anchored_end = true;
                    continue;
                }
                '^' => {
                    return Err(
                        "'^' is supported only at the start of a regular expression".to_owned()
                    )
                }
                '(' | ')' | '|' | '{' => {
                    return Err(format!(
                        "regular expression feature '{c}' (groups, alternation, \
                         counted repetition) is not supported"
                    ))
                }
                other => Atom::Char(other),
            };
            items.push(Item {
                atom,
                min: 1,
                max: Some(1),
            });
            can_repeat = true;
        }
        Ok(Pattern {
            source: text.to_owned(),
            items,
            anchored_end,
        })
    }

    /// `re.match(self, value) is not None`.
    ///
    /// Runs the pattern as a set of states over the value (no backtracking),
    /// so its time is linear in the value's length whatever the pattern.
    pub(crate) fn is_match(&self, value: &str) -> bool {
        let end = self.items.len();
        let text: Vec<char> = value.chars().collect();
        // State (i, started): about to match item i; `started` when item i
        // already took a character (so its minimum is met and it may take more).
        let mut states = self.closure(vec![(0, false)]);
        for (pos, &c) in text.iter().enumerate() {
            if states.iter().any(|&(i, _)| i == end) {
                // Everything matched: `re.match` needs no more, `$` needs the end
                // (or only a final line break left).
                if !self.anchored_end || (pos + 1 == text.len() && c == '\n') {
                    return true;
                }
            }
            let mut next = Vec::new();
            for &(i, started) in &states {
                let Some(it) = self.items.get(i) else {
                    continue;
                };
                if it.atom.matches(c) {
                    if it.max.is_none() {
                        next.push((i, true));
                    } else if !started {
                        next.push((i + 1, false));
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            states = self.closure(next);
        }
        states.iter().any(|&(i, _)| i == end)
    }

    /// `states` plus every state reachable without taking a character
    /// (skipping items whose minimum is met), without duplicates.
    fn closure(&self, mut states: Vec<(usize, bool)>) -> Vec<(usize, bool)> {
        let mut out: Vec<(usize, bool)> = Vec::with_capacity(states.len());
        while let Some((i, started)) = states.pop() {
            if out.contains(&(i, started)) {
                continue;
            }
            out.push((i, started));
            if let Some(it) = self.items.get(i) {
                if it.min == 0 || started {
                    states.push((i + 1, false));
                }
            }
        }
        out
    }
}

/// Parses a class after its `[`; returns it and the index after its `]`.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Atom, usize), String> {
    let mut negated = false;
    if chars.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut members = Vec::new();
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("regular expression has an unterminated '[' class".to_owned());
        };
        i += 1;
        // As in Python, a ']' first in the class is a literal.
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = if c == '\\' {
            let Some(&e) = chars.get(i) else {
                return Err("regular expression has an unterminated '[' class".to_owned());
            };
            i += 1;
            match escape(e) {
                Some(Escape::Char(x)) => x,
                Some(Escape::Digit(y)) => {
                    members.push(ClassMember::Digit(y));
                    continue;
                }
                Some(Escape::Word(y)) => {
                    members.push(ClassMember::Word(y));
                    continue;
                }
                Some(Escape::Space(y)) => {
                    members.push(ClassMember::Space(y));
                    continue;
                }
                None => {
                    return Err(format!(
                        "regular expression escape '\\{e}' is not supported"
                    ))
                }
            }
        } else {
            c
        };
        // A range `a-z` (a '-' first, last or after a range is a literal).
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let Some(&hi_raw) = chars.get(i + 1) else {
                return Err("regular expression has an unterminated '[' class".to_owned());
            };
            i += 2;
            let hi = if hi_raw == '\\' {
                let Some(&e) = chars.get(i) else {
                    return Err("regular expression has an unterminated '[' class".to_owned());
                };
                i += 1;
                match escape(e) {
                    Some(Escape::Char(x)) => x,
                    _ => {
                        return Err(format!(
                        "regular expression class range ends in '\\{e}', which is not a character"
                    ))
                    }
                }
            } else {
                hi_raw
            };
            if hi < lo {
                return Err(format!(
                    "regular expression class range '{lo}-{hi}' is reversed"
                ));
            }
            members.push(ClassMember::Range(lo, hi));
        } else {
            members.push(ClassMember::Range(lo, lo));
        }
    }
    Ok((Atom::Class { negated, members }, i))
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, value: &str) -> bool {
        Pattern::parse(pattern).unwrap().is_match(value)
    }

    #[test]
    fn neutron_network_device() {
        assert!(m("^network:", "network:router_interface"));
        assert!(m("^network:", "network:dhcp"));
        assert!(!m("^network:", "compute:nova"));
        assert!(!m("^network:", "xnetwork:dhcp"));
        assert!(!m("^network:", ""));
        // re.match is anchored at the start even without '^'.
        assert!(m("network:", "network:dhcp"));
        assert!(!m("network:", "my-network:dhcp"));
    }

    #[test]
    fn operators() {
        assert!(m("a.c", "abc"));
        assert!(!m("a.c", "a\nc"));
        assert!(m("ab*c", "ac"));
        assert!(m("ab*c", "abbbc"));
        assert!(!m("ab+c", "ac"));
        assert!(m("ab+c", "abc"));
        assert!(m("ab?c$", "ac"));
        assert!(!m("ab?c$", "abbc"));
        assert!(m("a.*z$", "a-anything-z"));
        assert!(m("a.*?z", "a-z-z"));
        assert!(m("compute:.*", "compute:"));
        assert!(m("abc$", "abc"));
        assert!(m("abc$", "abc\n"));
        assert!(!m("abc$", "abcd"));
        assert!(m("abc", "abcd"));
        assert!(m("\\d+-\\w\\s\\S$", "12-x y"));
        assert!(!m("\\d", "x"));
        assert!(m("\\D\\W", "x-"));
        assert!(m("[a-c]+x$", "abcax"));
        assert!(!m("[a-c]+x$", "abdx"));
        assert!(m("[^:]+:", "network:"));
        assert!(!m("[^:]+:", ":"));
        assert!(m("[]a]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[\\d_]+$", "1_2"));
        assert!(m("a\\.b", "a.b"));
        assert!(!m("a\\.b", "axb"));
        assert!(m("", "anything"));
        assert!(m("^$", ""));
        assert!(!m("^$", "x"));
    }

    #[test]
    fn long_values_take_linear_time() {
        let long = "a".repeat(20_000);
        assert!(!m(".*.*.*.*.*.*.*.*x", &long));
        assert!(!m("a*a*a*a*a*a*a*a*$", &format!("{long}b")));
        assert!(m(".*.*.*.*a$", &long));
    }

    #[test]
    fn unsupported_features_are_refused() {
        for bad in [
            "(a|b)", "a|b", "a{2}", "*a", "a**", "a*??", "?", "a$b", "x^", "[abc", "[z-a]", "\\b",
            "\\1", "a\\",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn display_is_the_source() {
        assert_eq!(
            Pattern::parse("^network:").unwrap().to_string(),
            "^network:"
        );
    }
}
