//! `ssl.principal.mapping.rules`: the rules turning a client certificate's subject into the
//! principal name, with Kafka's syntax and matching.
//!
//! Rules are `DEFAULT` (the subject unchanged) or `RULE:pattern/replacement/` with an optional
//! `L` or `U` after the last slash (lower- or upper-case the result), separated by commas (a
//! comma inside a pattern is part of it; `\/` is a slash inside one). The first rule whose pattern
//! matches the whole subject gives the name, with `$1`… naming its groups; when none matches the
//! client is refused, as Kafka refuses it.

use regex::Regex;

/// Parsed mapping rules (equal when parsed from the same text).
#[derive(Clone, Debug)]
pub struct PrincipalRules {
    source: String,
    rules: Vec<Rule>,
}

impl PartialEq for PrincipalRules {
    fn eq(&self, other: &PrincipalRules) -> bool {
        self.source == other.source
    }
}

impl Eq for PrincipalRules {}

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Map {
        whole: Regex,
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Clone, Copy, Debug)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl PrincipalRules {
    /// Parses the rules; the error says what is wrong.
    pub fn parse(text: &str) -> Result<PrincipalRules, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (rule, after) = if let Some(after) = rest.strip_prefix("DEFAULT") {
                (Rule::Default, after)
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                parse_rule(after)?
            } else {
                return Err(format!("expected DEFAULT or RULE: at \"{rest}\""));
            };
            rules.push(rule);
            let after = after.trim_start();
            rest = match after.strip_prefix(',') {
                Some(next) => next.trim_start(),
                None if after.is_empty() => after,
                None => return Err(format!("expected a comma before \"{after}\"")),
            };
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(PrincipalRules {
            source: text.to_string(),
            rules,
        })
    }

    /// The principal name for `subject`, or `None` when no rule applies.
    pub fn apply(&self, subject: &str) -> Option<String> {
        self.rules.iter().find_map(|r| match r {
            Rule::Default => Some(subject.to_string()),
            Rule::Map {
                whole,
                pattern,
                replacement,
                case,
            } => {
                if !whole.is_match(subject) {
                    return None;
                }
                let out = pattern.replace_all(subject, replacement.as_str());
                Some(match case {
                    Case::Keep => out.into_owned(),
                    Case::Lower => out.to_lowercase(),
                    Case::Upper => out.to_uppercase(),
                })
            }
        })
    }
}

/// `pattern/replacement/[LU]` and what follows it.
fn parse_rule(text: &str) -> Result<(Rule, &str), String> {
    let (pattern, after) = until_slash(text).ok_or("a rule needs pattern/replacement/")?;
    let (replacement, after) = until_slash(after).ok_or("a rule needs pattern/replacement/")?;
    let (case, after) = match after.chars().next() {
        Some('L') => (Case::Lower, &after[1..]),
        Some('U') => (Case::Upper, &after[1..]),
        _ => (Case::Keep, after),
    };
    let bad = |e: regex::Error| format!("pattern {pattern}: {e}");
    let whole = Regex::new(&format!("^(?:{pattern})$")).map_err(bad)?;
    let pattern_re = Regex::new(pattern).map_err(bad)?;
    Ok((
        Rule::Map {
            whole,
            pattern: pattern_re,
            replacement: replacement_syntax(replacement),
            case,
        },
        after,
    ))
}

/// The text up to the first unescaped `/`, and the text after it.
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&text[..i], &text[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// A Java replacement string in the regex crate's syntax: `$1` → `${1}` (so `$1abc` stays group
/// 1 then `abc`), `\x` → a literal `x`, a literal `$` → `$$`.
fn replacement_syntax(java: &str) -> String {
    let mut out = String::with_capacity(java.len() + 8);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DN: &str = "CN=kafka-client,OU=Streams,O=Example\\, Inc.,C=DE";

    #[test]
    fn default_keeps_the_subject() {
        let r = PrincipalRules::parse("DEFAULT").unwrap();
        assert_eq!(r.apply(DN).as_deref(), Some(DN));
        assert_eq!(PrincipalRules::parse("").unwrap().apply("x").unwrap(), "x");
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules =
            "RULE:^CN=(.*?),OU=Ops,.*$/ops-$1/, RULE:^CN=(.*?),OU=(.*?),.*$/$1@$2/L, DEFAULT";
        let r = PrincipalRules::parse(rules).unwrap();
        assert_eq!(r.apply(DN).as_deref(), Some("kafka-client@streams"));
        assert_eq!(
            r.apply("CN=a,OU=Ops,C=DE").as_deref(),
            Some("ops-a"),
            "earlier rule first"
        );
        assert_eq!(r.apply("O=none").as_deref(), Some("O=none"), "DEFAULT last");
    }

    #[test]
    fn upper_case_and_no_match() {
        let r = PrincipalRules::parse("RULE:^CN=([a-z-]+),.*$/$1/U").unwrap();
        assert_eq!(r.apply(DN).as_deref(), Some("KAFKA-CLIENT"));
        assert_eq!(r.apply("OU=x"), None, "no rule applies: refused");
    }

    #[test]
    fn commas_and_escaped_slashes_inside_patterns() {
        let r = PrincipalRules::parse("RULE:^CN=([^,]+),O=a\\/b$/$1x\\/y/").unwrap();
        assert_eq!(r.apply("CN=n,O=a/b").as_deref(), Some("nx/y"));
    }

    #[test]
    fn bad_rules_are_errors() {
        for bad in [
            "RULE:abc",
            "RULE:(/x/",
            "NOPE",
            "DEFAULT DEFAULT",
            "RULE:a/b/Q",
        ] {
            assert!(PrincipalRules::parse(bad).is_err(), "{bad}");
        }
    }
}
