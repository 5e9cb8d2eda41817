//! Keys that must never be ignored: they ask for a feature Shale does not implement (SASL,
//! delegation tokens, quotas, …), so running without it would be silently unsafe. Kafka tolerates
//! unknown keys and Shale keeps that tolerance for keys that change nothing about safety; a key
//! matching a rule in [`UNSUPPORTED`] with a value that would ask for the feature stops start-up.
//!
//! Listener protocols and the cluster keys need more than a key pattern and are checked in
//! `listeners` and `cluster`; their findings join the same report.

/// Which keys a rule covers.
#[derive(Clone, Copy, Debug)]
pub enum Pattern {
    /// Exactly this key.
    Exact(&'static str),
    /// Every key starting with this.
    Prefix(&'static str),
    /// Every key ending with this.
    Suffix(&'static str),
    /// `listener.name.<listener>.<rest>` or `listener.name.<listener>.<mechanism>.<rest>` where
    /// `<rest>` starts with this.
    PerListener(&'static str),
}

/// Which values are harmless (set, but asking for nothing Shale lacks).
#[derive(Clone, Copy, Debug)]
pub enum Harmless {
    /// Only an empty value.
    Empty,
    /// An empty value or one of these (compared case-insensitively).
    Values(&'static [&'static str]),
}

/// One fail-closed rule.
#[derive(Debug)]
pub struct Rule {
    /// The keys it covers.
    pub pattern: Pattern,
    /// The values that are accepted (and have no effect).
    pub harmless: Harmless,
    /// What is not supported, for the start-up error and the docs.
    pub feature: &'static str,
}

const TLS: &str =
    "a JSSE engine or provider is not supported: Shale's TLS is rustls, set by the ssl.* keys";
const SASL: &str = "this SASL setting is not supported yet (PLAIN logins on client listeners are)";

/// Every fail-closed rule; docs/configuration.md lists them from here.
pub static UNSUPPORTED: &[Rule] = &[
    rule(
        Pattern::Exact("ssl.engine.factory.class"),
        Harmless::Empty,
        TLS,
    ),
    rule(Pattern::Exact("ssl.provider"), Harmless::Empty, TLS),
    rule(
        Pattern::PerListener("ssl.engine.factory.class"),
        Harmless::Empty,
        TLS,
    ),
    rule(Pattern::Prefix("sasl."), Harmless::Empty, SASL),
    rule(Pattern::PerListener("sasl."), Harmless::Empty, SASL),
    rule(Pattern::Suffix(".jaas.config"), Harmless::Empty, SASL),
    rule(
        Pattern::Exact("security.inter.broker.protocol"),
        Harmless::Values(&["PLAINTEXT", "SSL"]),
        "SASL is not supported yet (PLAINTEXT and SSL are)",
    ),
    rule(
        Pattern::Exact("security.providers"),
        Harmless::Empty,
        "JCA security providers are not supported (TLS is rustls)",
    ),
    rule(
        Pattern::Exact("principal.builder.class"),
        Harmless::Values(&[
            "org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder",
        ]),
        "authentication is not supported yet",
    ),
    rule(
        Pattern::Exact("delegation.token.secret.key"),
        Harmless::Empty,
        "delegation tokens are not supported yet",
    ),
    rule(
        Pattern::Exact("delegation.token.master.key"),
        Harmless::Empty,
        "delegation tokens are not supported yet",
    ),
    rule(
        Pattern::Exact("client.quota.callback.class"),
        Harmless::Empty,
        "client quotas are not supported yet",
    ),
    rule(
        Pattern::Exact("max.connection.creation.rate"),
        Harmless::Values(&["2147483647"]),
        "connection-rate limits are not supported yet",
    ),
    rule(
        Pattern::PerListener("max.connection"),
        Harmless::Empty,
        "per-listener connection limits are not supported yet (max.connections is)",
    ),
];

const fn rule(pattern: Pattern, harmless: Harmless, feature: &'static str) -> Rule {
    Rule {
        pattern,
        harmless,
        feature,
    }
}

impl Pattern {
    /// Whether `key` is covered.
    pub fn matches(&self, key: &str) -> bool {
        match *self {
            Pattern::Exact(k) => key == k,
            Pattern::Prefix(p) => key.starts_with(p),
            Pattern::Suffix(s) => key.ends_with(s),
            Pattern::PerListener(p) => {
                let Some((_listener, rest)) = key
                    .strip_prefix("listener.name.")
                    .and_then(|r| r.split_once('.'))
                else {
                    return false;
                };
                rest.starts_with(p)
                    || rest
                        .split_once('.')
                        .is_some_and(|(_mechanism, r)| r.starts_with(p))
            }
        }
    }

    /// The pattern as the docs show it.
    pub fn display(&self) -> String {
        match *self {
            Pattern::Exact(k) => format!("`{k}`"),
            Pattern::Prefix(p) => format!("`{p}*`"),
            Pattern::Suffix(s) => format!("`*{s}`"),
            Pattern::PerListener(p) => {
                format!(
                    "`listener.name.<listener>.{p}*`, `listener.name.<listener>.<mechanism>.{p}*`"
                )
            }
        }
    }
}

impl Harmless {
    fn allows(&self, value: &str) -> bool {
        let value = value.trim();
        match self {
            Harmless::Empty => value.is_empty(),
            Harmless::Values(vs) => {
                value.is_empty() || vs.iter().any(|v| v.eq_ignore_ascii_case(value))
            }
        }
    }

    /// The accepted values as the docs show them.
    pub fn display(&self) -> String {
        match self {
            Harmless::Empty => "empty".to_string(),
            Harmless::Values(vs) => {
                let vs: Vec<String> = vs.iter().map(|v| format!("`{v}`")).collect();
                format!("empty, {}", vs.join(", "))
            }
        }
    }
}

/// The rule `key` falls under, if any (none for a key Shale serves).
pub fn rule_for(key: &str) -> Option<&'static Rule> {
    let served = crate::config::broker_def(key).is_some()
        || crate::config::ssl::listener_ssl_key(key).is_some()
        || crate::config::sasl::is_listener_sasl_key(key);
    if served {
        return None;
    }
    UNSUPPORTED.iter().find(|r| r.pattern.matches(key))
}

/// `Some(problem)` when `key=value` asks for an unsupported feature.
pub fn check(key: &str, value: &str) -> Option<String> {
    let rule = rule_for(key)?;
    if rule.harmless.allows(value) {
        return None;
    }
    Some(format!("{key}: {}", rule.feature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::all_broker_configs;

    /// Keys from real Kafka security set-ups; each must be refused.
    const REFUSED: &[(&str, &str)] = &[
        ("ssl.engine.factory.class", "com.example.Engine"),
        ("ssl.provider", "SunJSSE"),
        ("listener.name.internal.ssl.engine.factory.class", "a.B"),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required;",
        ),
        ("sasl.kerberos.service.name", "kafka"),
        (
            "listener.name.sasl_plaintext.plain.sasl.server.callback.handler.class",
            "a.B",
        ),
        (
            "listener.name.external.gssapi.sasl.jaas.config",
            "x required;",
        ),
        ("security.inter.broker.protocol", "SASL_SSL"),
        ("principal.builder.class", "com.example.MyBuilder"),
        ("security.providers", "com.example.Provider"),
        ("delegation.token.secret.key", "k"),
        ("delegation.token.master.key", "k"),
        ("client.quota.callback.class", "com.example.Quotas"),
        ("max.connection.creation.rate", "10"),
        ("listener.name.internal.max.connections", "100"),
        ("listener.name.internal.max.connection.creation.rate", "10"),
    ];

    /// Set but harmless: accepted (and logged as having no effect).
    const ACCEPTED: &[(&str, &str)] = &[
        ("security.inter.broker.protocol", "PLAINTEXT"),
        ("security.inter.broker.protocol", "plaintext"),
        ("security.inter.broker.protocol", "SSL"),
        ("ssl.provider", ""),
        ("ssl.keymanager.algorithm", "SunX509"),
        ("max.connection.creation.rate", "2147483647"),
        // Not security settings at all.
        ("listener.name.internal.connections.max.idle.ms", "1000"),
        ("no.such.key", "1"),
        ("socket.send.buffer.bytes", "102400"),
    ];

    #[test]
    fn every_security_setting_is_refused() {
        for (k, v) in REFUSED {
            let problem = check(k, v).unwrap_or_else(|| panic!("{k}={v} was not refused"));
            assert!(problem.starts_with(k) && problem.contains("not supported"));
        }
    }

    #[test]
    fn harmless_values_and_other_keys_are_accepted() {
        for (k, v) in ACCEPTED {
            assert_eq!(check(k, v), None, "{k}={v}");
        }
    }

    #[test]
    fn every_rule_is_exercised() {
        for r in UNSUPPORTED {
            assert!(
                REFUSED.iter().any(|(k, _)| r.pattern.matches(k)),
                "no test key for {:?}",
                r.pattern
            );
        }
    }

    #[test]
    fn no_served_key_is_refused() {
        for d in all_broker_configs() {
            assert!(
                rule_for(d.name).is_none(),
                "{} is served and refused",
                d.name
            );
        }
    }
}
