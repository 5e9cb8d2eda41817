//! The authorizer's index of the metadata image's ACLs, built once per change of the ACLs and
//! then read by every request: bindings grouped by principal and resource type, then by
//! pattern (literal name, prefix, wildcard), so one decision looks up a handful of hash-map
//! entries (the name, each of its prefixes that some ACL uses) whatever the number of ACLs.

use std::collections::{BTreeSet, HashMap};

use shale_raft::acl::{op, pattern, permission};
use shale_raft::records::AccessControlEntryRecord;

/// The part of a binding a decision reads.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    host: Box<str>,
    operation: i8,
    allow: bool,
}

/// Bindings on one resource type, by pattern.
#[derive(Debug, Default)]
struct Patterns<T> {
    literal: HashMap<Box<str>, T>,
    prefixed: HashMap<Box<str>, T>,
    /// The lengths of the prefixes in `prefixed`, so a lookup tries only those.
    prefix_lengths: BTreeSet<usize>,
    wildcard: Option<T>,
}

impl<T: Default> Patterns<T> {
    fn slot(&mut self, pattern_type: i8, name: &str) -> Option<&mut T> {
        match pattern_type {
            pattern::LITERAL if name == pattern::WILDCARD => {
                Some(self.wildcard.get_or_insert_with(T::default))
            }
            pattern::LITERAL => Some(self.literal.entry(name.into()).or_default()),
            pattern::PREFIXED => {
                self.prefix_lengths.insert(name.len());
                Some(self.prefixed.entry(name.into()).or_default())
            }
            _ => None,
        }
    }

    /// Every slot whose pattern covers `name`.
    fn covering<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a T> + 'a {
        let prefixes = self
            .prefix_lengths
            .iter()
            .take_while(move |len| **len <= name.len())
            .filter_map(move |len| name.get(..*len))
            .filter_map(|p| self.prefixed.get(p));
        self.literal
            .get(name)
            .into_iter()
            .chain(self.wildcard.as_ref())
            .chain(prefixes)
    }
}

/// The ACLs of one image, ready for decisions.
#[derive(Debug, Default)]
pub struct AclIndex {
    /// Bindings by principal, then resource type.
    by_principal: HashMap<Box<str>, HashMap<i8, Patterns<Vec<Entry>>>>,
    /// Which patterns have any binding at all, by resource type (Kafka's "no ACL found").
    any: HashMap<i8, Patterns<()>>,
    len: usize,
}

/// A decision before `allow.everyone.if.no.acl.found` and super users are considered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// No binding mentions the resource, for anyone.
    NoAcls,
}

impl AclIndex {
    /// Indexes `acls`.
    pub fn build<'a>(acls: impl IntoIterator<Item = &'a AccessControlEntryRecord>) -> AclIndex {
        let mut index = AclIndex::default();
        for a in acls {
            let entry = Entry {
                host: a.host.as_str().into(),
                operation: a.operation,
                allow: a.permission_type == permission::ALLOW,
            };
            let of_principal = index.by_principal.entry(a.principal.as_str().into());
            let patterns = of_principal
                .or_default()
                .entry(a.resource_type)
                .or_default();
            let Some(slot) = patterns.slot(a.pattern_type, &a.resource_name) else {
                continue;
            };
            slot.push(entry);
            let any = index.any.entry(a.resource_type).or_default();
            any.slot(a.pattern_type, &a.resource_name);
            index.len += 1;
        }
        index
    }

    fn patterns(&self, principal: &str, resource_type: i8) -> Option<&Patterns<Vec<Entry>>> {
        self.by_principal.get(principal)?.get(&resource_type)
    }

    /// How many bindings are indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Kafka's StandardAuthorizer decision for `principal` (`User:alice`) from `host` on the
    /// resource: a matching DENY wins, then a matching ALLOW; with neither, [`Verdict::Denied`]
    /// when some binding (anyone's) covers the resource, else [`Verdict::NoAcls`].
    pub fn decide(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> Verdict {
        let mut allowed = false;
        for who in [principal, "User:*"] {
            let Some(patterns) = self.patterns(who, resource_type) else {
                continue;
            };
            for entry in patterns.covering(name).flatten() {
                if &*entry.host != "*" && &*entry.host != host {
                    continue;
                }
                match (entry.allow, covers(entry, operation)) {
                    (false, true) => return Verdict::Denied,
                    (true, true) => allowed = true,
                    (_, false) => {}
                }
            }
        }
        let found = || {
            self.any
                .get(&resource_type)
                .is_some_and(|p| p.covering(name).next().is_some())
        };
        match allowed {
            true => Verdict::Allowed,
            false if found() => Verdict::Denied,
            false => Verdict::NoAcls,
        }
    }
}

impl AclIndex {
    /// Kafka's `authorizeByResourceType` after its first step: whether some resource of the
    /// type allows `operation` for the principal — an ALLOW (the operation or ALL, no
    /// implication) on a name that no DENY of the principal covers (a literal DENY of the same
    /// name, a prefixed DENY of a prefix, a wildcard DENY covers all). Scans the principal's
    /// own bindings only (InitProducerId without a transactional id uses it).
    pub fn allows_any(
        &self,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
    ) -> bool {
        let mut allowed: Vec<(bool, &str)> = Vec::new();
        let mut denied: Vec<(bool, &str)> = Vec::new();
        for who in [principal, "User:*"] {
            let Some(patterns) = self.patterns(who, resource_type) else {
                continue;
            };
            let named = patterns.literal.iter().map(|(n, e)| (false, &**n, e));
            let prefixed = patterns.prefixed.iter().map(|(n, e)| (true, &**n, e));
            let wildcard = patterns
                .wildcard
                .iter()
                .map(|e| (false, pattern::WILDCARD, e));
            for (prefix, name, entries) in named.chain(prefixed).chain(wildcard) {
                for e in entries {
                    let applies = (&*e.host == "*" || &*e.host == host)
                        && (e.operation == op::ALL || e.operation == operation);
                    match (applies, e.allow) {
                        (true, true) => allowed.push((prefix, name)),
                        (true, false) => denied.push((prefix, name)),
                        (false, _) => {}
                    }
                }
            }
        }
        if denied.contains(&(false, pattern::WILDCARD)) {
            return false;
        }
        allowed.iter().any(|&(prefix, name)| {
            (!prefix && name == pattern::WILDCARD)
                || !denied.iter().any(|&(dprefix, dname)| match dprefix {
                    true => name.starts_with(dname),
                    false => !prefix && dname == name,
                })
        })
    }
}

/// Whether a binding's operation applies to `operation`: ALL always; a DENY only to its own
/// operation; an ALLOW also to the operations it implies (DESCRIBE by READ, WRITE, DELETE and
/// ALTER; DESCRIBE_CONFIGS by ALTER_CONFIGS).
fn covers(entry: &Entry, operation: i8) -> bool {
    if entry.operation == op::ALL || entry.operation == operation {
        return true;
    }
    entry.allow
        && match operation {
            op::DESCRIBE => matches!(
                entry.operation,
                op::READ | op::WRITE | op::DELETE | op::ALTER
            ),
            op::DESCRIBE_CONFIGS => entry.operation == op::ALTER_CONFIGS,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_raft::acl::resource;
    use uuid::Uuid;

    fn acl(name: &str, pt: i8, who: &str, host: &str, o: i8, perm: i8) -> AccessControlEntryRecord {
        AccessControlEntryRecord {
            id: Uuid::nil(),
            resource_type: resource::TOPIC,
            resource_name: name.into(),
            pattern_type: pt,
            principal: who.into(),
            host: host.into(),
            operation: o,
            permission_type: perm,
        }
    }

    const A: i8 = permission::ALLOW;
    const D: i8 = permission::DENY;
    const L: i8 = pattern::LITERAL;
    const P: i8 = pattern::PREFIXED;

    fn decide(index: &AclIndex, who: &str, o: i8, name: &str) -> Verdict {
        index.decide(who, "10.0.0.1", o, resource::TOPIC, name)
    }

    #[test]
    fn literal_prefixed_and_wildcard_patterns() {
        let acls = [
            acl("orders", L, "User:a", "*", op::READ, A),
            acl("pay", P, "User:b", "*", op::WRITE, A),
            acl("*", L, "User:c", "*", op::ALL, A),
        ];
        let index = AclIndex::build(&acls);
        assert_eq!(
            decide(&index, "User:a", op::READ, "orders"),
            Verdict::Allowed
        );
        assert_eq!(
            decide(&index, "User:a", op::WRITE, "orders"),
            Verdict::Denied
        );
        assert_eq!(
            decide(&index, "User:b", op::WRITE, "payments"),
            Verdict::Allowed
        );
        assert_eq!(decide(&index, "User:b", op::WRITE, "pa"), Verdict::Denied);
        assert_eq!(decide(&index, "User:c", op::DELETE, "x"), Verdict::Allowed);
        // The wildcard binding covers every topic, so nothing is ACL-free.
        assert_eq!(decide(&index, "User:a", op::READ, "x"), Verdict::Denied);
        let without_wildcard = AclIndex::build(&acls[..2]);
        assert_eq!(
            decide(&without_wildcard, "User:a", op::READ, "x"),
            Verdict::NoAcls
        );
    }

    #[test]
    fn deny_wins_and_only_allows_imply() {
        let acls = [
            acl("t", L, "User:a", "*", op::READ, A),
            acl("t", L, "User:*", "*", op::WRITE, D),
            acl("u", L, "User:a", "*", op::ALTER_CONFIGS, A),
            acl("u", L, "User:a", "*", op::READ, D),
        ];
        let index = AclIndex::build(&acls);
        assert_eq!(
            decide(&index, "User:a", op::DESCRIBE, "t"),
            Verdict::Allowed
        );
        assert_eq!(decide(&index, "User:a", op::WRITE, "t"), Verdict::Denied);
        assert_eq!(
            decide(&index, "User:a", op::DESCRIBE_CONFIGS, "u"),
            Verdict::Allowed
        );
        // A DENY of READ does not deny DESCRIBE.
        assert_eq!(decide(&index, "User:a", op::READ, "u"), Verdict::Denied);
        assert_eq!(decide(&index, "User:z", op::READ, "t"), Verdict::Denied);
    }

    #[test]
    fn hosts_must_match() {
        let acls = [acl("t", L, "User:a", "10.0.0.2", op::READ, A)];
        let index = AclIndex::build(&acls);
        assert_eq!(decide(&index, "User:a", op::READ, "t"), Verdict::Denied);
        let v = index.decide("User:a", "10.0.0.2", op::READ, resource::TOPIC, "t");
        assert_eq!(v, Verdict::Allowed);
    }

    #[test]
    fn allows_any_honours_denials() {
        let acls = [
            acl("a", L, "User:a", "*", op::WRITE, A),
            acl("b", P, "User:b", "*", op::WRITE, A),
            acl("b", P, "User:b", "*", op::WRITE, D),
            acl("c", L, "User:c", "*", op::READ, A),
        ];
        let index = AclIndex::build(&acls);
        let any = |who| index.allows_any(who, "h", op::WRITE, resource::TOPIC);
        assert!(any("User:a"));
        assert!(!any("User:b"), "its only ALLOW is denied by a prefix");
        assert!(!any("User:c"), "READ is not WRITE");
    }

    #[test]
    fn prefixes_are_looked_up_not_scanned() {
        let acls: Vec<_> = (0..10_000)
            .map(|i| {
                acl(
                    &format!("team{i}-"),
                    P,
                    &format!("User:u{i}"),
                    "*",
                    op::READ,
                    A,
                )
            })
            .collect();
        let index = AclIndex::build(&acls);
        assert_eq!(index.len(), 10_000);
        let v = decide(&index, "User:u4242", op::READ, "team4242-events");
        assert_eq!(v, Verdict::Allowed);
        assert_eq!(
            decide(&index, "User:u1", op::READ, "team4242-x"),
            Verdict::Denied
        );
        // Multi-byte names: a prefix length inside a character is skipped, not a panic.
        assert_eq!(
            decide(&index, "User:u1", op::READ, "ééééé"),
            Verdict::NoAcls
        );
    }
}
