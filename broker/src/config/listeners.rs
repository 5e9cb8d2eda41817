//! Listeners: `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
//! `controller.listener.names` and `inter.broker.listener.name`, resolved as Kafka resolves them.
//!
//! A listener's security protocol comes from the protocol map (listener name → protocol). Without
//! an explicit map, Kafka's default maps the four protocol names to themselves and, in KRaft mode,
//! maps the controller listener names to PLAINTEXT unless an SSL or SASL name is in use. Shale
//! serves PLAINTEXT and SSL; a SASL protocol is reported as unsupported and stops start-up.
//!
//! Every listener is bound. Controller listeners (named in `controller.listener.names`) are bound
//! and served like the others — Shale's quorum is in-process, so there is no separate controller
//! protocol — but they are not advertised to clients, as Kafka only advertises broker listeners.

use super::{invalid, split_list, ConfigError};
use std::collections::BTreeMap;

/// A listener such as `PLAINTEXT://127.0.0.1:9092`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Listener name, upper-cased as Kafka normalises it (`PLAINTEXT`, `CONTROLLER`, …).
    pub name: String,
    /// Host as written (empty for all interfaces).
    pub host: String,
    /// Port (0 = any free port).
    pub port: u16,
    /// Its security protocol (`listener.security.protocol.map`).
    pub protocol: SecurityProtocol,
}

/// Kafka's security protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// Plain TCP.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(name: &str) -> Option<SecurityProtocol> {
        Some(match name {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    /// Whether clients authenticate with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Whether the connection is TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// Kafka's security protocols.
pub const SECURITY_PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// The resolved listener settings.
#[derive(Clone, Debug)]
pub struct Listeners {
    /// Every listener in `listeners`; all are bound at start-up.
    pub bind: Vec<Listener>,
    /// Broker listeners given to clients (`advertised.listeners`, else `listeners`, without the
    /// controller listeners). Never empty.
    pub advertised: Vec<Listener>,
    /// Every parsed advertised listener, controller listeners included.
    pub advertised_all: Vec<Listener>,
    /// `controller.listener.names`, upper-cased.
    pub controller_names: Vec<String>,
    /// The security protocol of every listener name in use (bound and controller listeners).
    pub protocols: BTreeMap<String, SecurityProtocol>,
}

/// Resolves the listener keys. Malformed values are errors; a SASL listener is
/// pushed to `unsupported` (so every such setting is reported at once). A controller-only node
/// (`controller_only`) needs no listener for clients.
pub fn resolve(
    props: &BTreeMap<String, String>,
    controller_only: bool,
    unsupported: &mut Vec<String>,
) -> Result<Listeners, ConfigError> {
    let mut bind = parse_listeners("listeners", listeners_value(props))?;
    if bind.is_empty() {
        return Err(invalid(
            "listeners",
            "",
            "at least one listener is required",
        ));
    }
    check_distinct_names("listeners", &bind)?;
    let controller_names: Vec<String> = props
        .get("controller.listener.names")
        .map(|v| split_list(v).iter().map(|n| n.to_uppercase()).collect())
        .unwrap_or_default();
    // A controller serves on its controller listener; a broker-only node only connects to the
    // controllers' (named here, bound by them), as Kafka requires.
    let broker_only = super::cluster::roles(props).ok() == Some(super::cluster::Roles::Broker);
    for name in &controller_names {
        match (bind.iter().any(|l| &l.name == name), broker_only) {
            (false, false) => {
                return Err(invalid(
                    "controller.listener.names",
                    name,
                    "a controller listener must be bound: add it to listeners",
                ))
            }
            (true, true) => {
                return Err(invalid(
                    "controller.listener.names",
                    name,
                    "a broker-only node must not bind a controller listener: remove it from \
                     listeners",
                ))
            }
            _ => {}
        }
    }
    let map = protocol_map(props, &bind, &controller_names)?;
    let mut protocols = BTreeMap::new();
    for l in &mut bind {
        l.protocol = protocol_of(&map, "listeners", l)?;
        protocols.insert(l.name.clone(), l.protocol);
    }
    for name in &controller_names {
        if map.get(name).is_some_and(|p| p.starts_with("SASL")) {
            unsupported.push(format!(
                "controller.listener.names: {name} uses SASL; SASL between controllers and \
                 brokers is not supported yet (SSL is)"
            ));
        }
    }
    for name in &controller_names {
        if let Some(p) = map.get(name).and_then(|p| SecurityProtocol::parse(p)) {
            protocols.entry(name.clone()).or_insert(p);
        }
    }
    let (mut advertised, mut advertised_all) =
        advertised(props, &bind, &controller_names, controller_only)?;
    for l in advertised.iter_mut().chain(advertised_all.iter_mut()) {
        l.protocol = protocols.get(&l.name).copied().unwrap_or_default();
    }
    check_inter_broker(props, &bind, &map, unsupported)?;
    Ok(Listeners {
        bind,
        advertised,
        advertised_all,
        controller_names,
        protocols,
    })
}

/// `listeners`, or the single-node default.
fn listeners_value(props: &BTreeMap<String, String>) -> &str {
    props
        .get("listeners")
        .map_or("PLAINTEXT://127.0.0.1:9092", String::as_str)
}

/// The listeners given to clients (controller listeners left out) and every advertised one.
fn advertised(
    props: &BTreeMap<String, String>,
    bind: &[Listener],
    controller_names: &[String],
    controller_only: bool,
) -> Result<(Vec<Listener>, Vec<Listener>), ConfigError> {
    let advertised_all: Vec<Listener> = match props.get("advertised.listeners") {
        Some(v) => parse_listeners("advertised.listeners", v)?,
        None => bind.to_vec(),
    };
    for l in &advertised_all {
        if !bind.iter().any(|b| b.name == l.name) {
            return Err(invalid(
                "advertised.listeners",
                &l.to_string(),
                "its listener name is not one of listeners",
            ));
        }
    }
    let advertised: Vec<Listener> = advertised_all
        .iter()
        .filter(|l| !controller_names.contains(&l.name))
        .cloned()
        .collect();
    if advertised.is_empty() && !controller_only {
        return Err(invalid(
            "listeners",
            props
                .get("listeners")
                .map_or("PLAINTEXT://127.0.0.1:9092", |v| v.as_str()),
            "at least one listener that is not a controller listener is required for clients",
        ));
    }
    Ok((advertised, advertised_all))
}

/// `inter.broker.listener.name` must name a listener, and SASL is not supported yet.
fn check_inter_broker(
    props: &BTreeMap<String, String>,
    bind: &[Listener],
    map: &BTreeMap<String, String>,
    unsupported: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if let Some(name) = props.get("inter.broker.listener.name") {
        let name = name.trim().to_uppercase();
        let Some(l) = bind.iter().find(|l| l.name == name) else {
            return Err(invalid(
                "inter.broker.listener.name",
                &name,
                "not one of listeners",
            ));
        };
        let protocol = protocol_of(map, "inter.broker.listener.name", l)?;
        if protocol.is_sasl() {
            unsupported.push(format!(
                "inter.broker.listener.name: {name} uses {}; SASL between brokers is not \
                 supported yet (SSL is)",
                protocol.name()
            ));
        }
    }
    Ok(())
}

/// A listener's security protocol through `listener.security.protocol.map`.
fn protocol_of(
    map: &BTreeMap<String, String>,
    key: &str,
    l: &Listener,
) -> Result<SecurityProtocol, ConfigError> {
    map.get(&l.name)
        .and_then(|p| SecurityProtocol::parse(p))
        .ok_or_else(|| {
            invalid(
                key,
                &l.to_string(),
                &format!(
                    "no security protocol for listener name {} in listener.security.protocol.map",
                    l.name
                ),
            )
        })
}

/// `listener.security.protocol.map` as Kafka computes its effective value.
fn protocol_map(
    props: &BTreeMap<String, String>,
    listeners: &[Listener],
    controller_names: &[String],
) -> Result<BTreeMap<String, String>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    let Some(explicit) = props.get(KEY) else {
        for p in SECURITY_PROTOCOLS {
            map.insert(p.to_string(), p.to_string());
        }
        let secure = |n: &String| n != "PLAINTEXT" && SECURITY_PROTOCOLS.contains(&n.as_str());
        if !controller_names.iter().any(secure) && !listeners.iter().any(|l| secure(&l.name)) {
            for n in controller_names {
                map.insert(n.clone(), "PLAINTEXT".to_string());
            }
        }
        return Ok(map);
    };
    for entry in split_list(explicit) {
        let (name, protocol) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(KEY, &entry, "expected LISTENER_NAME:PROTOCOL entries"))?;
        let protocol = protocol.trim().to_uppercase();
        if !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(invalid(
                KEY,
                &entry,
                "the protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
            ));
        }
        map.insert(name.trim().to_uppercase(), protocol);
    }
    Ok(map)
}

fn check_distinct_names(key: &str, listeners: &[Listener]) -> Result<(), ConfigError> {
    for (i, l) in listeners.iter().enumerate() {
        if listeners[..i].iter().any(|o| o.name == l.name) {
            return Err(invalid(
                key,
                &l.to_string(),
                "each listener must have a different name",
            ));
        }
    }
    Ok(())
}

/// `NAME://host:port` entries; `[v6]` hosts; an empty host means all interfaces.
pub fn parse_listeners(key: &str, v: &str) -> Result<Vec<Listener>, ConfigError> {
    split_list(v)
        .into_iter()
        .map(|l| {
            let bad = |reason: &str| invalid(key, &l, reason);
            let (name, rest) = l
                .split_once("://")
                .ok_or_else(|| bad("expected NAME://host:port"))?;
            if name.is_empty() {
                return Err(bad("the listener name is empty"));
            }
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
            let port = port.parse().map_err(|_| bad("invalid port"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            Ok(Listener {
                name: name.to_uppercase(),
                host,
                port,
                protocol: SecurityProtocol::Plaintext,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::props;

    fn resolve_ok(pairs: &[(&str, &str)]) -> (Listeners, Vec<String>) {
        let mut unsupported = Vec::new();
        let l = resolve(&props(pairs), false, &mut unsupported).unwrap();
        (l, unsupported)
    }

    #[test]
    fn every_protocol_is_served_on_client_listeners() {
        let (l, u) = resolve_ok(&[(
            "listeners",
            "SASL_SSL://127.0.0.1:9092,SSL://127.0.0.1:9094,SASL_PLAINTEXT://127.0.0.1:9095",
        )]);
        assert!(u.is_empty(), "{u:?}");
        assert_eq!(l.bind[0].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(l.bind[1].protocol, SecurityProtocol::Ssl);
        assert_eq!(l.advertised[2].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(l.protocols["SSL"], SecurityProtocol::Ssl);
    }

    #[test]
    fn protocol_map_resolves_custom_names() {
        let pairs = [
            ("listeners", "INTERNAL://127.0.0.1:1,external://127.0.0.1:2"),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL",
            ),
        ];
        let (l, u) = resolve_ok(&pairs);
        assert_eq!(l.bind[1].name, "EXTERNAL");
        assert!(u.is_empty(), "{u:?}");
        assert_eq!(l.bind[1].protocol, SecurityProtocol::SaslSsl);
        let (_, u) = resolve_ok(&[
            ("listeners", "A://127.0.0.1:1,B://127.0.0.1:2"),
            ("listener.security.protocol.map", "A:PLAINTEXT,B:plaintext"),
        ]);
        assert!(u.is_empty(), "{u:?}");
    }

    #[test]
    fn unmapped_listener_name_is_an_error() {
        let mut u = Vec::new();
        let err =
            resolve(&props(&[("listeners", "FOO://127.0.0.1:1")]), false, &mut u).unwrap_err();
        assert!(err.to_string().contains("no security protocol"), "{err}");
    }

    #[test]
    fn controller_listener_is_bound_but_not_advertised() {
        let (l, u) = resolve_ok(&[
            ("listeners", "CONTROLLER://:9093,PLAINTEXT://:9092"),
            ("controller.listener.names", "CONTROLLER"),
        ]);
        assert!(u.is_empty(), "{u:?}");
        assert_eq!(l.bind.len(), 2);
        assert_eq!(l.advertised.len(), 1);
        assert_eq!(l.advertised[0].name, "PLAINTEXT");
        // With an SSL listener in use Kafka adds no default mapping for CONTROLLER.
        let mut u = Vec::new();
        let p = props(&[
            ("listeners", "CONTROLLER://:9093,SSL://:9092"),
            ("controller.listener.names", "CONTROLLER"),
        ]);
        assert!(resolve(&p, false, &mut u).is_err());
    }

    #[test]
    fn only_controller_listeners_is_an_error() {
        let mut u = Vec::new();
        let p = props(&[
            ("listeners", "CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ]);
        assert!(resolve(&p, false, &mut u).is_err());
        let p = props(&[("controller.listener.names", "CONTROLLER")]);
        assert!(
            resolve(&p, false, &mut u).is_err(),
            "controller listener must be bound"
        );
    }

    #[test]
    fn duplicate_names_and_unknown_advertised_names_are_errors() {
        let mut u = Vec::new();
        let p = props(&[("listeners", "PLAINTEXT://:1,plaintext://:2")]);
        assert!(resolve(&p, false, &mut u).is_err());
        let p = props(&[
            ("listeners", "PLAINTEXT://:1"),
            ("advertised.listeners", "OTHER://h:1"),
        ]);
        assert!(resolve(&p, false, &mut u).is_err());
    }

    #[test]
    fn inter_broker_listener_must_not_be_sasl() {
        let (_, u) = resolve_ok(&[
            ("listeners", "PLAINTEXT://:1,SSL://:2"),
            ("inter.broker.listener.name", "SSL"),
        ]);
        assert!(u.is_empty(), "{u:?}");
        let (_, u) = resolve_ok(&[
            ("listeners", "PLAINTEXT://:1,SASL_SSL://:2"),
            ("inter.broker.listener.name", "SASL_SSL"),
        ]);
        assert_eq!(u.len(), 1, "{u:?}");
        let (_, u) = resolve_ok(&[("inter.broker.listener.name", "plaintext")]);
        assert!(u.is_empty());
    }
}
