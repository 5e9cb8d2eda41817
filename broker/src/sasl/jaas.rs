//! Kafka's `sasl.jaas.config` values: `<LoginModule class> <flag> key="value" … ;`, as a broker
//! reads them from `listener.name.<listener>.<mechanism>.sasl.jaas.config`. Values may be quoted
//! (with `\"` and `\\` escapes inside) or bare words.

use std::collections::BTreeMap;

/// One login module entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JaasEntry {
    /// The login module class.
    pub module: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// The options.
    pub options: BTreeMap<String, String>,
}

/// Parses a JAAS configuration holding exactly one entry. Errors never quote option values
/// (they hold passwords).
pub fn parse(text: &str) -> Result<JaasEntry, String> {
    let mut p = Parser {
        rest: text.trim_start(),
    };
    let module = p.word().ok_or("expected a login module class")?;
    let flag = p
        .word()
        .ok_or("expected a control flag after the login module")?;
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err(format!(
            "control flag {flag}: expected required, requisite, sufficient or optional"
        ));
    }
    let mut options = BTreeMap::new();
    loop {
        p.skip_space();
        if let Some(after) = p.rest.strip_prefix(';') {
            if !after.trim().is_empty() {
                return Err("one login module entry is expected, found more after ';'".into());
            }
            return Ok(JaasEntry {
                module,
                flag,
                options,
            });
        }
        let key = p
            .word()
            .ok_or("expected key=value options and a final ';'")?;
        p.skip_space();
        p.rest = p
            .rest
            .strip_prefix('=')
            .ok_or_else(|| format!("option {key}: expected '='"))?;
        p.skip_space();
        let value = p
            .value()
            .ok_or_else(|| format!("option {key}: unterminated or missing value"))?;
        options.insert(key, value);
    }
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    /// A bare word: up to whitespace, `=` or `;`.
    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let end = self
            .rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == ';')
            .unwrap_or(self.rest.len());
        if end == 0 {
            return None;
        }
        let (w, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(w.to_string())
    }

    /// A quoted string (escapes `\"` and `\\`) or a bare word.
    fn value(&mut self) -> Option<String> {
        let Some(quoted) = self.rest.strip_prefix('"') else {
            return self.word();
        };
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &quoted[i + 1..];
                    return Some(out);
                }
                '\\' => out.push(chars.next()?.1),
                c => out.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_plain_example() {
        let e = parse(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"admin\"\n password=\"admin-secret\" user_admin=\"admin-secret\" \
             user_alice=\"al\\\"ice\";",
        )
        .unwrap();
        assert_eq!(
            e.module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(e.flag, "required");
        assert_eq!(e.options["user_admin"], "admin-secret");
        assert_eq!(e.options["user_alice"], "al\"ice");
        assert_eq!(e.options.len(), 4);
    }

    #[test]
    fn bare_values_and_no_options() {
        let e = parse("a.B optional debug=true ;").unwrap();
        assert_eq!(e.options["debug"], "true");
        assert!(parse("a.B required;").unwrap().options.is_empty());
    }

    #[test]
    fn errors_name_the_problem_not_the_secret() {
        for bad in [
            "",
            "a.B",
            "a.B maybe;",
            "a.B required user_x=\"secret",
            "a.B required user_x=\"secret\"",
            "a.B required x=1; c.D required;",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("secret"), "{bad}: {err}");
        }
    }
}
