//! SASL settings of the SASL_PLAINTEXT and SASL_SSL listeners ([`SASL_CONFIGS`]):
//! `sasl.enabled.mechanisms` (also per listener as `listener.name.<listener>.sasl.enabled.mechanisms`),
//! the PLAIN users of `listener.name.<listener>.plain.sasl.jaas.config` (Kafka's
//! `PlainLoginModule` with `user_<name>="<password>"` options), `connections.max.reauth.ms` and
//! `sasl.server.max.receive.size`, resolved into one [`SaslConfig`] per SASL listener. SCRAM
//! users are not configuration: they live in the metadata log (`crate::api::scram`).
//! OAUTHBEARER takes its unsecured validator's options from the listener's
//! `oauthbearer.sasl.jaas.config` (`OAuthBearerLoginModule`, `unsecuredValidator*` options).

use super::ssl::{listener_prefixed, listener_value};
use super::{invalid, split_list, ConfigDef, ConfigError, Kind};
use crate::sasl::jaas;
use crate::sasl::oauth::UnsecuredValidator;
use crate::sasl::scram::ScramMechanism;
use std::collections::BTreeMap;

/// The SASL keys Shale reads. Order is the docs' order.
pub static SASL_CONFIGS: &[ConfigDef] = &[
    def!(
        "sasl.enabled.mechanisms",
        Some("GSSAPI"),
        List,
        "SASL mechanisms a SASL listener offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (with Kafka's unsecured JWS validator). Kafka's default GSSAPI (Kerberos) stops start-up."
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
    /// RFC 7628 OAUTHBEARER, tokens checked by Kafka's unsecured JWS validator.
    OAuthBearer,
}

impl Mechanism {
    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
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
    /// OAUTHBEARER's token checks.
    pub oauth: UnsecuredValidator,
    /// `connections.max.reauth.ms` (0: sessions do not expire).
    pub reauth_ms: i64,
    /// `sasl.server.max.receive.size`.
    pub max_receive_size: usize,
    /// `connection.failed.authentication.delay.ms`.
    pub failure_delay_ms: u64,
}

/// The PLAIN login module.
const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// The OAUTHBEARER login module.
const OAUTH_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// `listener.name.<listener>.<mechanism>.sasl.jaas.config` for a served mechanism, or
/// `listener.name.<listener>.sasl.enabled.mechanisms`: the key Shale reads, if `key` is one.
pub fn is_listener_sasl_key(key: &str) -> bool {
    let Some((_listener, rest)) = key
        .strip_prefix("listener.name.")
        .and_then(|r| r.split_once('.'))
    else {
        return false;
    };
    let jaas = ["plain", "scram-sha-256", "scram-sha-512", "oauthbearer"]
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
            "OAUTHBEARER" => mechanisms.push(Mechanism::OAuthBearer),
            other => unsupported.push(format!(
                "sasl.enabled.mechanisms (listener {listener}): {other} is not supported yet \
                 (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER are)"
            )),
        }
    }
    let jaas_entry = |mechanism: &str, module: &str, what: &str| {
        let key = format!("listener.name.{lower}.{mechanism}.sasl.jaas.config");
        let text = prefixed(&format!("{mechanism}.sasl.jaas.config"))
            .ok_or_else(|| invalid(&key, "", &format!("the listener enables {what}")))?;
        let entry = jaas::parse(&text).map_err(|e| invalid(&key, "(hidden)", &e))?;
        if entry.module != module {
            let found = format!("expected {module}, found {}", entry.module);
            return Err(invalid(&key, "(hidden)", &found));
        }
        Ok((key, entry))
    };
    let mut plain_users = BTreeMap::new();
    if mechanisms.contains(&Mechanism::Plain) {
        let what = "PLAIN: set its users with a PlainLoginModule entry";
        let (_, entry) = jaas_entry("plain", PLAIN_MODULE, what)?;
        for (k, v) in &entry.options {
            if let Some(user) = k.strip_prefix("user_") {
                plain_users.insert(user.to_string(), v.clone());
            }
        }
    }
    let mut oauth = UnsecuredValidator::default();
    if mechanisms.contains(&Mechanism::OAuthBearer) {
        let what = "OAUTHBEARER: set an OAuthBearerLoginModule entry";
        let (key, entry) = jaas_entry("oauthbearer", OAUTH_MODULE, what)?;
        oauth = unsecured_validator(&entry.options).map_err(|e| invalid(&key, "(hidden)", &e))?;
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
        oauth,
        reauth_ms: number("connections.max.reauth.ms")?,
        max_receive_size: number("sasl.server.max.receive.size")?.clamp(1, i32::MAX as i64)
            as usize,
        failure_delay_ms: number("connection.failed.authentication.delay.ms")? as u64,
    })
}

/// The unsecured validator's `unsecuredValidator*` options (blank ones keep their defaults).
fn unsecured_validator(options: &BTreeMap<String, String>) -> Result<UnsecuredValidator, String> {
    let option = |name: &str| {
        options
            .get(&format!("unsecuredValidator{name}"))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut v = UnsecuredValidator::default();
    if let Some(claim) = option("PrincipalClaimName") {
        v.principal_claim = claim;
    }
    if let Some(claim) = option("ScopeClaimName") {
        v.scope_claim = claim;
    }
    if let Some(scope) = option("RequiredScope") {
        v.required_scope = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
    }
    if let Some(skew) = option("AllowableClockSkewMs") {
        v.clock_skew_ms = skew
            .parse::<i32>()
            .ok()
            .filter(|ms| *ms >= 0)
            .ok_or("unsecuredValidatorAllowableClockSkewMs must be a number >= 0")?
            .into();
    }
    Ok(v)
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
        assert!(is_listener_sasl_key(
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config"
        ));
        assert!(!is_listener_sasl_key(
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class"
        ));
    }

    #[test]
    fn oauthbearer_reads_the_unsecured_validators_options() {
        let jaas = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                    unsecuredLoginStringClaim_sub=\"admin\" unsecuredValidatorRequiredScope=\"a b\" \
                    unsecuredValidatorAllowableClockSkewMs=\"500\";";
        let p = props(&[
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
                jaas,
            ),
        ]);
        let mut u = Vec::new();
        let c = resolve(&p, "SASL_PLAINTEXT", &mut u).unwrap();
        assert!(u.is_empty(), "{u:?}");
        assert_eq!(c.mechanisms, vec![Mechanism::OAuthBearer]);
        assert_eq!(c.oauth.required_scope, vec!["a", "b"]);
        assert_eq!(
            (c.oauth.clock_skew_ms, c.oauth.principal_claim.as_str()),
            (500, "sub")
        );
        let p = props(&[("sasl.enabled.mechanisms", "OAUTHBEARER")]);
        let err = resolve(&p, "SASL_PLAINTEXT", &mut u)
            .unwrap_err()
            .to_string();
        assert!(err.contains("oauthbearer.sasl.jaas.config"), "{err}");
    }
}
