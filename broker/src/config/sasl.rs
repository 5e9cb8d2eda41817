//! SASL settings of the SASL_PLAINTEXT and SASL_SSL listeners ([`SASL_CONFIGS`]):
//! `sasl.enabled.mechanisms` (also per listener as `listener.name.<listener>.sasl.enabled.mechanisms`),
//! the PLAIN users of `listener.name.<listener>.plain.sasl.jaas.config` (Kafka's
//! `PlainLoginModule` with `user_<name>="<password>"` options), `connections.max.reauth.ms` and
//! `sasl.server.max.receive.size`, resolved into one [`SaslConfig`] per SASL listener. SCRAM
//! users are not configuration: they live in the metadata log (`crate::api::scram`).

use super::ssl::{listener_prefixed, listener_value};
use super::{invalid, split_list, ConfigDef, ConfigError, Kind};
use crate::sasl::jaas;
use crate::sasl::scram::ScramMechanism;
use std::collections::BTreeMap;

/// The SASL keys Shale reads. Order is the docs' order.
pub static SASL_CONFIGS: &[ConfigDef] = &[
    def!(
        "sasl.enabled.mechanisms",
        Some("GSSAPI"),
        List,
        "SASL mechanisms a SASL listener offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512. Kafka's default GSSAPI (Kerberos) and OAUTHBEARER stop start-up for now."
    ),
    def!(
        "connections.max.reauth.ms",
        Some("0"),
        Long,
        "KIP-368: when positive, an authenticated session lasts this long; a client must re-authenticate on its connection before then (Kafka clients do), else the connection is closed at its next request. 0: sessions do not expire."
    ),
    def!(
        "connection.failed.authentication.delay.ms",
        Some("100"),
        Int,
        "How long the answer to a failed SASL login (and the close after it) is held back, slowing password guessing; it must be below connections.max.idle.ms."
    ),
    def!(
        "sasl.server.max.receive.size",
        Some("524288"),
        Int,
        "Largest request accepted from a SASL client before it has authenticated; a larger size prefix closes the connection."
    ),
];

/// The SASL mechanisms Shale serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616 PLAIN.
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512, against the credentials in the metadata log.
    Scram(ScramMechanism),
}

impl Mechanism {
    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }
}

/// One SASL listener's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslConfig {
    /// The listener.
    pub listener: String,
    /// Mechanisms offered, in `sasl.enabled.mechanisms` order.
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN users and their passwords.
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms` (0: sessions do not expire).
    pub reauth_ms: i64,
    /// `sasl.server.max.receive.size`.
    pub max_receive_size: usize,
    /// `connection.failed.authentication.delay.ms`.
    pub failure_delay_ms: u64,
}

/// The PLAIN login module.
const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// `listener.name.<listener>.<mechanism>.sasl.jaas.config` for a served mechanism, or
/// `listener.name.<listener>.sasl.enabled.mechanisms`: the key Shale reads, if `key` is one.
pub fn is_listener_sasl_key(key: &str) -> bool {
    let Some((_listener, rest)) = key
        .strip_prefix("listener.name.")
        .and_then(|r| r.split_once('.'))
    else {
        return false;
    };
    let jaas = ["plain", "scram-sha-256", "scram-sha-512"]
        .iter()
        .any(|m| rest.eq_ignore_ascii_case(&format!("{m}.sasl.jaas.config")));
    rest == "sasl.enabled.mechanisms" || jaas
}

/// Resolves a SASL listener's settings; mechanisms Shale does not serve go to `unsupported`.
pub fn resolve(
    props: &BTreeMap<String, String>,
    listener: &str,
    unsupported: &mut Vec<String>,
) -> Result<SaslConfig, ConfigError> {
    let lower = listener.to_lowercase();
    let prefixed = |key: &str| listener_prefixed(props, listener, key);
    let get = |key: &str| listener_value(props, listener, key).unwrap_or_default();
    let mut mechanisms = Vec::new();
    for m in split_list(&get("sasl.enabled.mechanisms")) {
        match m.to_uppercase().as_str() {
            "PLAIN" => mechanisms.push(Mechanism::Plain),
            "SCRAM-SHA-256" => mechanisms.push(Mechanism::Scram(ScramMechanism::Sha256)),
            "SCRAM-SHA-512" => mechanisms.push(Mechanism::Scram(ScramMechanism::Sha512)),
            other => unsupported.push(format!(
                "sasl.enabled.mechanisms (listener {listener}): {other} is not supported yet \
                 (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are)"
            )),
        }
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.contains(&Mechanism::Plain) {
        let key = format!("listener.name.{lower}.plain.sasl.jaas.config");
        let text = prefixed("plain.sasl.jaas.config").ok_or_else(|| {
            invalid(
                &key,
                "",
                "the listener enables PLAIN: set its users with a PlainLoginModule entry",
            )
        })?;
        let entry = jaas::parse(&text).map_err(|e| invalid(&key, "(hidden)", &e))?;
        if entry.module != PLAIN_MODULE {
            return Err(invalid(
                &key,
                "(hidden)",
                &format!("expected {PLAIN_MODULE}, found {}", entry.module),
            ));
        }
        for (k, v) in &entry.options {
            if let Some(user) = k.strip_prefix("user_") {
                plain_users.insert(user.to_string(), v.clone());
            }
        }
    }
    let number = |key: &str| -> Result<i64, ConfigError> {
        let v = get(key);
        v.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| invalid(key, &v, "expected a number >= 0"))
    };
    Ok(SaslConfig {
        listener: listener.to_string(),
        mechanisms,
        plain_users,
        reauth_ms: number("connections.max.reauth.ms")?,
        max_receive_size: number("sasl.server.max.receive.size")?.clamp(1, i32::MAX as i64)
            as usize,
        failure_delay_ms: number("connection.failed.authentication.delay.ms")? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::props;

    const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                        username=\"admin\" password=\"a-secret\" user_admin=\"a-secret\" \
                        user_alice=\"b-secret\";";

    #[test]
    fn plain_users_from_the_listeners_jaas_config() {
        let p = props(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.SASL_SSL.plain.sasl.jaas.config", JAAS),
            ("connections.max.reauth.ms", "60000"),
        ]);
        let mut u = Vec::new();
        let c = resolve(&p, "SASL_SSL", &mut u).unwrap();
        assert!(u.is_empty(), "{u:?}");
        assert_eq!(c.mechanisms, vec![Mechanism::Plain]);
        assert_eq!(c.plain_users.len(), 2);
        assert_eq!(c.plain_users["alice"], "b-secret");
        assert_eq!(c.reauth_ms, 60_000);
        assert_eq!(c.max_receive_size, 524_288);
    }

    #[test]
    fn other_mechanisms_are_reported_and_jaas_is_required() {
        let mut u = Vec::new();
        let c = resolve(&props(&[]), "SASL_PLAINTEXT", &mut u).unwrap();
        assert!(c.mechanisms.is_empty());
        assert!(u[0].contains("GSSAPI"), "{u:?}");
        let p = props(&[("listener.name.x.sasl.enabled.mechanisms", "PLAIN")]);
        let err = resolve(&p, "X", &mut u).unwrap_err().to_string();
        assert!(
            err.contains("listener.name.x.plain.sasl.jaas.config"),
            "{err}"
        );
        let p = props(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.x.plain.sasl.jaas.config",
                "a.B required secret=\"s\";",
            ),
        ]);
        let err = resolve(&p, "X", &mut u).unwrap_err().to_string();
        assert!(
            err.contains("PlainLoginModule") && !err.contains("\"s\""),
            "{err}"
        );
    }

    #[test]
    fn listener_sasl_keys() {
        assert!(is_listener_sasl_key(
            "listener.name.sasl_ssl.plain.sasl.jaas.config"
        ));
        assert!(is_listener_sasl_key(
            "listener.name.sasl_ssl.sasl.enabled.mechanisms"
        ));
        assert!(is_listener_sasl_key(
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"
        ));
        assert!(!is_listener_sasl_key(
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config"
        ));
    }
}
