//! Authorization settings ([`AUTHZ_CONFIGS`]): `authorizer.class.name` turns ACLs on (Kafka's
//! KRaft `StandardAuthorizer`, the ACLs of the metadata log), `super.users` bypass them, and
//! `allow.everyone.if.no.acl.found` decides for resources no ACL mentions.

use super::{invalid, ConfigDef, ConfigError, Kind};
use std::collections::BTreeMap;

/// Kafka's KRaft authorizer; the only `authorizer.class.name` Shale serves.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The authorization keys Shale reads. Order is the docs' order.
pub static AUTHZ_CONFIGS: &[ConfigDef] = &[
    def!(
        "authorizer.class.name",
        Some(""),
        Str,
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer enforces the ACLs of the metadata log (kafka-acls.sh) on every request; empty: no authorization, every client may do everything. Other authorizers stop start-up."
    ),
    def!(
        "super.users",
        Some(""),
        Str,
        "Principals allowed every operation whatever the ACLs say, separated by semicolons: User:admin;User:CN=broker1,O=example."
    ),
    def!(
        "allow.everyone.if.no.acl.found",
        Some("false"),
        Bool,
        "Whether a resource that no ACL matches is open to everyone (true) or to super users only (false)."
    ),
];

/// The resolved settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthzConfig {
    /// Whether ACLs are enforced.
    pub enabled: bool,
    /// Full principal names (`User:alice`).
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// Reads the keys from `props`.
pub fn resolve(props: &BTreeMap<String, String>) -> Result<AuthzConfig, ConfigError> {
    let get = |k: &str| props.get(k).map(|v| v.trim()).unwrap_or_default();
    let enabled = match get("authorizer.class.name") {
        "" => false,
        STANDARD_AUTHORIZER => true,
        other => {
            return Err(invalid(
                "authorizer.class.name",
                other,
                "Shale's authorizer is org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ))
        }
    };
    let mut super_users = Vec::new();
    for user in get("super.users").split(';').map(str::trim) {
        match user {
            "" => {}
            u if u.contains(':') => super_users.push(u.to_string()),
            u => {
                return Err(invalid(
                    "super.users",
                    u,
                    "each super user is a principal such as User:admin",
                ))
            }
        }
    }
    Ok(AuthzConfig {
        enabled,
        super_users,
        allow_if_no_acl: get("allow.everyone.if.no.acl.found").eq_ignore_ascii_case("true"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::props;

    #[test]
    fn standard_authorizer_with_super_users() {
        let c = resolve(&props(&[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:admin; User:CN=b1,O=x ;"),
            ("allow.everyone.if.no.acl.found", "TRUE"),
        ]))
        .unwrap();
        assert!(c.enabled && c.allow_if_no_acl);
        assert_eq!(c.super_users, vec!["User:admin", "User:CN=b1,O=x"]);
        assert_eq!(resolve(&props(&[])).unwrap(), AuthzConfig::default());
    }

    #[test]
    fn other_authorizers_and_bare_names_are_refused() {
        let zk = props(&[(
            "authorizer.class.name",
            "kafka.security.authorizer.AclAuthorizer",
        )]);
        assert!(resolve(&zk).is_err());
        assert!(resolve(&props(&[("super.users", "admin")])).is_err());
    }
}
