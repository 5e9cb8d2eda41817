//! ACL bindings as Kafka numbers them (resource type, pattern type, operation, permission) and
//! the two matching rules every ACL API shares: a stored binding against a filter (DescribeAcls,
//! DeleteAcls) and a stored pattern against a resource name (authorization). The authorizer's
//! index lives in the broker; the records in [`crate::records::AccessControlEntryRecord`].

use crate::records::AccessControlEntryRecord;

/// Resource types (`org.apache.kafka.common.resource.ResourceType` codes).
pub mod resource {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
    /// The one name a CLUSTER resource has.
    pub const CLUSTER_NAME: &str = "kafka-cluster";
}

/// Pattern types (`PatternType` codes).
pub mod pattern {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
    /// A literal pattern with this name matches every resource of its type.
    pub const WILDCARD: &str = "*";
}

/// Operations (`AclOperation` codes).
pub mod op {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
    pub const TWO_PHASE_COMMIT: i8 = 15;
    /// The operations a resource type has (Kafka's `ResourceType`-specific sets, reported as
    /// authorized operations), `ALL` excluded.
    pub fn of_resource(resource_type: i8) -> &'static [i8] {
        use super::resource as r;
        match resource_type {
            r::TOPIC => &[
                READ,
                WRITE,
                CREATE,
                DESCRIBE,
                DELETE,
                ALTER,
                DESCRIBE_CONFIGS,
                ALTER_CONFIGS,
            ],
            r::GROUP => &[READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS],
            r::CLUSTER => &[
                CREATE,
                CLUSTER_ACTION,
                DESCRIBE_CONFIGS,
                ALTER_CONFIGS,
                IDEMPOTENT_WRITE,
                ALTER,
                DESCRIBE,
            ],
            r::TRANSACTIONAL_ID => &[DESCRIBE, WRITE],
            r::DELEGATION_TOKEN => &[DESCRIBE],
            r::USER => &[CREATE_TOKENS, DESCRIBE_TOKENS],
            _ => &[],
        }
    }
}

/// Permission types (`AclPermissionType` codes).
pub mod permission {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// A DescribeAcls / DeleteAcls filter; `None` strings match anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission_type: i8,
}

impl AclFilter {
    /// Why Kafka refuses this filter (a code it does not know), if it does.
    pub fn invalid(&self) -> Option<String> {
        let known = |v: i8, max: i8| (1..=max).contains(&v);
        if !known(self.resource_type, resource::USER) {
            return Some(format!("Invalid resourceType {}", self.resource_type));
        }
        if !known(self.pattern_type, pattern::PREFIXED) {
            return Some(format!("Invalid patternType {}", self.pattern_type));
        }
        if !known(self.operation, op::TWO_PHASE_COMMIT) {
            return Some(format!("Invalid operation {}", self.operation));
        }
        if !known(self.permission_type, permission::ALLOW) {
            return Some(format!("Invalid permissionType {}", self.permission_type));
        }
        None
    }

    /// Whether the stored binding `acl` matches (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, acl: &AccessControlEntryRecord) -> bool {
        let any_or = |want: i8, any: i8, got: i8| want == any || want == got;
        let text = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
        any_or(self.resource_type, resource::ANY, acl.resource_type)
            && self.pattern_matches(acl)
            && text(&self.principal, &acl.principal)
            && text(&self.host, &acl.host)
            && any_or(self.operation, op::ANY, acl.operation)
            && any_or(self.permission_type, permission::ANY, acl.permission_type)
    }

    fn pattern_matches(&self, acl: &AccessControlEntryRecord) -> bool {
        let Some(name) = &self.resource_name else {
            return matches!(self.pattern_type, pattern::ANY | pattern::MATCH)
                || self.pattern_type == acl.pattern_type;
        };
        match self.pattern_type {
            pattern::ANY => *name == acl.resource_name,
            pattern::MATCH => pattern_covers(acl.pattern_type, &acl.resource_name, name),
            p => p == acl.pattern_type && *name == acl.resource_name,
        }
    }
}

/// Whether a stored pattern (`pattern_type`, `pattern_name`) applies to the resource `name`:
/// a literal pattern with the same name or the wildcard, a prefixed one that starts it.
pub fn pattern_covers(pattern_type: i8, pattern_name: &str, name: &str) -> bool {
    match pattern_type {
        pattern::LITERAL => pattern_name == name || pattern_name == pattern::WILDCARD,
        pattern::PREFIXED => name.starts_with(pattern_name),
        _ => false,
    }
}

/// Why Kafka's controller refuses a new binding (`AclControlManager.validateNewAcl` and the
/// broker's CreateAcls checks), if it does: INVALID_REQUEST with this message.
pub fn invalid_new_acl(acl: &AccessControlEntryRecord) -> Option<String> {
    if !matches!(acl.pattern_type, pattern::LITERAL | pattern::PREFIXED) {
        return Some(format!("Invalid patternType {}", acl.pattern_type));
    }
    if !(resource::TOPIC..=resource::USER).contains(&acl.resource_type) {
        return Some(format!("Invalid resourceType {}", acl.resource_type));
    }
    if !(op::ALL..=op::TWO_PHASE_COMMIT).contains(&acl.operation) {
        return Some(format!("Invalid operation {}", acl.operation));
    }
    if !matches!(acl.permission_type, permission::DENY | permission::ALLOW) {
        return Some(format!("Invalid permissionType {}", acl.permission_type));
    }
    if acl.resource_name.is_empty() {
        return Some("Resource name should not be empty".into());
    }
    if acl.resource_type == resource::CLUSTER && acl.resource_name != resource::CLUSTER_NAME {
        return Some("The only valid name for the CLUSTER resource is kafka-cluster".into());
    }
    if !acl.principal.contains(':') {
        return Some(format!(
            "Could not parse principal from `{}` (no colon is present separating the \
             principal type from the principal name)",
            acl.principal
        ));
    }
    None
}

/// What a binding grants (everything but its id): two bindings with the same key are one.
pub type BindingKey<'a> = (i8, &'a str, i8, &'a str, &'a str, i8, i8);

/// The binding's [`BindingKey`].
pub fn binding_key(a: &AccessControlEntryRecord) -> BindingKey<'_> {
    (
        a.resource_type,
        &a.resource_name,
        a.pattern_type,
        &a.principal,
        &a.host,
        a.operation,
        a.permission_type,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    pub(crate) fn acl(rt: i8, name: &str, pt: i8, principal: &str) -> AccessControlEntryRecord {
        AccessControlEntryRecord {
            id: Uuid::nil(),
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation: op::READ,
            permission_type: permission::ALLOW,
        }
    }

    fn filter(name: Option<&str>, pt: i8) -> AclFilter {
        AclFilter {
            resource_type: resource::TOPIC,
            resource_name: name.map(String::from),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: op::ANY,
            permission_type: permission::ANY,
        }
    }

    #[test]
    fn match_filters_find_every_pattern_covering_the_name() {
        let literal = acl(resource::TOPIC, "orders", pattern::LITERAL, "User:a");
        let wildcard = acl(resource::TOPIC, "*", pattern::LITERAL, "User:a");
        let prefixed = acl(resource::TOPIC, "ord", pattern::PREFIXED, "User:a");
        let other = acl(resource::TOPIC, "pay", pattern::PREFIXED, "User:a");
        let m = filter(Some("orders"), pattern::MATCH);
        assert!(m.matches(&literal) && m.matches(&wildcard) && m.matches(&prefixed));
        assert!(!m.matches(&other));
        let exact = filter(Some("orders"), pattern::LITERAL);
        assert!(exact.matches(&literal) && !exact.matches(&wildcard));
        let any_named = filter(Some("ord"), pattern::ANY);
        assert!(any_named.matches(&prefixed) && !any_named.matches(&literal));
        assert!(filter(None, pattern::ANY).matches(&other));
        assert!(!filter(None, pattern::LITERAL).matches(&other));
    }

    #[test]
    fn entry_fields_filter_exactly() {
        let a = acl(resource::GROUP, "g", pattern::LITERAL, "User:a");
        let mut f = filter(None, pattern::ANY);
        assert!(!f.matches(&a), "resource type TOPIC");
        f.resource_type = resource::ANY;
        assert!(f.matches(&a));
        f.principal = Some("User:b".into());
        assert!(!f.matches(&a));
        f.principal = Some("User:a".into());
        f.operation = op::WRITE;
        assert!(!f.matches(&a));
        f.operation = op::READ;
        f.permission_type = permission::DENY;
        assert!(!f.matches(&a));
    }

    #[test]
    fn new_acls_are_checked_as_kafka_checks_them() {
        let ok = acl(resource::TOPIC, "t", pattern::LITERAL, "User:a");
        assert_eq!(invalid_new_acl(&ok), None);
        let mut bad = ok.clone();
        bad.pattern_type = pattern::MATCH;
        assert!(invalid_new_acl(&bad).unwrap().contains("patternType"));
        let mut bad = ok.clone();
        bad.principal = "alice".into();
        assert!(invalid_new_acl(&bad).unwrap().contains("principal"));
        let mut bad = ok.clone();
        bad.resource_type = resource::CLUSTER;
        assert!(invalid_new_acl(&bad).unwrap().contains("kafka-cluster"));
        let mut bad = ok.clone();
        bad.operation = op::ANY;
        assert!(invalid_new_acl(&bad).is_some());
        let mut bad = ok;
        bad.resource_name.clear();
        assert!(invalid_new_acl(&bad).is_some());
    }
}
