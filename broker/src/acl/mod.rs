//! Authorization (Kafka's KRaft `StandardAuthorizer`): whether a principal from a host may
//! perform an operation on a resource, decided from the ACLs of the metadata image — so every
//! broker enforces the same rules — with `super.users` and `allow.everyone.if.no.acl.found`.
//!
//! The [`Authorizer`] keeps an [`index::AclIndex`] of the image's ACLs, rebuilt only when they
//! change; each request gets an [`Authz`] (its principal and host resolved once) that handlers
//! ask per resource. With no `authorizer.class.name` every request is allowed, as in Kafka.

pub mod index;

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::RwLock;
use shale_raft::acl::{op, resource};
use shale_raft::MetadataImage;

use crate::config::authz::AuthzConfig;
use index::{AclIndex, Verdict};

/// The principal type of every Shale principal (Kafka's default principal builder's).
pub const USER_TYPE: &str = "User";

/// The ACL index of the image whose ACL map it was built from.
type Cached = (
    Arc<std::collections::BTreeMap<uuid::Uuid, shale_raft::records::AccessControlEntryRecord>>,
    Arc<AclIndex>,
);

/// The broker's authorizer.
#[derive(Debug)]
pub struct Authorizer {
    config: AuthzConfig,
    super_users: HashSet<String>,
    cached: RwLock<Option<Cached>>,
}

impl Authorizer {
    /// An authorizer with these settings (enforcing nothing when they do not enable it).
    pub fn new(config: AuthzConfig) -> Authorizer {
        Authorizer {
            super_users: config.super_users.iter().cloned().collect(),
            config,
            cached: RwLock::new(None),
        }
    }

    /// Whether ACLs are enforced (DescribeAcls and friends answer SECURITY_DISABLED if not).
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// The index of `image`'s ACLs: the cached one while they are the same map. A change is
    /// indexed outside the lock, so requests keep deciding on the old index meanwhile.
    pub fn index(&self, image: &MetadataImage) -> Arc<AclIndex> {
        if let Some((acls, index)) = &*self.cached.read() {
            if Arc::ptr_eq(acls, &image.acls) {
                return index.clone();
            }
        }
        let index = Arc::new(AclIndex::build(image.acls.values()));
        *self.cached.write() = Some((image.acls.clone(), index.clone()));
        index
    }

    /// The decisions of one request from `principal` (a name of type `User`) at `host` (the
    /// peer's IP address as text, asked for only when ACLs are on: no work per request
    /// without them).
    pub fn for_request(
        &self,
        image: &MetadataImage,
        principal: &str,
        host: impl FnOnce() -> String,
    ) -> Authz {
        if !self.config.enabled {
            return Authz::allow_all();
        }
        let principal = format!("{USER_TYPE}:{principal}");
        let superuser = self.super_users.contains(&principal);
        Authz {
            index: (!superuser).then(|| self.index(image)),
            allow_if_no_acl: self.config.allow_if_no_acl,
            principal,
            host: host(),
        }
    }
}

/// One request's authorization: its principal, host and the ACL index at the time.
#[derive(Clone, Debug)]
pub struct Authz {
    /// `None`: everything is allowed (no authorizer, or a super user).
    index: Option<Arc<AclIndex>>,
    allow_if_no_acl: bool,
    principal: String,
    host: String,
}

impl Authz {
    /// Allows everything (no authorizer).
    pub fn allow_all() -> Authz {
        Authz {
            index: None,
            allow_if_no_acl: true,
            principal: String::new(),
            host: String::new(),
        }
    }

    /// Whether `operation` on the resource is allowed.
    pub fn allows(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        let Some(index) = &self.index else {
            return true;
        };
        match index.decide(&self.principal, &self.host, operation, resource_type, name) {
            Verdict::Allowed => true,
            Verdict::Denied => false,
            Verdict::NoAcls => self.allow_if_no_acl,
        }
    }

    /// Whether `operation` on the cluster is granted outright: a super user, no authorizer, or
    /// an ALLOW binding — never by `allow.everyone.if.no.acl.found`. What other nodes do on
    /// the controller listener (quorum and lifecycle RPCs, Envelopes) is decided this way.
    pub fn granted_on_cluster(&self, operation: i8) -> bool {
        let Some(index) = &self.index else {
            return true;
        };
        let (rt, name) = (resource::CLUSTER, resource::CLUSTER_NAME);
        index.decide(&self.principal, &self.host, operation, rt, name) == Verdict::Allowed
    }

    /// Whether `operation` is allowed on at least one resource of the type (Kafka's
    /// `authorizeByResourceType`; InitProducerId without a transactional id asks it of topics).
    pub fn allows_any(&self, operation: i8, resource_type: i8) -> bool {
        // As Kafka: a decision on a name no one uses covers super users, the wildcard and the
        // no-ACL rule first.
        if self.allows(operation, resource_type, "hardcode") {
            return true;
        }
        let Some(index) = &self.index else {
            return true;
        };
        index.allows_any(&self.principal, &self.host, operation, resource_type)
    }

    /// On a topic.
    pub fn topic(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::TOPIC, name)
    }

    /// On a consumer group.
    pub fn group(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::GROUP, name)
    }

    /// On a transactional id.
    pub fn transactional_id(&self, operation: i8, id: &str) -> bool {
        self.allows(operation, resource::TRANSACTIONAL_ID, id)
    }

    /// On the cluster.
    pub fn cluster(&self, operation: i8) -> bool {
        self.allows(operation, resource::CLUSTER, resource::CLUSTER_NAME)
    }

    /// Kafka's authorized-operations bit field for the resource: bit `code` set for each of its
    /// type's operations that is allowed.
    pub fn operations(&self, resource_type: i8, name: &str) -> i32 {
        op::of_resource(resource_type)
            .iter()
            .filter(|o| self.allows(**o, resource_type, name))
            .fold(0, |bits, o| bits | 1 << o)
    }
}

/// Kafka's value of an authorized-operations field that was not asked for.
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

#[cfg(test)]
mod tests {
    use super::*;
    use shale_raft::acl::{pattern, permission};
    use shale_raft::records::AccessControlEntryRecord;

    fn image_with(acls: &[(&str, i8)]) -> MetadataImage {
        let mut image = MetadataImage::default();
        let map = Arc::make_mut(&mut image.acls);
        for (i, (principal, operation)) in acls.iter().enumerate() {
            let id = uuid::Uuid::from_u128(i as u128 + 1);
            map.insert(
                id,
                AccessControlEntryRecord {
                    id,
                    resource_type: resource::TOPIC,
                    resource_name: "t".into(),
                    pattern_type: pattern::LITERAL,
                    principal: principal.to_string(),
                    host: "*".into(),
                    operation: *operation,
                    permission_type: permission::ALLOW,
                },
            );
        }
        image
    }

    fn config(allow_if_no_acl: bool) -> AuthzConfig {
        AuthzConfig {
            enabled: true,
            super_users: vec!["User:admin".into()],
            allow_if_no_acl,
        }
    }

    #[test]
    fn super_users_and_the_no_acl_rule() {
        let image = image_with(&[("User:alice", op::READ)]);
        let a = Authorizer::new(config(false));
        let alice = a.for_request(&image, "alice", || "127.0.0.1".into());
        assert!(alice.topic(op::READ, "t") && !alice.topic(op::WRITE, "t"));
        assert!(!alice.topic(op::READ, "other"), "no ACL: denied");
        assert!(a
            .for_request(&image, "admin", || "h".into())
            .topic(op::WRITE, "t"));
        let open = Authorizer::new(config(true));
        let bob = open.for_request(&image, "bob", || "h".into());
        assert!(bob.topic(op::READ, "other") && !bob.topic(op::READ, "t"));
        let off = Authorizer::new(AuthzConfig::default());
        assert!(off
            .for_request(&image, "bob", || "h".into())
            .topic(op::WRITE, "t"));
    }

    #[test]
    fn the_no_acl_rule_grants_nothing_on_the_cluster_outright() {
        let image = image_with(&[]);
        let open = Authorizer::new(config(true));
        let anonymous = open.for_request(&image, "ANONYMOUS", || "h".into());
        assert!(anonymous.cluster(op::CLUSTER_ACTION));
        assert!(!anonymous.granted_on_cluster(op::CLUSTER_ACTION));
        assert!(open
            .for_request(&image, "admin", || "h".into())
            .granted_on_cluster(op::ALTER));
    }

    #[test]
    fn the_index_is_rebuilt_only_when_acls_change() {
        let a = Authorizer::new(config(false));
        let image = image_with(&[("User:alice", op::READ)]);
        let first = a.index(&image);
        let mut same = image.clone();
        same.next_producer_id = 7;
        assert!(Arc::ptr_eq(&first, &a.index(&same)));
        let changed = image_with(&[("User:alice", op::READ), ("User:bob", op::READ)]);
        assert_eq!(a.index(&changed).len(), 2);
    }

    #[test]
    fn authorized_operations_bit_field() {
        let image = image_with(&[("User:alice", op::READ)]);
        let a = Authorizer::new(config(false));
        let alice = a.for_request(&image, "alice", || "h".into());
        let bits = alice.operations(resource::TOPIC, "t");
        assert_eq!(bits, 1 << op::READ | 1 << op::DESCRIBE);
        let all = Authz::allow_all().operations(resource::GROUP, "g");
        let group_ops = [
            op::READ,
            op::DESCRIBE,
            op::DELETE,
            op::DESCRIBE_CONFIGS,
            op::ALTER_CONFIGS,
        ];
        assert_eq!(all, group_ops.iter().fold(0, |b, o| b | 1 << o));
    }
}
